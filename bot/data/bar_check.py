"""``BarCheck``: the check every bar a venue hands us (REST history) passes before it is kept.

Ticks pass :class:`~bot.data.gate.TickGate`; bars a venue computed itself
(Binance klines, Alpaca bars) that the warm-up puts into the bar history or
seeds the aggregator with pass this, so neither holds a bar no trade could
have built. A bar passes when:

* its open, high, low and close are finite and greater than zero, with
  ``low <= open, close <= high``;
* its volumes (base, quote, taker buy and sell, taker buy quote) are finite
  and not negative;
* its open time is a multiple of its timeframe's length (venues align bars
  to the UTC epoch; a day's bar only to the hour: Alpaca's days open at
  midnight New York time), its close time one length less a nanosecond later, and
  its open later than the open of the bar kept before it: bars come oldest
  first, each once.

A refused bar is counted by reason (:attr:`BarCheck.refused`, the metrics'
``bars_refused_by_reason``) and logged at most once per period per reason
with a sample; the bars around it are kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from enum import StrEnum

from bot.data.models import Bar
from bot.data.throttle import LogThrottle
from bot.data.timeframes import NS_PER_SECOND

logger = logging.getLogger(__name__)
HOUR_NS = 3600 * NS_PER_SECOND
DAY_NS = 24 * HOUR_NS


class BarRefusal(StrEnum):
    """Why a venue's bar was refused (the keys of ``bars_refused_by_reason``)."""

    PRICE = "price"  # an OHLC price not finite and positive
    RANGE = "range"  # open or close outside [low, high]
    VOLUME = "volume"  # a volume not finite or negative
    OPEN_TIME = "open_time"  # not aligned or not one timeframe long, or not after the previous


class BarCheck:
    """Keeps the plausible bars of a venue's answer; counts and logs the rest by reason."""

    def __init__(self) -> None:
        self.refused: dict[str, int] = {}
        self._log = LogThrottle(logger)

    def plausible(self, bars: Iterable[Bar], length_ns: int, *,
                  after_ns: int | None = None) -> list[Bar]:
        """The bars of ``bars`` that pass, in their order.

        ``length_ns`` is their timeframe's length; ``after_ns`` the open time
        of the bar already kept before them (each kept bar must open later).
        """
        out: list[Bar] = []
        last = after_ns
        for bar in bars:
            reason = _refusal(bar, length_ns, last)
            if reason is None:
                out.append(bar)
                last = bar.open_time
            else:
                self._refuse(bar, reason)
        return out

    def _refuse(self, bar: Bar, reason: BarRefusal) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self._log.log(f"refused {reason}", logging.WARNING,
                      "refused a %s %s bar of %s (%s): open_time=%r open=%r high=%r low=%r "
                      "close=%r volume=%r", bar.venue, bar.timeframe, bar.symbol, reason,
                      bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume)


def _refusal(bar: Bar, length_ns: int, after_ns: int | None) -> BarRefusal | None:
    """Which rule of the module ``bar`` breaks, or None when it passes."""
    prices = (bar.open, bar.high, bar.low, bar.close)
    if not all(0.0 < p < math.inf for p in prices):
        return BarRefusal.PRICE
    if not (bar.low <= bar.open <= bar.high and bar.low <= bar.close <= bar.high):
        return BarRefusal.RANGE
    volumes = (bar.volume, bar.quote_volume, bar.buy_volume, bar.sell_volume,
               bar.buy_quote_volume)
    if not all(0.0 <= v < math.inf for v in volumes):
        return BarRefusal.VOLUME
    grid = HOUR_NS if length_ns >= DAY_NS else length_ns
    if (bar.open_time % grid or bar.close_time != bar.open_time + length_ns - 1
            or (after_ns is not None and bar.open_time <= after_ns)):
        return BarRefusal.OPEN_TIME
    return None
