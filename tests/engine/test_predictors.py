"""Every kind of predictor behind one interface."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from bot.data.engine.predictors import (
    AsyncCallablePredictor,
    CallablePredictor,
    InvalidPrediction,
    MomentumPredictor,
    SklearnPredictor,
    as_predictor,
)

FEATURES = {"a": 1.0, "b": -2.0}


def test_none_means_the_momentum_predictor() -> None:
    assert isinstance(as_predictor(None), MomentumPredictor)


def test_momentum_predictor_formula_by_hand() -> None:
    # score = 0.02 / (0.01 * sqrt 5) = 0.8944; P = 1 / (1 + 0.40884) = 0.70980
    estimate = MomentumPredictor().predict({"return_5": 0.02, "volatility_20": 0.01})
    assert estimate.score == pytest.approx(2 / math.sqrt(5))
    assert estimate.probability_up == pytest.approx(0.70980, abs=1e-5)


def test_momentum_predictor_is_neutral_without_volatility() -> None:
    estimate = MomentumPredictor().predict({"return_5": 0.0, "volatility_20": 0.0})
    assert estimate.probability_up == 0.5


def test_plain_callable_returns_its_probability() -> None:
    predictor = as_predictor(lambda features: 0.25)
    assert isinstance(predictor, CallablePredictor)
    assert predictor.predict(FEATURES).probability_up == 0.25


@pytest.mark.parametrize("output", [1.5, -0.1, float("nan"), "high", None])
def test_output_that_is_not_a_probability_is_invalid(output: object) -> None:
    with pytest.raises(InvalidPrediction):
        as_predictor(lambda features: output).predict(FEATURES)


async def test_async_callable_is_awaited() -> None:
    async def model(features: dict[str, float]) -> float:
        return 0.8

    predictor = as_predictor(model)
    assert isinstance(predictor, AsyncCallablePredictor)
    assert (await predictor.predict(FEATURES)).probability_up == 0.8


def test_object_with_async_call_is_async() -> None:
    class Model:
        async def __call__(self, features: dict[str, float]) -> float:
            return 0.5

    assert isinstance(as_predictor(Model()), AsyncCallablePredictor)


def test_not_a_predictor_is_refused() -> None:
    with pytest.raises(TypeError, match="predict_proba"):
        as_predictor(42)


def _fitted(labels: list[int]) -> LogisticRegression:
    x = np.array([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0], [-2.0, 0.0]])
    return LogisticRegression().fit(x, labels)


def test_predict_proba_gives_the_probability_of_the_up_class() -> None:
    model = _fitted([1, 1, 0, 0])
    expected = model.predict_proba(np.array([[1.0, -2.0]]))[0][1]
    estimate = SklearnPredictor(model).predict(FEATURES)
    assert estimate.probability_up == pytest.approx(expected)
    assert estimate.probability_up > 0.5


def test_up_class_is_the_greatest_label() -> None:
    model = _fitted([1, 1, -1, -1])
    expected = model.predict_proba(np.array([[1.0, -2.0]]))[0][list(model.classes_).index(1)]
    assert SklearnPredictor(model).predict(FEATURES).probability_up == pytest.approx(expected)


def test_model_fitted_on_a_dataframe_gets_its_columns_in_order_without_warning() -> None:
    frame = pd.DataFrame({"b": [0.0, 0.0, 0.0, 0.0], "a": [1.0, 2.0, -1.0, -2.0]})
    model = LogisticRegression().fit(frame, [1, 1, 0, 0])
    expected = model.predict_proba(pd.DataFrame({"b": [-2.0], "a": [1.0]}))[0][1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimate = SklearnPredictor(model).predict(FEATURES)
    assert estimate.probability_up == pytest.approx(expected)


def test_predict_only_classifier_label_becomes_zero_or_one() -> None:
    class LabelOnly:
        classes_ = np.array([0, 1])

        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.array([1 if x[0][0] > 0 else 0])

    predictor = as_predictor(LabelOnly())
    assert predictor.predict({"a": 1.0}).probability_up == 1.0  # type: ignore[union-attr]
    assert predictor.predict({"a": -1.0}).probability_up == 0.0  # type: ignore[union-attr]


def test_predict_only_regressor_must_output_a_probability() -> None:
    model = LinearRegression().fit(np.array([[0.0], [1.0]]), [0.2, 0.4])
    assert SklearnPredictor(model).predict({"a": 0.5}).probability_up == pytest.approx(0.3)
    with pytest.raises(InvalidPrediction):
        SklearnPredictor(model).predict({"a": 10.0})


def test_explicit_feature_names_choose_the_columns() -> None:
    model = DummyClassifier(strategy="prior").fit(np.zeros((4, 1)), [1, 1, 1, 0])
    predictor = SklearnPredictor(model, feature_names=["b"])
    assert predictor.predict(FEATURES).probability_up == pytest.approx(0.75)
