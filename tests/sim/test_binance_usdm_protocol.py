"""The simulator's USDⓈ-M REST rows and routed paths, as the venue's documentation writes them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from bot.data.sim import ExchangeSimulator

PERPETUAL = "BTC/USDT:USDT"


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    async with ExchangeSimulator([], futures_symbols=[PERPETUAL], seed=5, speed=10,
                                 history_seconds=60) as simulator:
        yield simulator


async def _get(sim: ExchangeSimulator, endpoint: str, headers: dict[str, str] | None = None
               ) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{sim.binance_rest_url}/fapi/v1/{endpoint}",
            params={"symbol": "BTCUSDT", "limit": "5"}, headers=headers or {}) as response:
        return response.status, await response.json()


async def test_usdm_rest_trade_rows_have_the_futures_fields_only(sim: ExchangeSimulator) -> None:
    _status, aggs = await _get(sim, "aggTrades")
    _status, trades = await _get(sim, "trades")
    assert aggs and set(aggs[0]) == {"a", "p", "q", "f", "l", "T", "m"}
    assert trades and set(trades[0]) == {"id", "price", "qty", "quoteQty", "time",
                                         "isBuyerMaker"}


async def test_usdm_historical_trades_answer_a_request_with_an_api_key(
        sim: ExchangeSimulator) -> None:
    refused = await _get(sim, "historicalTrades")
    answered = await _get(sim, "historicalTrades", {"X-MBX-APIKEY": "any-key"})
    assert refused == (401, {"code": -2014, "msg": "API-key format invalid."})
    assert answered[0] == 200 and len(answered[1]) == 5


async def test_usdm_book_tickers_are_delivered_on_the_public_path(sim: ExchangeSimulator) -> None:
    frames: list[dict[str, Any]] = []
    url = f"{sim.env()['BINANCE_FUTURES_WS_URL']}/public/stream?streams=btcusdt@bookTicker"
    async with websockets.connect(url) as ws:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.5):
                while not frames:
                    frames.append(json.loads(await ws.recv()))
    assert frames and frames[0]["stream"] == "btcusdt@bookTicker"


async def test_usdm_trade_lists_leave_out_records_that_are_not_market_trades(
        sim: ExchangeSimulator) -> None:
    sim.refuse_trades(PERPETUAL, 2)
    for _ in range(100):
        refused = [t.trade_id for t in sim.trades("binanceusdm", PERPETUAL) if not t.is_market]
        if len(refused) == 2:
            break
        await asyncio.sleep(0.05)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.binance_rest_url}/fapi/v1/trades",
                            params={"symbol": "BTCUSDT", "limit": "1000"}) as response:
            recent = await response.json()
        async with http.get(f"{sim.binance_rest_url}/fapi/v1/historicalTrades",
                            params={"symbol": "BTCUSDT", "fromId": str(refused[0] - 1),
                                    "limit": "5"},
                            headers={"X-MBX-APIKEY": "any-key"}) as response:
            older = await response.json()
    assert len(refused) == 2
    assert not {row["id"] for row in recent} & set(refused)
    assert refused[0] - 1 in {row["id"] for row in recent}, "the list spans the records"
    assert len(older) == 5 and not {row["id"] for row in older} & set(refused)


RECORDED_INFO = Path(__file__).parents[1] / "data" / "binance" / \
    "usdm_ws_capture_2021-04-17" / "fapi_v1_exchangeInfo_head.json"


async def test_usdm_exchange_info_has_the_recorded_fields_and_rate_limits() -> None:
    """The simulator's /fapi/v1/exchangeInfo answers with the real one's top-level fields, in
    its order, and its rateLimits (request weight 2400, orders by minute and 10 s), not spot's."""
    recorded = json.loads(RECORDED_INFO.read_text())
    async with ExchangeSimulator([], futures_symbols=["BTC/USDT:USDT"], seed=3) as sim:
        base = sim.env()["BINANCE_FUTURES_REST_URL"]
        async with aiohttp.ClientSession() as http, \
                http.get(f"{base}/fapi/v1/exchangeInfo") as response:
            info = await response.json()
    assert list(info) == list(recorded)
    assert info["rateLimits"] == recorded["rateLimits"]
    assert info["futuresType"] == recorded["futuresType"]
    assert [set(asset) for asset in info["assets"]] == [set(a) for a in recorded["assets"]]
