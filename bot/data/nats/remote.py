"""``RemoteStreamManager``: a StreamManager whose tick source is JetStream, not the exchanges.

Ingest workers (:mod:`bot.data.nats.worker`) publish ticks; any number of
processes elsewhere read them through a durable consumer
(:class:`JetStreamSource`, the manager's :class:`~bot.data.tick_source.TickSource`)
and run them through their own :class:`~bot.data.pipeline.TickPipeline`
(``pipeline.process``, the path every tick takes), so bars, events, history,
the trading engine and the whole StreamManager API behave as with a direct
connection::

    manager = RemoteStreamManager(config, servers="nats://10.0.0.1:4222", durable="strategy-a")
    manager.add_crypto_symbols(["BTC/USDT"])
    await manager.start()
    df = manager.get_bar_dataframe("BTC/USDT", "1m")

Delivery (see :mod:`bot.data.nats.reader`): messages arrive in stream order,
each once; a fetch is acknowledged after the pipeline processed it, and a
restart resumes right after the last acknowledged message. Ticks a killed
process had processed but not yet acknowledged go to its successor, whose
pipeline has never seen them. A message carries a batch of one symbol's
trades (:mod:`bot.data.nats.batching`), unpacked into the pipeline in order; a
single tick (as published before batches) is read too. A batch a worker cut
short beside another worker's whole one holds trades that arrived already:
they are skipped (``overlapping_ticks``), so each trade reaches the pipeline
once (:class:`~bot.data.nats.delivered.DeliveredIds` remembers every id passed
on where the venue's ids are one sequence; elsewhere the ids of the symbol's
recent bars tell).

Bar completion. This process's clock never completes a bar: every symbol is
held (:meth:`BarAggregator.hold`). Bars complete by the trades' own times (the
first trade of a later interval) and by the workers' watermarks: a worker that
completes a bar publishes, on the symbol's tick subject and so after its
trades, that every trade before the bar's end is in the stream
(:class:`~bot.data.nats.codec.Watermark`). A backlog after a restart, NATS
going away, or a worker recovering a gap from REST therefore never completes a
bar short here: the bar waits for the trades and the worker's word. A
watermark ahead of the venue's clock as the gate estimates it (by more than
the gate's future window) is refused and counted (``watermarks_refused``): a
worker whose clock ran away cannot complete a year of bars here.

The exchange-facing features of the configuration (REST gap recovery and
warm-up) are switched off here: the ingest workers do them, and what they
recover reaches the stream like any other trade. A bar's flags are this
process's view: BACKFILLED is not carried over from the worker, and the first
bar after a start is PARTIAL.

A consumer's symbols are its filter subjects (``md.tick.<venue>.<SYMBOL>``);
adding or removing symbols at runtime updates the consumer in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.health import HealthReport
from bot.data.models import Tick
from bot.data.nats.client import connect, connected_url
from bot.data.nats.codec import Watermark, batch_codec, tick_codec, watermark_codec
from bot.data.nats.delivered import DeliveredIds
from bot.data.nats.reader import DELIVER_POLICIES, NATS_ERRORS, StreamReader
from bot.data.nats.subjects import BATCH, RECORD_HEADER, WATERMARK, check_token, tick_subject
from bot.data.pipeline import TickPipeline
from bot.data.stream_manager import StreamManager
from bot.data.supervision import Supervisor
from bot.data.throttle import LogThrottle
from bot.data.venue_group import VenueGroup
from bot.data.venues.registry import facts_of

logger = logging.getLogger(__name__)


class JetStreamSource:
    """Ticks of the wanted symbols from a JetStream consumer, into the manager's pipeline.

    ``servers``: NATS URLs (list or comma-separated). ``durable``: the consumer
    name a restarted process resumes from (one process per name); None makes
    an ephemeral consumer that starts over each time. ``deliver``: where a
    *new* consumer starts, ``"all"`` retained ticks (the default) or ``"new"``.
    ``stream``: the ticks' stream. ``batch``: messages per fetch. ``clock`` (ns
    since the epoch) is the one watermarks are judged on.
    """

    def __init__(self, *, servers: str | Sequence[str] = "nats://127.0.0.1:4222",
                 durable: str | None = None, stream: str = "MD_TICKS", deliver: str = "all",
                 batch: int = 500, fetch_timeout: float = 1.0, ack_timeout: float = 2.0,
                 connect_timeout: float = 10.0,
                 clock: Callable[[], int] = time.time_ns) -> None:
        if durable is not None:
            check_token("durable", durable)
        if deliver not in DELIVER_POLICIES:
            raise ConfigError("deliver", deliver, f"allowed: {', '.join(DELIVER_POLICIES)}")
        if batch < 1:
            raise ConfigError("batch", batch, "at least 1 message per fetch")
        for name, value in (("fetch_timeout", fetch_timeout), ("ack_timeout", ack_timeout)):
            if value <= 0:
                raise ConfigError(name, value, "must be > 0 seconds")
        self.servers = servers
        self.durable = durable
        self.stream = stream
        self.deliver = deliver
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.decode_errors = 0
        self.ticks = 0  # handed to the pipeline
        self.overlapping_ticks = 0  # delivered by an earlier batch already: skipped
        self.watermarks = 0
        self.watermarks_refused = 0  # ahead of the venue's clock: not applied
        self._clock = clock
        self._codec = tick_codec()
        self._batch_codec = batch_codec()
        self._watermark_codec = watermark_codec()
        self._pipeline: TickPipeline | None = None
        self._groups: Mapping[str, VenueGroup] = {}
        self._supervisor = Supervisor()
        self._nc: Client | None = None
        self._reader: StreamReader | None = None
        self._accepted: frozenset[str] = frozenset()
        self._consume_task: asyncio.Task[None] | None = None
        self._open = False
        self._stopping = False
        self._behind = True
        self._held: set[str] = set()
        self._delivered: dict[str, DeliveredIds | None] = {}  # None: ids not one sequence
        self._subjects_lock = asyncio.Lock()
        self._throttle = LogThrottle(logger)

    # -- TickSource ------------------------------------------------------------------
    def attach(self, pipeline: TickPipeline, groups: Mapping[str, VenueGroup],
               supervisor: Supervisor) -> None:
        self._pipeline = pipeline
        self._groups = groups
        self._supervisor = supervisor

    async def open(self, timeout: float | None) -> None:
        """Connect to NATS and open the consumer on the wanted symbols' subjects.

        ``timeout`` bounds the first NATS connection (default ``connect_timeout``);
        a missing stream fails here, naming it.
        """
        self._nc = await connect(self.servers, f"remote-{self.durable or 'ephemeral'}",
                                 on_disconnected=self._on_disconnected,
                                 start_timeout=timeout if timeout is not None
                                 else self.connect_timeout)
        self._reader = StreamReader(self._nc.jetstream(), self.stream, self.durable,
                                    deliver=self.deliver, batch=self.batch,
                                    fetch_timeout=self.fetch_timeout,
                                    ack_timeout=self.ack_timeout)
        self._open = True
        self._stopping = False
        self._behind = True
        await self._sync_subjects()

    def started(self) -> None:
        self._consume_task = self._supervisor.loop("remote-consume", self._consume)

    async def subscribe(self, group: VenueGroup, symbols: list[str]) -> None:
        await self._sync_subjects()

    async def sync(self) -> None:
        await self._sync_subjects()

    def forget(self, symbol: str) -> None:
        self._held.discard(symbol)
        self._delivered.pop(symbol, None)
        self._accepted = self._accepted - {symbol}

    async def stop(self) -> None:
        """Finish the batch in hand (processed and acknowledged), then close NATS."""
        task, self._consume_task = self._consume_task, None
        if task is not None:
            self._stopping = True
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._open = False
        if self._reader is not None:  # kept: its counters and position stay readable
            await self._reader.close()
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(*NATS_ERRORS):
                await nc.close()

    def add_metrics(self, metrics: dict[str, Any]) -> None:
        """The source's state, and its counters as ``nats_<name>``."""
        source = metrics["source"] = self.state()
        metrics["counters"].update({f"nats_{k}": v for k, v in source.items()
                                    if isinstance(v, int) and not isinstance(v, bool)
                                    and k not in ("pending", "position")})

    def judge(self, report: HealthReport) -> None:
        """Unhealthy while NATS is away; degraded while catching up."""
        source = report.sections["source"] = self.state()
        if self._open and not source["connected"]:
            report.fail("NATS is unreachable")
        elif self._open and not source["caught_up"]:
            report.degrade(f"catching up: {source['pending']} ticks pending")

    # -- subjects ----------------------------------------------------------------------
    async def _sync_subjects(self) -> None:
        """Open the consumer on the wanted symbols' subjects, or update its filter."""
        async with self._subjects_lock:
            reader = self._reader
            wanted = [(g.name, s) for g in self._groups.values() for s in g.symbols]
            subjects = sorted(tick_subject(venue, s) for venue, s in wanted)
            self._accepted = frozenset(s for _, s in wanted)
            if reader is None or not subjects:
                return
            if reader.subjects:
                await reader.update_subjects(subjects)
            else:
                await reader.open(subjects)

    # -- consuming -------------------------------------------------------------------
    async def _consume(self) -> None:
        while not self._stopping:
            reader = self._reader
            if reader is None or not reader.subjects:
                await asyncio.sleep(self.fetch_timeout)
                continue
            try:
                pending = await reader.read(self._on_message)
            except Exception as exc:  # never let the feed die silently: log, hold, retry
                self._throttle.log("read", logging.ERROR, "remote: reading failed: %r", exc,
                                   exc_info=exc)
                pending = None
            if pending is None:
                self._behind = True
                await asyncio.sleep(min(self.fetch_timeout, 0.5))
            elif pending > 0:
                self._behind = True
            else:
                self._behind = False

    def _on_message(self, msg: Msg) -> None:
        pipeline = self._pipeline
        assert pipeline is not None, "attach() binds the source to a pipeline first"
        headers = msg.headers
        kind = headers.get(RECORD_HEADER) if headers else None
        try:
            if kind == BATCH:
                ticks = self._batch_codec.decode(msg.data)
            elif kind == WATERMARK:
                self._on_watermark(self._watermark_codec.decode(msg.data))
                return
            elif kind is None:
                ticks = [self._codec.decode(msg.data)]
            else:
                raise ValueError(f"unknown {RECORD_HEADER} {kind!r}; known: {BATCH}, "
                                 f"{WATERMARK}")
        except (msgspec.DecodeError, TypeError, ValueError) as exc:
            self.decode_errors += 1
            self._throttle.log("decode", logging.WARNING,
                               "remote: undecodable message on %s: %r", msg.subject, exc)
            return
        if not ticks or ticks[0].symbol not in self._accepted:  # removed while in flight
            return
        self._process(pipeline, ticks)

    def _process(self, pipeline: TickPipeline, ticks: list[Tick]) -> None:
        """One symbol's ticks into the pipeline, in order, skipping those it has already:
        by every id passed on when the venue's ids are one sequence, else by the ids of the
        symbol's recent bars (the aggregator's check)."""
        first = ticks[0]
        symbol = first.symbol
        if symbol not in self._delivered:
            self._delivered[symbol] = (DeliveredIds() if facts_of(first.venue).sequenced
                                       else None)
        delivered = self._delivered[symbol]
        process = pipeline.process
        passed = 0
        if delivered is not None:
            add = delivered.add
            for tick in ticks:
                if add(tick.trade_id):
                    process(tick)
                    passed += 1
        else:
            is_duplicate = pipeline.aggregator.is_duplicate
            for tick in ticks:
                if not is_duplicate(tick):
                    process(tick)
                    passed += 1
        self.ticks += passed
        self.overlapping_ticks += len(ticks) - passed
        if symbol not in self._held:  # from its first trade on, only watermarks and
            pipeline.aggregator.hold(symbol)  # trades complete its bars
            self._held.add(symbol)

    def _on_watermark(self, watermark: Watermark) -> None:
        """Complete the symbol's bars up to the watermark, unless it is ahead of the venue."""
        pipeline = self._pipeline
        assert pipeline is not None
        if watermark.symbol not in self._accepted:
            return
        gate = pipeline.gate
        limit = gate.venue_time_ns(watermark.venue, self._clock()) + gate.future_window_ns
        if watermark.through_ns > limit:
            self.watermarks_refused += 1
            self._throttle.log("watermark", logging.WARNING,
                               "remote: refused a watermark of %s %s at %d, %.0f s ahead of "
                               "the venue's clock (allowed: %.0f s)", watermark.venue,
                               watermark.symbol, watermark.through_ns,
                               (watermark.through_ns - limit + gate.future_window_ns) / 1e9,
                               gate.future_window_ns / 1e9)
            return
        self.watermarks += 1
        pipeline.complete_through(watermark.symbol, watermark.through_ns)

    async def _on_disconnected(self) -> None:
        self._behind = True  # caught up again after the next read that finds nothing pending

    # -- state -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        nc, reader = self._nc, self._reader
        return {
            "connected": bool(nc and nc.is_connected),
            "server": None if nc is None else connected_url(nc),
            "stream": self.stream,
            "consumer": None if reader is None else reader.name,
            "filter_subjects": [] if reader is None else list(reader.subjects),
            "caught_up": not self._behind,
            "pending": None if reader is None else reader.pending,
            "position": None if reader is None else reader.position,
            "decode_errors": self.decode_errors,
            "ticks": self.ticks,
            "overlapping_ticks": self.overlapping_ticks,
            "watermarks": self.watermarks,
            "watermarks_refused": self.watermarks_refused,
            **(asdict(reader.counters) if reader is not None else {}),
        }


class RemoteStreamManager(StreamManager):
    """A :class:`StreamManager` whose tick source is a :class:`JetStreamSource`.

    It adds nothing but the source: ``servers``, ``durable``, ``stream``,
    ``deliver``, ``batch`` and the timeouts are the source's (``manager.source``).
    REST gap recovery and warm-up are off: the ingest workers do them.
    """

    source: JetStreamSource

    def __init__(self, config: StreamManagerConfig | None = None, *,
                 servers: str | Sequence[str] = "nats://127.0.0.1:4222",
                 durable: str | None = None, stream: str = "MD_TICKS", deliver: str = "all",
                 batch: int = 500, fetch_timeout: float = 1.0, ack_timeout: float = 2.0,
                 clock: Callable[[], int] = time.time_ns) -> None:
        # The workers publishing to NATS checked the symbols against their venues.
        config = replace(config or StreamManagerConfig(), backfill=False, warm_up=False,
                         check_symbols=False)
        super().__init__(config, clock=clock, source=JetStreamSource(
            servers=servers, durable=durable, stream=stream, deliver=deliver, batch=batch,
            fetch_timeout=fetch_timeout, ack_timeout=ack_timeout,
            connect_timeout=config.connect_timeout, clock=clock))
