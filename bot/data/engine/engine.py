"""``StreamingTradingEngine``: bar close -> features -> prediction -> signal -> execution.

The engine is a consumer of the stream's bus like any other. On each
BAR_COMPLETE of its timeframe and symbols it:

1. refuses bars flagged GAP or PARTIAL and stale bars (older, at their end,
   than ``max_bar_age``), and series with fewer than ``min_history`` bars;
2. computes features from the series' ``BarHistory`` array (last ``lookback``
   bars) and refuses non-finite ones;
3. asks the predictor for the probability of an up move and emits it as a
   PREDICTION event (a predictor that raises, returns no probability or takes
   longer than ``predictor_timeout`` is counted and the bar skipped);
4. maps the probability to BUY, SELL or nothing (:class:`ThresholdRule`),
   emits a SIGNAL event and hands the signal to the executor.

Every refusal is counted by reason in :meth:`StreamingTradingEngine.get_metrics`,
beside the tick-to-signal latency: from the BAR_COMPLETE event's timestamp (the
receive time of the trade, or the clock reading, that completed the bar) to the
SIGNAL's.

A sync predictor runs inline on the bar-close path, which is the fastest way;
it cannot be interrupted, so one that overruns its budget is only counted and
its answer discarded. An async predictor runs in a task, one per symbol at a
time: when bars close faster than it answers, the latest bar waits and the ones
it replaces are counted as ``superseded``, so the stream is never blocked.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from bot.data.config import StreamManagerConfig
from bot.data.engine.executors import ExecuteFunction, Executor, ExecutorDispatcher
from bot.data.engine.features import (
    DEFAULT_LOOKBACK,
    DEFAULT_MIN_HISTORY,
    FeatureFunction,
    bars_needed,
    combine,
    default_features,
    feature_name,
)
from bot.data.engine.metrics import EngineMetrics
from bot.data.engine.predictors import (
    AsyncCallablePredictor,
    Estimate,
    Features,
    InvalidPrediction,
    SyncPredictor,
    as_predictor,
)
from bot.data.engine.signals import ThresholdRule, is_stale, untrusted_reason
from bot.data.errors import ConfigError
from bot.data.events import EventBus, EventType, StreamEvent
from bot.data.models import Bar, Prediction, Signal, SignalDirection
from bot.data.pipeline import TickPipeline
from bot.data.throttle import LogThrottle
from bot.data.timeframes import NS_PER_SECOND

logger = logging.getLogger(__name__)

SOURCE = "engine"


class StreamSource(Protocol):
    """What the engine needs of a stream manager (``StreamManager`` provides it)."""

    @property
    def config(self) -> StreamManagerConfig: ...
    @property
    def bus(self) -> EventBus: ...
    @property
    def pipeline(self) -> TickPipeline: ...
    @property
    def is_running(self) -> bool: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class _Job(NamedTuple):
    """A bar waiting for an async prediction."""

    bar: Bar
    features: Features
    trigger_ns: int


class StreamingTradingEngine:
    """Turns closed bars into predictions, signals and executions (see the module docstring).

    ``predictor``: a callable, an async callable or a scikit-learn style model
    of the features dict (see :mod:`bot.data.engine.predictors`). When None,
    :class:`~bot.data.engine.predictors.MomentumPredictor` is used:
    ``P(up) = logistic(return_5 / (volatility_20 * √5))``.

    ``executor``: an object with ``execute(signal)`` or a function of the
    signal, sync or async; None emits signals without acting on them.

    ``features``: a function ``f(bars_array) -> {name: value}`` that replaces
    the default set, or a sequence of them merged in order, e.g.
    ``[default_features, my_features]`` to extend it.

    ``min_history`` (bars a series needs before it is predicted on) must
    cover what the features need: declared with
    :func:`~bot.data.engine.features.needs_bars` (the default set needs 21) or
    found by trying them; a shorter one raises ConfigError here, naming it.

    ``timeframe`` defaults to the manager's ``default_timeframe``; ``symbols``
    to every symbol. ``max_bar_age`` (seconds) defaults to the manager's
    ``stale_threshold_seconds``. ``clock`` gives the wall time in ns, the
    clock ticks' receive times are read from.
    """

    def __init__(
        self,
        stream_manager: StreamSource,
        predictor: object | None = None,
        executor: Executor | ExecuteFunction | None = None,
        signal_threshold: float = 0.6,
        timeframe: str | None = None,
        symbols: Iterable[str] | None = None,
        features: FeatureFunction | Sequence[FeatureFunction] | None = None,
        min_history: int = DEFAULT_MIN_HISTORY,
        lookback: int = DEFAULT_LOOKBACK,
        predictor_timeout: float = 0.5,
        max_bar_age: float | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        config = stream_manager.config
        self.manager = stream_manager
        self.timeframe = timeframe or config.default_timeframe
        if self.timeframe not in config.supported_timeframes:
            raise ConfigError("timeframe", self.timeframe,
                              f"must be one of supported_timeframes {config.supported_timeframes}")
        self.symbols = frozenset(symbols) if symbols is not None else None
        if isinstance(min_history, bool) or not isinstance(min_history, int) or min_history < 2:
            raise ConfigError("min_history", min_history, "must be an integer >= 2")
        if not isinstance(lookback, int) or lookback < min_history:
            raise ConfigError("lookback", lookback, f"must be an integer >= min_history "
                                                    f"({min_history})")
        if not predictor_timeout > 0:
            raise ConfigError("predictor_timeout", predictor_timeout, "must be > 0 seconds")
        self.min_history = min_history
        self.lookback = lookback
        self.predictor_timeout = predictor_timeout
        age = config.stale_threshold_seconds if max_bar_age is None else max_bar_age
        self.max_bar_age_ns = age * NS_PER_SECOND
        self.rule = ThresholdRule(signal_threshold)
        self.predictor = as_predictor(predictor)
        if features is None:
            self.features: FeatureFunction = default_features
        elif callable(features):
            self.features = features
        else:
            self.features = combine(features)
        needed = bars_needed(self.features, lookback)
        if needed is not None and min_history < needed:
            raise ConfigError("min_history", min_history,
                              f"must be >= {needed}: the features "
                              f"({feature_name(self.features)}) need {needed} bars")
        self.metrics = EngineMetrics()
        self._executor_target = executor
        self._executor = (ExecutorDispatcher(executor, self.metrics)
                          if executor is not None else None)
        self._clock = clock
        self._throttle = LogThrottle(logger)
        self._unsubscribe: Callable[[], None] | None = None
        self._started_manager = False
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, _Job] = {}

    # -- lifecycle -----------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._unsubscribe is not None

    async def start(self) -> None:
        """Listen to bar closes, starting the stream manager if it is not running."""
        if self.is_running:
            return
        self._unsubscribe = self.manager.bus.on(EventType.BAR_COMPLETE, self._on_bar_complete)
        attach = getattr(self._executor_target, "attach", None)
        if callable(attach):
            attach(self.manager.bus)  # e.g. a PaperExecutor built before the manager
        if not self.manager.is_running:
            await self.manager.start()
            self._started_manager = True

    async def stop(self) -> None:
        """Stop listening, cancel predictions and executions in progress, and stop the
        stream manager if this engine started it."""
        if self._unsubscribe is None:
            return
        self._unsubscribe()
        self._unsubscribe = None
        tasks = list(self._in_flight.values())
        self._in_flight.clear()
        self._pending.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._executor is not None:
            await self._executor.cancel()
        if self._started_manager:
            self._started_manager = False
            await self.manager.stop()

    async def idle(self) -> None:
        """Wait until no async prediction is running or waiting.

        A backtest awaits it after each bar close, so an async predictor sees
        every bar, as it does live when bars are minutes apart, rather than only
        the latest of a burst replayed in microseconds.
        """
        while self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    def get_metrics(self) -> dict[str, Any]:
        """Counters, refusals by reason and tick-to-signal latency; JSON-serialisable."""
        out = self.metrics.to_dict()
        out["running"] = self.is_running
        out["timeframe"] = self.timeframe
        out["symbols"] = sorted(self.symbols) if self.symbols is not None else None
        out["predictor"] = self.predictor.name
        return out

    # -- bar close -----------------------------------------------------------------
    def _on_bar_complete(self, event: StreamEvent) -> None:
        bar: Bar = event.data
        if bar.timeframe != self.timeframe or (
                self.symbols is not None and bar.symbol not in self.symbols):
            return
        self.metrics.bars_seen += 1
        features = self._admit(bar)
        if features is None:
            return
        predictor = self.predictor
        if isinstance(predictor, AsyncCallablePredictor):
            self._submit(_Job(bar, features, event.timestamp))
            return
        started = time.perf_counter_ns()
        estimate = self._predict_sync(predictor, features)
        elapsed = time.perf_counter_ns() - started
        if estimate is None:
            return
        if elapsed > self.predictor_timeout * NS_PER_SECOND:
            self.metrics.predictor_timeouts += 1
            self._throttle.log("timeout", logging.WARNING,
                               "predictor %s took %.3f s (budget %.3f s); bar skipped",
                               predictor.name, elapsed / NS_PER_SECOND, self.predictor_timeout)
            return
        self._conclude(bar, estimate, elapsed, event.timestamp)

    def _admit(self, bar: Bar) -> Features | None:
        """The bar's features if it may be predicted on, else None with the reason counted."""
        reason = untrusted_reason(bar)
        if reason is None and is_stale(bar, self._clock(), self.max_bar_age_ns):
            reason = "stale"
        history = self.manager.pipeline.bars.get((bar.symbol, bar.timeframe))
        if reason is None and (history is None or len(history) < self.min_history):
            reason = "insufficient_history"
        if reason is not None:
            self.metrics.skipped[reason] += 1
            return None
        assert history is not None
        try:
            features = self.features(history.array(self.lookback))
        except Exception as exc:  # user feature code must not stop the stream
            self.metrics.feature_errors += 1
            self._throttle.log("features", logging.ERROR, "feature function raised %r", exc,
                               exc_info=exc)
            return None
        if not all(math.isfinite(value) for value in features.values()):
            self.metrics.skipped["non_finite_features"] += 1
            return None
        return features

    def _predict_sync(self, predictor: SyncPredictor, features: Features) -> Estimate | None:
        try:
            return predictor.predict(features)
        except Exception as exc:  # a faulty model must not stop the stream
            self._predictor_failed(exc)
            return None

    def _predictor_failed(self, exc: Exception) -> None:
        self.metrics.predictor_errors += 1
        level = logging.WARNING if isinstance(exc, InvalidPrediction) else logging.ERROR
        self._throttle.log("predictor", level, "predictor %s failed: %r", self.predictor.name,
                           exc, exc_info=exc)

    # -- async predictors ----------------------------------------------------------
    def _submit(self, job: _Job) -> None:
        """Start predicting for ``job``'s symbol, or make it the one waiting (latest bar wins)."""
        symbol = job.bar.symbol
        if symbol in self._in_flight:
            if symbol in self._pending:
                self.metrics.skipped["superseded"] += 1
            self._pending[symbol] = job
            return
        self._in_flight[symbol] = asyncio.get_running_loop().create_task(
            self._predict_async(job), name=f"engine-predict:{symbol}")

    async def _predict_async(self, job: _Job | None) -> None:
        predictor = self.predictor
        assert isinstance(predictor, AsyncCallablePredictor)
        while job is not None:
            symbol = job.bar.symbol
            if is_stale(job.bar, self._clock(), self.max_bar_age_ns):
                self.metrics.skipped["stale"] += 1
            else:
                started = time.perf_counter_ns()
                try:
                    estimate = await asyncio.wait_for(predictor.predict(job.features),
                                                      self.predictor_timeout)
                except TimeoutError:
                    self.metrics.predictor_timeouts += 1
                    self._throttle.log("timeout", logging.WARNING,
                                       "predictor %s gave no answer within %.3f s; bar skipped",
                                       predictor.name, self.predictor_timeout)
                except Exception as exc:  # a faulty model must not stop the stream
                    self._predictor_failed(exc)
                else:
                    self._conclude(job.bar, estimate, time.perf_counter_ns() - started,
                                   job.trigger_ns)
            job = self._pending.pop(symbol, None)
            if job is None:
                del self._in_flight[symbol]

    # -- prediction -> signal -> execution ----------------------------------------
    def _conclude(self, bar: Bar, estimate: Estimate, latency_ns: int, trigger_ns: int) -> None:
        """Emit the prediction, then the signal it implies, then execute it."""
        bus = self.manager.bus
        prediction = Prediction(bar.symbol, bar.timeframe, bar.open_time,
                                estimate.probability_up, self.predictor.name, latency_ns,
                                estimate.score, bar)
        self.metrics.predictions += 1
        bus.emit(EventType.PREDICTION, prediction, SOURCE)
        decision = self.rule.decide(estimate.probability_up)
        if decision is None:
            self.metrics.no_signal += 1
            return
        now = self._clock()
        if is_stale(bar, now, self.max_bar_age_ns):
            self.metrics.skipped["stale"] += 1
            return
        direction, confidence = decision
        signal = Signal(bar.symbol, direction, confidence, bar, prediction, now)
        self.metrics.signals += 1
        if direction is SignalDirection.BUY:
            self.metrics.buy_signals += 1
        else:
            self.metrics.sell_signals += 1
        self.metrics.latency.add(now - trigger_ns)
        bus.emit(EventType.SIGNAL, signal, SOURCE, now)
        if self._executor is not None:
            self._executor.dispatch(signal)
