"""Probability -> BUY / SELL / nothing, and which bars may not be traded on."""

from __future__ import annotations

import pytest

from bot.data.engine.signals import ThresholdRule, is_stale, untrusted_reason
from bot.data.errors import ConfigError
from bot.data.models import BarFlag, SignalDirection
from tests.engine.support import MINUTE, T0, make_bar

BUY, SELL = SignalDirection.BUY, SignalDirection.SELL


@pytest.mark.parametrize(("probability", "expected"), [
    (1.0, (BUY, 1.0)),
    (0.75, (BUY, 0.75)),
    (0.6, (BUY, 0.6)),  # the threshold itself signals
    (0.59, None),
    (0.5, None),
    (0.41, None),
    (0.4, (SELL, 0.6)),
    (0.0, (SELL, 1.0)),
])
def test_threshold_maps_probability_to_direction_and_confidence(
        probability: float, expected: tuple[SignalDirection, float] | None) -> None:
    decision = ThresholdRule(0.6).decide(probability)
    if expected is None:
        assert decision is None
    else:
        assert decision is not None
        assert decision[0] is expected[0]
        assert decision[1] == pytest.approx(expected[1])


@pytest.mark.parametrize("threshold", [0.5, 0.2, 1.01, float("nan"), True, "0.6"])
def test_threshold_outside_half_to_one_is_refused(threshold: object) -> None:
    with pytest.raises(ConfigError, match="signal_threshold"):
        ThresholdRule(threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize(("flags", "reason"), [
    (BarFlag.NONE, None),
    (BarFlag.EMPTY, None),
    (BarFlag.BACKFILLED, None),
    (BarFlag.GAP, "gap"),
    (BarFlag.PARTIAL, "partial"),
    (BarFlag.GAP | BarFlag.BACKFILLED, "gap"),
])
def test_bars_missing_trades_are_untrusted(flags: BarFlag, reason: str | None) -> None:
    assert untrusted_reason(make_bar(flags=flags)) == reason


def test_a_bar_is_stale_once_its_end_is_older_than_the_limit() -> None:
    bar = make_bar(open_time=T0)
    end = T0 + MINUTE - 1
    assert not is_stale(bar, end + 30, max_age_ns=30)
    assert is_stale(bar, end + 31, max_age_ns=30)
