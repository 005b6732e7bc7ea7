"""Bar features computed from a ``BarHistory`` array at each bar close.

A feature function takes the last bars of one series as the NumPy structured
array :meth:`BarHistory.array` returns (dtype ``BAR_DTYPE``, oldest first, the
bar that just closed last) and returns ``{name: value}``. Working on the array
rather than a DataFrame keeps a bar close to tens of microseconds.

The default set (:func:`default_features`), with ``c`` the closes, ``v`` the
volumes and ``[-1]`` the bar that just closed:

=========================  ==============================================================
``return_1/5/15``          ``c[-1] / c[-1-h] - 1`` for h = 1, 5, 15 bars
``volatility_20``          sample std (ddof=1) of the last 20 one-bar log returns
``rsi_14``                 Wilder's RSI: EMAs (alpha 1/14) of gains and losses; 50 when
                           the window saw no move at all
``ema_spread_12_26``       ``(EMA12(c) - EMA26(c)) / c[-1]``, EMAs with alpha 2/(n+1)
``vwap_distance_20``       ``c[-1] / VWAP20 - 1``, VWAP20 = sum(quote volume) / sum(volume)
                           over the last 20 bars (NaN when they traded nothing)
``taker_imbalance``        ``(taker buy - taker sell) / volume`` of the last bar (0 if none)
``volume_zscore_20``       ``(v[-1] - mean) / std`` over the last 20 bars, std ddof=0
                           (0 when the window is constant)
``trade_count_zscore_20``  the same for the trade count
``bar_range``              ``(high - low) / close`` of the last bar
=========================  ==============================================================

How many bars a feature function needs: :func:`needs_bars` declares it
(``default_features`` needs ``WINDOW + 1``), :func:`combine`'s function needs
the most of its parts, and :func:`bars_needed` finds it for a function that declares
nothing by calling it on a synthetic history, so the engine can refuse a
``min_history`` too short for its features when it is built rather than fail on
every bar.

EMAs follow ``pandas.ewm(adjust=False)``: seeded with the first value of the
array and updated bar by bar, so with the default look-back of
:data:`DEFAULT_LOOKBACK` bars the seed's weight left in EMA26 is below 1e-6.
RSI and EMA values agree with the ``ta`` library given the same closes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Final, TypeVar

import numpy as np

from bot.data.history import BAR_DTYPE

FeatureFunction = Callable[[np.ndarray], Mapping[str, float]]
"""``f(bars) -> {name: value}``; ``bars`` is a ``BAR_DTYPE`` array, oldest first."""

_F = TypeVar("_F", bound=FeatureFunction)
_NEEDS = "bars_needed"  # the attribute needs_bars sets on a feature function
_PARTS = "feature_parts"  # the functions combine() merged

RETURN_HORIZONS: Final = (1, 5, 15)
WINDOW: Final = 20
RSI_PERIOD: Final = 14
EMA_FAST: Final = 12
EMA_SLOW: Final = 26

DEFAULT_FEATURE_NAMES: Final = (
    "return_1", "return_5", "return_15", "volatility_20", "rsi_14", "ema_spread_12_26",
    "vwap_distance_20", "taker_imbalance", "volume_zscore_20", "trade_count_zscore_20",
    "bar_range",
)

# The longest window of the default set is EMA26; a few more bars let it settle.
DEFAULT_MIN_HISTORY: Final = 30
# Bars handed to feature functions: enough for every EMA to forget its seed.
DEFAULT_LOOKBACK: Final = 200


def needs_bars(count: int) -> Callable[[_F], _F]:
    """Declare that a feature function needs at least ``count`` bars (a decorator).

    ``@needs_bars(50)`` on a function using a 50-bar window lets the engine
    refuse ``min_history < 50`` at construction.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"needs_bars({count!r}): the count must be an integer >= 1")

    def declare(function: _F) -> _F:
        setattr(function, _NEEDS, count)
        return function
    return declare


def bars_needed(function: FeatureFunction, most: int) -> int | None:
    """The fewest bars ``function`` works on: declared with :func:`needs_bars`, else found.

    Finding it calls ``function`` on a synthetic history (a random walk with
    consistent OHLCV) of 1, 2, ... up to ``most`` bars and returns the first
    length it does not raise IndexError on (an index past the start of the
    window is what too short a history raises). None when it fails at every
    length for another reason: that is not a history question.
    """
    declared = getattr(function, _NEEDS, None)
    if isinstance(declared, int):
        return declared
    parts = getattr(function, _PARTS, None)
    if parts is not None:
        needs = [n for n in (bars_needed(part, most) for part in parts) if n is not None]
        return max(needs) if needs else None
    history = _synthetic_bars(most)
    for count in range(1, most + 1):
        try:
            function(history[-count:])
        except IndexError:
            continue
        except Exception:
            return None
        return count
    return None


def feature_name(function: FeatureFunction) -> str:
    """How a feature function is named in messages; a combined one by its parts."""
    parts = getattr(function, _PARTS, None)
    if parts is not None:
        return " + ".join(feature_name(part) for part in parts)
    return str(getattr(function, "__name__", function))


def _synthetic_bars(count: int) -> np.ndarray:
    """``count`` plausible bars (fixed seed): prices around 100, every field consistent."""
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, count)))
    bars = np.zeros(count, dtype=BAR_DTYPE)
    minute = 60 * 10**9
    bars["open_time"] = np.arange(count, dtype=np.int64) * minute
    bars["close_time"] = bars["open_time"] + minute - 1
    bars["close"] = close
    bars["open"] = np.concatenate(([close[0]], close[:-1]))
    bars["high"] = np.maximum(bars["open"], close) * 1.001
    bars["low"] = np.minimum(bars["open"], close) * 0.999
    bars["volume"] = rng.uniform(1.0, 10.0, count)
    bars["buy_volume"] = bars["volume"] * rng.uniform(0.0, 1.0, count)
    bars["sell_volume"] = bars["volume"] - bars["buy_volume"]
    bars["quote_volume"] = bars["volume"] * close
    bars["buy_quote_volume"] = bars["buy_volume"] * close
    bars["trade_count"] = rng.integers(1, 100, count)
    return bars


@needs_bars(WINDOW + 1)
def default_features(bars: np.ndarray) -> dict[str, float]:
    """The default feature set (see the module docstring); needs ``WINDOW + 1`` bars at least."""
    close = bars["close"].astype(np.float64)
    last = bars[-1]
    price = float(close[-1])
    out = {f"return_{h}": price / float(close[-1 - h]) - 1.0 for h in RETURN_HORIZONS}
    log_returns = np.diff(np.log(close[-WINDOW - 1:]))
    out["volatility_20"] = float(np.std(log_returns, ddof=1))
    out["rsi_14"] = rsi(close, RSI_PERIOD)
    out["ema_spread_12_26"] = (ema_last(close, 2.0 / (EMA_FAST + 1))
                               - ema_last(close, 2.0 / (EMA_SLOW + 1))) / price
    window = bars[-WINDOW:]
    traded = float(window["volume"].sum())
    out["vwap_distance_20"] = (price * traded / float(window["quote_volume"].sum()) - 1.0
                               if traded > 0 else math.nan)
    volume = float(last["volume"])
    out["taker_imbalance"] = ((float(last["buy_volume"]) - float(last["sell_volume"])) / volume
                              if volume > 0 else 0.0)
    out["volume_zscore_20"] = zscore_last(window["volume"])
    out["trade_count_zscore_20"] = zscore_last(window["trade_count"])
    out["bar_range"] = (float(last["high"]) - float(last["low"])) / price
    return out


def combine(functions: Sequence[FeatureFunction]) -> FeatureFunction:
    """One feature function returning the union of ``functions``' outputs (later names win).

    ``combine([default_features, my_features])`` extends the default set.
    """
    functions = tuple(functions)
    if not functions:
        raise ValueError("combine() needs at least one feature function")
    if len(functions) == 1:
        return functions[0]

    def combined(bars: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for function in functions:
            out.update(function(bars))
        return out

    setattr(combined, _PARTS, functions)  # bars_needed takes the most of its parts
    return combined


def ema_last(values: np.ndarray, alpha: float) -> float:
    """Last value of the EMA ``y[t] = (1 - alpha) * y[t-1] + alpha * x[t]``, ``y[0] = x[0]``.

    Unrolled into one dot product with cached weights: ``y[T] = (1-alpha)^T x[0]
    + sum_t alpha (1-alpha)^(T-t) x[t]``.
    """
    return float(np.dot(_ema_weights(alpha, len(values)), values))


@lru_cache(maxsize=64)
def _ema_weights(alpha: float, n: int) -> np.ndarray:
    decay = (1.0 - alpha) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    weights = alpha * decay
    weights[0] = decay[0]
    weights.flags.writeable = False
    return weights


def rsi(close: np.ndarray, period: int = RSI_PERIOD) -> float:
    """Wilder's RSI of the last close: EMAs (alpha ``1/period``) of gains and of losses.

    As in ``ta``'s ``RSIIndicator`` the averages start from a zero move at the
    first bar. 100 when there were only gains, 0 when only losses, 50 when the
    price never moved (``ta`` says 100 there, which would read as overbought).
    """
    moves = np.diff(close, prepend=close[0])
    alpha = 1.0 / period
    gain = ema_last(np.maximum(moves, 0.0), alpha)
    loss = ema_last(np.maximum(-moves, 0.0), alpha)
    if loss == 0.0:
        return 50.0 if gain == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def zscore_last(values: np.ndarray) -> float:
    """``(x[-1] - mean) / std`` (ddof=0) of ``values``; 0 when they are all equal."""
    x = values.astype(np.float64)
    std = float(x.std())
    return (float(x[-1]) - float(x.mean())) / std if std > 0 else 0.0
