"""Shared helpers of the tests that stream from the simulator over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.sim import ExchangeSimulator


def point_at(sim: ExchangeSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point venue URLs and Alpaca keys at ``sim`` for this test (restored after it)."""
    for key, value in sim.env().items():
        monkeypatch.setenv(key, value)


def fast_config(**kwargs: Any) -> StreamManagerConfig:
    """A config that reconnects at once, for tests that drop connections."""
    base: dict[str, Any] = {"reconnect_delay": 0.01, "max_reconnect_delay": 0.05,
                            "reconnect_attempts": 50, "connect_timeout": 5.0}
    base.update(kwargs)
    return StreamManagerConfig(**base)


async def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``predicate`` every 50 ms; fail the test if it is not true within ``timeout``."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")
