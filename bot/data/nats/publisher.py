"""``Publisher``: an event-bus consumer that publishes ticks, bars and signals to JetStream.

Subjects, message ids and payloads are those of :mod:`bot.data.nats.subjects`
and :mod:`bot.data.nats.codec`.

The hot path pays one deque append per record: the bus handlers only queue the
record, and a background task takes it from there. Ticks go out in batches,
one message per batch of a symbol's trades in one window of exchange time
(``batch_ms``; :mod:`bot.data.nats.batching` says where a batch ends, the same
on every redundant worker). A completed bar's watermark goes out after its
symbol's open batch. The task publishes up to ``max_in_flight`` messages with
JetStream's asynchronous publish, then awaits their acknowledgements together
(one round trip per round, not per message).

Nothing is dropped silently:

* A message whose acknowledgement fails (timeout, NATS unreachable, stream
  error) is counted in ``failed_attempts`` (per record) and goes back to the
  front of the line, in order, to be retried after a backoff (``retry_delay``
  doubling up to ``max_retry_delay``). A retry of a message that was in fact
  stored is acknowledged as a duplicate, thanks to its ``Nats-Msg-Id``; the
  stream's duplicate window must therefore exceed the longest outage retried
  through. While the client is disconnected nothing is sent; the queue fills.
* The queue holds at most ``max_queue`` records. On overflow the *oldest*
  queued record is dropped (fresh market data matters more than stale), and
  each drop is counted in ``dropped_overflow``, logged (rate-limited) and makes
  :meth:`health` report ``ok: false`` for the next ``DROP_ALERT_S`` seconds. A
  redundant worker on the same shard covers such a loss; a lone worker shows it.
* At :meth:`stop` the open batches are closed and everything is flushed for up
  to ``stop_timeout`` seconds; whatever is left is counted in
  ``unpublished_at_stop`` and logged.

Counters count records (a batch of 40 ticks stored is 40 ``stored``);
``tick_messages`` counts the batches acknowledged.

A retried message lands after messages queued behind it only if the server
refused that one message while storing later ones (e.g. a full stream with a
discard-new policy); consumers that must accept that set ``reorder_window_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from nats.aio.client import Client
from nats.js.api import PubAck

from bot.data.config import DEFAULT_NATS_BATCH_MS
from bot.data.events import EventBus, StreamEvent
from bot.data.models import Bar, Signal, Tick
from bot.data.nats.batching import TickBatch, TickBatcher
from bot.data.nats.codec import SignalCodec, Watermark, bar_codec, batch_codec, watermark_codec
from bot.data.nats.subjects import (
    BATCH,
    MSG_ID_HEADER,
    RECORD_HEADER,
    WATERMARK,
    bar_msg_id,
    bar_subject,
    batch_msg_id,
    signal_msg_id,
    signal_subject,
    tick_subject,
    watermark_msg_id,
)
from bot.data.supervision import Supervisor
from bot.data.throttle import LogThrottle

logger = logging.getLogger(__name__)

DROP_ALERT_S = 300.0  # how long health stays "not ok" after a record was dropped
MAX_BATCH_TICKS = 1000  # ticks per message at most (about 50 KB)
Record = Tick | Bar | Signal | Watermark
Outgoing = TickBatch | Bar | Signal | Watermark  # one message each
Message = tuple[str, bytes, dict[str, str]]


def _records(messages: Iterable[Outgoing]) -> int:
    """How many records ``messages`` carry (a batch carries its ticks)."""
    return sum(len(m.ticks) if type(m) is TickBatch else 1 for m in messages)


@dataclass
class PublisherCounters:
    """What the publisher did; ``queued`` minus the rest is what is still waiting."""

    queued: int = 0
    stored: int = 0  # acknowledged as new by JetStream
    duplicates: int = 0  # acknowledged as already stored (another worker, or a retry)
    failed_attempts: int = 0  # sends that failed; each was queued again
    dropped_overflow: int = 0
    unpublished_at_stop: int = 0
    batches: int = 0  # rounds of messages sent together
    tick_messages: int = 0  # tick batches acknowledged (stored or duplicate)


class Publisher:
    """Publishes what an :class:`EventBus` carries to JetStream; see the module docstring.

    ``ticks``, ``bars`` and ``signals`` choose what :meth:`attach` subscribes to.
    The streams must exist (:func:`bot.data.nats.streams.ensure_streams`).
    ``batch_ms``: the exchange-time window of a tick batch (0: every trade alone;
    :attr:`~bot.data.config.StreamManagerConfig.nats_batch_ms`).
    """

    def __init__(self, nc: Client, *, ticks: bool = True, bars: bool = True,
                 signals: bool = True, max_queue: int = 200_000, max_in_flight: int = 512,
                 ack_timeout: float = 5.0, retry_delay: float = 0.1,
                 max_retry_delay: float = 5.0, stop_timeout: float = 10.0,
                 batch_ms: int = DEFAULT_NATS_BATCH_MS, max_batch_ticks: int = MAX_BATCH_TICKS,
                 supervisor: Supervisor | None = None,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        """``supervisor`` runs the sending task (a failure is logged, counted, restarted);
        ``clock`` (ns) times out open batches."""
        if max_in_flight < 1 or max_queue < max_in_flight:
            raise ValueError(f"need 1 <= max_in_flight ({max_in_flight}) <= max_queue "
                             f"({max_queue})")
        for name, value in (("ack_timeout", ack_timeout), ("retry_delay", retry_delay),
                            ("max_retry_delay", max_retry_delay)):
            if value <= 0:
                raise ValueError(f"{name}={value!r} must be > 0 seconds")
        self._nc = nc
        self._js = nc.jetstream(publish_async_max_pending=max_in_flight)
        self.kinds = (ticks, bars, signals)
        self.max_queue = max_queue
        self.max_in_flight = max_in_flight
        self.ack_timeout = ack_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.stop_timeout = stop_timeout
        self.counters = PublisherCounters()
        self._queue: deque[Record] = deque()
        self._batcher = TickBatcher(batch_ms * 1_000_000, max_ticks=max_batch_ticks)
        self._ready: deque[Outgoing] = deque()  # messages to send, in order
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._futures: list[asyncio.Future[PubAck]] = []
        self._delay = retry_delay
        self._last_error: str | None = None
        self._last_ack_ns: int | None = None
        self._last_drop: float | None = None
        self._batch_codec = batch_codec()
        self._bar_codec = bar_codec()
        self._signal_codec = SignalCodec()
        self._watermark_codec = watermark_codec()
        self._through: dict[str, int] = {}  # last watermark queued per symbol
        self._throttle = LogThrottle(logger)
        self._supervisor = supervisor if supervisor is not None else Supervisor()

    # -- input (the bus's hot path) --------------------------------------------------
    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Subscribe to ``bus``'s ticks, completed bars and signals; returns a detach function."""
        ticks, bars, signals = self.kinds
        offs = []
        if ticks:
            offs.append(bus.on_tick(self._on_tick_event))
            offs.append(bus.on_bar_complete(self._on_bar_watermark))
        if bars:
            offs.append(bus.on_bar_complete(self.publish))
        if signals:
            offs.append(bus.on_signal(self.publish))

        def detach() -> None:
            for off in offs:
                off()
        return detach

    def _on_tick_event(self, event: StreamEvent) -> None:
        self.publish(event.data)

    def _on_bar_watermark(self, bar: Bar) -> None:
        """A completed bar means its symbol's trades before its end are all queued: say so."""
        through = bar.close_time + 1
        if through > self._through.get(bar.symbol, -1):
            self._through[bar.symbol] = through
            self.publish(Watermark(bar.venue, bar.symbol, through))

    def publish(self, record: Record) -> None:
        """Queue one tick, bar or signal; never blocks (see overflow in the module docstring)."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            queue.popleft()
            self.counters.dropped_overflow += 1
            self._last_drop = time.monotonic()
            self._throttle.log("overflow", logging.ERROR,
                               "publisher queue full (%d): oldest record dropped; NATS is too "
                               "slow or unreachable", self.max_queue)
        queue.append(record)
        self.counters.queued += 1
        if not self._wake.is_set():
            self._wake.set()

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = self._supervisor.loop("nats-publisher", self._run,
                                               on_failure=self._run_failed)

    async def stop(self) -> None:
        """Close the open batches, publish what waits (up to ``stop_timeout`` s), then end;
        counts what was left."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = self._waiting() + self._in_flight
        if left:
            self.counters.unpublished_at_stop += left
            logger.error("publisher stopped with %d records unpublished (NATS unreachable or "
                         "too slow for %.1fs)", left, self.stop_timeout)

    def connection_lost(self) -> None:
        """Give up on the acks in flight now (they died with the connection): retry sooner.

        Pass it to the connection's disconnect callback; without it the batch in
        flight is retried after ``ack_timeout``.
        """
        for future in self._futures:
            future.cancel()

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is acknowledged (open batches go out when
        their window is over); False after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self._queue or self._ready or self._batcher or self._in_flight:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def _waiting(self) -> int:
        """Records not yet sent: queued, in open batches, or in messages waiting to go."""
        return len(self._queue) + self._batcher.open_ticks + _records(self._ready)

    def _run_failed(self, exc: BaseException) -> None:
        """The sending task raised (it is restarted): health says so until a batch goes out."""
        self._last_error = f"sending task failed: {exc!r}"

    def _collect(self) -> None:
        """Move queued records into batches and messages, up to a round of messages.

        A batch times out only once the queue is empty: a tick queued behind
        another of its window goes into that batch, however late the task runs.
        """
        queue, ready, batcher = self._queue, self._ready, self._batcher
        emit = ready.append
        now = self._clock()
        while queue and len(ready) < self.max_in_flight:
            record = queue.popleft()
            if isinstance(record, Tick):
                batcher.add(record, emit, now)
                continue
            if type(record) is Watermark:  # after every trade of its symbol before it
                batcher.close_through(record.symbol, record.through_ns, emit)
            emit(record)
        if not queue:
            if self._stopping:
                batcher.close_all(emit)
            elif batcher:
                batcher.due(now, emit)

    async def _idle(self) -> None:
        """Wait for a record, or for the next open batch to time out."""
        self._wake.clear()
        due = self._batcher.next_deadline()
        if due is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, (due - self._clock()) / 1e9))

    async def _run(self) -> None:
        while True:
            self._collect()
            if not self._ready:
                if self._stopping and not self._queue:
                    return
                await self._idle()
                continue
            if not self._nc.is_connected:
                if self._nc.is_closed:
                    self._last_error = "NATS connection closed"
                    return
                await asyncio.sleep(self._delay)
                continue
            n = min(len(self._ready), self.max_in_flight)
            batch = [self._ready.popleft() for _ in range(n)]
            self._in_flight = _records(batch)
            try:
                failed = await self._send(batch)
            except BaseException:  # cancelled, or a fault the supervisor restarts us after
                self._ready.extendleft(reversed(batch))  # still owed (ids dedupe a resend)
                raise
            finally:
                self._in_flight = 0
            if failed:
                self._ready.extendleft(reversed(failed))
                await asyncio.sleep(self._delay)
                self._delay = min(self._delay * 2, self.max_retry_delay)
            else:
                self._delay = self.retry_delay

    async def _send(self, batch: list[Outgoing]) -> list[Outgoing]:
        """Publish a round of messages and await their acks; returns those to retry, in order."""
        self.counters.batches += 1
        futures: list[asyncio.Future[PubAck]] = []
        self._futures = futures
        error: BaseException | None = None
        for record in batch:
            subject, payload, headers = self._message(record)
            try:
                futures.append(await self._js.publish_async(subject, payload, headers=headers))
            except Exception as exc:  # connection closed or buffer full: retry the rest
                error = exc
                # The failed call may hold a slot of the context's pending limit: start afresh.
                self._js = self._nc.jetstream(publish_async_max_pending=self.max_in_flight)
                break
        if futures:
            await asyncio.wait(futures, timeout=self.ack_timeout)
        self._futures = []
        failed: list[Outgoing] = []
        c = self.counters
        for record, future in zip(batch, futures, strict=False):
            if not future.done():
                future.cancel()
                failed.append(record)
                error = error or TimeoutError(f"no ack within {self.ack_timeout}s")
                continue
            if future.cancelled():
                failed.append(record)
                error = error or ConnectionError("connection lost before the ack")
                continue
            if future.exception() is not None:
                failed.append(record)
                error = error or future.exception()
                continue
            records = _records((record,))
            if type(record) is TickBatch:
                c.tick_messages += 1
            if future.result().duplicate:
                c.duplicates += records
            else:
                c.stored += records
        failed.extend(batch[len(futures):])
        if failed:
            c.failed_attempts += _records(failed)
            self._last_error = repr(error)
            self._throttle.log("send", logging.WARNING,
                               "publisher: %d of %d messages not acknowledged (%r); retrying",
                               len(failed), len(batch), error)
        else:
            self._last_error = None
            self._last_ack_ns = time.time_ns()
        return failed

    def _message(self, record: Outgoing) -> Message:
        if type(record) is TickBatch:
            ticks = record.ticks
            return (tick_subject(record.venue, record.symbol),
                    self._batch_codec.encode(record.venue, record.symbol, ticks),
                    {MSG_ID_HEADER: batch_msg_id(record.venue, record.symbol,
                                                 [t.trade_id for t in ticks]),
                     RECORD_HEADER: BATCH})
        if type(record) is Bar:
            return (bar_subject(record.timeframe, record.venue, record.symbol),
                    self._bar_codec.encode(record), {MSG_ID_HEADER: bar_msg_id(record)})
        if type(record) is Watermark:
            return (tick_subject(record.venue, record.symbol),
                    self._watermark_codec.encode(record),
                    {MSG_ID_HEADER: watermark_msg_id(record.venue, record.symbol,
                                                     record.through_ns),
                     RECORD_HEADER: WATERMARK})
        if type(record) is Signal:
            return (signal_subject(record.bar.venue, record.symbol),
                    self._signal_codec.encode(record), {MSG_ID_HEADER: signal_msg_id(record)})
        raise TypeError(f"cannot publish {type(record).__name__}; allowed: Tick, Bar, Signal, "
                        "Watermark")

    # -- state -----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Plain dict; ``ok`` is False while NATS is unreachable, sends fail, or after a drop."""
        c = self.counters
        dropped_lately = (self._last_drop is not None
                          and time.monotonic() - self._last_drop < DROP_ALERT_S)
        ok = (self._nc.is_connected and self._last_error is None and not dropped_lately
              and not c.unpublished_at_stop)
        return {
            "ok": ok,
            "connected": self._nc.is_connected,
            "queue_depth": self._waiting(),
            "in_flight": self._in_flight,
            "last_error": self._last_error,
            "last_ack_ns": self._last_ack_ns,
            **asdict(c),
        }
