"""``StreamManagerConfig``: every setting of the stream, validated when built.

A wrong value fails at construction with a :class:`ConfigError` naming the
field, the value and what is allowed, never later in the middle of a session.
Every field has a rule in :data:`FIELD_RULES`: its type (an integer is an
``int``, never ``True`` or ``5.5``; a number is finite), its range (intervals
long enough not to spin the event loop or flood an exchange, sizes that fit in
memory) or its set of choices; rules between fields follow.

Venue base URLs default to the exchanges' published endpoints and can be
overridden here or by the environment (``BINANCE_WS_URL``, ``BINANCE_REST_URL``,
``ALPACA_WS_URL``, ``ALPACA_REST_URL``), which is how the demo and the tests
point the stream at the built-in simulator.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.data.errors import ConfigError
from bot.data.timeframes import ALLOWED_TIMEFRAMES, TIMEFRAME_SECONDS

DEFAULT_BINANCE_VENUE = "binance"
BINANCE_VENUES = {
    "binance": ("wss://stream.binance.com:9443", "https://api.binance.com"),
    "binanceus": ("wss://stream.binance.us:9443", "https://api.binance.us"),
}
ALPACA_WS_DEFAULT = "wss://stream.data.alpaca.markets"
ALPACA_REST_DEFAULT = "https://data.alpaca.markets"
ALPACA_FEEDS = ("iex", "sip", "delayed_sip", "test")
BINANCE_TRADE_CHANNELS = ("trade", "aggTrade")
BINANCE_TICKER_CHANNELS = (None, "bookTicker", "ticker")
MAX_STREAMS_PER_BINANCE_CONNECTION = 1024  # Binance's published limit
DEFAULT_NATS_BATCH_MS = 50


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
    binance_venue: str = DEFAULT_BINANCE_VENUE
    binance_trade_channel: str = "trade"
    binance_ticker_channel: str | None = None
    binance_ws_url: str | None = None
    binance_rest_url: str | None = None
    binance_max_streams_per_connection: int = MAX_STREAMS_PER_BINANCE_CONNECTION
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

    # Check every symbol against the venue's listing (Binance exchangeInfo, one request
    # of weight 20, cached for 10 minutes) before it streams; off for offline or proxy use.
    check_symbols: bool = True

    # Transport
    connect_timeout: float = 10.0
    silence_timeout_seconds: float = 60.0
    # A liveness probe (Binance: LIST_SUBSCRIPTIONS) unanswered this long: the connection
    # is dead and recycled, without waiting for ``silence_timeout_seconds``.
    liveness_probe_timeout_seconds: float = 5.0
    stable_connection_seconds: float = 30.0

    # NATS ingest workers: ticks go out in batches of a symbol's trades in one window of
    # this much exchange time (0: every trade its own message). A trade waits at most
    # about twice this before it is published.
    nats_batch_ms: int = DEFAULT_NATS_BATCH_MS

    def __post_init__(self) -> None:
        from_env = self._resolve_urls()
        for name, rule in FIELD_RULES.items():
            try:
                setattr(self, name, rule.check(name, getattr(self, name)))
            except ConfigError as exc:
                if name not in from_env:
                    raise
                raise ConfigError(name, exc.value, f"{exc.allowed} (set by the environment "
                                                   f"variable {from_env[name]})") from None
        self._check_between_fields()

    def _resolve_urls(self) -> dict[str, str]:
        """Fill unset venue URLs from the environment, else the venue's published endpoint;
        returns field -> variable for the ones the environment gave."""
        from_env: dict[str, str] = {}
        if not isinstance(self.binance_venue, str) or self.binance_venue not in BINANCE_VENUES:
            return from_env  # refused by its rule below
        binance_ws, binance_rest = BINANCE_VENUES[self.binance_venue]
        for name, variable, default in (
                ("binance_ws_url", "BINANCE_WS_URL", binance_ws),
                ("binance_rest_url", "BINANCE_REST_URL", binance_rest),
                ("alpaca_ws_url", "ALPACA_WS_URL", ALPACA_WS_DEFAULT),
                ("alpaca_rest_url", "ALPACA_REST_URL", ALPACA_REST_DEFAULT)):
            if getattr(self, name) is None:
                value = _env(variable)
                if value is not None:
                    from_env[name] = variable
                setattr(self, name, value or default)
        return from_env

    def _check_between_fields(self) -> None:
        if self.default_timeframe not in self.supported_timeframes:
            raise ConfigError("default_timeframe", self.default_timeframe,
                              f"must be one of supported_timeframes {self.supported_timeframes}")
        if self.max_reconnect_delay < self.reconnect_delay:
            raise ConfigError("max_reconnect_delay", self.max_reconnect_delay,
                              f"must be >= reconnect_delay ({self.reconnect_delay})")
        streams_per_symbol = 1 if self.binance_ticker_channel is None else 2
        if self.binance_max_streams_per_connection < streams_per_symbol:
            raise ConfigError("binance_max_streams_per_connection",
                              self.binance_max_streams_per_connection,
                              f"must be >= {streams_per_symbol}: each symbol takes a trade and "
                              f"a {self.binance_ticker_channel} stream")


# -- rules of single fields --------------------------------------------------------------

@dataclass(frozen=True)
class Number:
    """An ``int`` (never a bool) or a finite number, from ``low`` to ``high`` inclusive."""

    kind: type[int] | type[float]
    low: float
    high: float
    unit: str = ""
    optional: bool = False  # None is allowed too
    divides: int | None = None  # a value other than 0 must divide this

    def allowed(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        unit = f" {self.unit}" if self.unit else ""
        none = ", or None" if self.optional else ""
        divides = f", 0 or a divisor of {self.divides}" if self.divides else ""
        return (f"must be {what} from {_number(self.low)} to {_number(self.high)}{unit}"
                f"{divides}{none}")

    def check(self, name: str, value: Any) -> int | float | None:
        if value is None and self.optional:
            return None
        # A comparison with NaN is False, so NaN and the infinities fall out of range.
        if not self._is_kind(value) or not self.low <= value <= self.high:
            raise ConfigError(name, value, self.allowed())
        if self.divides and value and self.divides % value:
            raise ConfigError(name, value, self.allowed())
        return self.kind(value)

    def _is_kind(self, value: object) -> bool:
        """An integral number for ``int`` (numpy's too), any real one for ``float``; no bool."""
        wanted = numbers.Integral if self.kind is int else numbers.Real
        return isinstance(value, wanted) and not isinstance(value, bool)


def _number(value: float) -> str:
    """``1000000`` as ``1,000,000`` and ``0.05`` as ``0.05``."""
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    choices: tuple[object, ...]

    def allowed(self) -> str:
        return f"allowed: {', '.join(map(repr, self.choices))}"

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, str | None) or value not in self.choices:
            raise ConfigError(name, value, self.allowed())
        return value


@dataclass(frozen=True)
class Flag:
    """``True`` or ``False`` (not ``"no"``, not 0)."""

    def allowed(self) -> str:
        return "must be True or False"

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(name, value, self.allowed())
        return value


@dataclass(frozen=True)
class Timeframes:
    """A non-empty list of timeframes; kept shortest first, without repeats."""

    def allowed(self) -> str:
        return f"must be a non-empty list of timeframes; allowed: {', '.join(ALLOWED_TIMEFRAMES)}"

    def check(self, name: str, value: Any) -> list[str]:
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(name, value, self.allowed())
        for tf in value:
            if not isinstance(tf, str) or tf not in TIMEFRAME_SECONDS:
                raise ConfigError(name, tf, f"allowed: {', '.join(ALLOWED_TIMEFRAMES)}")
        return sorted(set(value), key=TIMEFRAME_SECONDS.__getitem__)


_UNPRINTABLE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class Url:
    """A base URL with one of ``schemes``, a host name, and no query or fragment."""

    schemes: tuple[str, ...]

    def allowed(self) -> str:
        return (f"must be a URL starting with {' or '.join(s + '://' for s in self.schemes)}, "
                "with a host, without spaces, query or fragment")

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or _UNPRINTABLE.search(value):
            raise ConfigError(name, value, self.allowed())
        try:
            url = urlsplit(value)
            url.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise ConfigError(name, value, self.allowed()) from None
        if (url.scheme not in self.schemes or not url.hostname or url.query or url.fragment
                or "?" in value or "#" in value):
            raise ConfigError(name, value, self.allowed())
        return value


@dataclass(frozen=True)
class DirectoryPath:
    """None, or a non-empty path (``""`` would quietly mean the working directory)."""

    def allowed(self) -> str:
        return "must be a directory path (a non-empty string or os.PathLike) or None"

    def check(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
        if not isinstance(text, str) or not text.strip() or "\x00" in text:
            raise ConfigError(name, value, self.allowed())
        return value


Rule = Number | Choice | Flag | Timeframes | Url | DirectoryPath

_SECONDS = "seconds"
HOUR_S = 3600.0
DAY_S = 24 * HOUR_S

#: The rule of every field of :class:`StreamManagerConfig`, checked in this order.
#: Lower bounds keep intervals from spinning the event loop (1e-9 s) or flooding an
#: exchange; upper bounds keep buffers within memory and arithmetic within range.
FIELD_RULES: dict[str, Rule] = {
    "supported_timeframes": Timeframes(),
    "default_timeframe": Choice(ALLOWED_TIMEFRAMES),
    "reconnect_delay": Number(float, 0.01, HOUR_S, _SECONDS),
    "max_reconnect_delay": Number(float, 0.01, HOUR_S, _SECONDS),
    # Backoff doubles per attempt: 2**1000 still fits a float.
    "reconnect_attempts": Number(int, 1, 1000),
    "tick_buffer_size": Number(int, 1, 1_000_000, "ticks per symbol"),
    # Warm-up loads this many bars per symbol and timeframe from REST.
    "bar_history_size": Number(int, 1, 100_000, "bars per symbol and timeframe"),
    "health_check_interval": Number(float, 0.05, HOUR_S, _SECONDS),
    "stale_threshold_seconds": Number(float, 1.0, DAY_S, _SECONDS),
    "bar_close_grace_ms": Number(int, 0, 3_600_000, "ms"),
    "reorder_window_ms": Number(int, 0, 60_000, "ms"),
    "emit_empty_bars": Flag(),
    "async_handler_backlog": Number(int, 1, 1_000_000, "events"),
    "binance_venue": Choice(tuple(BINANCE_VENUES)),
    "binance_trade_channel": Choice(BINANCE_TRADE_CHANNELS),
    "binance_ticker_channel": Choice(BINANCE_TICKER_CHANNELS),
    "binance_ws_url": Url(("ws", "wss")),
    "binance_rest_url": Url(("http", "https")),
    "binance_max_streams_per_connection": Number(int, 1, MAX_STREAMS_PER_BINANCE_CONNECTION,
                                                 "(Binance allows 1024 streams per connection)"),
    "alpaca_feed": Choice(ALPACA_FEEDS),
    "alpaca_ws_url": Url(("ws", "wss")),
    "alpaca_rest_url": Url(("http", "https")),
    "backfill": Flag(),
    "warm_up": Flag(),
    "backfill_timeout_seconds": Number(float, 0.1, HOUR_S, _SECONDS),
    "warm_up_timeout_seconds": Number(float, 0.1, HOUR_S, _SECONDS),
    "store_path": DirectoryPath(),
    "store_flush_interval": Number(float, 0.05, HOUR_S, _SECONDS),
    "store_retention_days": Number(int, 1, 36_500, "days", optional=True),
    "store_resume_max_gap_seconds": Number(float, 1.0, 7 * DAY_S, _SECONDS),
    "check_symbols": Flag(),
    "connect_timeout": Number(float, 0.1, 600.0, _SECONDS),
    "silence_timeout_seconds": Number(float, 0.1, DAY_S, _SECONDS),
    "liveness_probe_timeout_seconds": Number(float, 0.1, 600.0, _SECONDS),
    "stable_connection_seconds": Number(float, 0.1, DAY_S, _SECONDS),
    # A window dividing a second never spans two bars.
    "nats_batch_ms": Number(int, 0, 1000, "ms", divides=1000),
}


# -- symbols ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SymbolForm:
    """The spelling a venue accepts for a symbol, checked before it reaches a URL or request.

    ``pattern`` is matched against the whole symbol as given (ASCII only, either
    case); the symbol is then used in upper case. ``allowed`` describes the form
    for error messages.
    """

    pattern: re.Pattern[str]
    allowed: str
    max_length: int

    def normalise(self, symbol: object, field: str = "symbol") -> str:
        """``symbol`` in upper case; a :class:`ConfigError` naming it if it does not fit."""
        if (not isinstance(symbol, str) or len(symbol) > self.max_length
                or not self.pattern.fullmatch(symbol)):
            raise ConfigError(field, symbol, self.allowed)
        return symbol.upper()


def symbol_list(symbols: Iterable[str], field: str,
                form: SymbolForm | Callable[[object, str], str] | None = None) -> list[str]:
    """``symbols`` as a list of distinct strings, each checked by ``form`` when given.

    The whole list is checked before anything is returned, so a caller adds all
    of it or none. One bare string is refused (it would be read letter by letter).
    """
    if isinstance(symbols, str | bytes):
        raise ConfigError(field, symbols, "a list of symbols, e.g. ['BTC/USDT'], not one string")
    if not isinstance(symbols, Iterable):
        raise ConfigError(field, symbols, "a list of symbols, e.g. ['BTC/USDT']")
    check = form.normalise if isinstance(form, SymbolForm) else form
    out = []
    for s in symbols:
        if not isinstance(s, str) or not s.strip():
            raise ConfigError(field, s, "each symbol must be a non-empty string")
        out.append(check(s, field) if check is not None else s)
    return list(dict.fromkeys(out))
