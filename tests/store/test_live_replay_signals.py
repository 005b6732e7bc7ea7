"""Live (simulator) -> record -> replay gives the same bars and the same engine signals.

A StreamManager with a store streams two symbols from the simulator with a
trading engine attached; the store is then replayed through a fresh pipeline
with an identical engine. The replayed bars equal the live ones field by field
and the engine decides the same signals on them; so does a Backtest of the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.data.backtest import Backtest
from bot.data.config import StreamManagerConfig
from bot.data.engine import StreamingTradingEngine
from bot.data.models import Bar, Signal
from bot.data.sim import ExchangeSimulator
from bot.data.store import TradeStore, replay
from bot.data.stream_manager import StreamManager
from tests.engine.support import FakeManager
from tests.streaming import wait_for

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def _features(bars: np.ndarray) -> dict[str, float]:
    close = bars["close"]
    return {"return_1": float(close[-1] / close[-2] - 1.0),
            "imbalance": float((bars["buy_volume"][-1] - bars["sell_volume"][-1])
                               / max(bars["volume"][-1], 1e-12))}


def _predict(features: dict[str, float]) -> float:
    """A fixed rule, so live and replay can only differ through their bars."""
    return float(1.0 / (1.0 + np.exp(-(features["return_1"] * 2000 + features["imbalance"]))))


def _engine(source: Any, signals: list[Signal]) -> StreamingTradingEngine:
    engine = StreamingTradingEngine(source, predictor=_predict, features=_features,
                                    signal_threshold=0.55, min_history=3,
                                    max_bar_age=10**9)  # replayed bars are old by design
    source.bus.on_signal(signals.append)
    return engine


def _key(signal: Signal) -> tuple[str, int, str, float]:
    return (signal.symbol, signal.bar.open_time, signal.direction.value, signal.confidence)



async def test_replay_and_backtest_of_a_live_recording_give_identical_bars_and_signals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(SYMBOLS, seed=12, speed=60.0) as sim:
        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)
        config = StreamManagerConfig(store_path=str(tmp_path), store_flush_interval=0.2,
                                     supported_timeframes=["1m"], warm_up=False)
        manager = StreamManager(config, clock=sim.now_ns)
        manager.add_crypto_symbols(SYMBOLS)
        live_bars: list[Bar] = []
        live_signals: list[Signal] = []
        manager.on_bar_complete(live_bars.append)
        engine = _engine(manager, live_signals)
        await engine.start()
        await wait_for(lambda: len(live_bars) >= 20 and len(live_signals) >= 3, timeout=60)
        await engine.stop()

    fake = FakeManager(StreamManagerConfig(supported_timeframes=["1m"]))
    replay_bars: list[Bar] = []
    replay_signals: list[Signal] = []
    fake.bus.on_bar_complete(replay_bars.append)
    replayed = _engine(fake, replay_signals)
    await replayed.start()
    await replay(TradeStore(tmp_path), fake.pipeline, progress=False)
    await replayed.stop()

    last_live = {s: max(b.open_time for b in live_bars if b.symbol == s) for s in SYMBOLS}
    same_span = [b for b in replay_bars if b.open_time <= last_live[b.symbol]]
    by_key = {(b.symbol, b.open_time): b for b in same_span}
    assert len(by_key) == len(live_bars)
    for bar in live_bars:
        assert by_key[(bar.symbol, bar.open_time)] == bar
    replay_keys = [_key(s) for s in replay_signals
                   if s.bar.open_time <= last_live[s.symbol]]
    assert sorted(replay_keys) == sorted(_key(s) for s in live_signals)
    assert len(replay_keys) >= 3

    backtest = Backtest(tmp_path, timeframe="1m", predictor=_predict, features=_features,
                        signal_threshold=0.55, min_history=3)
    backtest_signals: list[Signal] = []
    backtest.bus.on_signal(backtest_signals.append)
    result = await backtest.run_async()
    assert sorted(_key(s) for s in backtest_signals
                  if s.bar.open_time <= last_live[s.symbol]) == sorted(replay_keys)
    assert result.signals == len(backtest_signals)
