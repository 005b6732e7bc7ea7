"""Ten simulated minutes in a few real seconds: every buffer stays within its configured size.

The simulator and the manager share one hand-driven clock, stepped one market
second at a time, so the run is compressed but every bar is built and completed
as it would be live. The stored bars are checked against the simulator's own klines.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest

from bot.data.models import Bar
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from bot.data.timeframes import NS_PER_SECOND
from tests.streaming import fast_config, point_at, wait_for

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
TIMEFRAMES = ["1s", "1m", "5m"]
TICK_BUFFER = 50
BAR_HISTORY = 4
MINUTES = 10
START_NS = int(datetime(2025, 1, 1, 0, 0, 30, tzinfo=UTC).timestamp()) * NS_PER_SECOND


class SteppedClock:
    """A clock (ns since the epoch) that moves only when the test says so."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def _assert_equals_kline(bar: Bar, sim: ExchangeSimulator) -> None:
    kline = sim.klines(bar.symbol, bar.timeframe, limit=1, start_ns=bar.open_time)[0]
    assert kline.open_time_ns == bar.open_time
    assert (bar.open, bar.high, bar.low, bar.close) == (
        kline.open_e8 / 1e8, kline.high_e8 / 1e8, kline.low_e8 / 1e8, kline.close_e8 / 1e8)
    assert bar.trade_count == kline.count
    assert bar.volume == pytest.approx(kline.volume_e8 / 1e8, rel=1e-9)


async def test_ten_compressed_minutes_keep_ticks_and_bars_within_the_configured_sizes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SteppedClock(START_NS)
    async with ExchangeSimulator(SYMBOLS, seed=61, clock=clock) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(
            supported_timeframes=TIMEFRAMES, tick_buffer_size=TICK_BUFFER,
            bar_history_size=BAR_HISTORY, health_check_interval=3600.0), clock=clock)
        manager.add_crypto_symbols(SYMBOLS)
        completed: Counter[tuple[str, str]] = Counter()
        manager.on_bar_complete(lambda b: completed.update([(b.symbol, b.timeframe)]))
        most_ticks = 0
        most_bars: Counter[str] = Counter()
        latency_log = manager.pipeline.dispatch_latency_ns
        await manager.start()
        try:
            for _ in range(MINUTES * 60):
                clock.now_ns += NS_PER_SECOND
                sim.advance()
                await asyncio.sleep(0.004)
                for symbol in SYMBOLS:
                    most_ticks = max(most_ticks, len(manager.get_ticks(symbol, limit=10**9)))
                    for tf in TIMEFRAMES:
                        stored = len(manager.get_bars(symbol, tf, limit=10**9))
                        most_bars[tf] = max(most_bars[tf], stored)
                assert set(manager.pipeline.ticks) <= set(SYMBOLS)
                assert len(manager.pipeline.bars) <= len(SYMBOLS) * len(TIMEFRAMES)
                assert latency_log.maxlen is not None and len(latency_log) <= latency_log.maxlen
            truth = {s: len(sim.trades("binance", s)) for s in SYMBOLS}
            await wait_for(lambda: manager.get_metrics()["counters"]["ticks"]
                            == sum(truth.values()))
            kept = {(s, tf): manager.get_bars(s, tf, limit=10**9)
                    for s in SYMBOLS for tf in TIMEFRAMES}
            for bars in kept.values():
                for bar in bars:
                    _assert_equals_kline(bar, sim)
        finally:
            await manager.stop()

    assert most_ticks == TICK_BUFFER, "the tick buffers filled up and stayed at their size"
    # 00:00:30 to 00:10:30 completes the 5m bars of 00:00 (partial) and 00:05: fewer than kept.
    assert most_bars == {"1s": BAR_HISTORY, "1m": BAR_HISTORY, "5m": 2}
    assert all(truth[s] > 10 * TICK_BUFFER for s in SYMBOLS), "far more ticks than kept"
    for symbol in SYMBOLS:
        assert completed[(symbol, "1s")] >= MINUTES * 60 - 5
        assert completed[(symbol, "1m")] >= MINUTES - 1
        assert completed[(symbol, "5m")] == 2
        assert len(kept[(symbol, "1m")]) == BAR_HISTORY
