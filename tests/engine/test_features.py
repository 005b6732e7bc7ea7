"""Default features against the ``ta`` library, pandas and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import ta

from bot.data.engine.features import (
    DEFAULT_FEATURE_NAMES,
    DEFAULT_MIN_HISTORY,
    combine,
    default_features,
)
from tests.engine.support import bars_array, random_walk


@pytest.fixture
def bars() -> np.ndarray:
    return bars_array(random_walk(200, seed=11))


def test_default_features_have_the_documented_names(bars: np.ndarray) -> None:
    assert tuple(default_features(bars)) == DEFAULT_FEATURE_NAMES


@pytest.mark.parametrize("n", [DEFAULT_MIN_HISTORY, 60, 200])
def test_rsi_matches_ta(bars: np.ndarray, n: int) -> None:
    window = bars[-n:]
    expected = ta.momentum.RSIIndicator(pd.Series(window["close"]), window=14).rsi().iloc[-1]
    assert default_features(window)["rsi_14"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n", [DEFAULT_MIN_HISTORY, 200])
def test_ema_spread_matches_ta(bars: np.ndarray, n: int) -> None:
    close = pd.Series(bars[-n:]["close"])
    fast = ta.trend.EMAIndicator(close, window=12).ema_indicator().iloc[-1]
    slow = ta.trend.EMAIndicator(close, window=26).ema_indicator().iloc[-1]
    expected = (fast - slow) / close.iloc[-1]
    assert default_features(bars[-n:])["ema_spread_12_26"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("horizon", [1, 5, 15])
def test_returns_match_ta_rate_of_change(bars: np.ndarray, horizon: int) -> None:
    roc = ta.momentum.ROCIndicator(pd.Series(bars["close"]), window=horizon).roc().iloc[-1]
    assert default_features(bars)[f"return_{horizon}"] == pytest.approx(roc / 100, rel=1e-9)


def test_volatility_is_the_sample_std_of_twenty_log_returns(bars: np.ndarray) -> None:
    log_returns = pd.Series(np.log(bars["close"])).diff()
    expected = log_returns.rolling(20).std().iloc[-1]
    assert default_features(bars)["volatility_20"] == pytest.approx(expected, rel=1e-9)


def test_volume_zscore_matches_pandas(bars: np.ndarray) -> None:
    volume = pd.Series(bars["volume"])
    window = volume.iloc[-20:]
    expected = (volume.iloc[-1] - window.mean()) / window.std(ddof=0)
    assert default_features(bars)["volume_zscore_20"] == pytest.approx(expected, rel=1e-9)


def test_last_bar_features_by_hand(bars: np.ndarray) -> None:
    bars = bars.copy()
    last = bars[-1:]
    last["close"], last["high"], last["low"] = 100.0, 102.0, 99.0
    last["volume"], last["buy_volume"], last["sell_volume"] = 4.0, 3.0, 1.0
    features = default_features(bars)
    assert features["bar_range"] == pytest.approx(0.03)  # (102 - 99) / 100
    assert features["taker_imbalance"] == pytest.approx(0.5)  # (3 - 1) / 4


def test_vwap_distance_by_hand(bars: np.ndarray) -> None:
    bars = bars.copy()
    window = bars[-20:]
    window["volume"] = [1.0] * 10 + [3.0] * 10
    window["quote_volume"] = [100.0] * 10 + [3 * 104.0] * 10  # VWAP = (1000 + 3120) / 40 = 103
    window["close"][-1] = 105.0
    assert default_features(bars)["vwap_distance_20"] == pytest.approx(105 / 103 - 1)


def test_vwap_distance_is_nan_when_nothing_traded(bars: np.ndarray) -> None:
    bars = bars.copy()
    bars["volume"][-20:] = 0.0
    bars["quote_volume"][-20:] = 0.0
    assert math.isnan(default_features(bars)["vwap_distance_20"])


def test_constant_series_gives_neutral_rsi_and_zero_zscores(bars: np.ndarray) -> None:
    flat = bars.copy()
    flat["close"] = 50.0
    flat["volume"] = 2.0
    flat["trade_count"] = 7
    features = default_features(flat)
    assert features["rsi_14"] == 50.0
    assert features["volume_zscore_20"] == 0.0
    assert features["trade_count_zscore_20"] == 0.0
    assert features["return_15"] == 0.0


def test_combine_extends_and_later_functions_win(bars: np.ndarray) -> None:
    def extra(array: np.ndarray) -> dict[str, float]:
        return {"last_close": float(array["close"][-1]), "bar_range": -1.0}

    features = combine([default_features, extra])(bars)
    assert features["last_close"] == bars["close"][-1]
    assert features["bar_range"] == -1.0
    assert set(DEFAULT_FEATURE_NAMES) <= set(features)


def test_combine_refuses_an_empty_list() -> None:
    with pytest.raises(ValueError, match="at least one"):
        combine([])
