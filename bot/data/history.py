"""Bounded, compact bar history: the last N bars of each symbol and timeframe.

Bars are stored column-wise in a NumPy structured ring buffer: 113 bytes a bar
(against ~490 for a Python object per bar), and a DataFrame of the last
``limit`` bars is one slice and one copy, not a loop over objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bot.data.frames import BAR_COLUMNS, bar_frame
from bot.data.models import Bar, BarFlag

if TYPE_CHECKING:
    import pandas as pd

BAR_DTYPE = np.dtype([
    ("open_time", "<i8"),
    ("open", "<f8"),
    ("high", "<f8"),
    ("low", "<f8"),
    ("close", "<f8"),
    ("volume", "<f8"),
    ("quote_volume", "<f8"),
    ("buy_volume", "<f8"),
    ("sell_volume", "<f8"),
    ("buy_quote_volume", "<f8"),
    ("trade_count", "<i8"),
    ("first_trade_id", "<i8"),
    ("last_trade_id", "<i8"),
    ("close_time", "<i8"),
    ("flags", "u1"),
])

# Columns of get_bar_dataframe, in order; vwap is derived (quote_volume / volume).
DATAFRAME_COLUMNS = BAR_COLUMNS


class BarHistory:
    """Ring buffer of the last ``capacity`` completed bars of one symbol and timeframe."""

    __slots__ = ("_data", "_next", "_size", "capacity", "symbol", "timeframe", "venue")

    def __init__(self, venue: str, symbol: str, timeframe: str, capacity: int) -> None:
        self.venue = venue
        self.symbol = symbol
        self.timeframe = timeframe
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=BAR_DTYPE)
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def append(self, bar: Bar) -> None:
        self._data[self._next] = (
            bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume,
            bar.quote_volume, bar.buy_volume, bar.sell_volume, bar.buy_quote_volume,
            bar.trade_count, bar.first_trade_id, bar.last_trade_id, bar.close_time,
            int(bar.flags),
        )
        self._next = (self._next + 1) % self.capacity
        if self._size < self.capacity:
            self._size += 1

    def array(self, limit: int | None = None) -> np.ndarray:
        """The last ``limit`` bars (all when None), oldest first, as a structured array copy."""
        n = self._size if limit is None else max(0, min(limit, self._size))
        start = (self._next - n) % self.capacity
        if start + n <= self.capacity:
            return self._data[start:start + n].copy()
        return np.concatenate((self._data[start:], self._data[: (start + n) - self.capacity]))

    def bars(self, limit: int | None = None) -> list[Bar]:
        """The last ``limit`` bars as ``Bar`` records, oldest first."""
        return [
            Bar(self.venue, self.symbol, self.timeframe, int(r["open_time"]),
                int(r["close_time"]), float(r["open"]), float(r["high"]), float(r["low"]),
                float(r["close"]), float(r["volume"]), float(r["quote_volume"]),
                float(r["buy_volume"]), float(r["sell_volume"]), float(r["buy_quote_volume"]),
                int(r["trade_count"]), int(r["first_trade_id"]), int(r["last_trade_id"]),
                BarFlag(int(r["flags"])))
            for r in self.array(limit)
        ]

    def dataframe(self, limit: int | None = 100) -> pd.DataFrame:
        """The last ``limit`` bars as a DataFrame indexed by UTC open time (see
        :mod:`bot.data.frames`, the shape stored bars share)."""
        return bar_frame(self.array(limit))
