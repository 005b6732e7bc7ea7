"""From a prediction to a trading decision, and when a bar may not be traded on.

The rule, for a threshold ``t`` in (0.5, 1]:

- ``probability_up >= t``      -> BUY,  confidence ``probability_up``;
- ``probability_up <= 1 - t``  -> SELL, confidence ``1 - probability_up``;
- anything in between          -> no signal.

A bar carrying GAP or PARTIAL is missing trades, and a stale bar describes a
market that has moved on: neither may produce a signal (see
:func:`untrusted_reason` and :func:`is_stale`).
"""

from __future__ import annotations

from bot.data.errors import ConfigError
from bot.data.models import Bar, BarFlag, SignalDirection


class ThresholdRule:
    """Maps a probability of an up move to BUY, SELL or nothing (see the module docstring)."""

    __slots__ = ("threshold",)

    def __init__(self, threshold: float) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
                0.5 < threshold <= 1.0):
            raise ConfigError("signal_threshold", threshold, "must be a number in (0.5, 1]")
        self.threshold = float(threshold)

    def decide(self, probability_up: float) -> tuple[SignalDirection, float] | None:
        """``(direction, confidence)``, or None when the probability is inside the neutral band."""
        if probability_up >= self.threshold:
            return SignalDirection.BUY, probability_up
        if probability_up <= 1.0 - self.threshold:
            return SignalDirection.SELL, 1.0 - probability_up
        return None


def untrusted_reason(bar: Bar) -> str | None:
    """``"gap"`` or ``"partial"`` when the bar is known to miss trades, else None."""
    if bar.flags & BarFlag.GAP:
        return "gap"
    if bar.flags & BarFlag.PARTIAL:
        return "partial"
    return None


def is_stale(bar: Bar, now_ns: int, max_age_ns: float) -> bool:
    """True when more than ``max_age_ns`` has passed since the bar's end."""
    return now_ns - bar.close_time > max_age_ns
