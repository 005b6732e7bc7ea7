"""Starting thousands of symbols returns in bounded time within the venue's request limits.

Against an independent fake Binance that counts REST requests and weight and
answers 429 past 6,000 weight a minute, as Binance does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.data import StreamManager, StreamManagerConfig
from tests.support.fakex import FakeBinance


@pytest.fixture
async def fx(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBinance]:
    fake = FakeBinance()
    fake.emulate_weight = True
    await fake.start()
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    yield fake
    await fake.stop()


async def test_two_thousand_symbols_start_by_the_warm_up_deadline_without_a_429(
        fx: FakeBinance) -> None:
    deadline = 3.0
    manager = StreamManager(StreamManagerConfig(
        supported_timeframes=["1m"], warm_up_timeout_seconds=deadline,
        binance_max_streams_per_connection=400,
        check_symbols=False))  # the scripted exchange serves no listing
    manager.add_crypto_symbols([f"X{i}/USDT" for i in range(2000)])
    began = time.monotonic()
    try:
        await asyncio.wait_for(manager.start(), deadline + 20)
        took = time.monotonic() - began
        requests = sum(n for name, n in fx.rest_counts.items() if name != "429")
    finally:
        await manager.stop()
    assert took < deadline + 10, f"start() took {took:.1f} s"
    assert fx.rest_counts["429"] == 0
    assert requests <= 1200, f"{requests} REST requests in the first {took:.0f} s"
