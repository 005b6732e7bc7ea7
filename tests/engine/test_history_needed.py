"""A min_history shorter than the features need is refused when the engine is built."""

from __future__ import annotations

import numpy as np
import pytest

from bot.data.engine import (
    StreamingTradingEngine,
    bars_needed,
    combine,
    default_features,
    needs_bars,
)
from bot.data.errors import ConfigError
from tests.engine.support import FakeManager, bars_array, random_walk


def _last_close(bars: np.ndarray) -> dict[str, float]:
    return {"close": float(bars["close"][-1])}


def _momentum_10(bars: np.ndarray) -> dict[str, float]:
    """Undeclared: indexes 10 bars back, so it needs 11."""
    close = bars["close"]
    return {"momentum_10": float(close[-1] / close[-11] - 1.0)}


def test_default_features_need_every_bar_of_their_longest_window() -> None:
    """21 bars: 20 one-bar returns for volatility_20. Checked on real arrays: 21 work, and
    fewer either raise or give a volatility over fewer returns than the name says."""
    assert bars_needed(default_features, 200) == 21
    closes = random_walk(21)
    assert len(default_features(bars_array(closes))) == 11
    with pytest.raises(IndexError):
        default_features(bars_array(closes[:15]))


def test_min_history_below_what_the_default_features_need_fails_at_construction() -> None:
    with pytest.raises(ConfigError) as caught:
        StreamingTradingEngine(FakeManager(), min_history=5)
    message = str(caught.value)
    assert caught.value.field == "min_history"
    assert "min_history=5" in message and ">= 21" in message and "default_features" in message
    StreamingTradingEngine(FakeManager(), min_history=21)  # the minimum is accepted


def test_an_undeclared_feature_function_is_measured_by_trying_it() -> None:
    assert bars_needed(_momentum_10, 200) == 11
    with pytest.raises(ConfigError, match=r"min_history=10 .*>= 11.*_momentum_10"):
        StreamingTradingEngine(FakeManager(), features=_momentum_10, min_history=10)
    StreamingTradingEngine(FakeManager(), features=_momentum_10, min_history=11)


def test_a_declared_need_is_taken_as_declared_and_combined_takes_the_most() -> None:
    @needs_bars(50)
    def declared(bars: np.ndarray) -> dict[str, float]:
        return _last_close(bars)

    assert bars_needed(declared, 200) == 50
    assert bars_needed(combine([default_features, declared]), 200) == 50
    assert bars_needed(combine([default_features, _momentum_10]), 200) == 21
    with pytest.raises(ConfigError, match=r">= 50: the features \(default_features \+ "
                                          r"declared\) need 50 bars"):
        StreamingTradingEngine(FakeManager(), features=[default_features, declared],
                               min_history=30)


def test_a_function_failing_for_another_reason_is_left_to_run_time() -> None:
    def broken(bars: np.ndarray) -> dict[str, float]:
        raise ZeroDivisionError

    assert bars_needed(broken, 200) is None
    StreamingTradingEngine(FakeManager(), features=broken, min_history=2)


def test_needs_bars_takes_a_positive_count_only() -> None:
    with pytest.raises(ValueError, match="needs_bars"):
        needs_bars(0)
