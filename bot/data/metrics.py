"""Counters, rates and latency percentiles of a running stream.

Nothing here touches the per-tick hot path: latencies are read from the ticks
already kept in the tick buffers (exchange time and receive time are on every
tick) and from the bar dispatch log the pipeline keeps; rates come from
once-a-second snapshots of the counters taken by the manager's clock task.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np

PERCENTILES = (50, 90, 99)


def latency_summary(samples_ns: Iterable[int]) -> dict[str, float | int | None]:
    """p50/p90/p99/max in milliseconds and the sample count (None when there are no samples).

    Samples are read as floats: one absurd value (an exchange time decades off)
    skews the maximum but cannot make the metrics raise.
    """
    arr = np.fromiter(samples_ns, dtype=np.float64)
    if not arr.size:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ms = arr / 1e6
    p50, p90, p99 = np.percentile(ms, PERCENTILES)
    return {"count": int(arr.size), "p50_ms": round(float(p50), 3),
            "p90_ms": round(float(p90), 3), "p99_ms": round(float(p99), 3),
            "max_ms": round(float(ms.max()), 3)}


class RateTracker:
    """Per-second snapshots of monotonically increasing counters -> rates over windows."""

    def __init__(self, horizon_s: int = 61) -> None:
        self._snapshots: deque[tuple[float, dict[str, int]]] = deque(maxlen=horizon_s + 1)

    def sample(self, now_s: float, counters: Mapping[str, int]) -> None:
        self._snapshots.append((now_s, dict(counters)))

    def rates(self, window_s: float) -> dict[str, float]:
        """Per-second rate of each counter over (about) the last ``window_s`` seconds."""
        if len(self._snapshots) < 2:
            return {}
        now, latest = self._snapshots[-1]
        then, old = self._snapshots[0]
        for t, snap in self._snapshots:
            if now - t <= window_s:
                then, old = t, snap
                break
        span = now - then
        if span <= 0:
            return {}
        return {k: round((v - old.get(k, 0)) / span, 3) for k, v in latest.items()}


# A handler whose longest recent call is shorter than this is not named as a cause of loop lag.
SLOW_HANDLER_MS = 1.0


def slowest(durations_ns: Mapping[str, Iterable[int]]) -> tuple[str | None, float | None]:
    """The handler with the longest recent call and that call in ms, if it took >= 1 ms."""
    best: tuple[str | None, float | None] = (None, None)
    for name, samples in durations_ns.items():
        longest_ms = round(max(samples, default=0) / 1e6, 3)
        if longest_ms >= SLOW_HANDLER_MS and (best[1] is None or longest_ms > best[1]):
            best = (name, longest_ms)
    return best
