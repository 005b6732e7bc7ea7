"""Simulator fixtures and independent expectations for the REST client tests.

The market clock is frozen (or moved only by the test), so the exchange's
trade log, its klines and the REST answers describe the same market.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.rest.limits import RateLimiter
from bot.data.sim import ExchangeSimulator
from bot.data.sim.alpaca_frames import stream_trade
from bot.data.sim.binance_frames import MILLISECONDS, agg_trade_event, trade_event
from bot.data.sim.trades import AggTrade, SimTrade
from bot.data.venues.alpaca.session import AlpacaCredentials, AlpacaSession
from bot.data.venues.binance.session import BinanceCodec

# 2025-01-06 14:00:17.123456789 UTC: market "now", in the middle of a minute and a second.
NOW_NS = 1_736_172_017_123_456_789
CREDENTIALS = AlpacaCredentials("sim-key", "sim-secret")


@dataclass
class ManualClock:
    """Market time that only the test moves; a fake sleep moves it by the time slept."""

    now_ns: int = NOW_NS
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> int:
        return self.now_ns

    def seconds(self) -> float:
        return self.now_ns / 1e9

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_ns += int(seconds * 1e9)

    def limiter(self, **kwargs: Any) -> RateLimiter:
        """A limiter whose waits move this clock instead of taking time."""
        return RateLimiter(sleep=self.sleep, clock=self.seconds, **kwargs)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def binance_sim(clock: ManualClock) -> AsyncIterator[ExchangeSimulator]:
    """BTC/USDT with 30 minutes of history (about 18,000 trades), clock frozen at NOW_NS."""
    async with ExchangeSimulator(symbols=["BTC/USDT"], seed=3, clock=clock,
                                 start_time_ns=NOW_NS, history_seconds=1800) as sim:
        yield sim


@pytest.fixture
async def alpaca_sim(clock: ManualClock) -> AsyncIterator[ExchangeSimulator]:
    """AAPL with 3 hours of history (about 45,000 trades), clock frozen at NOW_NS."""
    async with ExchangeSimulator(symbols=[], stock_symbols=["AAPL"], seed=3, clock=clock,
                                 start_time_ns=NOW_NS, history_seconds=3 * 3600) as sim:
        yield sim


@asynccontextmanager
async def local_server(routes: list[web.RouteDef]) -> AsyncIterator[str]:
    """A small HTTP server on loopback with these routes; yields its base URL."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def config_for(sim: ExchangeSimulator, **kwargs: Any) -> StreamManagerConfig:
    return StreamManagerConfig(binance_rest_url=sim.binance_rest_url,
                               alpaca_rest_url=sim.alpaca_rest_url, **kwargs)


def without_receive_time(ticks: list[Tick]) -> list[Tick]:
    return [msgspec.structs.replace(t, receive_timestamp=0) for t in ticks]


def binance_stream_ticks(trades: list[SimTrade], symbol: str) -> list[Tick]:
    """What the ``@trade`` stream codec makes of the simulator's frames for these trades."""
    codec = BinanceCodec()
    codec.add_symbol(symbol)
    stream = f"{trades[0].symbol.lower()}@trade"
    return _decoded(codec, [{"stream": stream, "data": trade_event(t, MILLISECONDS)}
                            for t in trades])


def binance_agg_stream_ticks(aggs: list[AggTrade], raw: str, symbol: str) -> list[Tick]:
    """What the ``@aggTrade`` stream codec makes of the simulator's frames."""
    codec = BinanceCodec(trade_channel="aggTrade")
    codec.add_symbol(symbol)
    return _decoded(codec, [{"stream": f"{raw.lower()}@aggTrade",
                             "data": agg_trade_event(a, raw, MILLISECONDS)} for a in aggs])


def _decoded(codec: BinanceCodec, frames: list[dict[str, Any]]) -> list[Tick]:
    ticks = [codec.decode_trade(json.dumps(f), 0) for f in frames]
    assert all(t is not None for t in ticks)
    return [t for t in ticks if t is not None]


def alpaca_stream_ticks(trades: list[SimTrade], symbol: str) -> list[Tick]:
    """What one Alpaca stream session makes of the simulator's frames, in order."""
    session = AlpacaSession(StreamManagerConfig(), CREDENTIALS, [symbol])
    out: list[Tick] = []
    for t in trades:
        out.extend(session.receive(json.dumps([stream_trade(t, crypto=False)]), 0).ticks)
    return out

