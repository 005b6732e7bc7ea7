"""Event-loop lag: how late the loop runs what is due, measured by a sleeper.

Everything of a stream runs on one asyncio loop, so a synchronous handler that
takes 50 ms per tick, or any other blocking call, delays every socket read,
bar completion and health check behind it. :class:`LoopMonitor` runs a task
that sleeps :data:`PROBE_INTERVAL_S` and records how much later than asked it
woke up; the largest lag of the last :data:`STALL_WINDOW_S` seconds (including
the sleep overdue right now) is what health judges against
:data:`STALL_THRESHOLD_S`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

PROBE_INTERVAL_S = 0.1
# A loop that could not run for this long is a stalled stream: health turns degraded.
STALL_THRESHOLD_S = 1.0
# How long a stall stays on health after it ended.
STALL_WINDOW_S = 30.0
LAG_SAMPLES = 1000


class LoopMonitor:
    """Samples the lag of the running event loop (see the module docstring).

    ``clock`` is a monotonic clock in seconds, injectable for tests.
    """

    def __init__(self, interval_s: float = PROBE_INTERVAL_S, window_s: float = STALL_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self._now = clock
        self.lags_ns: deque[int] = deque(maxlen=LAG_SAMPLES)  # every probe, for the metrics
        self._stalls: deque[tuple[float, float]] = deque()  # (woke at, lag s) above interval
        self._due: float | None = None

    def record(self, woke_s: float, lag_s: float) -> None:
        """One probe that woke ``lag_s`` late at ``woke_s`` (monotonic seconds)."""
        self.lags_ns.append(int(max(lag_s, 0.0) * 1e9))
        if lag_s >= self.interval_s:
            self._stalls.append((woke_s, lag_s))
        while self._stalls and self._stalls[0][0] < woke_s - self.window_s:
            self._stalls.popleft()

    def max_lag_s(self) -> float:
        """The largest lag of the window, or the current overdue sleep if larger."""
        now = self._now()
        recent = max((lag for woke, lag in self._stalls if woke >= now - self.window_s),
                     default=0.0)
        overdue = now - self._due if self._due is not None else 0.0
        return max(recent, overdue, 0.0)

    async def run(self) -> None:
        """Probe forever (until cancelled)."""
        try:
            while True:
                self._due = self._now() + self.interval_s
                await asyncio.sleep(self.interval_s)
                woke = self._now()
                self.record(woke, woke - self._due)
        finally:
            self._due = None
