"""Real-time market data: exchange trades -> exact OHLCV bars -> events -> trading engine.

The public names of the seed; heavy modules load on first use so
``import bot.data`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.data.backtest import Backtest, BacktestResult
    from bot.data.config import StreamManagerConfig
    from bot.data.engine import StreamingTradingEngine
    from bot.data.events import EventType, StreamEvent
    from bot.data.models import Bar, BarFlag, Prediction, Side, Signal, Tick
    from bot.data.stream_manager import StreamManager, create_default_trading_stream

_EXPORTS = {
    "Backtest": "bot.data.backtest",
    "BacktestResult": "bot.data.backtest",
    "StreamManager": "bot.data.stream_manager",
    "create_default_trading_stream": "bot.data.stream_manager",
    "StreamManagerConfig": "bot.data.config",
    "StreamingTradingEngine": "bot.data.engine",
    "EventType": "bot.data.events",
    "StreamEvent": "bot.data.events",
    "Bar": "bot.data.models",
    "BarFlag": "bot.data.models",
    "Prediction": "bot.data.models",
    "Side": "bot.data.models",
    "Signal": "bot.data.models",
    "Tick": "bot.data.models",
}

__all__ = [
    "Backtest",
    "BacktestResult",
    "Bar",
    "BarFlag",
    "EventType",
    "Prediction",
    "Side",
    "Signal",
    "StreamEvent",
    "StreamManager",
    "StreamManagerConfig",
    "StreamingTradingEngine",
    "Tick",
    "create_default_trading_stream",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bot.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
