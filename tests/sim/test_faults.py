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


async def test_a_silent_server_leaves_list_subscriptions_unanswered_until_it_heals(
        sim: ExchangeSimulator) -> None:
    """The liveness probe's request: answered as Binance documents it, never while silent."""
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        sim.go_silent()
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                while True:
                    assert "id" not in json.loads(await ws.recv())
        sim.go_silent(False)
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        async with asyncio.timeout(5):
            while "id" not in (reply := json.loads(await ws.recv())):
                pass
    assert reply == {"result": ["btcusdt@trade", "ethusdt@trade"], "id": 2}


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


async def _trade_ids(ws: websockets.ClientConnection, count: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < count:
        frame = await recv_json(ws)
        if frame.get("stream") == "btcusdt@trade":
            ids.append(frame["data"]["t"])
    return ids


async def test_refused_trades_are_logged_streamed_and_served_but_not_in_klines(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        sim.refuse_trades("BTC/USDT", 2)
        refused: list[int] = []
        while len(refused) < 2:
            frame = await recv_json(ws)
            data = frame["data"]
            if frame["stream"] == "btcusdt@trade" and data["p"] == "0.00000000":
                assert data["q"] == "0.00000000"
                refused.append(data["t"])
    log = {t.trade_id: t for t in sim.trades("binance", "BTC/USDT")}
    assert [(log[i].price_e8, log[i].qty_e8) for i in refused] == [(0, 0), (0, 0)]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.binance_rest_url}/api/v3/historicalTrades",
                            params={"symbol": "BTCUSDT", "fromId": str(refused[0]),
                                    "limit": "1"}) as response:
            assert (await response.json())[0]["price"] == "0.00000000"
        async with http.get(f"{sim.binance_rest_url}/api/v3/aggTrades",
                            params={"symbol": "BTCUSDT", "limit": "1000"}) as response:
            covered = {i for a in await response.json() for i in range(a["f"], a["l"] + 1)}
    assert not covered & set(refused), "aggregate trades leave refused records out"
    kline = next(k for k in sim.klines("BTC/USDT", "1m")
                 if k.open_time_ns <= log[refused[0]].time_ns <= k.close_time_ns)
    traded = sim.feed.logs[("binance", "BTCUSDT")].trades  # as the klines saw it: no new pump
    in_bar = [t for t in traded if kline.open_time_ns <= t.time_ns <= kline.close_time_ns]
    assert kline.count == sum(t.is_market for t in in_bar) < len(in_bar)
    assert kline.low_e8 > 0


async def test_lost_doubled_and_late_trade_frames(sim: ExchangeSimulator) -> None:
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        first = (await _trade_ids(ws, 1))[0]
        sim.lose_trade_frames("BTC/USDT", 1)
        sim.duplicate_trade_frames("BTC/USDT", 1)
        sim.delay_trade_frames("BTC/USDT", 1, behind=2)
        ids = await _trade_ids(ws, 40)
    log_ids = [t.trade_id for t in sim.trades("binance", "BTC/USDT") if t.trade_id > first]
    lost, doubled, late = [i for i in log_ids[:40] if ids.count(i) != 1 or
                           ids.index(i) != sorted(set(ids)).index(i)][:3]
    assert lost not in ids and ids.count(doubled) == 2
    assert ids.index(late) == ids.index(late + 2) + 1, "sent right after the next two"


async def test_refused_connections_get_http_503_until_the_outage_ends(
        sim: ExchangeSimulator) -> None:
    sim.refuse_connections(0.5)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(sim.binance_ws_url + STREAM)
    assert refused.value.response.status_code == 503 and sim.counters.connections_refused == 1
    await asyncio.sleep(0.6)
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        assert "data" in await recv_json(ws)


@pytest.mark.parametrize(("status", "code"), [(500, -1001), (503, -1008), (502, None)])
async def test_rest_server_errors_have_the_venue_or_gateway_body(
        sim: ExchangeSimulator, status: int, code: int | None) -> None:
    sim.fail_rest(1, status=status)
    async with aiohttp.ClientSession() as http, http.get(
            f"{sim.binance_rest_url}/api/v3/trades", params={"symbol": "BTCUSDT"}) as response:
        text = await response.text()
    assert response.status == status and "Retry-After" not in response.headers
    if code is None:
        assert text.startswith("<html>")
    else:
        assert json.loads(text)["code"] == code
    assert sim.counters.rest_by_endpoint["/api/v3/trades"] == 1


async def test_garbage_and_short_rest_answers_are_200_with_half_the_answer(
        sim: ExchangeSimulator) -> None:
    url = f"{sim.binance_rest_url}/api/v3/trades"
    params = {"symbol": "BTCUSDT", "limit": "100"}
    async with aiohttp.ClientSession() as http:
        sim.garble_rest(1)
        async with http.get(url, params=params) as response:
            assert response.status == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(await response.text())
        sim.short_rest_pages(1)
        async with http.get(url, params=params) as response:
            assert response.status == 200 and len(await response.json()) == 50
        async with http.get(url, params=params) as response:
            assert len(await response.json()) == 100


async def test_server_pings_come_at_the_set_interval_and_are_answered(
        sim: ExchangeSimulator) -> None:
    sim.set_ping_interval(0.1)
    async with websockets.connect(sim.binance_ws_url + "/ws", ping_interval=None) as ws:
        before = sim.counters.messages_received
        await asyncio.sleep(0.55)
        assert sim.counters.messages_received - before >= 3, "each ping got its pong"
        assert ws.state is websockets.State.OPEN


async def test_a_nested_frame_reaches_every_connection_as_sent(sim: ExchangeSimulator) -> None:
    async with websockets.connect(sim.binance_ws_url + STREAM, max_size=2**24) as ws:
        await recv_json(ws)
        sim.send_nested_frame(1000)
        async with asyncio.timeout(5):
            while True:
                frame = str(await ws.recv())
                if frame.startswith('{"a":'):
                    break
    assert frame == '{"a":' * 1000 + "1" + "}" * 1000


async def test_server_shutdown_closes_only_the_connections_it_was_sent_to(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(sim.binance_ws_url + STREAM) as old:
        shutdown = asyncio.create_task(sim.server_shutdown(grace=0.3))
        await asyncio.sleep(0.05)
        async with websockets.connect(sim.binance_ws_url + STREAM) as new:
            await shutdown
            with pytest.raises(websockets.ConnectionClosedOK):
                while True:
                    await old.recv()
            assert "data" in await recv_json(new), "the replacement keeps streaming"
