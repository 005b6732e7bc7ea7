"""A StreamManager whose store cannot be written keeps streaming and says so on HEALTH."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.streaming import wait_for


async def test_an_unwritable_store_degrades_health_and_the_stream_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    async with ExchangeSimulator(["BTC/USDT"], seed=3, speed=10.0) as sim:
        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)
        manager = StreamManager(StreamManagerConfig(
            store_path=str(blocker / "store"), store_flush_interval=0.1), clock=sim.now_ns)
        manager.add_crypto_symbols(["BTC/USDT"])
        await manager.start()
        await wait_for(lambda: not manager.get_health()["store"]["ok"])
        ticks_then = manager.get_metrics()["counters"]["ticks"]
        await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > ticks_then + 5)
        health = manager.get_health()
        await manager.stop()

    assert health["status"] == "degraded"
    assert any(r.startswith("store:") and "not-a-directory" in r for r in health["reasons"])
    assert health["store"]["last_error_path"].startswith(str(blocker))
