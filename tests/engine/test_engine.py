"""The engine end to end over a real TickPipeline: bar close -> ... -> execution."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bot.data.engine import (
    DEFAULT_MIN_HISTORY,
    PaperExecutor,
    StreamingTradingEngine,
    default_features,
)
from bot.data.errors import ConfigError
from bot.data.events import EventType
from bot.data.models import BarFlag, Prediction, Signal, SignalDirection
from tests.engine.support import (
    MINUTE,
    T0,
    FakeManager,
    Market,
    bars_array,
    collect,
    make_bar,
    random_walk,
)

WARM = DEFAULT_MIN_HISTORY + 1  # trades that complete exactly DEFAULT_MIN_HISTORY bars


def always(probability: float) -> Callable[[dict[str, float]], float]:
    """A predictor that always answers ``probability``."""
    return lambda features: probability


def engine_for(manager: FakeManager, market: Market, **kwargs: object) -> StreamingTradingEngine:
    return StreamingTradingEngine(manager, clock=market.clock, **kwargs)  # type: ignore[arg-type]


# -- lifecycle -----------------------------------------------------------------------
async def test_start_starts_a_stopped_manager_and_stop_stops_it(manager: FakeManager,
                                                                market: Market) -> None:
    engine = engine_for(manager, market)
    await engine.start()
    assert manager.is_running and engine.is_running
    await engine.stop()
    assert not manager.is_running and not engine.is_running
    assert (manager.starts, manager.stops) == (1, 1)


async def test_stop_leaves_a_manager_it_did_not_start_running(manager: FakeManager,
                                                              market: Market) -> None:
    await manager.start()
    engine = engine_for(manager, market)
    await engine.start()
    await engine.stop()
    assert manager.is_running
    assert (manager.starts, manager.stops) == (1, 0)


async def test_no_bar_is_handled_after_stop(manager: FakeManager, market: Market) -> None:
    engine = engine_for(manager, market)
    await engine.start()
    await engine.stop()
    market.bars("BTC/USDT", random_walk(WARM + 1))
    assert engine.get_metrics()["bars_seen"] == 0


def test_timeframe_must_be_configured(manager: FakeManager) -> None:
    with pytest.raises(ConfigError, match="timeframe"):
        StreamingTradingEngine(manager, timeframe="1h")


# -- the default path ----------------------------------------------------------------
async def test_default_predictor_predicts_once_history_is_long_enough(
        manager: FakeManager, market: Market) -> None:
    engine = engine_for(manager, market)
    predictions = collect(manager.bus, EventType.PREDICTION)
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM + 9))  # completes DEFAULT_MIN_HISTORY + 9 bars
    metrics = engine.get_metrics()
    assert metrics["bars_seen"] == DEFAULT_MIN_HISTORY + 9
    assert metrics["skipped"]["insufficient_history"] == DEFAULT_MIN_HISTORY - 1
    assert metrics["predictions"] == len(predictions) == 10
    assert {event.data.model for event in predictions} == {"momentum"}
    assert metrics["signals"] + metrics["no_signal"] == 10
    await engine.stop()


async def test_only_its_timeframe_and_symbols_are_handled(manager: FakeManager,
                                                          market: Market) -> None:
    engine = engine_for(manager, market, symbols=["ETH/USDT"], predictor=always(0.9))
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM + 10))  # also completes 5m bars
    assert engine.get_metrics()["bars_seen"] == 0
    market.bars("ETH/USDT", random_walk(WARM))
    assert engine.get_metrics()["bars_seen"] == DEFAULT_MIN_HISTORY
    await engine.stop()


async def test_logistic_regression_fitted_on_synthetic_bars_drives_predictions_and_signals(
        manager: FakeManager, market: Market) -> None:
    train = bars_array(random_walk(600, seed=5))
    rows = [default_features(train[max(0, t - 199): t + 1]) for t in range(40, 599)]
    names = list(rows[0])
    x = np.array([[row[n] for n in names] for row in rows])
    y = (train["close"][41:600] > train["close"][40:599]).astype(int)
    model = LogisticRegression().fit(x, y)

    paper = PaperExecutor(manager.bus, fee_bps=0.0, allow_short=True, max_position=100.0)
    engine = engine_for(manager, market, predictor=model, executor=paper,
                        signal_threshold=0.51)
    predictions = collect(manager.bus, EventType.PREDICTION)
    signals = collect(manager.bus, EventType.SIGNAL)
    await engine.start()
    end = market.bars("BTC/USDT", random_walk(WARM + 49, seed=9))
    assert len(predictions) == 50
    market.trade("BTC/USDT", 100.0, T0 + (end - 1) * MINUTE + 1)  # fills the last signal
    assert all(isinstance(e.data, Prediction) and e.data.model == "LogisticRegression"
               for e in predictions)
    assert signals, "a fitted model should cross a 0.51 threshold at least once"
    for event in signals:
        signal: Signal = event.data
        p = signal.prediction.probability_up
        assert signal.direction is (SignalDirection.BUY if p >= 0.51 else SignalDirection.SELL)
        assert event.timestamp == signal.timestamp
    history = manager.pipeline.bars[("BTC/USDT", "1m")]
    last = default_features(history.array(200))
    expected = model.predict_proba(np.array([[last[n] for n in names]]))[0][1]
    assert predictions[-1].data.probability_up == pytest.approx(expected)
    assert len(paper.trades) == len(signals) - paper.rejected.total()
    metrics = engine.get_metrics()
    assert metrics["executions"] == len(signals)
    assert metrics["signals"] == metrics["buy_signals"] + metrics["sell_signals"] == len(signals)
    await engine.stop()


# -- features ------------------------------------------------------------------------
async def test_custom_features_replace_the_default_set(manager: FakeManager,
                                                       market: Market) -> None:
    seen: list[dict[str, float]] = []

    def last_close(bars: np.ndarray) -> dict[str, float]:
        return {"close": float(bars["close"][-1])}

    def model(features: dict[str, float]) -> float:
        seen.append(features)
        return 0.5

    engine = engine_for(manager, market, predictor=model, features=last_close, min_history=2)
    await engine.start()
    market.bars("BTC/USDT", [10.0, 11.0, 12.0, 13.0])
    assert seen == [{"close": 11.0}, {"close": 12.0}]
    await engine.stop()


async def test_non_finite_features_give_no_prediction(manager: FakeManager,
                                                      market: Market) -> None:
    engine = engine_for(manager, market, predictor=always(0.9),
                        features=lambda bars: {"x": math.nan}, min_history=2)
    await engine.start()
    market.bars("BTC/USDT", [10.0, 11.0, 12.0])
    metrics = engine.get_metrics()
    assert metrics["skipped"]["non_finite_features"] == 1
    assert metrics["predictions"] == metrics["signals"] == 0
    await engine.stop()


async def test_raising_feature_function_is_counted(manager: FakeManager,
                                                   market: Market) -> None:
    def broken(bars: np.ndarray) -> dict[str, float]:
        raise ZeroDivisionError

    engine = engine_for(manager, market, features=broken, min_history=2)
    await engine.start()
    market.bars("BTC/USDT", [10.0, 11.0, 12.0, 13.0])
    assert engine.get_metrics()["feature_errors"] == 2
    assert engine.is_running
    await engine.stop()


# -- bars that may not be traded on --------------------------------------------------
@pytest.mark.parametrize(("flag", "reason"), [(BarFlag.GAP, "gap"),
                                              (BarFlag.PARTIAL, "partial")])
async def test_bar_missing_trades_yields_no_signal(manager: FakeManager, market: Market,
                                                   flag: BarFlag, reason: str) -> None:
    engine = engine_for(manager, market, predictor=always(0.99))
    signals = collect(manager.bus, EventType.SIGNAL)
    await engine.start()
    end = market.bars("BTC/USDT", random_walk(WARM))
    assert len(signals) == 1
    bar = make_bar(open_time=T0 + end * MINUTE, flags=flag)
    market.now = bar.close_time + 1
    manager.pipeline.publish_bars([bar], market.now)
    assert len(signals) == 1
    assert engine.get_metrics()["skipped"][reason] == 1
    await engine.stop()


async def test_stale_bar_yields_no_signal(manager: FakeManager, market: Market) -> None:
    engine = engine_for(manager, market, predictor=always(0.99), max_bar_age=30.0)
    signals = collect(manager.bus, EventType.SIGNAL)
    await engine.start()
    end = market.bars("BTC/USDT", random_walk(WARM))
    market.now = T0 + end * MINUTE + 10 * MINUTE  # the open bar is completed 10 minutes late
    assert manager.pipeline.advance(market.now)
    assert len(signals) == 1
    assert engine.get_metrics()["skipped"]["stale"] >= 1
    await engine.stop()


# -- predictor failures --------------------------------------------------------------
async def test_raising_predictor_is_counted_and_the_engine_goes_on(manager: FakeManager,
                                                                   market: Market) -> None:
    calls = 0

    def flaky(features: dict[str, float]) -> float:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model not loaded")
        return 0.9

    engine = engine_for(manager, market, predictor=flaky)
    signals = collect(manager.bus, EventType.SIGNAL)
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM + 1))
    metrics = engine.get_metrics()
    assert metrics["predictor_errors"] == 1
    assert len(signals) == metrics["signals"] == 1
    assert engine.is_running
    await engine.stop()


async def test_invalid_predictor_output_is_counted_as_an_error(manager: FakeManager,
                                                               market: Market) -> None:
    engine = engine_for(manager, market, predictor=always(7.0))
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM))
    assert engine.get_metrics()["predictor_errors"] == 1
    await engine.stop()


async def test_slow_sync_predictor_over_budget_is_counted_and_skipped(
        manager: FakeManager, market: Market) -> None:
    def slow(features: dict[str, float]) -> float:
        time.sleep(0.03)
        return 0.9

    engine = engine_for(manager, market, predictor=slow, predictor_timeout=0.01)
    signals = collect(manager.bus, EventType.SIGNAL)
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM))
    assert engine.get_metrics()["predictor_timeouts"] == 1
    assert signals == []
    await engine.stop()


async def test_hanging_async_predictor_times_out_without_blocking_the_stream(
        manager: FakeManager, market: Market) -> None:
    calls = 0

    async def hangs_once(features: dict[str, float]) -> float:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()
        return 0.9

    # The scripted market runs minutes ahead of the task: keep its bars fresh.
    engine = engine_for(manager, market, predictor=hangs_once, predictor_timeout=0.05,
                        max_bar_age=3600.0)
    signals = collect(manager.bus, EventType.SIGNAL)
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM + 1))  # the second bar waits behind the first
    assert signals == []
    await asyncio.sleep(0.3)
    metrics = engine.get_metrics()
    assert metrics["predictor_timeouts"] == 1
    assert metrics["predictions"] == metrics["signals"] == len(signals) == 1
    assert engine.is_running
    await engine.stop()


async def test_slow_async_predictor_keeps_only_the_latest_bar(manager: FakeManager,
                                                              market: Market) -> None:
    gate = asyncio.Event()
    seen: list[float] = []

    async def gated(features: dict[str, float]) -> float:
        seen.append(features["close"])
        await gate.wait()
        return 0.9

    engine = engine_for(manager, market, predictor=gated, min_history=2, max_bar_age=3600.0,
                        features=lambda bars: {"close": float(bars["close"][-1])})
    predictions = collect(manager.bus, EventType.PREDICTION)
    await engine.start()
    market.bars("BTC/USDT", [1.0, 2.0, 3.0, 4.0, 5.0])  # bars 2, 3 and 4 reach the predictor
    await asyncio.sleep(0)
    gate.set()
    await asyncio.sleep(0.05)
    assert seen == [2.0, 4.0]  # bar 3 was replaced by bar 4 while bar 2 was being predicted
    assert [e.data.bar.close for e in predictions] == [2.0, 4.0]
    assert engine.get_metrics()["skipped"]["superseded"] == 1
    await engine.stop()


async def test_stop_cancels_a_prediction_in_progress(manager: FakeManager,
                                                     market: Market) -> None:
    async def never(features: dict[str, float]) -> float:
        await asyncio.Event().wait()
        return 0.5

    engine = engine_for(manager, market, predictor=never, predictor_timeout=60.0)
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM))
    await asyncio.sleep(0)
    await asyncio.wait_for(engine.stop(), 1.0)
    assert engine.get_metrics()["predictions"] == 0


# -- executors -----------------------------------------------------------------------
async def test_raising_executor_is_counted_and_signals_go_on(manager: FakeManager,
                                                             market: Market) -> None:
    def broken(signal: Signal) -> None:
        raise ConnectionError("exchange down")

    engine = engine_for(manager, market, predictor=always(0.9), executor=broken)
    signals = collect(manager.bus, EventType.SIGNAL)
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM + 2))
    metrics = engine.get_metrics()
    assert metrics["executor_errors"] == len(signals) == 3
    assert metrics["executions"] == 0
    assert engine.is_running
    await engine.stop()


async def test_async_executor_failures_are_counted(manager: FakeManager,
                                                   market: Market) -> None:
    executed: list[SignalDirection] = []

    class Broker:
        async def execute(self, signal: Signal) -> None:
            executed.append(signal.direction)
            if len(executed) == 1:
                raise ConnectionError("rejected")

    engine = engine_for(manager, market, predictor=always(0.1), executor=Broker())
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM + 1))
    await asyncio.sleep(0.01)
    metrics = engine.get_metrics()
    assert executed == [SignalDirection.SELL, SignalDirection.SELL]
    assert (metrics["executor_errors"], metrics["executions"]) == (1, 1)
    await engine.stop()


# -- metrics -------------------------------------------------------------------------
async def test_latency_is_measured_from_the_completing_trade_to_the_signal(
        manager: FakeManager, market: Market) -> None:
    engine = StreamingTradingEngine(manager, predictor=always(0.9),
                                    clock=lambda: market.now + 1_500_000)
    await engine.start()
    market.bars("BTC/USDT", random_walk(WARM + 3))
    latency = engine.get_metrics()["tick_to_signal_latency"]
    assert latency == {"count": 4, "p50_ms": 1.5, "p99_ms": 1.5}
    await engine.stop()


async def test_metrics_are_json_serialisable(manager: FakeManager, market: Market) -> None:
    engine = engine_for(manager, market, symbols=["BTC/USDT"])
    await engine.start()
    assert json.loads(json.dumps(engine.get_metrics()))["tick_to_signal_latency"] == {
        "count": 0, "p50_ms": None, "p99_ms": None}
    market.bars("BTC/USDT", random_walk(WARM + 5))
    metrics = json.loads(json.dumps(engine.get_metrics(), allow_nan=False))
    assert metrics["symbols"] == ["BTC/USDT"]
    assert metrics["predictor"] == "momentum"
    await engine.stop()
