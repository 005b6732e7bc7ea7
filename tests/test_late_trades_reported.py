"""A trade that comes after its bar completed is not folded in: the bar it misses is reported."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.data import StreamManager
from bot.data.aggregation import MAX_LATE_BARS, BarAggregator
from bot.data.config import StreamManagerConfig
from bot.data.models import Side, Tick
from bot.data.timeframes import NS_PER_SECOND
from tests.streaming import wait_for
from tests.support.fakex import FakeBinance, trade_frame

MINUTE = 60 * NS_PER_SECOND
T0 = 1_764_547_200 * NS_PER_SECOND  # 2025-12-01 00:00 UTC


def tick(trade_id: int, ts: int, symbol: str = "BTC/USDT") -> Tick:
    return Tick("binance", symbol, 100.0, 1.0, Side.BUY, trade_id, ts, ts + 7)


def test_a_trade_after_its_bar_completed_names_the_bar_it_misses() -> None:
    agg = BarAggregator(["5m", "1m"], grace_ns=0)
    agg.add(tick(1, T0 + 10 * NS_PER_SECOND))
    assert [b.timeframe for b in agg.add(tick(2, T0 + MINUTE + 1)) or ()] == ["1m"]
    assert agg.add(tick(3, T0 + 50 * NS_PER_SECOND)) is None
    assert agg.add(tick(4, T0 + 55 * NS_PER_SECOND)) is None
    counters = agg.counters
    assert counters.late == 2 and counters.late_by_symbol == {"BTC/USDT": 2}
    [late] = counters.late_bars.values()
    assert late.to_dict() == {"symbol": "BTC/USDT", "timeframe": "1m", "open_time": T0,
                              "trades": 2, "last_receive_ns": T0 + 55 * NS_PER_SECOND + 7}


def test_the_bars_that_missed_trades_are_bounded_and_forgotten_with_their_symbol() -> None:
    agg = BarAggregator(["1m"], grace_ns=0)
    agg.add(tick(1, T0))
    agg.add(tick(2, T0 + (MAX_LATE_BARS + 5) * MINUTE))
    for i in range(MAX_LATE_BARS + 5):
        assert agg.add(tick(10 + i, T0 + i * MINUTE + 1)) is None
    opens = [bar.open_time for bar in agg.counters.late_bars.values()]
    assert opens == [T0 + i * MINUTE for i in range(5, MAX_LATE_BARS + 5)], "the most recent"
    agg.forget("BTC/USDT")
    assert not agg.counters.late_bars and not agg.counters.late_by_symbol


async def test_health_and_metrics_name_a_late_trade_and_the_bar_it_missed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBinance()
    await fake.start()
    now_ms = int(time.time() * 1000)
    old_ms = now_ms - 180_000

    async def script(ws: Any, _request: Any) -> None:
        for trade_id, at in ((1, old_ms), (2, now_ms), (3, old_ms + 1000)):  # the third: late
            await ws.send_str(trade_frame("BTCUSDT", trade_id, "100", "1", at))
        while True:
            await asyncio.sleep(1)

    fake.script = script
    try:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        manager = StreamManager(StreamManagerConfig(
            supported_timeframes=["1m", "5m"], warm_up=False, check_symbols=False))
        manager.add_crypto_symbols(["BTC/USDT"])
        await manager.start()
        try:
            await wait_for(lambda: manager.get_metrics()["counters"]["late_ticks"] == 1, 10)
            health = manager.get_health()
            metrics = manager.get_metrics()
        finally:
            await manager.stop()
    finally:
        await fake.stop()
    late_ns = (old_ms + 1000) * 1_000_000  # the late trade's minute (old_ms's or the next)
    minute = late_ns - late_ns % MINUTE
    assert [(b["symbol"], b["timeframe"], b["open_time"], b["trades"])
            for b in health["late_bars"]] == [("BTC/USDT", "1m", minute, 1)]
    assert health["status"] == "degraded"
    assert any("after their bar completed" in r and f"BTC/USDT 1m at {minute}" in r
               for r in health["reasons"]), health["reasons"]
    assert metrics["late_by_symbol"] == {"BTC/USDT": 1}
