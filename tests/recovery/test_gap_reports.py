"""Gaps reported together share one HEALTH event, so a ban failing every fill stays cheap."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.data import StreamManager, StreamManagerConfig
from bot.data.recovery import GapReport


async def test_many_gaps_at_once_make_one_degraded_health_event_naming_them() -> None:
    manager = StreamManager(StreamManagerConfig())
    manager.add_crypto_symbols([f"S{i}/USDT" for i in range(100)])
    events: list[dict[str, Any]] = []
    manager.on_health(lambda e: events.append(e.data))
    for i in range(100):
        manager._on_gap(GapReport("binance", f"S{i}/USDT", 1, 2, "banned"))
    await asyncio.sleep(0.05)

    assert len(events) == 1
    report = events[0]
    assert report["status"] == "degraded"
    assert sum("banned" in r for r in report["reasons"]) == 10
    assert "and 90 more gaps" in report["reasons"][-1]
    assert len(manager.get_health()["gaps"]) == 50, "the last 50 are listed"


async def test_a_later_gap_is_announced_within_a_second() -> None:
    manager = StreamManager(StreamManagerConfig())
    manager.add_crypto_symbols(["BTC/USDT"])
    events: list[dict[str, Any]] = []
    manager.on_health(lambda e: events.append(e.data))
    manager._on_gap(GapReport("binance", "BTC/USDT", 1, 2, "first"))
    await asyncio.sleep(0.05)
    manager._on_gap(GapReport("binance", "BTC/USDT", 3, 4, "second"))
    await asyncio.sleep(0.05)
    assert len(events) == 1, "the second waits for the second's turn"
    await asyncio.sleep(1.1)
    assert len(events) == 2 and any("second" in r for r in events[1]["reasons"])
