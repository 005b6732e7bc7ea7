"""Throughput of bulk aggregation: a tick table -> 1m/5m/15m bars, equal to the stream's.

Prints ticks/s of ``aggregate_ticks`` (median of several runs) beside a baseline
measured in the same run on the same frame: a plain polars group-by summing the
volume per minute, the least any per-bar aggregation has to do. The ratio
bulk/baseline is what to compare across machines. The last row shows the
general path taken when the input is out of order or holds duplicates.

    python benchmarks/bulk_aggregate.py [--ticks 10000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from bot.data.store import aggregate_ticks

MINUTE_NS = 60 * 10**9
TIMEFRAMES = ["1m", "5m", "15m"]


def make_frame(n: int, seed: int = 7) -> pl.DataFrame:
    """One symbol's trades as the store returns them: ~1,000 trades/s, random-walk prices."""
    rng = np.random.default_rng(seed)
    gaps = rng.choice(np.array([0, 0, 1_000, 1_000_000, 2_000_000], dtype=np.int64), size=n)
    timestamps = 1_735_689_600 * 10**9 + np.cumsum(gaps)
    prices = np.round(50_000 * np.exp(np.cumsum(rng.normal(0, 1e-5, n))), 2)
    return pl.DataFrame({
        "timestamp": timestamps,
        "trade_id": np.arange(4_000_000_000, 4_000_000_000 + n, dtype=np.int64),
        "price": prices,
        "volume": np.round(rng.exponential(0.1, n), 5) + 1e-5,
        "side": pl.Series(rng.random(n) < 0.5).replace_strict({True: "buy", False: "sell"},
                                                                return_dtype=pl.String),
    })


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    frame = make_frame(args.ticks)
    n = frame.height

    def baseline() -> pl.DataFrame:
        return frame.group_by(pl.col("timestamp") // MINUTE_NS).agg(pl.col("volume").sum())

    def bulk() -> dict[str, pl.DataFrame]:
        return aggregate_ticks(frame, TIMEFRAMES)

    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    side_enum = frame.with_columns(pl.col("side").cast(pl.Enum(["buy", "sell", "unknown"])))
    rows = {
        "baseline: polars group_by(minute) sum(volume)": median_seconds(baseline, args.runs),
        "aggregate_ticks 1m/5m/15m (side String)": median_seconds(bulk, args.runs),
        "aggregate_ticks 1m/5m/15m (side Enum)": median_seconds(
            lambda: aggregate_ticks(side_enum, TIMEFRAMES), args.runs),
        "aggregate_ticks, shuffled input (dedupe + sort)": median_seconds(
            lambda: aggregate_ticks(shuffled, TIMEFRAMES), args.runs),
    }
    base = rows["baseline: polars group_by(minute) sum(volume)"]
    print(f"{n:,} ticks, median of {args.runs} runs")
    for name, seconds in rows.items():
        print(f"  {name:<48} {n / seconds / 1e6:7.1f} M ticks/s  "
              f"({seconds * 1e3:7.1f} ms, {base / seconds:4.2f}x baseline)")


if __name__ == "__main__":
    main()
