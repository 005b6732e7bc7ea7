"""Promises held against hostile input found by attacking the stream from outside.

Each test names the behaviour that must hold and drives the real code path
(venue session, transport, pipeline) over loopback or directly, fast.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.transport import Backoff, Connection
from bot.data.venues.alpaca.session import AlpacaCredentials, AlpacaSession
from tests.streaming import wait_for

CREDS = AlpacaCredentials("PKOUTSIDEKEY1", "outside-secret-value-2")
TIME = "2024-03-12T14:30:00.123456789Z"


def stock_trade(trade_id: int, **fields: Any) -> dict[str, Any]:
    """An Alpaca stock trade message as the stream sends it."""
    return {"T": "t", "S": "AAPL", "i": trade_id, "x": "V", "p": 170.25, "s": 10, "t": TIME,
            "c": ["@"], "z": "C", **fields}


@asynccontextmanager
async def alpaca_stream(*frames: str) -> AsyncIterator[tuple[Connection, list[Tick]]]:
    """A local Alpaca stream server (handshake as documented, then ``frames``) and a started
    ``Connection`` of an :class:`AlpacaSession` to it; yields it and the ticks it passed on."""
    async def script(ws: ServerConnection) -> None:
        await ws.send('[{"T":"success","msg":"connected"}]')
        await ws.recv()  # auth
        await ws.send('[{"T":"success","msg":"authenticated"}]')
        subscribe = json.loads(await ws.recv())
        await ws.send(json.dumps([{"T": "subscription", "trades": subscribe["trades"]}]))
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    ticks: list[Tick] = []
    async with serve(script, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        config = StreamManagerConfig(alpaca_ws_url=url, alpaca_feed="iex")
        conn = Connection("alpaca-test", lambda symbols: AlpacaSession(config, CREDS, symbols),
                          ["AAPL"], on_tick=ticks.append, on_event=lambda _c, _e: None,
                          on_state=lambda _c: None, backoff=Backoff(0.05, 0.1), max_attempts=3,
                          connect_timeout=5.0, silence_timeout=30.0, stable_after=60.0)
        conn.start()
        try:
            yield conn, ticks
        finally:
            await conn.stop()


BAD_MESSAGES = {
    "a required field missing": {"T": "t", "S": "AAPL", "t": TIME},
    "conditions not a list": stock_trade(2, c="@"),
    "price a string": stock_trade(2, p="170.25"),
    "a time with ten fraction digits": stock_trade(2, t="2024-03-12T14:30:00.1234567891Z"),
    "a time without an offset": stock_trade(2, t="2024-03-12T14:30:00.5"),
    "an id beyond 56 bits": stock_trade(2, i=2**60),
    "not an object": 5,
    "an object without a type": {"S": "AAPL"},
}


@pytest.mark.parametrize("bad", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
async def test_one_bad_alpaca_message_costs_only_itself_not_its_frames_other_trades(
        bad: object) -> None:
    # A data frame carries many trades; the one that cannot be read is counted and skipped,
    # the good ones around it reach the pipeline.
    frame = json.dumps([stock_trade(1), bad, stock_trade(3)])
    async with alpaca_stream(frame, json.dumps([stock_trade(4)])) as (conn, ticks):
        await wait_for(lambda: conn.stats.frames >= 2, timeout=10)
        await asyncio.sleep(0.05)
        assert [t.trade_id & (2**56 - 1) for t in ticks] == [1, 3, 4]
        assert conn.stats.malformed == 1
