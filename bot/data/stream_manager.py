"""``StreamManager``: the facade of the seed — venues in, bars and events out.

It composes, and owns nothing it could delegate:

* venue connections (:mod:`bot.data.transport`), Binance symbols sharded so no
  connection carries more than ``binance_max_streams_per_connection`` streams,
  all Alpaca stock symbols on one connection (Alpaca allows one per feed);
* the :class:`~bot.data.pipeline.TickPipeline` (aggregator, buffers, history, bus);
* a clock task that completes bars of quiet markets and samples the counters;
* a health task that judges the stream every ``health_check_interval`` seconds,
  emits HEALTH events, and resubscribes stale symbols.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError, StreamError
from bot.data.events import EventType, Handler
from bot.data.health import ConnectionFacts, HealthReport, SymbolFacts, assess, nyse_open
from bot.data.history import BarHistory
from bot.data.metrics import RateTracker, latency_summary
from bot.data.models import Bar, Tick
from bot.data.pipeline import TickPipeline
from bot.data.timeframes import NS_PER_SECOND
from bot.data.transport import Backoff, Connection, ConnectionState
from bot.data.venues.alpaca import AlpacaCredentials, AlpacaSession
from bot.data.venues.binance import BinanceSession, to_raw_symbol

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

CLOCK_INTERVAL_S = 0.25
BINANCE_LIFETIME_S = 23.5 * 3600  # Binance closes connections at 24 h; roll over before.
BINANCE_CONTROL_INTERVAL_S = 0.25  # at most 5 incoming messages per second per connection


class StreamManager:
    """Streams trades, builds bars, keeps history, and emits events.

    ``clock`` (ns since the epoch) can be injected to drive bar completion and
    health in tests or replays; it defaults to the system clock.
    """

    def __init__(self, config: StreamManagerConfig | None = None, *,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config if config is not None else StreamManagerConfig()
        self.pipeline = TickPipeline(self.config)
        self.bus = self.pipeline.bus
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

    # -- symbols ---------------------------------------------------------------------
    def add_crypto_symbols(self, symbols: Iterable[str]) -> None:
        """Subscribe Binance symbols (``"BTC/USDT"``); at runtime too, without touching others."""
        new = []
        for symbol in _as_list(symbols, "crypto_symbols"):
            to_raw_symbol(symbol)  # validates the form, raises naming the symbol
            symbol = symbol.upper()
            if symbol not in self._crypto:
                self._crypto[symbol] = None
                new.append(symbol)
        if new and self._running:
            self._spawn(self._assign_crypto(new))

    def add_stock_symbols(self, symbols: Iterable[str]) -> None:
        """Subscribe Alpaca stock symbols (``"TSLA"``); needs ALPACA_API_KEY / ALPACA_SECRET_KEY."""
        new = []
        for symbol in _as_list(symbols, "stock_symbols"):
            if not symbol.replace(".", "").isalnum():
                raise ConfigError("stock_symbols", symbol, "a ticker such as 'TSLA' or 'BRK.B'")
            symbol = symbol.upper()
            if symbol not in self._stocks:
                self._stocks.add(symbol)
                self.pipeline.aggregator.configure_symbol("alpaca", symbol, emit_empty=False)
                new.append(symbol)
        if new and self._running:
            self._spawn(self._assign_stocks(new))

    def remove_symbols(self, symbols: Iterable[str]) -> None:
        """Unsubscribe symbols and drop their state; other symbols' streams are untouched."""
        for symbol in _as_list(symbols, "symbols"):
            symbol = symbol.upper()
            if symbol in self._crypto:
                conn = self._crypto.pop(symbol)
                if conn is not None:
                    self._spawn(conn.remove([symbol]))
            elif symbol in self._stocks:
                self._stocks.discard(symbol)
                if self._alpaca is not None:
                    self._spawn(self._alpaca.remove([symbol]))
            else:
                continue
            self.pipeline.forget(symbol)

    @property
    def symbols(self) -> list[str]:
        return sorted([*self._crypto, *self._stocks])

    # -- lifecycle -------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._running

    async def start(self, wait_connected: float | None = None) -> None:
        """Connect every venue and start streaming; idempotent.

        Waits until each connection streams (up to ``wait_connected`` seconds,
        default ``connect_timeout`` plus one backoff) and raises a connection's
        fatal error (bad credentials, connection limit) here, where the user awaits.
        """
        if self._running:
            return
        if self._stocks:
            self._credentials = AlpacaCredentials.from_env()
        self._running = True
        self._started_ns = self._clock()
        self.bus.start()
        self._tasks.append(asyncio.create_task(self._clock_loop(), name="stream-clock"))
        self._tasks.append(asyncio.create_task(self._health_loop(), name="stream-health"))
        await self._assign_crypto(list(self._crypto))
        await self._assign_stocks(list(self._stocks))
        timeout = wait_connected if wait_connected is not None else (
            self.config.connect_timeout + self.config.max_reconnect_delay)
        try:
            await asyncio.gather(*(c.wait_ready(timeout) for c in self._connections))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close connections gracefully, complete nothing further, end all tasks; idempotent."""
        if not self._running:
            return
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(*(c.stop() for c in self._connections), return_exceptions=True)
        self._connections.clear()
        self._alpaca = None
        self._crypto = dict.fromkeys(self._crypto)
        await self.bus.stop()

    async def __aenter__(self) -> StreamManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # -- connections -----------------------------------------------------------------
    async def _assign_crypto(self, symbols: list[str]) -> None:
        """Put new Binance symbols on connections with room, opening shards as needed."""
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
            max_lifetime=BINANCE_LIFETIME_S, control_interval=BINANCE_CONTROL_INTERVAL_S)
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

    def _connection(self, name: str, factory: Any, symbols: list[str],
                    **kwargs: Any) -> Connection:
        cfg = self.config
        conn = Connection(
            name, factory, symbols, on_tick=self._on_tick, on_event=self._on_venue_event,
            on_state=self._on_state,
            backoff=Backoff(cfg.reconnect_delay, cfg.max_reconnect_delay),
            max_attempts=cfg.reconnect_attempts, connect_timeout=cfg.connect_timeout,
            silence_timeout=cfg.silence_timeout_seconds,
            stable_after=cfg.stable_connection_seconds, **kwargs)
        self._connections.append(conn)
        conn.start()
        return conn

    def _on_tick(self, tick: Tick) -> None:
        self.pipeline.process(tick)

    def _on_venue_event(self, conn: Connection, event: object) -> None:
        self.bus.emit(EventType.TICKER, event, conn.name)

    def _on_state(self, conn: Connection) -> None:
        if conn.state is ConnectionState.RECONNECTING:
            for symbol in conn.symbols:
                self.pipeline.aggregator.hold(symbol)
        elif conn.state is ConnectionState.CONNECTED:
            for symbol in conn.symbols:
                self.pipeline.aggregator.release(symbol)
            if conn.stats.reconnects:
                self._reconnects += 1
                self.bus.emit(EventType.RECONNECT, {
                    "connection": conn.name, "reconnect_count": conn.stats.reconnects,
                    "total_reconnects": self._reconnects}, conn.name)
        elif conn.state is ConnectionState.FAILED:
            self.bus.emit(EventType.HEALTH, self.get_health(), conn.name)

    # -- clock and health ------------------------------------------------------------
    async def _clock_loop(self) -> None:
        last_sample = 0.0
        while True:
            self.pipeline.advance(self._clock())
            now = time.monotonic()
            if now - last_sample >= 1.0:
                self._rates.sample(now, self._counters())
                last_sample = now
            await asyncio.sleep(CLOCK_INTERVAL_S)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_check_interval)
            report = self._assess()
            self._resubscribe_stale(report)
            self.bus.emit(EventType.HEALTH, report.to_dict(), "health")

    def _assess(self) -> HealthReport:
        now = self._clock()
        minute_ago = now - 60 * NS_PER_SECOND
        symbols = []
        for symbol in self.symbols:
            ticks = self.pipeline.ticks.get(symbol)
            last = ticks[-1].receive_timestamp if ticks else None
            recent = sum(1 for t in reversed(ticks or ()) if t.receive_timestamp >= minute_ago) \
                if ticks else 0
            symbols.append(SymbolFacts(symbol, "alpaca" if symbol in self._stocks else
                                       self.config.binance_venue,
                                       "stock" if symbol in self._stocks else "crypto",
                                       last, recent))
        conns = [ConnectionFacts(c.name, c.name.split("-")[0], c.state.value, c.state_since_ns,
                                 c.last_message_ns, c.stats.reconnects, len(c.symbols),
                                 None if c.error is None else str(c.error))
                 for c in self._connections]
        self._last_health = assess(now, conns, symbols, self.config.stale_threshold_seconds,
                                   nyse_open)
        return self._last_health

    def _resubscribe_stale(self, report: HealthReport) -> None:
        """A stale symbol on a live connection gets unsubscribed and subscribed again."""
        for symbol in report.stale_symbols:
            conn = self._crypto.get(symbol) if symbol in self._crypto else self._alpaca
            if conn is not None and conn.state is ConnectionState.CONNECTED:
                self._spawn(_resubscribe(conn, symbol))

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
        """Current health (JSON-serialisable); see the README's Health section."""
        return self._assess().to_dict()

    def get_metrics(self) -> dict[str, Any]:
        """Counters, rates and latency percentiles (JSON-serialisable); see the README."""
        now = self._clock()
        counters = self._counters()
        exchange_latency = (t.receive_timestamp - t.timestamp
                            for buf in self.pipeline.ticks.values() for t in buf)
        return {
            "uptime_s": round((now - self._started_ns) / 1e9, 3) if self._started_ns else 0.0,
            "counters": counters,
            "rates_10s": self._rates.rates(10),
            "rates_1m": self._rates.rates(60),
            "latency": {
                "exchange_to_receive": latency_summary(exchange_latency),
                "receive_to_bar_dispatch": latency_summary(self.pipeline.dispatch_latency_ns),
            },
            "connections": {c.name: {"state": c.state.value, "frames": c.stats.frames,
                                     "reconnects": c.stats.reconnects,
                                     "rollovers": c.stats.rollovers}
                            for c in self._connections},
        }

    def _counters(self) -> dict[str, int]:
        agg = self.pipeline.aggregator.counters
        stats = [c.stats for c in self._connections]
        return {
            "frames": sum(s.frames for s in stats),
            "ticks": self.pipeline.ticks_accepted,
            "bars": self.pipeline.bars_completed,
            "parse_errors": sum(s.malformed for s in stats),
            "rejected_ticks": agg.rejected,
            "duplicate_ticks": agg.duplicate,
            "late_ticks": agg.late,
            "handler_errors": self.bus.counters.handler_errors,
            "dropped_backlog": self.bus.counters.backlog_dropped,
            "reconnects": sum(s.reconnects for s in stats),
            "silent_recycles": sum(s.silent_recycles for s in stats),
            "rollovers": sum(s.rollovers for s in stats),
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


async def _resubscribe(conn: Connection, symbol: str) -> None:
    with contextlib.suppress(StreamError, OSError):
        await conn.remove([symbol])
        await conn.add([symbol])


def _as_list(symbols: Iterable[str], field: str) -> list[str]:
    if isinstance(symbols, str):
        raise ConfigError(field, symbols, "a list of symbols, e.g. ['BTC/USDT'], not one string")
    out = list(symbols)
    for s in out:
        if not isinstance(s, str) or not s.strip():
            raise ConfigError(field, s, "each symbol must be a non-empty string")
    return out


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
