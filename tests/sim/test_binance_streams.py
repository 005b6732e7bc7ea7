"""Binance spot streams as documented: frames, live requests, limits, keepalive, lifetime."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from bot.data.sim import ExchangeSimulator
from tests.sim.conftest import DATA, recv_json, recv_reply

CAPTURE = DATA / "binance" / "ws_samples" / "cryptofeed_captures" / "BINANCE.ws.1.0.be4e5c81"
# The @trade payload of the spot documentation (web-socket-streams.md).
DOC_TRADE = {"e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345, "p": "0.001",
             "q": "100", "T": 1672515782136, "m": True, "M": True}


def captured(channel: str) -> dict[str, Any]:
    """The first real spot frame of ``channel`` in the cryptofeed capture."""
    with CAPTURE.open() as fh:
        next(fh)
        for line in fh:
            frame = json.loads(line.split(": ", 1)[1])
            if frame["stream"].endswith("@" + channel):
                return frame
    raise AssertionError(channel)


def shape(payload: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in payload.items()}


async def first_of(ws: websockets.ClientConnection, stream: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = await recv_json(ws)
        if frame.get("stream") == stream:
            return frame


async def test_combined_trade_frame_has_exactly_the_documented_fields_and_types(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.binance_ws_url}/stream?streams=btcusdt@trade") as ws:
        frame = await first_of(ws, "btcusdt@trade")
    assert set(frame) == {"stream", "data"}
    assert shape(frame["data"]) == shape(DOC_TRADE)
    assert frame["data"]["s"] == "BTCUSDT"
    assert len(frame["data"]["p"].split(".")[1]) == 8


@pytest.mark.parametrize("channel", ["aggTrade", "bookTicker"])
async def test_frames_match_real_captured_frames_key_for_key(sim: ExchangeSimulator,
                                                             channel: str) -> None:
    real = captured(channel)
    async with websockets.connect(f"{sim.binance_ws_url}/stream?streams=ethusdt@{channel}") as ws:
        frame = await first_of(ws, f"ethusdt@{channel}")
    assert set(frame) == set(real)
    assert shape(frame["data"]) == shape(real["data"])


async def test_raw_stream_sends_bare_payloads_and_microseconds_on_request(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.binance_ws_url}/ws/btcusdt@trade") as ws:
        millis = await recv_json(ws)
    async with websockets.connect(
            f"{sim.binance_ws_url}/ws/btcusdt@trade?timeUnit=MICROSECOND") as ws:
        micros = await recv_json(ws)
    assert millis["e"] == micros["e"] == "trade"
    assert len(str(millis["T"])) == 13 and len(str(micros["T"])) == 16


async def test_trade_ids_on_the_stream_are_consecutive_and_match_the_exchange_record(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.binance_ws_url}/ws/ethusdt@trade") as ws:
        ids = [(await recv_json(ws))["t"] for _ in range(20)]
    assert ids == list(range(ids[0], ids[0] + 20))
    truth = {t.trade_id: t for t in sim.trades("binance", "ETH/USDT")}
    assert all(i in truth for i in ids)


async def test_subscribe_unsubscribe_and_list_get_the_documented_replies(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.binance_ws_url}/stream") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE",
                                  "params": ["btcusdt@aggTrade", "ethusdt@trade"], "id": 1}))
        assert await recv_reply(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["ethusdt@trade"],
                                  "id": 312}))
        assert await recv_reply(ws) == {"result": None, "id": 312}
        await asyncio.sleep(0.25)  # stay under 5 messages per second
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert await recv_reply(ws) == {"result": ["btcusdt@aggTrade"], "id": 3}
        await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}))
        assert await recv_reply(ws) == {"result": True, "id": 2}
        frame = await first_of(ws, "btcusdt@aggTrade")
        assert frame["data"]["e"] == "aggTrade"


async def test_bad_requests_get_the_documented_error_messages(sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.binance_ws_url}/ws") as ws:
        await ws.send("{not json")
        reply = await recv_json(ws)
        assert reply["error"]["code"] == 3 and reply["error"]["msg"].startswith("Invalid JSON")
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["x"], "id": 7}))
        invalid = {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 7}
        assert await recv_json(ws) == invalid
        await ws.send(json.dumps({"method": "FOO", "id": 8}))
        reply = await recv_json(ws)
        assert reply["error"]["code"] == 2 and "unknown variant `FOO`" in reply["error"]["msg"]
        await asyncio.sleep(1.1)
        await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["nope", True], "id": 9}))
        assert await recv_json(ws) == {"error": {"code": 0, "msg": "Unknown property"}, "id": 9}


async def test_more_than_five_incoming_messages_per_second_disconnects() -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"]) as sim, websockets.connect(
            f"{sim.binance_ws_url}/ws") as ws:
        for i in range(6):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await recv_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert sim.counters.rate_limit_closes == 1


async def test_five_incoming_messages_in_a_second_are_within_the_limit() -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"]) as sim, websockets.connect(
            f"{sim.binance_ws_url}/ws") as ws:
        for i in range(5):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        replies = [await recv_reply(ws) for _ in range(5)]
        await asyncio.sleep(1.05)
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 5}))
        replies.append(await recv_reply(ws))
    assert [r["id"] for r in replies] == list(range(6))
    assert sim.counters.rate_limit_closes == 0


async def test_a_connection_listens_to_at_most_1024_streams() -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"]) as sim:
        names = [f"sym{i}usdt@trade" for i in range(1025)]
        async with websockets.connect(f"{sim.binance_ws_url}/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": names[:1024], "id": 1}))
            assert await recv_reply(ws) == {"result": None, "id": 1}
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": names[1024:], "id": 2}))
            reply = await recv_reply(ws)
            assert reply["id"] == 2 and reply["error"]["code"] == 2
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
            assert len((await recv_reply(ws))["result"]) == 1024
        # 1025 stream names cannot fit an 8 KB request line: refused as a real server does,
        # before the stream limit is read.
        too_many = f"{sim.binance_ws_url}/stream?streams=" + "/".join(names)
        with pytest.raises((websockets.InvalidStatus, websockets.InvalidMessage)):
            async with websockets.connect(too_many):
                pass


async def test_server_pings_at_the_configured_interval_and_drops_clients_that_never_pong(
) -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"], ping_interval=0.1,
                                 pong_timeout=0.5) as sim:
        async with websockets.connect(f"{sim.binance_ws_url}/ws") as ws:
            await asyncio.sleep(0.45)  # websockets answers pings itself
            assert ws.state is websockets.State.OPEN
        # A raw transport that ignores pings gets disconnected after the pong timeout.
        import aiohttp

        async with aiohttp.ClientSession() as http, http.ws_connect(
                f"{sim.binance_ws_url}/ws", autoping=False) as raw:
            kinds = []
            async with asyncio.timeout(3):
                async for msg in raw:
                    kinds.append(msg.type)
            assert aiohttp.WSMsgType.PING in kinds
            assert raw.close_code == 1008


async def test_connections_end_at_the_lifetime_so_a_short_clock_forces_the_daily_rollover(
) -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"], connection_lifetime=0.3) as sim:
        async with websockets.connect(f"{sim.binance_ws_url}/ws/btcusdt@trade") as ws:
            with pytest.raises(websockets.ConnectionClosedOK):
                async with asyncio.timeout(3):
                    while True:
                        await ws.recv()
        assert sim.counters.connections_open == 0


async def test_server_shutdown_event_is_sent_before_the_connection_closes(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.binance_ws_url}/stream?streams=btcusdt@trade") as ws:
        await first_of(ws, "btcusdt@trade")
        shutdown = asyncio.create_task(sim.server_shutdown(grace=0.05))
        frame = await first_of(ws, "!serverShutdown")
        await shutdown
        assert frame["data"]["e"] == "serverShutdown" and isinstance(frame["data"]["E"], int)
