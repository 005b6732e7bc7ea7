"""Turning whatever the user calls a model into one interface.

The engine accepts as ``predictor``:

- a plain callable ``f(features) -> probability_up``;
- an async callable ``async f(features) -> probability_up``;
- a scikit-learn style object: ``predict_proba`` is used when present (the
  probability of the greatest of ``classes_``, i.e. ``1``/``True`` for up/down
  labels), else ``predict`` (a class label becomes 1.0 for that class and 0.0
  otherwise; without ``classes_`` the output must itself be a probability);
- ``None``: :class:`MomentumPredictor`, a model-free default.

``features`` is the ``{name: value}`` dict of the feature functions. Every
output is checked to be a finite probability in [0, 1]; anything else raises
:class:`InvalidPrediction`, which the engine counts as a predictor error.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

Features = Mapping[str, float]


class Estimate(NamedTuple):
    """A predictor's answer: the probability of an up move and an optional raw score."""

    probability_up: float
    score: float | None = None


class InvalidPrediction(ValueError):
    """A predictor returned something that is not a probability in [0, 1]."""


class SyncPredictor(Protocol):
    """A predictor the engine calls inline on the bar-close path."""

    name: str

    def predict(self, features: Features) -> Estimate: ...


def as_predictor(predictor: object | None) -> SyncPredictor | AsyncCallablePredictor:
    """Wrap ``predictor`` (see the module docstring) in the matching adapter."""
    if predictor is None:
        return MomentumPredictor()
    if isinstance(predictor, (MomentumPredictor, CallablePredictor, AsyncCallablePredictor,
                              SklearnPredictor)):
        return predictor
    if hasattr(predictor, "predict_proba") or hasattr(predictor, "predict"):
        return SklearnPredictor(predictor)
    if callable(predictor):
        if is_async_callable(predictor):
            return AsyncCallablePredictor(predictor)
        return CallablePredictor(predictor)
    raise TypeError(
        f"predictor must be a callable, an async callable or an object with predict_proba "
        f"or predict, got {predictor!r}")


def probability(value: object) -> float:
    """``value`` as a float in [0, 1], or :class:`InvalidPrediction`."""
    try:
        p = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidPrediction(f"predictor returned {value!r}, not a number") from None
    if not 0.0 <= p <= 1.0:  # also refuses NaN
        raise InvalidPrediction(f"predictor returned {value!r}, not a probability in [0, 1]")
    return p


class MomentumPredictor:
    """The default, model-free predictor: ``P(up) = logistic(return_5 / (volatility_20 * √5))``.

    The score is the last five bars' return in units of its expected spread under
    a random walk; 0 (P = 0.5) when volatility is zero. It needs the default
    feature names ``return_5`` and ``volatility_20``.
    """

    name = "momentum"

    def predict(self, features: Features) -> Estimate:
        spread = features["volatility_20"] * math.sqrt(5.0)
        score = features["return_5"] / spread if spread > 0 else 0.0
        return Estimate(1.0 / (1.0 + math.exp(-score)), score)


class CallablePredictor:
    """A plain function of the features returning the probability of an up move."""

    def __init__(self, fn: Callable[[Features], float]) -> None:
        self.fn = fn
        self.name = callable_name(fn)

    def predict(self, features: Features) -> Estimate:
        return Estimate(probability(self.fn(features)))


class AsyncCallablePredictor:
    """An async function of the features returning the probability of an up move."""

    def __init__(self, fn: Callable[[Features], Awaitable[float]]) -> None:
        self.fn = fn
        self.name = callable_name(fn)

    async def predict(self, features: Features) -> Estimate:
        return Estimate(probability(await self.fn(features)))


class SklearnPredictor:
    """A scikit-learn style model fed one row of features per bar.

    Columns are ``feature_names`` when given, else the model's
    ``feature_names_in_`` (set when it was fitted on a DataFrame), else the
    order of the first features dict it sees. The row is a NumPy array, not a
    DataFrame, which saves about a millisecond a call; scikit-learn's warning
    about missing feature names is silenced for that reason.
    """

    def __init__(self, model: Any, feature_names: Sequence[str] | None = None) -> None:
        if not (hasattr(model, "predict_proba") or hasattr(model, "predict")):
            raise TypeError(f"model {model!r} has neither predict_proba nor predict")
        self.model = model
        self.name = type(model).__name__
        names = feature_names if feature_names is not None else getattr(
            model, "feature_names_in_", None)
        self.feature_names: tuple[str, ...] | None = (
            tuple(str(n) for n in names) if names is not None else None)
        self._fitted_with_names = hasattr(model, "feature_names_in_")
        self._use_proba = hasattr(model, "predict_proba")

    def predict(self, features: Features) -> Estimate:
        names = self.feature_names
        if names is None:
            names = self.feature_names = tuple(features)
        row = np.fromiter((features[n] for n in names), np.float64, len(names)).reshape(1, -1)
        if self._fitted_with_names:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return self._estimate(row)
        return self._estimate(row)

    def _estimate(self, row: np.ndarray) -> Estimate:
        model = self.model
        classes = getattr(model, "classes_", None)
        if self._use_proba:
            column = int(np.argmax(classes)) if classes is not None else -1
            return Estimate(probability(model.predict_proba(row)[0][column]))
        output = model.predict(row)[0]
        if classes is not None:
            return Estimate(1.0 if output == np.max(classes) else 0.0)
        return Estimate(probability(output))


def is_async_callable(fn: object) -> bool:
    """True for a coroutine function or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    return inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def callable_name(fn: object) -> str:
    """A readable name for logs and the ``Prediction.model`` field."""
    return str(getattr(fn, "__qualname__", None) or type(fn).__name__)
