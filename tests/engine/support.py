"""A stand-in for StreamManager over a real TickPipeline, a scripted market, test records."""

from __future__ import annotations

import numpy as np

from bot.data.config import StreamManagerConfig
from bot.data.events import EventBus, EventType, StreamEvent
from bot.data.history import BAR_DTYPE
from bot.data.models import Bar, BarFlag, Prediction, Side, Signal, SignalDirection, Tick
from bot.data.pipeline import TickPipeline
from bot.data.timeframes import NS_PER_SECOND

MINUTE = 60 * NS_PER_SECOND
T0 = 1_735_689_600 * NS_PER_SECOND  # 2025-01-01 00:00 UTC


class FakeManager:
    """Exposes exactly what the engine may use of a StreamManager."""

    def __init__(self, config: StreamManagerConfig | None = None) -> None:
        self.config = config or StreamManagerConfig(default_timeframe="1m",
                                                    supported_timeframes=["1m", "5m"])
        self.pipeline = TickPipeline(self.config)
        self.bus: EventBus = self.pipeline.bus
        self.is_running = False
        self.starts = 0
        self.stops = 0

    async def start(self) -> None:
        self.bus.start()
        self.is_running = True
        self.starts += 1

    async def stop(self) -> None:
        await self.bus.stop()
        self.is_running = False
        self.stops += 1


class Market:
    """Feeds scripted trades to the manager's pipeline; ``now`` is the engine's clock."""

    def __init__(self, manager: FakeManager) -> None:
        self.manager = manager
        self.now = T0
        self._trade_id = 0

    def clock(self) -> int:
        return self.now

    def trade(self, symbol: str, price: float, at: int, volume: float = 1.0,
              side: Side = Side.BUY) -> None:
        """One trade at exchange time ``at``, received at once."""
        self._trade_id += 1
        self.now = at
        self.manager.pipeline.process(
            Tick("binance", symbol, price, volume, side, self._trade_id, at, at))

    def bars(self, symbol: str, closes: list[float] | np.ndarray, start_minute: int = 0) -> int:
        """One trade per minute at each close; each trade completes the previous minute's bar.

        Returns the minute after the last trade (the last bar is still open).
        """
        for i, price in enumerate(closes):
            minute = start_minute + i
            self.trade(symbol, float(price), T0 + minute * MINUTE,
                       volume=1.0 + (minute % 3), side=Side.BUY if i % 2 else Side.SELL)
        return start_minute + len(closes)


def collect(bus: EventBus, event_type: EventType) -> list[StreamEvent]:
    """Every event of ``event_type`` emitted from now on."""
    seen: list[StreamEvent] = []
    bus.on(event_type, seen.append)
    return seen


def random_walk(n: int, seed: int = 1, start: float = 100.0, drift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start * np.exp(np.cumsum(rng.normal(drift, 0.01, n)))


def bars_array(close: np.ndarray, seed: int = 2) -> np.ndarray:
    """A BAR_DTYPE array around ``close`` with random but consistent OHLCV fields."""
    rng = np.random.default_rng(seed)
    n = len(close)
    arr = np.zeros(n, dtype=BAR_DTYPE)
    arr["open_time"] = T0 + np.arange(n) * MINUTE
    arr["close_time"] = arr["open_time"] + MINUTE - 1
    arr["close"] = close
    arr["open"] = np.concatenate(([close[0]], close[:-1]))
    arr["high"] = np.maximum(arr["open"], close) * (1 + rng.uniform(0, 0.002, n))
    arr["low"] = np.minimum(arr["open"], close) * (1 - rng.uniform(0, 0.002, n))
    arr["volume"] = rng.uniform(1, 10, n)
    arr["buy_volume"] = arr["volume"] * rng.uniform(0, 1, n)
    arr["sell_volume"] = arr["volume"] - arr["buy_volume"]
    arr["quote_volume"] = arr["volume"] * (arr["high"] + arr["low"] + close) / 3
    arr["trade_count"] = rng.integers(1, 100, n)
    return arr


def make_bar(symbol: str = "BTC/USDT", close: float = 100.0, open_time: int = T0,
             flags: BarFlag = BarFlag.NONE) -> Bar:
    return Bar("binance", symbol, "1m", open_time, open_time + MINUTE - 1, close, close, close,
               close, 1.0, close, 0.5, 0.5, close / 2, 1, 1, 1, flags)


def make_signal(direction: SignalDirection, symbol: str = "BTC/USDT",
                timestamp: int = T0) -> Signal:
    bar = make_bar(symbol)
    prediction = Prediction(symbol, "1m", bar.open_time, 0.9 if direction == "buy" else 0.1,
                            "test", 0)
    return Signal(symbol, direction, 0.9, bar, prediction, timestamp)
