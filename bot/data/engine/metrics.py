"""The engine's counters and its tick-to-signal latency distribution."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Why a bar gave no prediction or no signal; every key is always reported.
SKIP_REASONS = (
    "gap", "partial", "stale", "insufficient_history", "non_finite_features", "superseded",
)


class LatencyRecorder:
    """The last ``capacity`` latencies (ns), summarised as percentiles in milliseconds."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._samples: deque[int] = deque(maxlen=capacity)
        self.count = 0

    def add(self, latency_ns: int) -> None:
        self._samples.append(latency_ns)
        self.count += 1

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile of the kept samples in ms; None before the first one."""
        if not self._samples:
            return None
        return float(np.percentile(np.fromiter(self._samples, np.int64), q)) / 1e6

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "p50_ms": self.percentile_ms(50),
                "p99_ms": self.percentile_ms(99)}


@dataclass
class EngineMetrics:
    """What the engine did and what it refused, by reason."""

    bars_seen: int = 0
    predictions: int = 0
    signals: int = 0
    buy_signals: int = 0
    sell_signals: int = 0
    no_signal: int = 0  # predictions inside the neutral band
    feature_errors: int = 0
    predictor_errors: int = 0
    predictor_timeouts: int = 0
    executions: int = 0
    executor_errors: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot."""
        return {
            "bars_seen": self.bars_seen,
            "predictions": self.predictions,
            "signals": self.signals,
            "buy_signals": self.buy_signals,
            "sell_signals": self.sell_signals,
            "no_signal": self.no_signal,
            "skipped": {reason: self.skipped[reason] for reason in SKIP_REASONS},
            "feature_errors": self.feature_errors,
            "predictor_errors": self.predictor_errors,
            "predictor_timeouts": self.predictor_timeouts,
            "executions": self.executions,
            "executor_errors": self.executor_errors,
            "tick_to_signal_latency": self.latency.summary(),
        }
