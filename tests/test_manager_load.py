"""Many symbols settle: no stale-resubscription storm, no 1008 close, honest health.

The simulator closes a connection with 1008 when it receives more than 5
messages in a second, as Binance does; it counts what it received. Health is
checked every half second, so a start-up that took held or not-yet-trading
symbols for stale would resubscribe them at once and flood the connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from bot.data.events import StreamEvent
from bot.data.loop_monitor import PROBE_INTERVAL_S
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.streaming import fast_config, point_at, wait_for
from tests.support.fakex import FakeBinance

SYMBOLS = [f"S{i}/USDT" for i in range(60)]


async def test_sixty_symbols_start_without_a_1008_close_or_a_resubscription_storm(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(SYMBOLS, seed=71, speed=2.0, history_seconds=600) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(health_check_interval=0.5,
                                            stale_threshold_seconds=5.0))
        manager.add_crypto_symbols(SYMBOLS)
        reports: list[dict[str, Any]] = []
        manager.on_health(lambda e: reports.append(e.data))
        await manager.start()
        try:
            await wait_for(lambda: len(reports) >= 16, timeout=30)
            metrics = manager.get_metrics()
        finally:
            await manager.stop()
    assert sim.counters.rate_limit_closes == 0
    assert sim.counters.connections_accepted == 1
    assert metrics["counters"]["reconnects"] == 0
    assert sim.counters.messages_received <= 4, "no control message beyond keepalive"
    assert all(r["stale_symbols"] == [] for r in reports)
    assert metrics["counters"]["resubscriptions"] == 0


async def test_a_silent_symbol_stays_stale_and_is_resubscribed_once_per_cooldown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=72, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(health_check_interval=0.2,
                                            stale_threshold_seconds=1.0))
        manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
        reports: list[dict[str, Any]] = []
        manager.on_health(lambda e: reports.append(e.data))
        await manager.start()
        try:
            await wait_for(lambda: manager.get_health()["status"] == "healthy"
                           and manager.get_ticks("ETH/USDT", 1) != [])
            sim.go_quiet("ETH/USDT")
            quiet_at = len(reports)
            received = sim.counters.messages_received
            await wait_for(lambda: "ETH/USDT" in manager.get_health()["stale_symbols"])
            first_stale = len(reports)
            await wait_for(lambda: len(reports) >= first_stale + 20, timeout=30)  # 4 s more
            requests = sim.counters.messages_received - received
            counters = manager.get_metrics()["counters"]
        finally:
            await manager.stop()
    after = reports[first_stale:]
    assert all(r["stale_symbols"] == ["ETH/USDT"] for r in after), \
        "resubscribing it never hides that it stays silent"
    assert all("BTC/USDT" not in r["stale_symbols"] for r in reports[quiet_at:])
    # Cooldowns of 1, 2 and 4 s over about 4 s: at most 3 resubscriptions (an UNSUBSCRIBE
    # and a SUBSCRIBE each, plus a keepalive ping or two), not one per health check.
    assert 2 <= requests <= 3 * 2 + 2
    assert sim.counters.rate_limit_closes == 0
    assert 1 <= counters["resubscriptions"] <= 3


async def test_a_stalled_loop_degrades_health_and_names_the_slow_handler(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=73, speed=5.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        stalled: list[bool] = []

        def blocking_handler(event: StreamEvent) -> None:
            if not stalled:
                stalled.append(True)
                time.sleep(1.5)  # a synchronous call that blocks the loop

        manager.on_tick(blocking_handler)  # its first call is one the bus times
        await manager.start()
        try:
            await wait_for(lambda: bool(stalled))
            await asyncio.sleep(PROBE_INTERVAL_S * 3)  # the probe wakes and records the lag
            after = manager.get_health()
            lag = manager.get_metrics()["latency"]["event_loop_lag"]
            handler = manager.get_metrics()["handlers"]["tick:" + blocking_handler.__qualname__]
        finally:
            await manager.stop()
    assert after["status"] == "degraded"
    assert any(r.startswith("event loop stalled") and "blocking_handler" in r
               for r in after["reasons"]), after["reasons"]
    assert after["event_loop"]["max_lag_s"] >= 1.0 and after["event_loop"]["stalled"] is True
    assert lag["max_ms"] >= 1000
    assert handler["max_ms"] >= 1500


async def test_symbols_are_subscribed_in_few_requests_at_start_and_at_runtime(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """300 symbols at start ride in the URL; 300 more at runtime take 2 SUBSCRIBE requests
    (200 streams each), not one per symbol. Counted by an independent fake exchange."""
    fake = FakeBinance()
    await fake.start()
    try:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        # fakex serves no exchangeInfo: streamed without the symbol check.
        manager = StreamManager(fast_config(warm_up=False, backfill=False, check_symbols=False))
        manager.add_crypto_symbols([f"A{i}/USDT" for i in range(300)])
        await manager.start()
        try:
            at_start = list(fake.ws_requests)
            manager.add_crypto_symbols([f"B{i}/USDT" for i in range(300)])
            await wait_for(lambda: sum(len(json.loads(r)["params"])
                                       for r in fake.ws_requests) >= 300)
            requests = [json.loads(r) for r in fake.ws_requests]
        finally:
            await manager.stop()
    finally:
        await fake.stop()
    assert at_start == []
    assert [(r["method"], len(r["params"])) for r in requests] == [("SUBSCRIBE", 200),
                                                                  ("SUBSCRIBE", 100)]


async def test_stale_symbols_of_a_connection_are_resubscribed_together_in_one_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three symbols that never trade: each resubscription is one UNSUBSCRIBE and one
    SUBSCRIBE naming all three, and rounds follow the doubling cooldown, not every check."""
    fake = FakeBinance()  # streams nothing: every symbol stays silent
    await fake.start()
    try:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        manager = StreamManager(fast_config(warm_up=False, backfill=False, check_symbols=False,
                                            health_check_interval=0.1,
                                            stale_threshold_seconds=1.0))
        manager.add_crypto_symbols(["A/USDT", "B/USDT", "C/USDT"])
        await manager.start()
        try:
            await wait_for(lambda: len(fake.ws_requests) >= 2)
            await asyncio.sleep(3.5)
            # Liveness probes (LIST_SUBSCRIPTIONS at a bar boundary) are no resubscription.
            requests = [r for r in map(json.loads, fake.ws_requests)
                        if r["method"] != "LIST_SUBSCRIPTIONS"]
            stale = manager.get_health()["stale_symbols"]
        finally:
            await manager.stop()
    finally:
        await fake.stop()
    streams = ["ausdt@trade", "busdt@trade", "cusdt@trade"]
    assert all(sorted(r["params"]) == streams for r in requests)
    assert [r["method"] for r in requests[:2]] == ["UNSUBSCRIBE", "SUBSCRIBE"]
    # Cooldowns of 1, 2 and 4 s within about 4.5 s of silence: at most 3 rounds.
    assert 2 <= len(requests) <= 6
    assert stale == ["A/USDT", "B/USDT", "C/USDT"], "still reported while silent"
