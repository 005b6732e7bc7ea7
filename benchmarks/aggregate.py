"""Throughput of the hot path: raw Binance trade frames -> Tick -> 1m/5m/15m bars -> bus.

Prints messages/s for the full pipeline (one no-op TICK handler subscribed),
and for the same behind the gap detection the StreamManager puts in front of it,
beside a baseline measured in the same run: decoding the same frames with
msgspec and summing one field. Figures are medians of several runs; the ratio
pipeline/baseline is what to compare across machines.

    python benchmarks/aggregate.py [--messages 1000000] [--symbols 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import msgspec

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.pipeline import TickPipeline
from bot.data.recovery import GapRecovery
from bot.data.venues.binance.session import BinanceCodec
from bot.data.venues.history import TradePosition


def make_frames(n: int, n_symbols: int, seed: int = 7) -> tuple[list[str], list[bytes]]:
    """Realistic combined-stream trade frames: random walk prices, ~1,000 trades/s overall."""
    rng = random.Random(seed)
    symbols = [f"S{i:03d}/USDT" for i in range(n_symbols)]
    raws = [s.replace("/", "") for s in symbols]
    prices = [rng.uniform(1, 50000) for _ in symbols]
    ids = [1_000_000 * (i + 1) for i in range(n_symbols)]
    t_ms = 1_735_689_600_000
    frames = []
    for _ in range(n):
        i = rng.randrange(n_symbols)
        t_ms += rng.choice((0, 0, 1, 1, 2))
        prices[i] *= 1 + rng.gauss(0, 0.0005)
        ids[i] += 1
        raw = raws[i]
        frames.append(
            b'{"stream":"%s@trade","data":{"e":"trade","E":%d,"s":"%s","t":%d,"p":"%.8f",'
            b'"q":"%.8f","T":%d,"m":%s,"M":true}}' % (
                raw.lower().encode(), t_ms + 1, raw.encode(), ids[i], prices[i],
                rng.expovariate(10), t_ms, b"true" if rng.random() < 0.5 else b"false"))
    return symbols, frames


class _Trade(msgspec.Struct):
    p: str


class _Frame(msgspec.Struct):
    data: _Trade


def run_baseline(frames: list[bytes]) -> float:
    decode = msgspec.json.Decoder(_Frame).decode
    start = time.perf_counter()
    total = 0
    for frame in frames:
        total += len(decode(frame).data.p)
    return len(frames) / (time.perf_counter() - start)


class _UnusedHistory:
    """A sequenced venue's REST history that the gap-free benchmark never asks."""

    sequenced = True
    tick_rule = False

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        raise AssertionError("the benchmark's frames have no gap")


def run_pipeline(symbols: list[str], frames: list[bytes], *, with_recovery: bool) -> float:
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m", "5m", "15m"]))
    pipeline.bus.on_tick(lambda event: None)
    codec = BinanceCodec()
    for s in symbols:
        codec.add_symbol(s)
    decode = codec.decode_trade
    process: Callable[[Tick], object] = pipeline.process
    if with_recovery:
        recovery = GapRecovery(pipeline, {"binance": _UnusedHistory()})
        for s in symbols:
            recovery.track("binance", s)
        process = recovery.on_tick
    clock = time.time_ns
    start = time.perf_counter()
    for frame in frames:
        tick = decode(frame, clock())
        if tick is not None:
            process(tick)
    rate = len(frames) / (time.perf_counter() - start)
    assert pipeline.bars_completed > 0
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    symbols, frames = make_frames(args.messages, args.symbols)
    base, pipe, guarded = [], [], []
    for _ in range(args.runs):
        base.append(run_baseline(frames))
        pipe.append(run_pipeline(symbols, frames, with_recovery=False))
        guarded.append(run_pipeline(symbols, frames, with_recovery=True))
    b, p, g = statistics.median(base), statistics.median(pipe), statistics.median(guarded)
    print(f"messages: {args.messages:,} across {args.symbols} symbols, runs: {args.runs}")
    print(f"baseline (msgspec decode + sum one field): {b:,.0f} msg/s (median)")
    print(f"pipeline (bytes -> Tick -> 1m/5m/15m bars -> bus): {p:,.0f} msg/s (median)")
    print(f"with gap detection in front (the manager's path): {g:,.0f} msg/s (median)")
    print(f"ratio pipeline/baseline: {p / b:.3f}; with gap detection: {g / b:.3f}")


if __name__ == "__main__":
    main()
