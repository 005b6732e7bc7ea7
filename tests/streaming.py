"""Shared helpers of the tests that stream from the simulator over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.sim import ExchangeSimulator
from bot.data.sim.trades import SimTrade
from bot.data.venues.alpaca.session import split_stock_trade_id


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


def assert_trades_match(ticks: list[Tick], truth: list[SimTrade]) -> None:
    """Every tick is the simulator's trade of that id, and no trade in the run was skipped."""
    by_id = {t.trade_id: t for t in truth}
    for tick in ticks:
        trade = by_id[tick.trade_id]
        assert (tick.price, tick.volume) == (float(trade.price), float(trade.qty))
    ids = [t.trade_id for t in ticks]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


def assert_stock_trades_match(ticks: list[Tick], truth: list[SimTrade]) -> None:
    """Stock ticks carry (exchange, Alpaca id); each is the simulator's trade of that id."""
    by_id = {t.trade_id: t for t in truth}
    for tick in ticks:
        exchange, trade_id = split_stock_trade_id(tick.trade_id)
        trade = by_id[trade_id]
        assert (exchange, tick.price, tick.volume) == (trade.exchange, float(trade.price),
                                                       float(trade.qty))
    ids = [split_stock_trade_id(t.trade_id)[1] for t in ticks]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
