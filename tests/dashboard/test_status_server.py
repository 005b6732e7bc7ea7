"""``StatusServer`` against a manager streaming from the simulator: /health, /metrics, JSON."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.data.status_server import StatusServer
from tests.dashboard.support import SYMBOLS, streaming, wait_for


def counters(text: str) -> dict[str, float]:
    return {s.name: s.value for family in text_string_to_metric_families(text)
            if family.type == "counter" for s in family.samples if not s.labels}


async def test_metrics_parse_and_counters_rise_while_the_simulator_streams() -> None:
    async with streaming() as (sim, manager), StatusServer(manager) as server, \
            aiohttp.ClientSession() as http:
        await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > 0, 20, "first ticks")
        async with http.get(f"{server.url}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            first = counters(await response.text())
        seen = first["bot_stream_ticks_total"]
        await wait_for(lambda: manager.get_metrics()["counters"]["bars"] > 2 * len(SYMBOLS)
                       and manager.get_metrics()["counters"]["ticks"] > seen, 20, "more data")
        async with http.get(f"{server.url}/metrics") as response:
            second = counters(await response.text())
        traded = sum(len(sim.trades("binance", s)) for s in SYMBOLS)
    assert second["bot_stream_ticks_total"] > first["bot_stream_ticks_total"]
    assert second["bot_stream_frames_total"] > first["bot_stream_frames_total"]
    assert second["bot_stream_bars_total"] > first["bot_stream_bars_total"]
    assert second["bot_stream_ticks_total"] <= traded, "no more ticks than the exchange traded"


async def test_health_and_metrics_json_are_the_managers() -> None:
    async with streaming() as (_sim, manager), StatusServer(manager) as server, \
            aiohttp.ClientSession() as http:
        await wait_for(lambda: manager.get_health()["status"] == "healthy"
                       and manager.get_metrics()["counters"]["ticks"] > 0, 20, "healthy, trading")
        async with http.get(f"{server.url}/health") as response:
            assert response.status == 200
            health = await response.json()
        async with http.get(f"{server.url}/metrics.json") as response:
            metrics = await response.json()
    assert health["status"] == "healthy"
    assert [c["name"] for c in health["connections"]] == ["binance-0"]
    assert sorted(s["symbol"] for s in health["symbols"]) == SYMBOLS
    assert metrics["connections"]["binance-0"]["state"] == "connected"
    assert metrics["counters"]["ticks"] > 0


async def test_unhealthy_stream_answers_503() -> None:
    class Down:
        def get_health(self) -> dict[str, object]:
            return {"status": "unhealthy", "reasons": ["connection binance-0 failed: x"]}

        def get_metrics(self) -> dict[str, object]:
            return {}

    async with StatusServer(Down()) as server, aiohttp.ClientSession() as http, \
            http.get(f"{server.url}/health") as response:
        assert response.status == 503
        assert (await response.json())["reasons"] == ["connection binance-0 failed: x"]
