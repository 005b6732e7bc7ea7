"""Alpaca market-data streams and historical REST as documented."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets

from bot.data.sim import ExchangeSimulator
from tests.sim.conftest import ALPACA_HEADERS, recv_json

AUTH = {"action": "auth", "key": "sim-key", "secret": "sim-secret"}


async def authenticated(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url)
    assert await recv_json(ws) == [{"T": "success", "msg": "connected"}]
    await ws.send(json.dumps(AUTH))
    assert await recv_json(ws) == [{"T": "success", "msg": "authenticated"}]
    return ws


async def test_handshake_subscription_and_trades_as_documented(sim: ExchangeSimulator) -> None:
    ws = await authenticated(f"{sim.alpaca_ws_url}/v2/iex")
    async with ws:
        await ws.send(json.dumps({"action": "subscribe", "trades": ["AAPL"]}))
        [confirmation] = await recv_json(ws)
        assert confirmation["T"] == "subscription" and confirmation["trades"] == ["AAPL"]
        assert confirmation["quotes"] == [] and confirmation["bars"] == []
        frame = await recv_json(ws)
    assert isinstance(frame, list) and frame
    trade = frame[0]
    assert set(trade) == {"T", "S", "i", "x", "p", "s", "t", "c", "z"}
    assert trade["T"] == "t" and trade["S"] == "AAPL" and isinstance(trade["s"], int)
    assert trade["t"].endswith("Z") and len(trade["t"].split(".")[1]) == 10
    assert trade["i"] in {t.trade_id for t in sim.trades("alpaca", "AAPL")}


async def test_crypto_stream_trades_carry_the_taker_side(sim: ExchangeSimulator) -> None:
    ws = await authenticated(f"{sim.alpaca_ws_url}/v1beta3/crypto/us")
    async with ws:
        await ws.send(json.dumps({"action": "subscribe", "trades": ["BTC/USD"]}))
        await recv_json(ws)
        trade = (await recv_json(ws))[0]
    assert set(trade) == {"T", "S", "p", "s", "t", "i", "tks"} and trade["tks"] in "BS"


async def test_wrong_keys_get_402_auth_failed(sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.alpaca_ws_url}/v2/sip") as ws:
        await recv_json(ws)
        await ws.send(json.dumps({**AUTH, "secret": "wrong"}))
        assert await recv_json(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        with pytest.raises(websockets.ConnectionClosed):
            await recv_json(ws)


async def test_no_auth_within_the_window_gets_404_auth_timeout() -> None:
    async with ExchangeSimulator(symbols=[], stock_symbols=["AAPL"],
                                 alpaca_auth_timeout=0.2) as sim, websockets.connect(
            f"{sim.alpaca_ws_url}/v2/iex") as ws:
        await recv_json(ws)
        assert await recv_json(ws) == [{"T": "error", "code": 404, "msg": "auth timeout"}]


async def test_a_second_connection_with_the_same_key_gets_406(sim: ExchangeSimulator) -> None:
    first = await authenticated(f"{sim.alpaca_ws_url}/v2/test")
    async with first, websockets.connect(f"{sim.alpaca_ws_url}/v2/test") as second:
        await recv_json(second)
        await second.send(json.dumps(AUTH))
        assert await recv_json(second) == [
            {"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    sim.set_alpaca_connection_limit(2)
    first = await authenticated(f"{sim.alpaca_ws_url}/v2/test")
    async with first, await authenticated(f"{sim.alpaca_ws_url}/v2/test"):
        pass


async def test_subscribing_before_auth_gets_401(sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.alpaca_ws_url}/v2/iex") as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"action": "subscribe", "trades": ["AAPL"]}))
        assert await recv_json(ws) == [{"T": "error", "code": 401, "msg": "not authenticated"}]


async def test_header_credentials_authenticate_at_connect(sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.alpaca_ws_url}/v2/iex",
                                  additional_headers=ALPACA_HEADERS) as ws:
        assert await recv_json(ws) == [{"T": "success", "msg": "connected"}]
        assert await recv_json(ws) == [{"T": "success", "msg": "authenticated"}]


async def test_rest_trades_paginate_with_next_page_token(sim: ExchangeSimulator) -> None:
    url = f"{sim.alpaca_rest_url}/v2/stocks/AAPL/trades"
    start = "2000-01-01T00:00:00Z"
    ids: list[int] = []
    token = None
    async with aiohttp.ClientSession(headers=ALPACA_HEADERS) as http:
        for _ in range(3):
            params = {"start": start, "limit": "100"} | ({"page_token": token} if token else {})
            async with http.get(url, params=params) as response:
                body = await response.json()
            assert body["symbol"] == "AAPL" and len(body["trades"]) == 100
            ids += [t["i"] for t in body["trades"]]
            token = body["next_page_token"]
    truth = [t.trade_id for t in sim.trades("alpaca", "AAPL")]
    assert ids == truth[:300]


async def test_rest_bars_have_the_documented_fields(sim: ExchangeSimulator) -> None:
    async with aiohttp.ClientSession(headers=ALPACA_HEADERS) as http, http.get(
            f"{sim.alpaca_rest_url}/v2/stocks/AAPL/bars",
            params={"timeframe": "1Min", "start": "2000-01-01T00:00:00Z"}) as response:
        body = await response.json()
    assert set(body) == {"bars", "symbol", "next_page_token"}
    assert set(body["bars"][0]) == {"t", "o", "h", "l", "c", "v", "n", "vw"}
    assert body["bars"][0]["t"].endswith(":00Z")


async def test_rest_checks_the_key_headers(sim: ExchangeSimulator) -> None:
    async with aiohttp.ClientSession() as http, http.get(
            f"{sim.alpaca_rest_url}/v2/stocks/AAPL/trades") as response:
        assert response.status == 403


async def test_trades_arrive_several_to_a_frame_under_load() -> None:
    async with ExchangeSimulator(symbols=[], stock_symbols=["AAPL"], speed=200) as sim:
        ws = await authenticated(f"{sim.alpaca_ws_url}/v2/sip")
        async with ws:
            await ws.send(json.dumps({"action": "subscribe", "trades": ["*"]}))
            await recv_json(ws)
            sizes = [len(await recv_json(ws)) for _ in range(20)]
            await asyncio.sleep(0)
    assert max(sizes) > 1
