"""Shared helpers for the simulator tests: plain websockets/aiohttp clients, no project code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from bot.data.sim import ExchangeSimulator

DATA = Path(__file__).resolve().parents[1] / "data"
ALPACA_HEADERS = {"APCA-API-KEY-ID": "sim-key", "APCA-API-SECRET-KEY": "sim-secret"}


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    """A busy market with ten minutes of history, running ten times real time."""
    async with ExchangeSimulator(symbols=["BTC/USDT", "ETH/USDT"], stock_symbols=["AAPL"],
                                 alpaca_crypto_symbols=["BTC/USD"], seed=7, speed=10,
                                 history_seconds=600) as simulator:
        yield simulator


async def recv_json(ws: websockets.ClientConnection, timeout: float = 5.0) -> Any:
    """The next frame, decoded."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_reply(ws: websockets.ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    """Skip market data until the reply to a live request (it carries ``id``)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if isinstance(frame, dict) and "id" in frame:
                return frame
