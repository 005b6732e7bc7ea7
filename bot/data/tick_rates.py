"""Trades per symbol and their rate, counted from the bus's TICK events.

A consumer for displays (the terminal view, the dashboard): the handler is a
dict store and an increment; a rate is computed when the display samples it,
over about ``window_s`` seconds, so it is exact whatever the tick buffer holds.
"""

from __future__ import annotations

import time
from collections import deque

from bot.data.events import StreamEvent
from bot.data.models import Tick


class TickStats:
    """Last trade, trade count and trades per second of each symbol."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self.last: dict[str, Tick] = {}
        self.counts: dict[str, int] = {}
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def on_tick(self, event: StreamEvent) -> None:
        tick: Tick = event.data
        self.last[tick.symbol] = tick
        self.counts[tick.symbol] = self.counts.get(tick.symbol, 0) + 1

    def sample(self, now: float | None = None) -> dict[str, float]:
        """Record the counts now; per-symbol trades per second over the window.

        Until a window has passed since the first sample, the rate is over the
        time since it.
        """
        now = time.monotonic() if now is None else now
        self._samples.append((now, dict(self.counts)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        then, old = self._samples[0]
        span = now - then
        if span <= 0:
            return {}
        return {s: (n - old.get(s, 0)) / span for s, n in self.counts.items()}
