"""Market time of the simulator: an injectable wall clock run at a speed factor.

Every timestamp the simulator publishes is market time. It starts at
``start_ns`` and advances ``speed`` times as fast as ``clock`` (nanoseconds,
``time.time_ns`` by default), so a test can compress ten minutes of market into
seconds, or drive time by hand with a fake ``clock``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


class MarketClock:
    """Maps the wall clock to market time and market durations back to wall seconds."""

    def __init__(self, clock: Clock = time.time_ns, speed: float = 1.0,
                 start_ns: int | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.clock = clock
        self.speed = speed
        self._wall_origin = clock()
        self._market_origin = self._wall_origin if start_ns is None else start_ns

    @property
    def origin_ns(self) -> int:
        """Market time at the start."""
        return self._market_origin

    def now(self) -> int:
        """Current market time in nanoseconds since the epoch."""
        elapsed = self.clock() - self._wall_origin
        return self._market_origin + int(elapsed * self.speed)

    def wall_seconds(self, market_ns: int) -> float:
        """Wall-clock seconds that ``market_ns`` nanoseconds of market time take."""
        return max(market_ns, 0) / 1e9 / self.speed
