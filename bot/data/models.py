"""The typed, immutable records that flow through the pipeline.

``Tick`` and ``Bar`` are msgspec Structs: construction costs about as much as a
tuple, they serialise to JSON/msgpack without glue, and they cannot be mutated
by a consumer behind another consumer's back. Times are integers, nanoseconds
since the UTC epoch; datetimes appear only at the edges.
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime
from typing import Any

import msgspec


class Side(enum.StrEnum):
    """Side of the taker (aggressor) of a trade."""

    BUY = "buy"
    SELL = "sell"
    UNKNOWN = "unknown"


# Which bar fields a tick may update (Alpaca's condition rules work per field).
UPDATES_HIGH_LOW = 1
UPDATES_OPEN_CLOSE = 2
UPDATES_VOLUME = 4
UPDATES_ALL = UPDATES_HIGH_LOW | UPDATES_OPEN_CLOSE | UPDATES_VOLUME


class Tick(msgspec.Struct, frozen=True, gc=False):
    """One trade as the exchange reported it.

    ``symbol`` is unified (``"BTC/USDT"``, ``"TSLA"``); ``timestamp`` is the
    exchange's trade time and ``receive_timestamp`` the local receive time, both
    in nanoseconds. ``updates`` says which bar fields the trade may change: all
    of them, except for stock trades whose sale conditions exclude them.
    """

    venue: str
    symbol: str
    price: float
    volume: float
    side: Side
    trade_id: int
    timestamp: int
    receive_timestamp: int
    conditions: tuple[str, ...] = ()
    exchange: str = ""
    updates: int = UPDATES_ALL

    @property
    def datetime(self) -> datetime:
        """Exchange time as an aware UTC datetime (for display)."""
        return ns_to_datetime(self.timestamp)


class BarFlag(enum.IntFlag):
    """Quality of a bar's data; a signal should not trust a bar carrying GAP or PARTIAL."""

    NONE = 0
    EMPTY = 1  # no trade in the interval: O=H=L=C=previous close, volume 0
    PARTIAL = 2  # the data started after the interval opened, or ended before it closed
    GAP = 4  # trades are known to be missing and could not be recovered
    BACKFILLED = 8  # some trades came from REST recovery rather than the stream


class Bar(msgspec.Struct, frozen=True, gc=False):
    """An OHLCV bar with VWAP and taker buy/sell volume.

    The interval is ``[open_time, close_time]`` with ``close_time = open_time +
    length - 1`` nanoseconds, as Binance reports klines. ``sell_volume`` is the
    taker-sell volume; volume whose taker side is unknown (stock trades the tick
    rule could not classify) is ``volume - buy_volume - sell_volume``.
    """

    venue: str
    symbol: str
    timeframe: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    buy_volume: float
    sell_volume: float
    buy_quote_volume: float
    trade_count: int
    first_trade_id: int
    last_trade_id: int
    flags: BarFlag = BarFlag.NONE

    @property
    def vwap(self) -> float:
        """Volume-weighted average price, NaN for a bar without volume."""
        return self.quote_volume / self.volume if self.volume else math.nan

    @property
    def unknown_volume(self) -> float:
        """Volume whose taker side is unknown."""
        return self.volume - self.buy_volume - self.sell_volume

    @property
    def is_complete_data(self) -> bool:
        """True when no trade is known to be missing (neither GAP nor PARTIAL)."""
        return not self.flags & (BarFlag.GAP | BarFlag.PARTIAL)

    @property
    def open_datetime(self) -> datetime:
        return ns_to_datetime(self.open_time)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with ``vwap`` included, for JSON and DataFrames."""
        out: dict[str, Any] = msgspec.structs.asdict(self)
        out["flags"] = int(self.flags)
        out["vwap"] = self.vwap
        return out


class Prediction(msgspec.Struct, frozen=True):
    """A model's view of the next move after a bar closed."""

    symbol: str
    timeframe: str
    bar_open_time: int
    probability_up: float
    model: str
    latency_ns: int
    score: float | None = None
    bar: Bar | None = None


class SignalDirection(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class Signal(msgspec.Struct, frozen=True):
    """A trading decision derived from a prediction."""

    symbol: str
    direction: SignalDirection
    confidence: float
    bar: Bar
    prediction: Prediction
    timestamp: int


def ns_to_datetime(timestamp_ns: int) -> datetime:
    """Nanoseconds since the epoch to an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(timestamp_ns / 1e9, tz=UTC)
