"""StreamManager over real sockets against the simulator: faults, limits, rollover."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.data.errors import ExchangeError
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from bot.data.transport import ConnectionState
from tests.streaming import fast_config, point_at, wait_for


async def test_twenty_forced_drops_deliver_no_tick_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=11, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
        seen: Counter[tuple[str, int]] = Counter()
        manager.on_tick(lambda e: seen.update([(e.data.symbol, e.data.trade_id)]))
        await manager.start()
        sim.drop_randomly(0.01)
        await wait_for(lambda: manager.get_metrics()["counters"]["reconnects"] >= 20, 60)
        await manager.stop()
    assert seen and max(seen.values()) == 1, "no trade delivered twice as a TICK"


async def test_bad_credentials_fail_at_start_with_the_exchange_code_and_no_retry_storm(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], ["AAPL"], seed=2) as sim:
        point_at(sim, monkeypatch)
        sim.refuse_auth()
        manager = StreamManager(fast_config())
        manager.add_stock_symbols(["AAPL"])
        with pytest.raises(ExchangeError) as err:
            await manager.start()
        assert err.value.code == 402 and err.value.fatal
        await asyncio.sleep(0.3)
        assert sim.counters.connections_accepted == 1, "a fatal answer is not retried"


async def test_a_connection_refused_with_406_reconnects_and_streams_once_the_key_is_free(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Alpaca's 406 (connection limit exceeded) is retried with backoff, not fatal: the
    second manager on one key streams as soon as the first lets the session go."""
    async with ExchangeSimulator([], ["AAPL"], seed=2, speed=20.0) as sim:
        point_at(sim, monkeypatch)
        first = StreamManager(fast_config())
        first.add_stock_symbols(["AAPL"])
        await first.start()
        second = StreamManager(fast_config(reconnect_attempts=1000))
        second.add_stock_symbols(["AAPL"])
        ticks: list[object] = []
        second.on_tick(ticks.append)
        starting = asyncio.create_task(second.start(wait_connected=30))
        await wait_for(lambda: sim.counters.connections_accepted >= 4)  # refused, retried
        assert not starting.done()
        await first.stop()
        await starting
        await wait_for(lambda: ticks, 10)
        await second.stop()


async def test_malformed_frames_are_skipped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=4, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        await manager.start()
        sim.send_malformed(0.2)
        await wait_for(lambda: manager.get_metrics()["counters"]["parse_errors"] >= 5)
        ticks_before = manager.get_metrics()["counters"]["ticks"]
        await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > ticks_before + 20)
        await manager.stop()


async def test_silent_connection_is_recycled(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=4, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(silence_timeout_seconds=0.5))
        manager.add_crypto_symbols(["BTC/USDT"])
        await manager.start()
        sim.go_silent()
        await wait_for(lambda: manager.get_metrics()["counters"]["silent_recycles"] >= 1)
        sim.go_silent(False)
        await wait_for(lambda: all(c["state"] == ConnectionState.CONNECTED.value
                                    for c in manager.get_metrics()["connections"].values()))
        await manager.stop()


async def test_symbols_are_sharded_by_the_stream_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    symbols = ["BTC/USDT", "ETH/USDT", "XRP/USDT", "SOL/USDT", "ADA/USDT"]
    async with ExchangeSimulator(symbols, seed=6, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(binance_max_streams_per_connection=2))
        manager.add_crypto_symbols(symbols)
        got: set[str] = set()
        manager.on_tick(lambda e: got.add(e.data.symbol))
        await manager.start()
        await wait_for(lambda: got == set(symbols))
        connections = manager.get_metrics()["connections"]
        await manager.stop()
    assert len(connections) == 3


async def test_forced_rollover_loses_and_doubles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=8, speed=20.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        ids: list[int] = []
        manager.on_tick(lambda e: ids.append(e.data.trade_id))
        await manager.start()
        await wait_for(lambda: len(ids) > 50)
        for conn in manager._connections:
            conn.request_rollover()
        await wait_for(lambda: manager.get_metrics()["counters"]["rollovers"] >= 1)
        n = len(ids)
        await wait_for(lambda: len(ids) > n + 50)
        assert manager.get_metrics()["counters"]["reconnects"] == 0
        await manager.stop()
    assert ids == list(range(ids[0], ids[0] + len(ids))), "consecutive ids: no gap, no repeat"
