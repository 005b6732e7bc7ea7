"""``StreamManager``: the facade of the seed — venues in, bars and events out.

It composes, and owns nothing it could delegate:

* one :class:`~bot.data.venue_group.VenueGroup` per venue: its connections
  (:mod:`bot.data.transport`), symbols sharded by the venue's limits (its
  :class:`~bot.data.venues.spec.VenueSpec`, looked up in
  :mod:`bot.data.venues.registry`; the manager names no venue);
* the :class:`~bot.data.pipeline.TickPipeline` (aggregator, buffers, history, bus);
* :class:`~bot.data.recovery.GapRecovery` in front of it, which fills gaps
  (trade-id jumps, reconnects) from REST before their bars complete, and the
  warm-up (:mod:`bot.data.warmup`) that loads bar history at start;
* a clock task that completes bars of quiet markets and samples the counters;
  on a connection that can be probed, a quiet bar completes only once the
  connection proved it delivered everything up to the bar's end plus the grace
  (:mod:`bot.data.liveness`), so a silent socket never passes for a quiet market;
* a health task that judges the stream every ``health_check_interval`` seconds,
  emits HEALTH events (the same content as :meth:`StreamManager.get_health`), and
  resubscribes stale symbols (paced, batched, never during start-up:
  :class:`~bot.data.resubscribe.ResubscribePolicy`);
* a loop monitor (:mod:`bot.data.loop_monitor`) that measures event-loop lag;
* a :class:`~bot.data.supervision.Supervisor` under which every background task
  runs (connections, clock, health, loop monitor, async handlers, runtime
  subscriptions): a task that fails is logged, counted (``task_failures``) and
  named in health, and a loop is restarted.

Symbols added and removed at runtime only change the wanted set at once; one
task at a time (:meth:`StreamManager._sync_symbols`) brings connections and
recovery in line with it, so a burst of adds and removes cannot interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from bot.data import listing as listing_module
from bot.data.config import StreamManagerConfig, symbol_list
from bot.data.errors import ConfigError, StartTimeout, StreamError
from bot.data.events import EventType, Handler
from bot.data.health import (
    ConnectionFacts,
    Expectations,
    HealthReport,
    LoopFacts,
    SymbolFacts,
    assess,
)
from bot.data.history import BarHistory
from bot.data.listing import LISTINGS, Listing, UnlistedSymbolError
from bot.data.liveness import LivenessGuard
from bot.data.loop_monitor import STALL_THRESHOLD_S, LoopMonitor
from bot.data.metrics import RateTracker, latency_summary, slowest
from bot.data.models import Bar, Tick
from bot.data.pipeline import TickPipeline
from bot.data.recovery import GapRecovery, GapReport, TradeFetcher
from bot.data.redaction import redact_json
from bot.data.resubscribe import ResubscribePolicy
from bot.data.supervision import Supervisor
from bot.data.tick_source import TickSource, VenueConnections
from bot.data.timeframes import NS_PER_SECOND, align
from bot.data.transport import Connection, ConnectionState, SessionFactory
from bot.data.venue_group import VenueGroup
from bot.data.venues.protocol import TickerUpdate
from bot.data.venues.registry import route
from bot.data.venues.spec import AssetClass, VenueSpec
from bot.data.warmup import BarSource, warm_up, warmup_start

if TYPE_CHECKING:
    import pandas as pd

    from bot.data.store import Recorder, TradeStore
    from bot.data.venues.history import RestClient

logger = logging.getLogger(__name__)

CLOCK_INTERVAL_S = 0.25
# Wake this long after a bar's grace ends, so the clock reads past it (timers round).
CLOCK_DUE_MARGIN_S = 0.001


class StreamManager:
    """Streams trades, builds bars, keeps history, and emits events.

    ``clock`` (ns since the epoch) can be injected to drive bar completion and
    health in tests or replays; it defaults to the system clock. ``source`` is
    where trades come from (:mod:`bot.data.tick_source`): by default the venues'
    own connections.
    """

    def __init__(self, config: StreamManagerConfig | None = None, *,
                 clock: Callable[[], int] = time.time_ns,
                 source: TickSource | None = None) -> None:
        self.config = config if config is not None else StreamManagerConfig()
        self.pipeline = TickPipeline(self.config, clock=clock)
        self.bus = self.pipeline.bus
        self.supervisor = Supervisor()
        self.bus.supervisor = self.supervisor  # async handlers' workers report here too
        self._clock = clock
        self._groups: dict[str, VenueGroup] = {}  # venue name -> its symbols and connections
        self.source: TickSource = source if source is not None else VenueConnections()
        self.source.attach(self.pipeline, self._groups, self.supervisor)
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._started_ns: int | None = None
        self._rates = RateTracker()
        self._last_health: HealthReport | None = None
        self._health_contributors: list[Callable[[HealthReport], None]] = [self.source.judge]
        self._reconnects = 0
        self._recovery = GapRecovery(self.pipeline, {}, clock=clock, on_gap=self._on_gap,
                                     fetch_timeout=self.config.backfill_timeout_seconds,
                                     supervisor=self.supervisor)
        self._sources: dict[str, Any] = {}  # venue -> REST history (trades and bars)
        self._gaps: deque[tuple[int, dict[str, Any]]] = deque(maxlen=50)  # (reported at, gap)
        self._store_unwritable = (0, 0)  # (rows the store left out, clock time that grew)
        self._gaps_unannounced: list[GapReport] = []
        self._gap_health_at = -1.0  # monotonic time of the last gap HEALTH event
        # Exchange time -> receive of streamed ticks (REST-recovered ones would skew it).
        self._stream_latency_ns: deque[int] = deque(maxlen=10_000)
        self._heard: dict[str, int] = {}  # symbol -> receive time of its last streamed trade
        self._expectations = Expectations()
        self._resubscribe = ResubscribePolicy(self.config.stale_threshold_seconds)
        self._resubscribing: set[Connection] = set()
        self._resubscriptions = 0  # symbols resubscribed because they were stale
        self._starting = False
        self._active: set[str] = set()  # symbols tracked and assigned to a connection
        self._symbols_lock = asyncio.Lock()
        self._lifecycle_lock = asyncio.Lock()
        self._rest_closed = False  # stop() closed the REST clients; start() opens new ones
        self._loop_monitor = LoopMonitor()
        self._liveness = LivenessGuard(self.pipeline.aggregator.base_ns,
                                       self.pipeline.aggregator.grace_ns)
        self._proof = asyncio.Event()  # a liveness probe was answered: advance the clock now
        # per venue: asks for the listing while no REST history is open
        self._listing_rests: dict[str, RestClient] = {}
        self._refused: dict[str, str] = {}  # symbol -> why a runtime add was not subscribed
        self.recorder: Recorder | None = None
        self._store: TradeStore | None = None  # what the recorder wrote, for resuming
        if self.config.store_path is not None:
            from bot.data.store import Recorder

            self.recorder = Recorder(self.config.store_path,
                                     flush_interval=self.config.store_flush_interval,
                                     retention_days=self.config.store_retention_days,
                                     clock_ns=clock)
            self._store = self.recorder.store
            self.recorder.attach(self.bus)

    # -- symbols ---------------------------------------------------------------------
    def add_crypto_symbols(self, symbols: Iterable[str]) -> None:
        """Subscribe crypto symbols; at runtime too, without touching others.

        Each goes to the venue whose form it has: ``"BTC/USDT"`` Binance spot,
        ``"BTC/USDT:USDT"`` Binance USDⓈ-M (:func:`bot.data.venues.registry.route`).
        """
        self._add("crypto", symbols, "crypto_symbols")

    def add_stock_symbols(self, symbols: Iterable[str]) -> None:
        """Subscribe stock symbols (``"TSLA"``); needs ALPACA_API_KEY / ALPACA_SECRET_KEY."""
        self._add("stock", symbols, "stock_symbols")

    def _add(self, asset_class: AssetClass, symbols: Iterable[str], field: str) -> None:
        """Route each symbol to the venue whose form it has; the whole list or none of it."""
        venues: dict[str, VenueSpec] = {}

        def check(symbol: object, field: str) -> str:
            spec, name = route(asset_class, symbol, self.config, field)
            venues[name] = spec
            return name

        listed = symbol_list(symbols, field, check)
        self._check_cached_listing({s: venues[s] for s in listed if self._group_of(s) is None},
                                   field)
        new = []
        for symbol in listed:
            self._refused.pop(symbol, None)
            if self._group_of(symbol) is None:
                new += self._group(venues[symbol]).want([symbol])
        if new and self._running:
            self._spawn(self._sync_symbols())

    def _group(self, spec: VenueSpec) -> VenueGroup:
        group = self._groups.get(spec.name)
        if group is None:
            group = self._groups[spec.name] = VenueGroup(spec, self.config,
                                                         self._open_connection)
        return group

    def _group_of(self, symbol: str) -> VenueGroup | None:
        """The venue group that wants ``symbol`` (None when it is not subscribed)."""
        return next((g for g in self._groups.values() if g.wants(symbol)), None)

    def _wanted(self, symbol: str) -> bool:
        return self._group_of(symbol) is not None

    def remove_symbols(self, symbols: Iterable[str]) -> None:
        """Unsubscribe symbols and drop their state; other symbols' streams are untouched.

        Their ticks stop at once; the unsubscription follows in order with the
        other symbol changes (:meth:`_sync_symbols`).
        """
        removed = False
        for symbol in symbol_list(symbols, "symbols"):
            symbol = symbol.upper()
            self._refused.pop(symbol, None)  # no longer wanted: no longer reported
            group = self._group_of(symbol)
            if group is None:
                continue
            group.unwant(symbol)
            self._drop_symbol_state(symbol)
            removed = True
        if removed and self._running:
            self._spawn(self._sync_symbols())

    def _drop_symbol_state(self, symbol: str) -> None:
        self.source.forget(symbol)
        self._active.discard(symbol)
        self._recovery.forget(symbol)
        self.pipeline.forget(symbol)
        self._heard.pop(symbol, None)
        self._expectations.forget(symbol)
        self._resubscribe.forget(symbol)

    async def _sync_symbols(self) -> None:
        """Bring connections and recovery in line with the wanted symbols; one run at a time.

        Every runtime add and remove ends here. A run reads the wanted set when
        it holds the lock, so a burst of adds and removes of the same symbol
        collapses into its final state: unsubscribed, or subscribed once with
        its recovery tracking it (never one without the other).
        """
        async with self._symbols_lock:
            if not self._running:
                return
            await self.source.sync()
            for group in list(self._groups.values()):
                new = [s for s in group.symbols if s not in self._active]
                await self._subscribe_new(group, new)
                for symbol in new:  # removed while it was being set up
                    if not self._wanted(symbol):
                        self._drop_symbol_state(symbol)

    @property
    def symbols(self) -> list[str]:
        return sorted(s for g in self._groups.values() for s in g.symbols)

    @property
    def _connections(self) -> list[Connection]:
        """Every venue connection, venue by venue."""
        return [c for g in self._groups.values() for c in g.connections]

    # -- lifecycle -------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._running

    async def start(self, wait_connected: float | None = None, *,
                    timeout: float | None = None) -> None:
        """Check the symbols, connect every venue and start streaming; idempotent.

        Waits until each connection streams (up to ``wait_connected`` seconds,
        default ``connect_timeout`` plus one backoff) and raises a connection's
        fatal error (bad credentials, connection limit) or an unlisted symbol
        here, where the user awaits. ``timeout`` bounds the whole start-up
        (symbol check, connections, warm-up): past it, what was started is
        stopped and :class:`StartTimeout` says what was still awaited.
        """
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(
                timeout, int | float) or not timeout > 0):
            raise ConfigError("timeout", timeout, "must be a number of seconds > 0, or None")
        if self._running:
            return
        self._running = True
        try:
            async with self._lifecycle_lock:  # a stop() still closing finishes first
                deadline = asyncio.timeout(timeout)
                try:
                    async with deadline:
                        await self.source.open(wait_connected)
                        await self._start(wait_connected)
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    raise StartTimeout(timeout or 0.0, self._start_obstacles()) from None
                self.source.started()
        except BaseException:
            await self.stop()
            raise

    def _start_obstacles(self) -> list[str]:
        """What kept start-up from finishing: REST and connection failures, in one line each."""
        out = [f"{venue} REST: {source.rest.limiter.last_failure}"
               for venue, source in self._sources.items() if source.rest.limiter.last_failure]
        out.extend(f"{venue} REST: {rest.limiter.last_failure}"
                   for venue, rest in self._listing_rests.items() if rest.limiter.last_failure)
        out.extend(f"{c.name}: {c.state.value}" + (f" ({c.error})" if c.error else "")
                   for c in self._connections if c.state is not ConnectionState.CONNECTED)
        return out

    async def _start(self, wait_connected: float | None) -> None:
        self._started_ns = self._clock()
        self._starting = True
        self.bus.start()
        if self.recorder is not None:  # raises at once when another writer holds the store
            await self.recorder.start()
        self._tasks.append(self.supervisor.loop("stream-clock", self._clock_loop))
        self._tasks.append(self.supervisor.loop("stream-health", self._health_loop))
        self._tasks.append(self.supervisor.loop("stream-loop-lag", self._loop_monitor.run))
        timeout = wait_connected if wait_connected is not None else (
            self.config.connect_timeout + self.config.max_reconnect_delay)
        try:
            async with self._symbols_lock:
                for group in list(self._groups.values()):
                    await self._subscribe_new(
                        group, [s for s in group.symbols if s not in self._active], wait=timeout)
        finally:
            self._starting = False

    async def stop(self) -> None:
        """Close connections gracefully, complete nothing further, end all tasks; idempotent.

        A later :meth:`start` opens everything again (connections, REST clients,
        bus workers, recorder), and gap recovery continues from the last trade seen.
        """
        if not self._running:
            return
        self._running = False
        async with self._lifecycle_lock:
            await self._stop()

    async def _stop(self) -> None:
        await self.source.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._recovery.stop()
        await asyncio.gather(*(c.stop() for g in self._groups.values() for c in g.detach()),
                             return_exceptions=True)
        self._active.clear()
        self._resubscribing.clear()
        self._expectations.clear()
        self._resubscribe.clear()
        self._liveness.clear()
        self._last_health = None
        # The history sources stay (recovery's cursors hold them); their clients are renewed.
        await asyncio.gather(*(s.rest.close() for s in self._sources.values()),
                             return_exceptions=True)
        self._rest_closed = True
        rests, self._listing_rests = self._listing_rests, {}
        await asyncio.gather(*(rest.close() for rest in rests.values()), return_exceptions=True)
        self._recovery.fetchers = {}
        await self.bus.stop()
        if self.recorder is not None:
            await self.recorder.stop()

    async def __aenter__(self) -> StreamManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        """Run a one-off job (subscribe, unsubscribe...) supervised: a failure is reported."""
        task = self.supervisor.job(coro.__qualname__.rsplit(".", 1)[-1].strip("_"), coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # -- symbols checked against the venue's listing ------------------------------------
    def _check_cached_listing(self, specs: Mapping[str, VenueSpec], field: str) -> None:
        """Raise :class:`UnlistedSymbolError` at once when a venue's listing, fetched
        recently, refuses one of the symbols (``specs``: symbol -> its venue); nothing is
        asked here."""
        if not specs or not self.config.check_symbols:
            return
        problems: dict[str, str] = {}
        for symbol, spec in specs.items():
            url = spec.listing_url(self.config)
            listing = LISTINGS.get(spec.name, url) if url is not None else None
            if listing is not None:
                problems.update(listing.problems([symbol]))
        if problems:
            raise UnlistedSymbolError(field, problems)

    async def _listed(self, group: VenueGroup, symbols: list[str]) -> list[str]:
        """The ones of ``symbols`` the venue lists as trading (all, for a venue without
        a listing: :meth:`VenueSpec.listing_url`).

        During :meth:`start` an unlisted symbol, or a listing that cannot be
        had (venue unreachable, an answer that is no listing), fails the start,
        naming the cause. At runtime an unlisted symbol is dropped from the
        wanted set, logged as an ERROR and named in health (``refused_symbols``);
        a listing that cannot be had leaves the symbols unchecked, with a
        warning, as does a ban or a spent REST budget at any time.
        """
        if not self.config.check_symbols or group.spec.listing_url(self.config) is None:
            return symbols
        from bot.data.rest.limits import RestBanned, RestBudgetExhausted

        try:
            listing = await self._listing(group)
        except (RestBanned, RestBudgetExhausted) as exc:
            # The venue (or our budget) forbids asking now; holding start for it would
            # hold it for the ban.
            logger.warning("cannot check %s against %s now (%s); subscribing them unchecked",
                           ", ".join(symbols), group.name, exc)
            return symbols
        except StreamError as exc:
            if self._starting:
                raise StreamError(f"cannot check symbols against {group.name}: {exc} "
                                  "(check_symbols=False streams them unchecked)") from None
            logger.warning("cannot check %s against %s (%s); subscribing them unchecked",
                           ", ".join(symbols), group.name, exc)
            return symbols
        problems = listing.problems(symbols)
        if not problems:
            return symbols
        error = UnlistedSymbolError(f"{group.spec.asset_class}_symbols", problems)
        if self._starting:
            raise error
        self._refuse(error)
        return [s for s in symbols if s not in problems]

    async def _listing(self, group: VenueGroup) -> Listing:
        """The venue's listing (cached per process). One this manager asks for anchors
        its venue clock; a cached one does not: its clock reading was taken on the
        clock of the manager that asked, which need not be this one's."""
        spec = group.spec
        url = spec.listing_url(self.config) or ""
        listing = LISTINGS.get(spec.name, url)
        if listing is not None:
            return listing
        source = self._sources.get(group.name)
        if source is not None:  # the REST history's client: one budget per venue
            rest = source.rest
        else:
            rest = self._listing_rests.get(group.name)
            if rest is None:
                rest = self._listing_rests[group.name] = spec.rest(
                    self.config, group.credentials(), self._clock)
        try:
            async with asyncio.timeout(listing_module.LISTING_DEADLINE_S):
                listing = await spec.listing(rest)
        except TimeoutError:
            raise StreamError(f"{group.name} REST did not answer its listing within "
                              f"{listing_module.LISTING_DEADLINE_S:g} s") from None
        LISTINGS.put(url, listing)
        if listing.venue_time_ns is not None and listing.local_time_ns is not None:
            self.pipeline.gate.observe_venue_clock(listing.venue, listing.venue_time_ns,
                                                   listing.local_time_ns)
        return listing

    def _refuse(self, error: UnlistedSymbolError) -> None:
        """Drop symbols added at runtime that the venue does not list; say so."""
        for symbol in error.symbols:
            group = self._group_of(symbol)
            if group is not None:
                group.unwant(symbol)
            self._drop_symbol_state(symbol)
            self._refused[symbol] = error.reasons[symbol]
        logger.error("not subscribed: %s", error)
        self.bus.emit(EventType.HEALTH, self.get_health(), "symbols")

    # -- recovery and warm-up ---------------------------------------------------------
    def _venue_of(self, symbol: str) -> str:
        group = self._group_of(symbol)
        assert group is not None, f"{symbol} is not subscribed"
        return group.name

    def _open_history_sources(self) -> None:
        """REST history per subscribed venue, for gap fills and warm-up (when either is on).

        Idempotent: a venue's client is opened once, when its first symbol arrives.
        """
        cfg = self.config
        if not (cfg.backfill or cfg.warm_up):
            return
        if self._rest_closed:  # after stop(): the same sources and limiters (bans, budget
            self._rest_closed = False  # used) with new clients
            for venue, source in self._sources.items():
                group = self._groups[venue]
                source.rest = group.spec.rest(cfg, group.credentials(), self._clock,
                                              limiter=source.rest.limiter)
        for venue, group in self._groups.items():
            if group.symbols and venue not in self._sources:
                rest = group.spec.rest(cfg, group.credentials(), self._clock)
                self._sources[venue] = group.spec.history(cfg, rest)
        fetchers: dict[str, TradeFetcher] = dict(self._sources) if cfg.backfill else {}
        self._recovery.fetchers = fetchers

    async def _subscribe_new(self, group: VenueGroup, symbols: list[str], *,
                             wait: float | None = None) -> None:
        """Track, connect and warm up new symbols; live ticks wait until the warm-up fill ends."""
        if not symbols:
            return
        self._open_history_sources()
        symbols = await self._listed(group, symbols)
        if not symbols:
            return
        now = self._clock()
        fill_start = warmup_start(self.pipeline, now)
        stored = await self._stored_last_trades(symbols, now)
        symbols = [s for s in symbols if group.wants(s)]  # still wanted
        self._active.update(symbols)
        starts: dict[str, int] = {}
        for symbol in symbols:
            last = stored.get(symbol)
            starts[symbol] = fill_start if last is None else min(
                fill_start, warmup_start(self.pipeline, last.timestamp))
            self.pipeline.configure(group.name, symbol)
            self._recovery.track(group.name, symbol, after=last,
                                 since_ns=starts[symbol] if self.config.warm_up else None)
            if last is not None and self.recorder is not None:
                self.recorder.resume_after(last)
        before = set(self._connections)
        try:
            await self.source.subscribe(group, symbols)
        except Exception:
            for symbol in symbols:  # no warm-up will begin their fills: never leave them waiting
                self._recovery.begin(symbol)
            raise
        waits = [c.wait_ready(wait) for c in self._connections if c not in before] \
            if wait is not None else []
        warmups = [self._warm_up(symbol, starts[symbol], symbol in stored) for symbol in symbols] \
            if self.config.warm_up else []
        await asyncio.gather(*waits, *warmups)

    async def _stored_last_trades(self, symbols: list[str], now: int) -> dict[str, Tick]:
        """The last stored trade of each symbol, when a store is kept and it is recent enough."""
        store = self._store
        if store is None:
            return {}
        out: dict[str, Tick] = {}
        max_gap = self.config.store_resume_max_gap_seconds * NS_PER_SECOND
        for symbol in symbols:
            last = await asyncio.to_thread(store.last_trade, self._venue_of(symbol), symbol)
            if last is None:
                continue
            if now - last.timestamp > max_gap:
                logger.warning("store: last %s trade is %.0f s old, more than "
                               "store_resume_max_gap_seconds; not resuming from it", symbol,
                               (now - last.timestamp) / NS_PER_SECOND)
                continue
            out[symbol] = last
        return out

    async def _warm_up(self, symbol: str, fill_start: int, resume: bool) -> None:
        """Warm ``symbol`` up (see :func:`warm_up`); whatever fails, its fill begins (the
        failure is the caller's to report), so its live ticks never wait for one that would
        not start."""
        try:
            venue = self._venue_of(symbol)
            source: BarSource = self._sources[venue]  # opened by _subscribe_new (warm_up on)
            stored: list[Tick] = []
            if resume and self._store is not None:
                stored = await asyncio.to_thread(self._store.tick_records, venue, symbol,
                                                 fill_start)
            await warm_up(self.pipeline, self._recovery, source, venue, symbol, fill_start,
                          stored, timeout=self.config.warm_up_timeout_seconds)
        except Exception:
            self._recovery.begin(symbol)
            raise

    def _on_gap(self, gap: GapReport) -> None:
        """A span REST could not fill: its bars carry GAP, and HEALTH says so at once.

        Gaps reported together (a ban failing every symbol's fill) share one HEALTH
        event, at most one a second: judging health costs a pass over every symbol.
        """
        self._gaps.append((self._clock(), gap.to_dict()))
        self._gaps_unannounced.append(gap)
        if len(self._gaps_unannounced) == 1:
            delay = max(0.0, self._gap_health_at + 1.0 - time.monotonic())
            asyncio.get_running_loop().call_later(delay, self._announce_gaps)

    def _announce_gaps(self) -> None:
        gaps, self._gaps_unannounced = self._gaps_unannounced, []
        self._gap_health_at = time.monotonic()
        report = self._judge()
        for gap in gaps[:10]:
            report.degrade(f"trades of {gap.symbol} missing from {gap.start_ns} to "
                           f"{gap.end_ns} ns ({gap.cause}); those bars carry the GAP flag")
        if len(gaps) > 10:
            report.degrade(f"and {len(gaps) - 10} more gaps (see gaps)")
        self.bus.emit(EventType.HEALTH, redact_json(report.to_dict()), gaps[0].venue)

    # -- connections -----------------------------------------------------------------
    def _open_connection(self, name: str, factory: SessionFactory, symbols: list[str],
                         spec: VenueSpec) -> Connection:
        conn = Connection.for_venue(
            name, factory, symbols, self.config, spec.facts, on_tick=self._on_tick,
            on_event=self._on_venue_event, on_state=self._on_state, supervisor=self.supervisor,
            clock=self._clock)
        conn.start()
        return conn

    def _on_tick(self, tick: Tick) -> None:
        """A streamed tick. Only subscribed symbols leave state here: a venue sending
        trades of symbols never asked for (or just removed) grows nothing."""
        if tick.symbol in self._active:
            self._stream_latency_ns.append(self.pipeline.gate.venue_delay_ns(tick))
            self._heard[tick.symbol] = tick.receive_timestamp
        self._recovery.on_tick(tick)

    def _on_venue_event(self, conn: Connection, event: object) -> None:
        """Ticker updates become TICKER events; other control events are the transport's."""
        if isinstance(event, TickerUpdate):
            self.bus.emit(EventType.TICKER, event, conn.name)

    def _symbols_on(self, conn: Connection) -> list[str]:
        """The symbols assigned to ``conn``, including any a resubscription took off its
        set for a moment."""
        return [symbol for g in self._groups.values()
                for symbol, carrier in g.carriers.items() if carrier is conn]

    def _on_state(self, conn: Connection) -> None:
        if conn.state is ConnectionState.RECONNECTING:
            self._recovery.disconnected(self._symbols_on(conn))
        elif conn.state is ConnectionState.CONNECTED:
            if conn.stats.reconnects:
                self._recovery.reconnected(self._symbols_on(conn))
                self._reconnects += 1
                self.bus.emit(EventType.RECONNECT, {
                    "connection": conn.name, "reconnect_count": conn.stats.reconnects,
                    "total_reconnects": self._reconnects}, conn.name)
        elif conn.state is ConnectionState.FAILED:
            self.bus.emit(EventType.HEALTH, self.get_health(), conn.name)

    # -- clock and health ------------------------------------------------------------
    async def _clock_loop(self) -> None:
        """Complete quiet markets' bars and sample the counters.

        It wakes every :data:`CLOCK_INTERVAL_S`, right when the next base bar's
        grace ends, so a quiet bar completes ``bar_close_grace_ms`` after its end,
        not up to a clock interval later, and as soon as a liveness probe is
        answered, so a bar waiting for that proof completes one round trip later.
        """
        last_sample = 0.0
        base_ns = self.pipeline.aggregator.base_ns
        grace_ns = self.pipeline.aggregator.grace_ns
        while True:
            now_ns = self._clock()
            self._proof.clear()
            self._advance(now_ns)
            now = time.monotonic()
            if now - last_sample >= 1.0:
                self._rates.sample(now, self._counters())
                last_sample = now
            due_ns = align(now_ns - grace_ns, base_ns) + base_ns + grace_ns
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proof.wait(), min(
                    CLOCK_INTERVAL_S, (due_ns - now_ns) / NS_PER_SECOND + CLOCK_DUE_MARGIN_S))

    def _advance(self, now_ns: int) -> None:
        """Complete the bars the clock may complete: on a connection not proven alive past
        the last bar boundary, only up to its last frame; and probe those connections."""
        unproven, to_probe = self._liveness.check(now_ns, self._connections)
        for conn in to_probe:
            self._spawn(self._probe(conn))
        proven = {symbol: unproven[conn] for g in self._groups.values()
                  for symbol, conn in g.carriers.items() if conn in unproven} if unproven else None
        self.pipeline.advance(now_ns, proven)

    async def _probe(self, conn: Connection) -> None:
        """Probe ``conn``; an answer wakes the clock. An unanswered probe made the transport
        recycle it (its symbols are then held until the reconnect's gap fill)."""
        if await conn.probe():
            self._proof.set()
        elif conn.state is ConnectionState.CONNECTED:
            self._liveness.retry(conn)  # its socket changed under the probe: ask again

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_check_interval)
            report = self._judge()
            self._resubscribe_stale(report)
            self.bus.emit(EventType.HEALTH, redact_json(report.to_dict()), "health")

    def _assess(self) -> HealthReport:
        now = self._clock()
        minute_ago = now - 60 * NS_PER_SECOND
        held = set(self._recovery.filling_symbols())
        was_stale = set(self._last_health.stale_symbols) if self._last_health else set()
        # A symbol is expected to trade only while its venue's market is open.
        trading = {g.name: g.spec.market_open(now) for g in self._groups.values() if g.symbols}
        venue_of = {s: g.name for g in self._groups.values() for s in g.symbols}
        symbols = []
        for symbol in self.symbols:
            ticks = self.pipeline.ticks.get(symbol)
            # Trades of the last minute by exchange time: whatever their source, unlike
            # receive times (REST and remote workers stamp theirs by their own clocks).
            recent = ticks.count_since(minute_ago) if ticks is not None else 0
            # The stream's last trade, received by this manager's clock; a manager fed
            # without venue connections (NATS) hears its trades only through the pipeline.
            heard = self._heard.get(symbol)
            last = ticks.last_receive_timestamp() if ticks is not None else None
            if last is not None and not self._connections and (heard is None or last > heard):
                heard = last
            venue = venue_of[symbol]
            expected = self._expectations.observe(
                symbol, now, connected=self._feed_up(symbol) and trading[venue],
                held=symbol in held, stale=symbol in was_stale)
            symbols.append(SymbolFacts(symbol, venue, trading[venue], heard, recent, expected))
        conns = [ConnectionFacts(c.name, g.name, c.state.value, c.state_since_ns,
                                 c.last_message_ns, c.stats.reconnects, len(c.symbols),
                                 None if c.error is None else str(c.error),
                                 self._liveness.unproven_for(c))
                 for g in self._groups.values() for c in g.connections]
        handler, handler_ms = slowest(self.bus.handler_times())
        loop = LoopFacts(self._loop_monitor.max_lag_s(), STALL_THRESHOLD_S, handler, handler_ms) \
            if self._running else None
        report = assess(now, conns, symbols, self.config.stale_threshold_seconds, loop)
        for failure in self.supervisor.reasons():
            report.degrade(failure)
        self._last_health = report
        return report

    def _judge(self) -> HealthReport:
        """The whole report: connections, symbols, loop and tasks, then gaps, the store and
        every contributor added with :meth:`add_health_contributor`."""
        report = self._assess()
        now = report.timestamp_ns
        window_ns = self.config.stale_threshold_seconds * NS_PER_SECOND
        filling = report.sections["backfilling"] = self._recovery.filling_symbols()
        for venue, source in self._sources.items():
            limit = source.rest.limiter.held_by() if filling else None
            held = [s for s in filling if (g := self._group_of(s)) is not None
                    and g.name == venue] if limit else []
            if held:  # degraded while a rate limit holds a symbol's fill (or warm-up)
                report.degrade(f"fill of {', '.join(held)} held by {venue} REST rate limits: "
                               f"{limit}")
        report.sections["gaps"] = [gap for _, gap in self._gaps]
        late = self.pipeline.aggregator.counters.late_bars.values()
        report.sections["late_bars"] = [bar.to_dict() for bar in late]
        recent_late = [bar for bar in late if now - bar.last_receive_ns <= window_ns]
        if recent_late:  # degraded while a bar missed trades that came after it completed
            report.degrade(
                f"{sum(b.trades for b in recent_late)} trade(s) in the last "
                f"{self.config.stale_threshold_seconds:g}s came more than bar_close_grace_ms "
                "after their bar completed, which misses them (see late_bars): "
                + ", ".join(f"{b.symbol} {b.timeframe} at {b.open_time}"
                            for b in recent_late[-5:]))
        report.sections["refused_symbols"] = dict(self._refused)
        for symbol, why in self._refused.items():  # degraded while a runtime add was refused
            report.degrade(f"{symbol} not subscribed: {why}")
        recent = [gap for at, gap in self._gaps if now - at <= window_ns]
        if recent:  # degraded while a gap reported within the threshold stays unfilled
            report.degrade(
                f"{len(recent)} gap(s) reported in the last "
                f"{self.config.stale_threshold_seconds:g}s are unfilled (their bars carry GAP): "
                + ", ".join(sorted({gap["symbol"] for gap in recent})))
        if self.recorder is not None:
            store = report.sections["store"] = self.recorder.health()
            for problem in store["problems"]:
                report.degrade(f"store: {problem}")
            left_out = store["unwritable_ticks"] + store["unwritable_bars"]
            if left_out > self._store_unwritable[0]:
                self._store_unwritable = (left_out, now)
            if left_out and now - self._store_unwritable[1] <= window_ns:
                report.degrade(f"store: {left_out} unwritable row(s) left out, the last "
                               f"{(now - self._store_unwritable[1]) / NS_PER_SECOND:.0f}s ago "
                               "(see store.last_unwritable)")
        for contribute in self._health_contributors:
            contribute(report)
        return report

    def add_health_contributor(self, contribute: Callable[[HealthReport], None]) -> None:
        """Have ``contribute`` judge its part of every health report (a NATS source or
        publisher): it adds its section and its reasons, and can only worsen the status."""
        self._health_contributors.append(contribute)

    def _feed_up(self, symbol: str) -> bool:
        """True while the connection carrying ``symbol`` streams.

        A manager fed by no venue connection (another tick source, such as NATS)
        counts as up while it runs; its source's health says when its feed is not.
        """
        group = self._group_of(symbol)
        conn = group.connection_of(symbol) if group is not None else None
        if conn is None:
            return self._running and not self._connections
        return conn.state is ConnectionState.CONNECTED

    def _resubscribe_stale(self, report: HealthReport) -> None:
        """Stale symbols on a live connection get unsubscribed and subscribed again.

        Never during start-up; per connection one batch at a time (one
        UNSUBSCRIBE and one SUBSCRIBE request per 200 streams, paced by the
        transport); each symbol only when :class:`ResubscribePolicy` says its
        previous resubscription had time to bring a trade.
        """
        if self._starting:
            return
        now = self._clock()
        by_conn: dict[Connection, list[str]] = {}
        for symbol in report.stale_symbols:
            group = self._group_of(symbol)
            conn = group.connection_of(symbol) if group is not None else None
            if (conn is not None and conn.state is ConnectionState.CONNECTED
                    and conn not in self._resubscribing):
                by_conn.setdefault(conn, []).append(symbol)
        for conn, stale in by_conn.items():
            due = self._resubscribe.due(stale, now, self._heard)
            if due:
                self._resubscriptions += len(due)
                self._resubscribing.add(conn)
                self._spawn(self._resubscribe_batch(conn, due))

    async def _resubscribe_batch(self, conn: Connection, symbols: list[str]) -> None:
        """Subscribe ``symbols`` afresh on ``conn``.

        A venue without trade sequence (its facts say so) has the trades between
        the two requests filled from REST; on a sequenced one the next trade's id
        reveals any gap, which recovery fills by itself.
        """
        group = self._group_of(symbols[0])
        window_fill = (group is not None and not group.spec.facts.sequenced
                       and group.name in self._sources)
        if window_fill:
            self._recovery.disconnected(symbols)
        try:
            with contextlib.suppress(StreamError, OSError):
                await conn.remove(symbols)
                await conn.add([s for s in symbols if self._wanted(s)])
        finally:
            self._resubscribing.discard(conn)
            if window_fill:
                self._recovery.reconnected([s for s in symbols if self._wanted(s)])

    # -- data access (the seed's API) --------------------------------------------------
    def get_bar_dataframe(self, symbol: str, timeframe: str = "1m",
                          limit: int = 100) -> pd.DataFrame:
        """The last ``limit`` completed bars as a DataFrame indexed by UTC open time."""
        return self._history(symbol, timeframe).dataframe(_count(limit))

    def get_bars(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> list[Bar]:
        """The last ``limit`` completed bars as ``Bar`` records, oldest first."""
        return self._history(symbol, timeframe).bars(_count(limit))

    def _history(self, symbol: str, timeframe: str) -> BarHistory:
        """The bar history of a subscribed series; raises naming what is subscribed."""
        symbol = symbol.upper()
        self.pipeline.check_series(symbol, timeframe, self.symbols)
        return self.pipeline.history(self._venue_of(symbol), symbol, timeframe)

    def get_current_bar(self, symbol: str, timeframe: str = "1m") -> Bar | None:
        """The bar being built now, or None before the symbol's first trade."""
        symbol = symbol.upper()
        self.pipeline.check_series(symbol, timeframe, self.symbols)
        return self.pipeline.aggregator.current_bar(symbol, timeframe)

    def get_ticks(self, symbol: str, limit: int = 100) -> list[Tick]:
        """The last ``limit`` ticks of ``symbol``, oldest first."""
        symbol = symbol.upper()
        self.pipeline.check_series(symbol, self.config.default_timeframe, self.symbols)
        return self.pipeline.recent_ticks(symbol, _count(limit))

    def get_health(self) -> dict[str, Any]:
        """Current health (JSON-serialisable), also what every HEALTH event carries; see the
        README's Health section."""
        return redact_json(self._judge().to_dict())

    def get_metrics(self) -> dict[str, Any]:
        """Counters, rates and latency percentiles (JSON-serialisable); see the README."""
        now = self._clock()
        counters = self._counters()
        metrics = {
            "uptime_s": round((now - self._started_ns) / 1e9, 3) if self._started_ns else 0.0,
            "counters": counters,
            "rates_10s": self._rates.rates(10),
            "rates_1m": self._rates.rates(60),
            "latency": {
                "exchange_to_receive": latency_summary(self._stream_latency_ns),
                "receive_to_bar_dispatch": latency_summary(self.pipeline.dispatch_latency_ns),
                "backfill": latency_summary(self._recovery.counters.backfill_latency_ns),
                "event_loop_lag": latency_summary(self._loop_monitor.lags_ns),
            },
            "handlers": {name: latency_summary(times)
                         for name, times in self.bus.handler_times().items()},
            "connections": {c.name: {"state": c.state.value, "frames": c.stats.frames,
                                     "reconnects": c.stats.reconnects,
                                     "rollovers": c.stats.rollovers}
                            for c in self._connections},
            "rejected_by_reason": dict(self.pipeline.gate.refused),
            "late_by_symbol": dict(self.pipeline.aggregator.counters.late_by_symbol),
            "bars_refused_by_reason": dict(self.pipeline.bar_check.refused),
            "rest": {venue: source.rest.limiter.usage() for venue, source in self._sources.items()},
            "tasks": self.supervisor.tasks(),
        }
        self.source.add_metrics(metrics)
        return redact_json(metrics)

    def _counters(self) -> dict[str, int]:
        agg = self.pipeline.aggregator.counters
        rec = self._recovery.counters
        stats = [c.stats for c in self._connections]
        return {
            "frames": sum(s.frames for s in stats),
            "ticks": self.pipeline.ticks_accepted,
            "bars": self.pipeline.bars_completed,
            "parse_errors": sum(s.malformed for s in stats),
            "callback_errors": sum(s.callback_errors for s in stats),
            "task_failures": self.supervisor.failures,
            "rejected_ticks": self.pipeline.gate.refused_total,
            "duplicate_ticks": agg.duplicate,
            "late_ticks": agg.late,
            "handler_errors": self.bus.counters.handler_errors,
            "dropped_backlog": self.bus.counters.backlog_dropped,
            "reconnects": sum(s.reconnects for s in stats),
            "silent_recycles": sum(s.silent_recycles for s in stats),
            "rollovers": sum(s.rollovers for s in stats),
            "gaps_found": rec.gaps_found,
            "gaps_unfilled": rec.gaps_unfilled,
            "trades_backfilled": rec.trades_backfilled,
            "resubscriptions": self._resubscriptions,
        }

    # -- event registration (delegated to the bus) -------------------------------------
    def on(self, event_type: EventType, handler: Handler) -> Callable[[], None]:
        return self.bus.on(event_type, handler)

    def on_tick(self, handler: Handler) -> Callable[[], None]:
        return self.bus.on_tick(handler)

    def on_bar_complete(self, handler: Handler) -> Callable[[], None]:
        return self.bus.on_bar_complete(handler)

    def on_prediction(self, handler: Handler) -> Callable[[], None]:
        return self.bus.on_prediction(handler)

    def on_signal(self, handler: Handler) -> Callable[[], None]:
        return self.bus.on_signal(handler)

    def on_reconnect(self, handler: Handler) -> Callable[[], None]:
        return self.bus.on_reconnect(handler)

    def on_health(self, handler: Handler) -> Callable[[], None]:
        return self.bus.on_health(handler)


def create_default_trading_stream(crypto_symbols: Iterable[str] | None = None,
                                  stock_symbols: Iterable[str] | None = None,
                                  config: StreamManagerConfig | None = None) -> StreamManager:
    """A StreamManager subscribed to the given crypto and stock symbols (see add_*_symbols)."""
    manager = StreamManager(config)
    if crypto_symbols:
        manager.add_crypto_symbols(crypto_symbols)
    if stock_symbols:
        manager.add_stock_symbols(stock_symbols)
    return manager


def _count(limit: object) -> int | None:
    """A data access ``limit``: a count of the newest (an integer >= 0, numpy's too) or None
    for all; anything else a :class:`ConfigError` naming it and what is allowed."""
    if limit is None:
        return None
    if not isinstance(limit, bool):
        with contextlib.suppress(TypeError):
            count = operator.index(limit)  # type: ignore[arg-type]
            if count >= 0:
                return count
    raise ConfigError("limit", limit, "must be an integer >= 0 (how many of the newest), "
                                      "or None for all")
