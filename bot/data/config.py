"""``StreamManagerConfig``: every setting of the stream, validated when built.

A wrong value fails at construction with a :class:`ConfigError` naming the
field, the value and what is allowed, never later in the middle of a session.
Venue base URLs default to the exchanges' published endpoints and can be
overridden here or by the environment (``BINANCE_WS_URL``, ``BINANCE_REST_URL``,
``ALPACA_WS_URL``, ``ALPACA_REST_URL``), which is how the demo and the tests
point the stream at the built-in simulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.data.errors import ConfigError
from bot.data.timeframes import ALLOWED_TIMEFRAMES, TIMEFRAME_SECONDS

BINANCE_VENUES = {
    "binance": ("wss://stream.binance.com:9443", "https://api.binance.com"),
    "binanceus": ("wss://stream.binance.us:9443", "https://api.binance.us"),
}
ALPACA_WS_DEFAULT = "wss://stream.data.alpaca.markets"
ALPACA_REST_DEFAULT = "https://data.alpaca.markets"
ALPACA_FEEDS = ("iex", "sip", "delayed_sip", "test")
BINANCE_TRADE_CHANNELS = ("trade", "aggTrade")
BINANCE_TICKER_CHANNELS = (None, "bookTicker", "ticker")


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass
class StreamManagerConfig:
    """Settings of a :class:`~bot.data.StreamManager`; the seed's fields come first."""

    # Bar aggregation
    default_timeframe: str = "1m"
    supported_timeframes: list[str] = field(default_factory=lambda: ["1m", "5m", "15m"])

    # Connection
    reconnect_delay: float = 1.0
    max_reconnect_delay: float = 60.0
    reconnect_attempts: int = 10

    # Buffers
    tick_buffer_size: int = 10000
    bar_history_size: int = 500

    # Health
    health_check_interval: float = 10.0
    stale_threshold_seconds: float = 30.0

    # Bar completion: a bar closes on the first later trade, or when the clock
    # passes its end by this grace (trades reach us a little after they happen).
    bar_close_grace_ms: int = 2000
    # Out-of-order tolerance by exchange time; 0 for venues that deliver in order.
    reorder_window_ms: int = 0
    # Emit bars for intervals without trades (Binance klines do; Alpaca bars do not).
    emit_empty_bars: bool = True

    # Event bus: pending events per async handler before overflow is counted and dropped.
    async_handler_backlog: int = 10000

    # Venues
    binance_venue: str = "binance"
    binance_trade_channel: str = "trade"
    binance_ticker_channel: str | None = None
    binance_ws_url: str | None = None
    binance_rest_url: str | None = None
    binance_max_streams_per_connection: int = 1024
    alpaca_feed: str = "iex"
    alpaca_ws_url: str | None = None
    alpaca_rest_url: str | None = None

    # Recovery: fill gaps (id jumps, reconnects) from REST before their bars complete,
    # and at start load bar history and the current interval's trades from REST.
    backfill: bool = True
    warm_up: bool = True
    backfill_timeout_seconds: float = 60.0
    # start() waits at most this long for a symbol's warm-up; past it the stream passes
    # and what was not filled is reported as a gap.
    warm_up_timeout_seconds: float = 30.0

    # Local store: record ticks and completed bars as Parquet under this directory, and
    # after a restart resume from the last stored trade (None: no store).
    store_path: str | None = None
    store_flush_interval: float = 5.0
    store_retention_days: int | None = None
    # Resume from the store only when its last trade is at most this old (REST pages
    # through every missed trade; a longer outage starts afresh and says so in the log).
    store_resume_max_gap_seconds: float = 6 * 3600.0

    # Transport
    connect_timeout: float = 10.0
    silence_timeout_seconds: float = 60.0
    stable_connection_seconds: float = 30.0

    def __post_init__(self) -> None:
        self._validate_timeframes()
        for name in ("reconnect_delay", "max_reconnect_delay", "health_check_interval",
                     "stale_threshold_seconds", "connect_timeout", "silence_timeout_seconds",
                     "stable_connection_seconds", "backfill_timeout_seconds",
                     "warm_up_timeout_seconds", "store_flush_interval",
                     "store_resume_max_gap_seconds"):
            _require_positive(name, getattr(self, name))
        if self.max_reconnect_delay < self.reconnect_delay:
            raise ConfigError("max_reconnect_delay", self.max_reconnect_delay,
                              f"must be >= reconnect_delay ({self.reconnect_delay})")
        for name in ("reconnect_attempts", "tick_buffer_size", "bar_history_size",
                     "async_handler_backlog"):
            _require_positive_int(name, getattr(self, name))
        for name in ("bar_close_grace_ms", "reorder_window_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, value, "must be an integer number of milliseconds >= 0")
        if not 1 <= self.binance_max_streams_per_connection <= 1024:
            raise ConfigError("binance_max_streams_per_connection",
                              self.binance_max_streams_per_connection,
                              "must be 1..1024 (Binance allows 1024 streams per connection)")
        _require_choice("binance_venue", self.binance_venue, tuple(BINANCE_VENUES))
        _require_choice("binance_trade_channel", self.binance_trade_channel, BINANCE_TRADE_CHANNELS)
        _require_choice("binance_ticker_channel", self.binance_ticker_channel,
                        BINANCE_TICKER_CHANNELS)
        _require_choice("alpaca_feed", self.alpaca_feed, ALPACA_FEEDS)
        if self.store_retention_days is not None:
            _require_positive_int("store_retention_days", self.store_retention_days)
        if self.store_path is not None and not isinstance(self.store_path, (str, os.PathLike)):
            raise ConfigError("store_path", self.store_path, "a directory path or None")
        for name in ("backfill", "warm_up"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "must be True or False")
        ws_default, rest_default = BINANCE_VENUES[self.binance_venue]
        self.binance_ws_url = (self.binance_ws_url or _env("BINANCE_WS_URL") or ws_default)
        self.binance_rest_url = (self.binance_rest_url or _env("BINANCE_REST_URL")
                                 or rest_default)
        self.alpaca_ws_url = self.alpaca_ws_url or _env("ALPACA_WS_URL") or ALPACA_WS_DEFAULT
        self.alpaca_rest_url = (self.alpaca_rest_url or _env("ALPACA_REST_URL")
                                or ALPACA_REST_DEFAULT)
        for name in ("binance_ws_url", "alpaca_ws_url"):
            _require_scheme(name, getattr(self, name), ("ws://", "wss://"))
        for name in ("binance_rest_url", "alpaca_rest_url"):
            _require_scheme(name, getattr(self, name), ("http://", "https://"))

    def _validate_timeframes(self) -> None:
        allowed = f"allowed: {', '.join(ALLOWED_TIMEFRAMES)}"
        if isinstance(self.supported_timeframes, str) or not self.supported_timeframes:
            raise ConfigError("supported_timeframes", self.supported_timeframes,
                              f"must be a non-empty list of timeframes; {allowed}")
        for tf in self.supported_timeframes:
            if tf not in TIMEFRAME_SECONDS:
                raise ConfigError("supported_timeframes", tf, allowed)
        if self.default_timeframe not in TIMEFRAME_SECONDS:
            raise ConfigError("default_timeframe", self.default_timeframe, allowed)
        if self.default_timeframe not in self.supported_timeframes:
            raise ConfigError("default_timeframe", self.default_timeframe,
                              f"must be one of supported_timeframes {self.supported_timeframes}")
        # Keep a canonical order (shortest first) and no repeats.
        self.supported_timeframes = sorted(set(self.supported_timeframes),
                                           key=TIMEFRAME_SECONDS.__getitem__)


def symbol_list(symbols: Iterable[str], field: str) -> list[str]:
    """``symbols`` as a list, refusing one bare string and empty or non-string entries."""
    if isinstance(symbols, str):
        raise ConfigError(field, symbols, "a list of symbols, e.g. ['BTC/USDT'], not one string")
    out = list(symbols)
    for s in out:
        if not isinstance(s, str) or not s.strip():
            raise ConfigError(field, s, "each symbol must be a non-empty string")
    return out


def _require_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(name, value, "must be a number > 0")


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, value, "must be an integer >= 1")


def _require_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, value, f"allowed: {', '.join(map(repr, choices))}")


def _require_scheme(name: str, value: object, schemes: tuple[str, ...]) -> None:
    if not isinstance(value, str) or not value.startswith(schemes):
        raise ConfigError(name, value, f"must be a URL starting with {' or '.join(schemes)}")
