"""A broken or slow handler costs only itself: the stream and the other handlers go on.

The ticks the well-behaved handler sees are checked against the simulator's trade log
(every trade, in id order), and the counters against the handlers' own call counts.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.data.events import StreamEvent
from bot.data.models import Tick
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.streaming import assert_trades_match, fast_config, point_at, wait_for


async def test_a_handler_raising_on_every_tick_is_counted_and_the_others_see_every_tick(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def broken(_: StreamEvent) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug in a strategy")

    async with ExchangeSimulator(["BTC/USDT"], seed=31, speed=30.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        seen: list[Tick] = []
        manager.on_tick(broken)
        manager.on_tick(lambda e: seen.append(e.data))
        with caplog.at_level(logging.ERROR, logger="bot.data.events"):
            await manager.start()
            try:
                await wait_for(lambda: len(seen) >= 200)
                counters, calls_then, seen_then = (manager.get_metrics()["counters"], calls,
                                                   len(seen))
            finally:
                await manager.stop()
        assert_trades_match(seen, sim.trades("binance", "BTC/USDT"))
    assert counters["handler_errors"] == calls_then
    assert calls_then == seen_then == counters["ticks"], "both handlers got every tick"
    errors = [r for r in caplog.records if "bug in a strategy" in r.getMessage()]
    assert 1 <= len(errors) < calls_then / 10, "logged, but rate-limited"


async def test_a_slow_coroutine_handler_drops_only_its_own_backlog_overflow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    backlog = 5
    slow_got: list[int] = []

    async def slow(event: StreamEvent) -> None:
        slow_got.append(event.data.trade_id)
        await asyncio.sleep(0.05)

    async with ExchangeSimulator(["BTC/USDT"], seed=32, speed=30.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(async_handler_backlog=backlog))
        manager.add_crypto_symbols(["BTC/USDT"])
        seen: list[Tick] = []
        manager.on_tick(slow)
        manager.on_tick(lambda e: seen.append(e.data))

        def dropped() -> int:
            return int(manager.get_metrics()["counters"]["dropped_backlog"])

        await manager.start()
        try:
            await wait_for(lambda: dropped() >= 50)
            sim.go_quiet("BTC/USDT")  # the stream stops, so the slow handler can catch up
            await wait_for(lambda: len(slow_got) + dropped() == len(seen))
            await asyncio.sleep(0.3)
            counters = manager.get_metrics()["counters"]
        finally:
            await manager.stop()
        assert_trades_match(seen, sim.trades("binance", "BTC/USDT"))
    assert len(seen) == counters["ticks"], "the plain handler saw every tick"
    assert counters["dropped_backlog"] == len(seen) - len(slow_got) >= 50
    assert counters["handler_errors"] == 0
    seen_ids = [t.trade_id for t in seen]
    positions = [seen_ids.index(i) for i in slow_got]
    assert positions == sorted(positions), "the slow handler got its events in stream order"
