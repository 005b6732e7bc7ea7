"""Fixtures of the NATS tests: a JetStream server from the wheel, and the exchange simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.data.nats.server import NatsServer
from bot.data.sim import ExchangeSimulator


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """``nats-server -js -sd <tmp> -a 127.0.0.1 -p <free port>``, file storage."""
    with NatsServer(tmp_path / "jetstream") as server:
        yield server


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    """Busy BTC/USDT and ETH/USDT markets and the USDⓈ-M perpetual BTC/USDT:USDT at 60x real
    time: a 1m bar every second."""
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], futures_symbols=["BTC/USDT:USDT"],
                                 seed=5, speed=60.0) as simulator:
        yield simulator
