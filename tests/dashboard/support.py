"""A simulator and a StreamManager streaming from it, for the server and dashboard tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.data.config import StreamManagerConfig
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
SPEED = 60.0  # a simulated minute per second: a 1m bar completes every second


@contextlib.asynccontextmanager
async def streaming(timeframes: list[str] | None = None, history_seconds: float = 0.0,
                    **fields: Any) -> AsyncIterator[tuple[ExchangeSimulator, StreamManager]]:
    """A running simulator (with ``history_seconds`` of past trades for the warm-up) and a
    started manager subscribed to :data:`SYMBOLS`; ``fields`` sets more config fields."""
    async with ExchangeSimulator(SYMBOLS, seed=9, speed=SPEED,
                                 history_seconds=history_seconds) as sim:
        config = StreamManagerConfig(
            supported_timeframes=timeframes or ["1m", "5m"], binance_ws_url=sim.binance_ws_url,
            binance_rest_url=sim.binance_rest_url, connect_timeout=5.0, **fields)
        manager = StreamManager(config)
        manager.add_crypto_symbols(SYMBOLS)
        await manager.start()
        try:
            yield sim, manager
        finally:
            await manager.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


def kline_ohlc_e8(sim: ExchangeSimulator, symbol: str,
                  timeframe: str) -> dict[int, tuple[int, ...]]:
    """The exchange's own klines: open time in seconds -> (open, high, low, close) x 1e8."""
    return {k.open_time_ns // 10**9: (k.open_e8, k.high_e8, k.low_e8, k.close_e8)
            for k in sim.klines(symbol, timeframe, limit=1000)}


def e8(*prices: float) -> tuple[int, ...]:
    return tuple(round(p * 1e8) for p in prices)
