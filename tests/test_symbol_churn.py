"""A symbol added back after add/remove churn streams again, whatever the churn's pace.

The churn is paced as an application might do it (tens of milliseconds between
calls, a real-time market, warm-up on), so each add starts a warm-up that the
next remove interrupts; the symbol's trades after the last add must all reach
TICK, checked against the simulator's own trade log.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from bot.data import StreamManager, StreamManagerConfig
from bot.data.models import Tick
from bot.data.sim import ExchangeSimulator
from tests.streaming import assert_trades_match, point_at, wait_for


@pytest.mark.parametrize("pause", [0.02, 0.05])
async def test_a_symbol_added_back_after_paced_churn_streams_every_trade(
        monkeypatch: pytest.MonkeyPatch, pause: float) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT", "SOL/USDT"], seed=83,
                                 history_seconds=600) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(StreamManagerConfig(reconnect_delay=0.3, max_reconnect_delay=1))
        manager.add_crypto_symbols(["BTC/USDT"])
        ticks: dict[str, list[Tick]] = defaultdict(list)
        manager.on_tick(lambda e: ticks[e.data.symbol].append(e.data))
        await manager.start()
        try:
            await asyncio.sleep(2)  # streaming, BTC's warm-up done
            for _ in range(20):
                manager.add_crypto_symbols(["ETH/USDT", "SOL/USDT"])
                await asyncio.sleep(pause)
                manager.remove_symbols(["ETH/USDT"])
                await asyncio.sleep(pause)
            manager.add_crypto_symbols(["ETH/USDT"])
            churn_end = len(ticks["ETH/USDT"])
            await wait_for(lambda: len(ticks["ETH/USDT"]) >= churn_end + 20, timeout=15)
        finally:
            await manager.stop()
        assert_trades_match(ticks["ETH/USDT"][churn_end:], sim.trades("binance", "ETH/USDT"))
