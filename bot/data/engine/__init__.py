"""The trading engine: bar close -> features -> prediction -> signal -> execution.

``features``   default bar features from a ``BarHistory`` array, and how to add yours
``predictors`` callables, async callables and scikit-learn models behind one interface
``signals``    probability -> BUY / SELL / nothing, and which bars may not be traded on
``executors``  the executor protocol, ``LoggingExecutor``, safe dispatch
``paper``      ``PaperExecutor``: fills at the next trade with fees and slippage
``metrics``    counters and tick-to-signal latency
``engine``     ``StreamingTradingEngine``, which wires them to the stream's bus
"""

from bot.data.engine.engine import StreamingTradingEngine, StreamSource
from bot.data.engine.executors import Executor, LoggingExecutor
from bot.data.engine.features import (
    DEFAULT_FEATURE_NAMES,
    DEFAULT_LOOKBACK,
    DEFAULT_MIN_HISTORY,
    FeatureFunction,
    bars_needed,
    combine,
    default_features,
    needs_bars,
)
from bot.data.engine.paper import Fill, PaperExecutor, Position
from bot.data.engine.predictors import (
    Estimate,
    InvalidPrediction,
    MomentumPredictor,
    SklearnPredictor,
    as_predictor,
)
from bot.data.engine.signals import ThresholdRule

__all__ = [
    "DEFAULT_FEATURE_NAMES",
    "DEFAULT_LOOKBACK",
    "DEFAULT_MIN_HISTORY",
    "Estimate",
    "Executor",
    "FeatureFunction",
    "Fill",
    "InvalidPrediction",
    "LoggingExecutor",
    "MomentumPredictor",
    "PaperExecutor",
    "Position",
    "SklearnPredictor",
    "StreamSource",
    "StreamingTradingEngine",
    "ThresholdRule",
    "as_predictor",
    "bars_needed",
    "combine",
    "default_features",
    "needs_bars",
]
