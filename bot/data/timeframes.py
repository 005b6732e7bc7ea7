"""Bar timeframes: parsing and alignment to UTC epoch multiples.

The set is Binance's kline interval set below one week, so every bar this
package builds has an official kline to be checked against. Weeks and months are
left out: they are not epoch multiples (weeks start on Monday, months vary).
"""

from __future__ import annotations

from functools import reduce
from math import gcd
from typing import Final

NS_PER_SECOND: Final = 1_000_000_000
NS_PER_MS: Final = 1_000_000

TIMEFRAME_SECONDS: Final[dict[str, int]] = {
    "1s": 1,
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
}

ALLOWED_TIMEFRAMES: Final = tuple(TIMEFRAME_SECONDS)


def timeframe_ns(timeframe: str) -> int:
    """Length of ``timeframe`` in nanoseconds; raises ValueError naming the allowed set."""
    try:
        return TIMEFRAME_SECONDS[timeframe] * NS_PER_SECOND
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown timeframe {timeframe!r}; allowed: {', '.join(ALLOWED_TIMEFRAMES)}"
        ) from None


def validate_timeframe(timeframe: str) -> str:
    """Return ``timeframe`` unchanged if it is allowed, else raise ValueError."""
    timeframe_ns(timeframe)
    return timeframe


def align(timestamp_ns: int, length_ns: int) -> int:
    """Open time of the interval of ``length_ns`` that contains ``timestamp_ns``.

    Intervals are ``[k * length, (k + 1) * length)`` counted from the UTC epoch,
    exactly as Binance aligns its klines.
    """
    return timestamp_ns - timestamp_ns % length_ns


def base_length_ns(timeframes: list[str] | tuple[str, ...]) -> int:
    """Greatest common length of ``timeframes``: every one is a whole number of it.

    The aggregator builds bars of this length from ticks and folds them into the
    longer timeframes, so a tick costs one bar update whatever the number of
    timeframes.
    """
    return reduce(gcd, (timeframe_ns(tf) for tf in timeframes))
