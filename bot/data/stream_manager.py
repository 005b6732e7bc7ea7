"""``StreamManager``: the facade of the seed — venues in, bars and events out.

It composes, and owns nothing it could delegate:

* venue connections (:mod:`bot.data.transport`), Binance symbols sharded so no
  connection carries more than ``binance_max_streams_per_connection`` streams,
  all Alpaca stock symbols on one connection (Alpaca allows one per feed);
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
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import takewhile
from typing import TYPE_CHECKING, Any

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
    nyse_open,
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
from bot.data.timeframes import NS_PER_SECOND, align
from bot.data.transport import Connection, ConnectionState
from bot.data.venues.alpaca import STOCK_TICKER, AlpacaCredentials, AlpacaSession
from bot.data.venues.binance import BINANCE_PAIR, BinanceSession
from bot.data.venues.protocol import TickerUpdate
from bot.data.warmup import BarSource, warm_up, warmup_start

if TYPE_CHECKING:
    import pandas as pd

    from bot.data.rest.binance import BinanceRest
    from bot.data.store import Recorder, TradeStore

logger = logging.getLogger(__name__)

CLOCK_INTERVAL_S = 0.25
# Wake this long after a bar's grace ends, so the clock reads past it (timers round).
CLOCK_DUE_MARGIN_S = 0.001


class StreamManager:
    """Streams trades, builds bars, keeps history, and emits events.

    ``clock`` (ns since the epoch) can be injected to drive bar completion and
    health in tests or replays; it defaults to the system clock.
    """

    def __init__(self, config: StreamManagerConfig | None = None, *,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config if config is not None else StreamManagerConfig()
        self.pipeline = TickPipeline(self.config, clock=clock)
        self.bus = self.pipeline.bus
        self.supervisor = Supervisor()
        self.bus.supervisor = self.supervisor  # async handlers' workers report here too
        self._clock = clock
        self._crypto: dict[str, Connection | None] = {}
        self._stocks: set[str] = set()
        self._connections: list[Connection] = []
        self._alpaca: Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._started_ns: int | None = None
        self._rates = RateTracker()
        self._last_health: HealthReport | None = None
        self._reconnects = 0
        self._credentials: AlpacaCredentials | None = None
        self._recovery = GapRecovery(self.pipeline, {}, clock=clock, on_gap=self._on_gap,
                                     fetch_timeout=self.config.backfill_timeout_seconds)
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
        self._listing_rest: BinanceRest | None = None  # asks for the listing without REST history
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
        """Subscribe Binance symbols (``"BTC/USDT"``); at runtime too, without touching others."""
        new = [s for s in symbol_list(symbols, "crypto_symbols", BINANCE_PAIR)
               if s not in self._crypto]
        self._check_cached_listing(new, "crypto_symbols")
        for symbol in new:
            self._refused.pop(symbol, None)
        self._crypto.update(dict.fromkeys(new))
        if new and self._running:
            self._spawn(self._sync_symbols())

    def add_stock_symbols(self, symbols: Iterable[str]) -> None:
        """Subscribe Alpaca stock symbols (``"TSLA"``); needs ALPACA_API_KEY / ALPACA_SECRET_KEY."""
        new = [s for s in symbol_list(symbols, "stock_symbols", STOCK_TICKER)
               if s not in self._stocks]
        self._stocks.update(new)
        if new and self._running:
            self._spawn(self._sync_symbols())

    def remove_symbols(self, symbols: Iterable[str]) -> None:
        """Unsubscribe symbols and drop their state; other symbols' streams are untouched.

        Their ticks stop at once; the unsubscription follows in order with the
        other symbol changes (:meth:`_sync_symbols`).
        """
        removed = False
        for symbol in symbol_list(symbols, "symbols"):
            symbol = symbol.upper()
            self._refused.pop(symbol, None)  # no longer wanted: no longer reported
            if symbol in self._crypto:
                del self._crypto[symbol]
            elif symbol in self._stocks:
                self._stocks.discard(symbol)
            else:
                continue
            self._drop_symbol_state(symbol)
            removed = True
        if removed and self._running:
            self._spawn(self._sync_symbols())

    def _drop_symbol_state(self, symbol: str) -> None:
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
            for conn in list(self._connections):
                wanted = self._stocks if conn is self._alpaca else self._crypto.keys()
                gone = [s for s in conn.symbols if s not in wanted]
                if gone:
                    with contextlib.suppress(StreamError, OSError):
                        await conn.remove(gone)
                if conn is not self._alpaca:
                    for symbol in conn.symbols:  # removed and added again: stays where it is
                        if symbol in self._crypto and self._crypto[symbol] is None:
                            self._crypto[symbol] = conn
            crypto = [s for s in self._crypto if s not in self._active]
            stocks = [s for s in self._stocks if s not in self._active]
            await self._subscribe_new(crypto, stocks=False)
            await self._subscribe_new(stocks, stocks=True)
            for symbol in [*crypto, *stocks]:  # removed while it was being set up
                if symbol not in self._crypto and symbol not in self._stocks:
                    self._drop_symbol_state(symbol)

    @property
    def symbols(self) -> list[str]:
        return sorted([*self._crypto, *self._stocks])

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
                        await self._start(wait_connected)
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    raise StartTimeout(timeout or 0.0, self._start_obstacles()) from None
        except BaseException:
            await self.stop()
            raise

    def _start_obstacles(self) -> list[str]:
        """What kept start-up from finishing: REST and connection failures, in one line each."""
        out = [f"{venue} REST: {source.rest.limiter.last_failure}"
               for venue, source in self._sources.items() if source.rest.limiter.last_failure]
        if self._listing_rest is not None and self._listing_rest.limiter.last_failure:
            out.append(f"{self.config.binance_venue} REST: "
                       f"{self._listing_rest.limiter.last_failure}")
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
                await self._subscribe_new([s for s in self._crypto if s not in self._active],
                                          stocks=False, wait=timeout)
                await self._subscribe_new([s for s in self._stocks if s not in self._active],
                                          stocks=True, wait=timeout)
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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._recovery.stop()
        await asyncio.gather(*(c.stop() for c in self._connections), return_exceptions=True)
        self._connections.clear()
        self._alpaca = None
        self._crypto = dict.fromkeys(self._crypto)
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
        if self._listing_rest is not None:
            await self._listing_rest.close()
            self._listing_rest = None
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
    def _check_cached_listing(self, symbols: list[str], field: str) -> None:
        """Raise :class:`UnlistedSymbolError` at once when the venue's listing, fetched
        recently, refuses one of ``symbols`` (Binance pairs); nothing else is asked here."""
        cfg = self.config
        if not symbols or not cfg.check_symbols:
            return
        listing = LISTINGS.get(cfg.binance_venue, cfg.binance_rest_url or "")
        problems = listing.problems(symbols) if listing is not None else {}
        if problems:
            raise UnlistedSymbolError(field, problems)

    async def _listed(self, symbols: list[str], *, stocks: bool) -> list[str]:
        """The ones of ``symbols`` the venue lists as trading.

        During :meth:`start` an unlisted symbol, or a listing that cannot be
        had (venue unreachable, an answer that is no listing), fails the start,
        naming the cause. At runtime an unlisted symbol is dropped from the
        wanted set, logged as an ERROR and named in health (``refused_symbols``);
        a listing that cannot be had leaves the symbols unchecked, with a
        warning, as does a ban or a spent REST budget at any time.
        """
        if stocks or not self.config.check_symbols:
            return symbols
        from bot.data.rest.limits import RestBanned, RestBudgetExhausted

        try:
            listing = await self._listing()
        except (RestBanned, RestBudgetExhausted) as exc:
            # The venue (or our budget) forbids asking now; holding start for it would
            # hold it for the ban.
            logger.warning("cannot check %s against %s now (%s); subscribing them unchecked",
                           ", ".join(symbols), self.config.binance_venue, exc)
            return symbols
        except StreamError as exc:
            if self._starting:
                raise StreamError(f"cannot check symbols against "
                                  f"{self.config.binance_venue}: {exc} (check_symbols=False "
                                  "streams them unchecked)") from None
            logger.warning("cannot check %s against %s (%s); subscribing them unchecked",
                           ", ".join(symbols), self.config.binance_venue, exc)
            return symbols
        problems = listing.problems(symbols)
        if not problems:
            return symbols
        error = UnlistedSymbolError("crypto_symbols", problems)
        if self._starting:
            raise error
        self._refuse(error)
        return [s for s in symbols if s not in problems]

    async def _listing(self) -> Listing:
        """The venue's listing (cached per process); its clock anchors the venue clock."""
        cfg = self.config
        url = cfg.binance_rest_url or ""
        listing = LISTINGS.get(cfg.binance_venue, url)
        if listing is None:
            source = self._sources.get(cfg.binance_venue)
            if source is not None:  # the REST history's client: one budget per venue
                rest = source.rest
            else:
                if self._listing_rest is None:
                    from bot.data.rest.binance import BinanceRest
                    from bot.data.rest.limits import RateLimiter

                    self._listing_rest = BinanceRest(cfg, limiter=RateLimiter.following(
                        self._clock, BinanceRest.budget))
                rest = self._listing_rest
            listing = await rest.listing()
            LISTINGS.put(url, listing)
        if listing.venue_time_ns is not None and listing.local_time_ns is not None:
            self.pipeline.gate.observe_venue_clock(listing.venue, listing.venue_time_ns,
                                                   listing.local_time_ns)
        return listing

    def _refuse(self, error: UnlistedSymbolError) -> None:
        """Drop symbols added at runtime that the venue does not list; say so."""
        for symbol in error.symbols:
            self._crypto.pop(symbol, None)
            self._drop_symbol_state(symbol)
            self._refused[symbol] = error.reasons[symbol]
        logger.error("not subscribed: %s", error)
        self.bus.emit(EventType.HEALTH, self.get_health(), "symbols")

    # -- recovery and warm-up ---------------------------------------------------------
    def _venue_of(self, symbol: str) -> str:
        return "alpaca" if symbol in self._stocks else self.config.binance_venue

    def _open_history_sources(self) -> None:
        """REST history per subscribed venue, for gap fills and warm-up (when either is on).

        Idempotent: a venue's client is opened once, when its first symbol arrives.
        """
        cfg = self.config
        if not (cfg.backfill or cfg.warm_up):
            return
        from bot.data.history_sources import AlpacaTradeHistory, BinanceTradeHistory
        from bot.data.rest.alpaca import AlpacaRest
        from bot.data.rest.binance import BinanceRest
        from bot.data.rest.limits import RateLimiter

        if self._rest_closed:  # after stop(): the same sources and limiters (bans, budget
            self._rest_closed = False  # used) with new clients
            for venue, source in self._sources.items():
                limiter = source.rest.limiter
                source.rest = (AlpacaRest(cfg, self._credentials or AlpacaCredentials.from_env(),
                                          limiter=limiter, clock=self._clock)
                               if venue == "alpaca" else
                               BinanceRest(cfg, limiter=limiter, clock=self._clock))
        if self._crypto and cfg.binance_venue not in self._sources:
            self._sources[cfg.binance_venue] = BinanceTradeHistory(
                BinanceRest(cfg, limiter=RateLimiter.following(self._clock, BinanceRest.budget),
                            clock=self._clock),
                aggregate=cfg.binance_trade_channel == "aggTrade")
        if self._stocks and "alpaca" not in self._sources:
            creds = self._credentials or AlpacaCredentials.from_env()
            self._sources["alpaca"] = AlpacaTradeHistory(AlpacaRest(
                cfg, creds, limiter=RateLimiter.following(self._clock, AlpacaRest.budget),
                clock=self._clock))
        fetchers: dict[str, TradeFetcher] = dict(self._sources) if cfg.backfill else {}
        self._recovery.fetchers = fetchers

    async def _subscribe_new(self, symbols: list[str], *, stocks: bool,
                             wait: float | None = None) -> None:
        """Track, connect and warm up new symbols; live ticks wait until the warm-up fill ends."""
        if not symbols:
            return
        self._open_history_sources()
        symbols = await self._listed(symbols, stocks=stocks)
        if not symbols:
            return
        now = self._clock()
        fill_start = warmup_start(self.pipeline, now)
        stored = await self._stored_last_trades(symbols, now)
        symbols = [s for s in symbols if s in self._crypto or s in self._stocks]  # still wanted
        self._active.update(symbols)
        starts: dict[str, int] = {}
        for symbol in symbols:
            last = stored.get(symbol)
            starts[symbol] = fill_start if last is None else min(
                fill_start, warmup_start(self.pipeline, last.timestamp))
            self._recovery.track(self._venue_of(symbol), symbol, after=last,
                                 since_ns=starts[symbol] if self.config.warm_up else None)
            if last is not None and self.recorder is not None:
                self.recorder.resume_after(last)
        before = set(self._connections)
        if stocks:
            await self._assign_stocks(symbols)
        else:
            await self._assign_crypto(symbols)
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
        venue = self._venue_of(symbol)
        source: BarSource = self._sources[venue]  # opened by _subscribe_new when warm_up is on
        stored: list[Tick] = []
        if resume and self._store is not None:
            stored = await asyncio.to_thread(self._store.tick_records, venue, symbol, fill_start)
        await warm_up(self.pipeline, self._recovery, source, venue, symbol, fill_start, stored,
                      timeout=self.config.warm_up_timeout_seconds)

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
        report = self.get_health()  # degraded: the gaps were just reported
        for gap in gaps[:10]:
            report["reasons"].append(
                f"trades of {gap.symbol} missing from {gap.start_ns} to {gap.end_ns} ns "
                f"({gap.cause}); those bars carry the GAP flag")
        if len(gaps) > 10:
            report["reasons"].append(f"and {len(gaps) - 10} more gaps (see gaps)")
        self.bus.emit(EventType.HEALTH, report, gaps[0].venue)

    # -- connections -----------------------------------------------------------------
    async def _assign_crypto(self, symbols: list[str]) -> None:
        """Put new Binance symbols on connections with room, opening shards as needed.

        With :meth:`_assign_stocks`, the point where symbols meet a source: the
        NATS ``RemoteStreamManager`` overrides both to read from JetStream instead.
        """
        limit = self.config.binance_max_streams_per_connection
        streams_per_symbol = 2 if self.config.binance_ticker_channel else 1
        per_conn = max(1, limit // streams_per_symbol)
        pending = [s for s in symbols if self._crypto.get(s) is None and s in self._crypto]
        for conn in self._connections:
            if conn is self._alpaca or not pending:
                continue
            room = per_conn - len(conn.symbols)
            if room > 0:
                batch, pending = pending[:room], pending[room:]
                await conn.add(batch)
                for s in batch:
                    self._crypto[s] = conn
        while pending:
            batch, pending = pending[:per_conn], pending[per_conn:]
            conn = self._new_binance_connection(batch)
            for s in batch:
                self._crypto[s] = conn

    def _new_binance_connection(self, symbols: list[str]) -> Connection:
        cfg = self.config
        name = f"{cfg.binance_venue}-{sum(c is not self._alpaca for c in self._connections)}"
        conn = self._connection(
            name, lambda syms: BinanceSession(cfg, syms), symbols,
            binance=True)
        return conn

    async def _assign_stocks(self, symbols: list[str]) -> None:
        if not symbols:
            return
        if self._alpaca is None:
            creds = self._credentials or AlpacaCredentials.from_env()
            self._credentials = creds
            cfg = self.config
            self._alpaca = self._connection(
                f"alpaca-{cfg.alpaca_feed}",
                lambda syms: AlpacaSession(cfg, creds, syms), symbols)
        else:
            await self._alpaca.add(symbols)

    def _connection(self, name: str, factory: Any, symbols: list[str], *,
                    binance: bool = False) -> Connection:
        conn = Connection.for_venue(
            name, factory, symbols, self.config, binance=binance, on_tick=self._on_tick,
            on_event=self._on_venue_event, on_state=self._on_state, supervisor=self.supervisor,
            clock=self._clock)
        self._connections.append(conn)
        conn.start()
        return conn

    def _on_tick(self, tick: Tick) -> None:
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
        if conn is self._alpaca:
            return sorted(self._stocks)
        return [symbol for symbol, c in self._crypto.items() if c is conn]

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
        proven = {symbol: unproven[conn] for symbol, conn in self._crypto.items()
                  if conn in unproven} if unproven else None
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
            health = self.get_health()  # what get_health() returns, a subclass's parts too
            if self._last_health is not None:  # the report get_health() just judged
                self._resubscribe_stale(self._last_health)
            self.bus.emit(EventType.HEALTH, health, "health")

    def _assess(self) -> HealthReport:
        now = self._clock()
        minute_ago = now - 60 * NS_PER_SECOND
        held = set(self._recovery.filling_symbols())
        was_stale = set(self._last_health.stale_symbols) if self._last_health else set()
        stocks_trade = bool(self._stocks) and nyse_open(now)  # stocks trade from the open on
        symbols = []
        for symbol in self.symbols:
            ticks = self.pipeline.ticks.get(symbol)
            # Trades of the last minute by exchange time: whatever their source, unlike
            # receive times (REST and remote workers stamp theirs by their own clocks).
            recent = sum(1 for _ in takewhile(lambda t: t.timestamp >= minute_ago,
                                               reversed(ticks))) if ticks else 0
            # The stream's last trade, received by this manager's clock; a manager fed
            # without venue connections (NATS) hears its trades only through the pipeline.
            heard = self._heard.get(symbol)
            if ticks and not self._connections and (
                    heard is None or ticks[-1].receive_timestamp > heard):
                heard = ticks[-1].receive_timestamp
            trading = stocks_trade if symbol in self._stocks else True
            expected = self._expectations.observe(
                symbol, now, connected=self._feed_up(symbol) and trading, held=symbol in held,
                stale=symbol in was_stale)
            symbols.append(SymbolFacts(symbol, "alpaca" if symbol in self._stocks else
                                       self.config.binance_venue,
                                       "stock" if symbol in self._stocks else "crypto",
                                       heard, recent, expected))
        conns = [ConnectionFacts(c.name, c.name.split("-")[0], c.state.value, c.state_since_ns,
                                 c.last_message_ns, c.stats.reconnects, len(c.symbols),
                                 None if c.error is None else str(c.error),
                                 self._liveness.unproven_for(c))
                 for c in self._connections]
        handler, handler_ms = slowest(self.bus.handler_times())
        loop = LoopFacts(self._loop_monitor.max_lag_s(), STALL_THRESHOLD_S, handler, handler_ms) \
            if self._running else None
        report = assess(now, conns, symbols, self.config.stale_threshold_seconds,
                        nyse_open, loop)
        task_failures = self.supervisor.reasons()
        if task_failures and report.status == "healthy":
            report.status = "degraded"
        report.reasons.extend(task_failures)
        self._last_health = report
        return report

    def _feed_up(self, symbol: str) -> bool:
        """True while the connection carrying ``symbol`` streams.

        A manager fed by no venue connection (the NATS ``RemoteStreamManager``)
        counts as up while it runs; its own health says when its feed is not.
        """
        conn = self._crypto.get(symbol) if symbol in self._crypto else self._alpaca
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
            conn = self._crypto.get(symbol) if symbol in self._crypto else self._alpaca
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

        A venue without trade sequence (Alpaca) has the trades between the two
        requests filled from REST; on a sequenced one (Binance) the next trade's
        id reveals any gap, which recovery fills by itself.
        """
        source = self._sources.get(self._venue_of(symbols[0]))
        window_fill = source is not None and not source.sequenced
        if window_fill:
            self._recovery.disconnected(symbols)
        try:
            with contextlib.suppress(StreamError, OSError):
                await conn.remove(symbols)
                await conn.add([s for s in symbols if s in self._crypto or s in self._stocks])
        finally:
            self._resubscribing.discard(conn)
            if window_fill:
                self._recovery.reconnected(
                    [s for s in symbols if s in self._crypto or s in self._stocks])

    # -- data access (the seed's API) --------------------------------------------------
    def get_bar_dataframe(self, symbol: str, timeframe: str = "1m",
                          limit: int = 100) -> pd.DataFrame:
        """The last ``limit`` completed bars as a DataFrame indexed by UTC open time."""
        return self._history(symbol, timeframe).dataframe(limit)

    def get_bars(self, symbol: str, timeframe: str = "1m", limit: int = 100) -> list[Bar]:
        """The last ``limit`` completed bars as ``Bar`` records, oldest first."""
        return self._history(symbol, timeframe).bars(limit)

    def _history(self, symbol: str, timeframe: str) -> BarHistory:
        """The bar history of a subscribed series; raises naming what is subscribed."""
        symbol = symbol.upper()
        self.pipeline.check_series(symbol, timeframe, self.symbols)
        venue = "alpaca" if symbol in self._stocks else self.config.binance_venue
        return self.pipeline.history(venue, symbol, timeframe)

    def get_current_bar(self, symbol: str, timeframe: str = "1m") -> Bar | None:
        """The bar being built now, or None before the symbol's first trade."""
        symbol = symbol.upper()
        self.pipeline.check_series(symbol, timeframe, self.symbols)
        return self.pipeline.aggregator.current_bar(symbol, timeframe)

    def get_ticks(self, symbol: str, limit: int = 100) -> list[Tick]:
        """The last ``limit`` ticks of ``symbol``, oldest first."""
        symbol = symbol.upper()
        self.pipeline.check_series(symbol, self.config.default_timeframe, self.symbols)
        return self.pipeline.recent_ticks(symbol, limit)

    def get_health(self) -> dict[str, Any]:
        """Current health (JSON-serialisable), also what every HEALTH event carries; see the
        README's Health section.

        Beyond :meth:`_assess`: ``degraded`` while a gap reported within the last
        ``stale_threshold_seconds`` stays unfilled (its bars carry GAP), while the
        store is failing, while it left rows out within that time, and while a
        symbol added at runtime was refused by the venue's listing.
        """
        report = self._assess()
        health = report.to_dict()
        now = report.timestamp_ns
        window_ns = self.config.stale_threshold_seconds * NS_PER_SECOND
        health["backfilling"] = self._recovery.filling_symbols()
        health["gaps"] = [gap for _, gap in self._gaps]
        health["refused_symbols"] = dict(self._refused)
        problems = [f"{symbol} not subscribed: {why}" for symbol, why in self._refused.items()]
        recent = [gap for at, gap in self._gaps if now - at <= window_ns]
        if recent:
            problems.append(
                f"{len(recent)} gap(s) reported in the last "
                f"{self.config.stale_threshold_seconds:g}s are unfilled (their bars carry GAP): "
                + ", ".join(sorted({gap["symbol"] for gap in recent})))
        if self.recorder is not None:
            store = health["store"] = self.recorder.health()
            problems.extend(f"store: {problem}" for problem in store["problems"])
            left_out = store["unwritable_ticks"] + store["unwritable_bars"]
            if left_out > self._store_unwritable[0]:
                self._store_unwritable = (left_out, now)
            if left_out and now - self._store_unwritable[1] <= window_ns:
                problems.append(f"store: {left_out} unwritable row(s) left out, the last "
                                f"{(now - self._store_unwritable[1]) / NS_PER_SECOND:.0f}s ago "
                                "(see store.last_unwritable)")
        if problems and health["status"] == "healthy":
            health["status"] = "degraded"
        health["reasons"].extend(problems)
        return redact_json(health)

    def get_metrics(self) -> dict[str, Any]:
        """Counters, rates and latency percentiles (JSON-serialisable); see the README."""
        now = self._clock()
        counters = self._counters()
        return redact_json({
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
            "rest": {venue: source.rest.limiter.usage() for venue, source in self._sources.items()},
            "tasks": self.supervisor.tasks(),
        })

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
    """A StreamManager subscribed to the given crypto (Binance) and stock (Alpaca) symbols."""
    manager = StreamManager(config)
    if crypto_symbols:
        manager.add_crypto_symbols(crypto_symbols)
    if stock_symbols:
        manager.add_stock_symbols(stock_symbols)
    return manager
