"""Every code example of the user's specification runs unchanged against the simulator.

The blocks are read verbatim from tests/data/seed_streaming.md. Changed are only what
the acceptance allows: Quick Start's sleep is shortened, the engine example's two
user-supplied objects are provided, and the environment points at the simulator.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bot.data.config import StreamManagerConfig
from bot.data.engine import PaperExecutor
from bot.data.engine.features import default_features
from bot.data.events import EventType
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import create_default_trading_stream
from tests.doc_blocks import bound_sleeps, seed_blocks, simulator_in_thread

BLOCKS = seed_blocks()
SPEED = 60.0  # one simulated minute per second, so bars complete within the test


@pytest.fixture
def sim_in_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[ExchangeSimulator]:
    """A simulator on its own event loop, for code that calls asyncio.run itself."""
    with simulator_in_thread(monkeypatch, ("BTC/USDT", "XRP/USDT"), ("TSLA",), seed=3,
                             speed=SPEED) as sim:
        yield sim


def test_quick_start_runs_unchanged_and_prints_ticks_and_bars(
        sim_in_thread: ExchangeSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    code = BLOCKS["Quick Start"]
    assert "await asyncio.sleep(60)" in code
    exec(compile(bound_sleeps(code, 4), "quick_start", "exec"), {"__name__": "seed"})
    lines = capsys.readouterr().out.splitlines()
    ticks = [ln for ln in lines if ln.startswith("Tick: ")]
    bars = [ln for ln in lines if ln.startswith("Bar: ")]
    assert ticks and bars
    symbols = {"BTC/USDT", "XRP/USDT", "TSLA"}
    for ln in ticks:
        m = re.fullmatch(r"Tick: (\S+) @ (\d+(\.\d+)?(e-?\d+)?)", ln)
        assert m and m.group(1) in symbols, ln
        assert float(m.group(2)) > 0
    assert {re.fullmatch(r"Bar: (\S+) OHLC", ln).group(1) for ln in bars} <= symbols  # type: ignore[union-attr]
    assert {ln.split()[1] for ln in ticks} == symbols


def test_configuration_example_builds_the_documented_config() -> None:
    namespace: dict[str, Any] = {}
    exec(BLOCKS["Configuration"], namespace)
    config = namespace["config"]
    assert isinstance(config, StreamManagerConfig)
    assert config == StreamManagerConfig()


async def test_accessing_data_example_runs_on_a_live_manager(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=5, speed=SPEED) as sim:
        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)
        manager = create_default_trading_stream(crypto_symbols=["BTC/USDT"])
        bars: list[Any] = []
        manager.on_bar_complete(bars.append)
        await manager.start()
        while not bars:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        namespace: dict[str, Any] = {"manager": manager}
        exec(BLOCKS["Accessing Data"], namespace)
        await manager.stop()
    df = namespace["df"]
    assert len(df) >= 1 and list(df.columns[:4]) == ["open", "high", "low", "close"]
    assert namespace["current"] is not None and namespace["current"].symbol == "BTC/USDT"
    assert namespace["health"]["status"] in ("healthy", "degraded")
    assert namespace["metrics"]["counters"]["ticks"] > 0


def _fitted_model_on_simulator_bars(sim: ExchangeSimulator) -> LogisticRegression:
    """A LogisticRegression fitted on the simulator's own 1m klines of the history before its
    start: the same model whenever the test gets here (at 300x, later means more bars)."""
    rows = sim.klines("BTC/USDT", "1m", limit=1000,
                      end_ns=sim.clock.origin_ns - 60 * 10**9)  # whole minutes only
    closes = np.array([k.close_e8 / 1e8 for k in rows])
    feats, labels = [], []
    for i in range(40, len(rows) - 1):
        window = np.zeros(i + 1, dtype=[("open", "f8"), ("high", "f8"), ("low", "f8"),
                                       ("close", "f8"), ("volume", "f8"),
                                       ("quote_volume", "f8"), ("buy_volume", "f8"),
                                       ("sell_volume", "f8"), ("trade_count", "i8")])
        for j, k in enumerate(rows[: i + 1]):
            vol, buy = k.volume_e8 / 1e8, k.taker_buy_volume_e8 / 1e8
            window[j] = (k.open_e8 / 1e8, k.high_e8 / 1e8, k.low_e8 / 1e8, k.close_e8 / 1e8,
                         vol, k.quote_e16 / 1e16, buy, vol - buy, k.count)
        f = default_features(window)
        feats.append([f[k] for k in sorted(f)])
        labels.append(int(closes[i + 1] > closes[i]))
    model = LogisticRegression().fit(np.nan_to_num(np.array(feats)), np.array(labels))
    return model


async def test_engine_example_runs_unchanged_with_sklearn_model_and_paper_executor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 300x: the engine needs 30 bars of history before its first prediction. Started on a
    # minute boundary, the market falls into the same bars every run: the model fitted on
    # them and its predictions do not depend on the second the test runs at.
    minute = 60 * 10**9
    async with ExchangeSimulator(["BTC/USDT"], seed=7, speed=300.0,
                                 history_seconds=3 * 3600,
                                 start_time_ns=-(-time.time_ns() // minute) * minute) as sim:
        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)
        namespace: dict[str, Any] = {
            "my_ml_predictor": _fitted_model_on_simulator_bars(sim),
            "my_order_executor": PaperExecutor(fee_bps=10.0),
        }
        exec(BLOCKS["Integration with Trading Engine"], namespace)
        # The example keeps its manager local; catch it as the engine subscribes.
        events: dict[str, list[Any]] = {"prediction": [], "signal": []}
        from bot.data.stream_manager import StreamManager

        original_start = StreamManager.start
        managers: list[StreamManager] = []

        async def spy_start(self: StreamManager, *args: Any, **kwargs: Any) -> None:
            managers.append(self)
            self.on(EventType.PREDICTION, events["prediction"].append)
            self.on(EventType.SIGNAL, events["signal"].append)
            await original_start(self, *args, **kwargs)

        StreamManager.start = spy_start  # type: ignore[method-assign]
        try:
            await namespace["run_trading"]()
        finally:
            StreamManager.start = original_start  # type: ignore[method-assign]
        executor = namespace["my_order_executor"]
        for _ in range(300):  # a fill comes at the first trade after a signal
            if executor.trades:
                break
            await asyncio.sleep(0.1)
        await managers[0].stop()
    assert events["prediction"], "the engine made predictions on completed bars"
    prediction = events["prediction"][0].data
    assert 0.0 <= prediction.probability_up <= 1.0 and prediction.symbol == "BTC/USDT"
    assert events["signal"], "confident predictions became signals"
    assert executor.trades, "the paper executor filled the signals at the next trade"
