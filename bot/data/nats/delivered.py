"""``DeliveredIds``: which trade ids of one sequenced symbol a consumer has passed on.

Two workers may store different batches holding the same trades (one cut a
batch short, or a worker joined late, or they batch with different windows),
so a consumer meets trades it already has, sometimes long after. A venue whose
trade ids are one consecutive sequence per symbol lets it remember them all
cheaply: as ranges of consecutive ids, one range while nothing was missed. At
most ``max_ranges`` ranges are kept (the newest); an id below them counts as
new, and the aggregator's own check is the last word on it.
"""

from __future__ import annotations

from bisect import bisect_right


class DeliveredIds:
    """Disjoint ranges ``[low, high]`` of trade ids, ascending."""

    __slots__ = ("_highs", "_lows", "max_ranges")

    def __init__(self, max_ranges: int = 256) -> None:
        self.max_ranges = max_ranges
        self._lows: list[int] = []
        self._highs: list[int] = []

    def add(self, trade_id: int) -> bool:
        """Remember ``trade_id``; False when it was delivered already."""
        lows, highs = self._lows, self._highs
        if highs and trade_id == highs[-1] + 1:  # the common case: the next trade
            highs[-1] = trade_id
            return True
        i = bisect_right(lows, trade_id) - 1  # the range starting at or before it
        if i >= 0 and trade_id <= highs[i]:
            return False
        joins_left = i >= 0 and highs[i] + 1 == trade_id
        joins_right = i + 1 < len(lows) and lows[i + 1] - 1 == trade_id
        if joins_left and joins_right:
            highs[i] = highs[i + 1]
            del lows[i + 1], highs[i + 1]
        elif joins_left:
            highs[i] = trade_id
        elif joins_right:
            lows[i + 1] = trade_id
        else:
            lows.insert(i + 1, trade_id)
            highs.insert(i + 1, trade_id)
            if len(lows) > self.max_ranges:
                del lows[0], highs[0]
        return True

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._lows, self._highs, strict=True))
