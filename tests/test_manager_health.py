"""A symbol whose stream goes quiet while the others trade is reported stale, then healthy.

The simulator withholds one symbol's trades (``go_quiet``) while its market keeps
trading and the connection stays open; its trade log tells what the stream withheld.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.health import HealthReport
from bot.data.models import Side, Tick
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from bot.data.tick_source import VenueConnections
from bot.data.timeframes import NS_PER_SECOND
from bot.data.venue_group import VenueGroup
from tests.streaming import fast_config, point_at, wait_for

STALE_AFTER_S = 1.0


def _symbol(report: dict[str, Any], symbol: str) -> dict[str, Any]:
    return next(s for s in report["symbols"] if s["symbol"] == symbol)


async def test_a_quiet_symbol_is_reported_stale_and_healthy_again_once_it_trades(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=51, speed=10.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(stale_threshold_seconds=STALE_AFTER_S,
                                             health_check_interval=0.5))
        manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
        events: list[dict[str, Any]] = []
        manager.on_health(lambda e: events.append(e.data))
        ticks: list[Tick] = []
        manager.on_tick(lambda e: ticks.append(e.data))
        await manager.start()
        try:
            # Healthy and both streamed (not only warmed up from REST): a symbol with no
            # trade yet is not stale so soon.
            await wait_for(lambda: manager.get_health()["status"] == "healthy"
                           and {"BTC/USDT", "ETH/USDT"} <= {t.symbol for t in ticks}
                           and all(_symbol(manager.get_health(), s)["last_tick_age_s"]
                                   is not None for s in ("BTC/USDT", "ETH/USDT")))

            sim.go_quiet("ETH/USDT")
            quiet_from_id = sim.trades("binance", "ETH/USDT")[-1].trade_id
            quiet_events, quiet_ticks = len(events), len(ticks)
            await wait_for(lambda: any(e["status"] == "degraded"
                                        for e in events[quiet_events:]))
            degraded = next(e for e in events[quiet_events:] if e["status"] == "degraded")
            now = manager.get_health()
            btc_during = sum(t.symbol == "BTC/USDT" for t in ticks[quiet_ticks:])
            eth_traded = sim.trades("binance", "ETH/USDT")[-1].trade_id - quiet_from_id

            sim.go_quiet("ETH/USDT", False)
            resumed_events = len(events)
            await wait_for(lambda: any(e["status"] == "healthy"
                                        for e in events[resumed_events:]))
            healthy_again = manager.get_health()
        finally:
            await manager.stop()

    assert degraded["stale_symbols"] == ["ETH/USDT"]
    assert any("ETH/USDT" in reason for reason in degraded["reasons"])
    assert not any("BTC/USDT" in reason for reason in degraded["reasons"])
    assert now["status"] == "degraded" and now["stale_symbols"] == ["ETH/USDT"]
    assert _symbol(now, "ETH/USDT")["stale"] and not _symbol(now, "BTC/USDT")["stale"]
    assert _symbol(now, "ETH/USDT")["last_tick_age_s"] > STALE_AFTER_S
    assert eth_traded > 0, "the market kept trading ETH/USDT: only its stream was quiet"
    assert btc_during > 0, "the other symbol streamed on"
    assert healthy_again["status"] == "healthy" and healthy_again["stale_symbols"] == []
    assert not _symbol(healthy_again, "ETH/USDT")["stale"]


class _Silent(VenueConnections):
    """A tick source that opens no venue connection: trades reach the pipeline otherwise."""

    async def subscribe(self, group: VenueGroup, symbols: list[str]) -> None:
        return None


def _pipeline_fed(config: StreamManagerConfig) -> StreamManager:
    """A manager whose trades reach the pipeline without a venue connection (as over NATS)."""
    return StreamManager(config, source=_Silent())


async def test_a_manager_fed_without_connections_judges_staleness_by_its_pipeline() -> None:
    manager = _pipeline_fed(fast_config(warm_up=False, backfill=False, check_symbols=False,
                                       stale_threshold_seconds=STALE_AFTER_S))
    manager.add_crypto_symbols(["BTC/USDT"])
    await manager.start()
    try:
        trade_id = 1
        for _ in range(30):  # trading for longer than the threshold
            now = time.time_ns()
            manager.pipeline.process(Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY,
                                          trade_id, now, now))
            trade_id += 1
            await asyncio.sleep(0.05)
        trading = manager.get_health()
        await asyncio.sleep(STALE_AFTER_S + 0.2)
        silent = manager.get_health()
    finally:
        await manager.stop()
    assert trading["stale_symbols"] == [] and trading["status"] == "healthy"
    assert silent["stale_symbols"] == ["BTC/USDT"]


async def test_a_health_contributor_adds_its_reason_to_get_health_and_the_health_event() -> None:
    manager = _pipeline_fed(fast_config(warm_up=False, backfill=False, check_symbols=False,
                                        health_check_interval=0.05))
    manager.add_crypto_symbols(["BTC/USDT"])

    def judge_feed(report: HealthReport) -> None:
        report.sections["feed"] = {"connected": False}
        report.fail("feed is unreachable")

    manager.add_health_contributor(judge_feed)
    events: list[dict[str, object]] = []
    manager.on_health(lambda e: events.append(e.data))
    await manager.start()
    try:
        await wait_for(lambda: bool(events), timeout=5)
        health = manager.get_health()
    finally:
        await manager.stop()
    for report in (health, events[0]):
        assert report["status"] == "unhealthy"
        assert "feed is unreachable" in report["reasons"]
        assert report["feed"] == {"connected": False}
async def test_a_symbol_added_late_is_stale_only_a_threshold_after_it_became_expected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent symbol added 100 s after start is not stale 5 s later (the threshold counts
    from when it was first expected to trade, not from start), and is once the threshold
    passed."""
    shift = [0]

    def clock() -> int:
        return time.time_ns() + shift[0]

    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=52) as sim:
        point_at(sim, monkeypatch)
        sim.go_quiet("ETH/USDT")
        manager = StreamManager(fast_config(warm_up=False, backfill=False,
                                            stale_threshold_seconds=30.0,
                                            health_check_interval=3600.0), clock=clock)
        manager.add_crypto_symbols(["BTC/USDT"])
        async with manager:
            shift[0] += 100 * NS_PER_SECOND
            manager.add_crypto_symbols(["ETH/USDT"])
            await wait_for(lambda: "ETH/USDT" in manager._active
                           and manager._feed_up("ETH/USDT"))
            became_expected = manager.get_health()  # first seen subscribed and connected
            shift[0] += 5 * NS_PER_SECOND
            five_s_later = manager.get_health()
            shift[0] += 26 * NS_PER_SECOND
            past_threshold = manager.get_health()
    assert not _symbol(became_expected, "ETH/USDT")["stale"]
    assert not _symbol(five_s_later, "ETH/USDT")["stale"]
    assert _symbol(past_threshold, "ETH/USDT")["stale"]


def test_ticks_last_minute_and_last_tick_age_come_from_the_packed_tick_buffer() -> None:
    now = 1_767_225_600 * NS_PER_SECOND
    manager = StreamManager(fast_config(warm_up=False, backfill=False, check_symbols=False,
                                        tick_buffer_size=1000), source=_Silent(),
                            clock=lambda: now)
    manager.add_crypto_symbols(["BTC/USDT"])
    old, recent = 300, 450  # more than a packed chunk each: rows and waiting ticks both count
    for i in range(old + recent):
        traded = now - (120 if i < old else 50) * NS_PER_SECOND + i * 1000
        assert manager.pipeline.process(Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY,
                                             i + 1, traded, traded + 2 * NS_PER_SECOND))
    btc = _symbol(manager.get_health(), "BTC/USDT")
    assert btc["ticks_last_minute"] == recent
    newest = now - 50 * NS_PER_SECOND + (old + recent - 1) * 1000 + 2 * NS_PER_SECOND
    assert btc["last_tick_age_s"] == round((now - newest) / 1e9, 3)
