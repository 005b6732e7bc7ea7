"""Lifecycle misuse is harmless: add/remove churn, restart, double start and stop.

Checked against the simulator's side (which streams a session carries, its
trade log) rather than the manager's own state alone.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from bot.data.models import Tick
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.streaming import assert_trades_match, fast_config, point_at, wait_for


def _record(manager: StreamManager) -> dict[str, list[Tick]]:
    ticks: dict[str, list[Tick]] = defaultdict(list)
    manager.on_tick(lambda e: ticks[e.data.symbol].append(e.data))
    return ticks


async def test_add_remove_churn_leaves_the_last_added_symbol_streaming(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT", "SOL/USDT"], seed=81, speed=5.0,
                                 history_seconds=600) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        ticks = _record(manager)
        await manager.start()
        try:
            for _ in range(20):
                manager.add_crypto_symbols(["ETH/USDT", "SOL/USDT"])
                await asyncio.sleep(0.02)
                manager.remove_symbols(["ETH/USDT"])
                await asyncio.sleep(0.02)
            manager.add_crypto_symbols(["ETH/USDT"])
            churn_end = len(ticks["ETH/USDT"])
            await wait_for(lambda: len(ticks["ETH/USDT"]) >= churn_end + 20)
            await wait_for(lambda: manager.get_health()["backfilling"] == [])
            streams = [sorted(s.streams) for s in sim.binance_streams.sessions]
            health = manager.get_health()
        finally:
            await manager.stop()
        after_churn = ticks["ETH/USDT"][churn_end:]
        assert_trades_match(after_churn, sim.trades("binance", "ETH/USDT"))
    assert manager.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert streams == [["btcusdt@trade", "ethusdt@trade", "solusdt@trade"]]
    assert "ETH/USDT" not in health["stale_symbols"]


async def test_removal_during_churn_unsubscribes_at_the_exchange(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=82, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        ticks = _record(manager)
        await manager.start()
        try:
            for _ in range(10):
                manager.add_crypto_symbols(["ETH/USDT"])
                await asyncio.sleep(0.01)
                manager.remove_symbols(["ETH/USDT"])
            await wait_for(lambda: all("ethusdt@trade" not in s.streams
                                        for s in sim.binance_streams.sessions))
            seen = len(ticks["ETH/USDT"])
            btc = len(ticks["BTC/USDT"])
            await wait_for(lambda: len(ticks["BTC/USDT"]) >= btc + 20)
        finally:
            await manager.stop()
    assert len(ticks["ETH/USDT"]) == seen, "no tick of a removed symbol"
    assert manager.symbols == ["BTC/USDT"]


async def test_start_after_stop_fills_a_later_gap_from_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=83, speed=5.0, history_seconds=600) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        ticks = _record(manager)
        await manager.start()
        await wait_for(lambda: len(ticks["BTC/USDT"]) >= 10)
        await manager.stop()
        await manager.start()
        try:
            await wait_for(lambda: manager.get_health()["backfilling"] == [])
            before = manager.get_metrics()["counters"]
            sim.drop_after(0)  # cut the connection at its next frame...
            await wait_for(lambda: manager.get_metrics()["counters"]["reconnects"] > 0)
            sim.drop_after(None)  # ...and let the reconnect stream
            await wait_for(lambda: manager.get_metrics()["counters"]["gaps_found"]
                           > before["gaps_found"])
            await wait_for(lambda: manager.get_health()["backfilling"] == [])
            count = len(ticks["BTC/USDT"])
            await wait_for(lambda: len(ticks["BTC/USDT"]) >= count + 10)
            after = manager.get_metrics()["counters"]
            gaps = manager.get_health()["gaps"]
        finally:
            await manager.stop()
        assert_trades_match(ticks["BTC/USDT"], sim.trades("binance", "BTC/USDT"))
    assert after["gaps_unfilled"] == before["gaps_unfilled"] == 0
    assert gaps == []


async def test_double_start_double_stop_and_stop_before_start_are_harmless(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=84, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        await manager.stop()
        await asyncio.gather(manager.start(), manager.start())
        await manager.start()
        running = manager.is_running
        await asyncio.gather(manager.stop(), manager.stop())
        await manager.stop()
    assert running and not manager.is_running
    assert sim.counters.connections_accepted == 1
