"""Every fault switch is observable from a plain client."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import websockets

from bot.data.sim import ExchangeSimulator
from tests.sim.conftest import recv_json

STREAM = "/stream?streams=btcusdt@trade/ethusdt@trade"


async def test_drop_after_n_messages_cuts_without_a_close_frame(sim: ExchangeSimulator) -> None:
    sim.drop_after(5)
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        received = 0
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            while True:
                await recv_json(ws)
                received += 1
    assert received == 5 and closed.value.rcvd is None
    assert sim.counters.drops == 1


async def test_random_drops_happen_at_the_given_probability(sim: ExchangeSimulator) -> None:
    sim.drop_randomly(0.2)
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        with pytest.raises(websockets.ConnectionClosedError):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()


async def test_drop_all_cuts_every_open_connection(sim: ExchangeSimulator) -> None:
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        await recv_json(ws)
        sim.drop_all()
        with pytest.raises(websockets.ConnectionClosedError):
            while True:
                await recv_json(ws)


async def test_a_silent_server_keeps_the_socket_open_but_sends_nothing(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        await recv_json(ws)
        sim.go_silent()
        await asyncio.sleep(0.05)
        while True:  # drain what was already in flight
            try:
                await asyncio.wait_for(ws.recv(), 0.3)
            except TimeoutError:
                break
        assert ws.state is websockets.State.OPEN
        sim.go_silent(False)
        await recv_json(ws)


async def test_malformed_frames_are_invalid_json_or_wrong_types(sim: ExchangeSimulator) -> None:
    sim.send_malformed(1.0)
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        frames = [await ws.recv() for _ in range(20)]
    broken = 0
    for text in frames:
        try:
            data = json.loads(text)["data"]
        except (json.JSONDecodeError, KeyError, TypeError):
            broken += 1
            continue
        broken += not isinstance(data["p"], str) or not isinstance(data["t"], int)
    assert broken == 20 and sim.counters.malformed_sent >= 20


async def test_refused_auth_answers_402_even_for_good_keys(sim: ExchangeSimulator) -> None:
    sim.refuse_auth()
    async with websockets.connect(f"{sim.alpaca_ws_url}/v2/iex") as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"action": "auth", "key": "sim-key", "secret": "sim-secret"}))
        assert (await recv_json(ws))[0]["code"] == 402


async def test_slow_start_delays_the_handshake(sim: ExchangeSimulator) -> None:
    sim.slow_start(0.3)
    began = time.monotonic()
    async with websockets.connect(sim.binance_ws_url + STREAM):
        assert time.monotonic() - began >= 0.3


@pytest.mark.parametrize("status", [429, 418])
async def test_rest_fails_the_next_n_requests_with_retry_after(sim: ExchangeSimulator,
                                                               status: int) -> None:
    sim.fail_rest(2, status=status, retry_after=7)
    url = f"{sim.binance_rest_url}/api/v3/trades"
    async with aiohttp.ClientSession() as http:
        answers = []
        for _ in range(3):
            async with http.get(url, params={"symbol": "BTCUSDT"}) as response:
                answers.append((response.status, response.headers.get("Retry-After"),
                                await response.json()))
    assert [a[:2] for a in answers] == [(status, "7"), (status, "7"), (200, None)]
    assert answers[0][2]["code"] == -1003


async def test_clear_faults_restores_a_healthy_exchange(sim: ExchangeSimulator) -> None:
    sim.go_silent()
    sim.send_malformed(1.0)
    sim.clear_faults()
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        assert "data" in await recv_json(ws)
