"""Tick-to-signal latency of the trading engine, beside a same-run baseline.

For each measured bar, untimed trades fill the bar; then the trade that
completes it is stamped with the wall clock as its receive time and processed.
The engine measures from that stamp to the SIGNAL event (default features, a
scikit-learn ``LogisticRegression`` fitted on synthetic bars, and the default
momentum predictor for comparison). The baseline is the same completing
trades through a bare pipeline without the engine: aggregation, bar history
and the BAR_COMPLETE event. Figures are medians over several runs.

The threshold is set just above 0.5 so that every bar gives a signal and a
sample, and the staleness check is off because the synthetic bars are dated in
the past.

    python benchmarks/engine_latency.py [--bars 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.data.backtest import PipelineSource
from bot.data.config import StreamManagerConfig
from bot.data.engine import StreamingTradingEngine, default_features
from bot.data.history import BAR_DTYPE
from bot.data.models import Side, Tick
from bot.data.timeframes import NS_PER_SECOND

MINUTE = 60 * NS_PER_SECOND
SYMBOL = "BTC/USDT"
WARMUP_BARS = 250
TRADES_PER_BAR = 20


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))


def fit_model(seed: int = 3) -> LogisticRegression:
    """A LogisticRegression on the default features of synthetic bars (label: next close up)."""
    close = random_walk(1_000, seed)
    rng = np.random.default_rng(seed)
    bars = np.zeros(len(close), dtype=BAR_DTYPE)
    bars["close"] = close
    bars["high"] = close * (1 + rng.uniform(0, 0.001, len(close)))
    bars["low"] = close * (1 - rng.uniform(0, 0.001, len(close)))
    bars["volume"] = rng.uniform(1, 10, len(close))
    bars["buy_volume"] = bars["volume"] * rng.uniform(0, 1, len(close))
    bars["sell_volume"] = bars["volume"] - bars["buy_volume"]
    bars["quote_volume"] = bars["volume"] * close
    bars["trade_count"] = rng.integers(1, 200, len(close))
    rows = [default_features(bars[t - 199: t + 1]) for t in range(199, len(close) - 1)]
    x = np.array([list(row.values()) for row in rows])
    y = (close[200:] > close[199:-1]).astype(int)
    return LogisticRegression().fit(x, y)


def trades(n_bars: int, seed: int) -> list[list[Tick]]:
    """``n_bars`` minutes of trades ending now; each minute's first trade completes the last bar.

    They end at the current minute because the pipeline's gate refuses trades
    stamped too far from the venue's clock (synthetic dates would be refused)."""
    t0 = (time.time_ns() // MINUTE - n_bars) * MINUTE
    rng = np.random.default_rng(seed)
    close = random_walk(n_bars * TRADES_PER_BAR, seed)
    out: list[list[Tick]] = []
    trade_id = 0
    for minute in range(n_bars):
        bar = []
        for k in range(TRADES_PER_BAR):
            trade_id += 1
            ts = t0 + minute * MINUTE + k * (MINUTE // TRADES_PER_BAR)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            bar.append(Tick("binance", SYMBOL, float(close[trade_id - 1]),
                            float(rng.exponential(0.1)) + 1e-6, side, trade_id, ts, ts))
        out.append(bar)
    return out


def restamp(tick: Tick) -> Tick:
    """The same trade, received now."""
    return Tick(tick.venue, tick.symbol, tick.price, tick.volume, tick.side, tick.trade_id,
                tick.timestamp, time.time_ns())


def warm_source(minutes: list[list[Tick]]) -> PipelineSource:
    """A source whose history already holds the warm-up bars."""
    source = PipelineSource(StreamManagerConfig(supported_timeframes=["1m"]))
    for bar in minutes[:WARMUP_BARS]:
        for tick in bar:
            source.pipeline.process(tick)
    return source


def feed_measured(source: PipelineSource, minutes: list[list[Tick]]) -> list[int]:
    """Process the measured minutes; return each completing trade's processing time (ns)."""
    process = source.pipeline.process
    samples: list[int] = []
    for bar in minutes[WARMUP_BARS:]:
        completing = restamp(bar[0])
        process(completing)
        samples.append(time.time_ns() - completing.receive_timestamp)
        for tick in bar[1:]:
            process(tick)
    return samples[1:]  # the first measured trade completes no new bar


def run_baseline(minutes: list[list[Tick]]) -> tuple[float, float]:
    """p50 and p99 (ms) of processing the completing trades without the engine."""
    values = np.array(feed_measured(warm_source(minutes), minutes), dtype=np.float64) / 1e6
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


async def run_engine(minutes: list[list[Tick]], predictor: object | None) -> tuple[float, float]:
    """p50 and p99 (ms) of tick-to-signal as the engine measures it."""
    source = warm_source(minutes)
    engine = StreamingTradingEngine(source, predictor=predictor, signal_threshold=0.5 + 1e-9,
                                    max_bar_age=float("inf"))
    await engine.start()
    feed_measured(source, minutes)
    metrics = engine.get_metrics()
    await engine.stop()
    latency = metrics["tick_to_signal_latency"]
    assert latency["count"] >= 0.9 * (len(minutes) - WARMUP_BARS - 1), metrics
    return float(latency["p50_ms"]), float(latency["p99_ms"])


def report(name: str, runs: list[tuple[float, float]]) -> None:
    p50 = statistics.median(r[0] for r in runs)
    p99 = statistics.median(r[1] for r in runs)
    print(f"{name:50s} {p50:8.3f} {p99:8.3f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=500, help="measured bars per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    model = fit_model()
    minutes = trades(WARMUP_BARS + args.bars + 1, seed=11)
    print(f"{args.bars} bars per run, {args.runs} runs, medians over runs; "
          f"{TRADES_PER_BAR} trades/bar, history warm-up {WARMUP_BARS} bars")
    print(f"{'case':50s} {'p50 ms':>8s} {'p99 ms':>8s}")
    report("baseline: bare pipeline, no engine",
           [run_baseline(minutes) for _ in range(args.runs)])
    report("engine: default features + LogisticRegression",
           [await run_engine(minutes, model) for _ in range(args.runs)])
    report("engine: default features + momentum (default)",
           [await run_engine(minutes, None) for _ in range(args.runs)])


if __name__ == "__main__":
    asyncio.run(main())
