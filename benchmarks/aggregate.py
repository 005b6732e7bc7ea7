"""Throughput of the hot path: raw Binance trade frames -> Tick -> 1m/5m/15m bars -> bus.

Prints messages/s for the full pipeline (one no-op TICK handler subscribed),
for the same behind the gap detection the StreamManager puts in front of it
(the manager's path), and for the manager's path with the fast path turned off
(every trade the general way), beside a baseline measured in the same run:
decoding the same frames with msgspec and summing one field. It also prints
the floor of any path that hands each trade to a TICK handler as a Tick: the
codec's decode (every field, the Tick, the clock read) and the TICK event to
the one no-op handler, with no gate, bar, buffer or gap detection. Figures are
medians of several interleaved runs, timed on this process's CPU time (other
load on the machine does not count); the ratio to the baseline is what to
compare across machines.

``--stages`` also prints where a trade's time goes, in µs per trade: each stage
of the manager's path alone, over the same (pre-decoded) trades.

    python benchmarks/aggregate.py [--messages 1000000] [--symbols 100] [--runs 5] [--stages]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import msgspec

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.pipeline import TickPipeline
from bot.data.recovery import GapRecovery
from bot.data.tick_buffer import TickRing
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


_cpu = time.process_time
T = TypeVar("T")


def run_baseline(frames: list[bytes]) -> float:
    decode = msgspec.json.Decoder(_Frame).decode
    start = _cpu()
    total = 0
    for frame in frames:
        total += len(decode(frame).data.p)
    return len(frames) / (_cpu() - start)


class _UnusedHistory:
    """A sequenced venue's REST history that the gap-free benchmark never asks."""

    sequenced = True
    tick_rule = False

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        raise AssertionError("the benchmark's frames have no gap")


def _pipeline(fast_path: bool = True) -> TickPipeline:
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m", "5m", "15m"]),
                            fast_path=fast_path)
    pipeline.bus.on_tick(lambda event: None)
    return pipeline


def _codec(symbols: list[str]) -> BinanceCodec:
    codec = BinanceCodec()
    for s in symbols:
        codec.add_symbol(s)
    return codec


def _recovery(pipeline: TickPipeline, symbols: list[str]) -> GapRecovery:
    recovery = GapRecovery(pipeline, {"binance": _UnusedHistory()})
    for s in symbols:
        recovery.track("binance", s)
    return recovery


def run_pipeline(symbols: list[str], frames: list[bytes], *, with_recovery: bool,
                 fast_path: bool = True) -> float:
    pipeline = _pipeline(fast_path)
    decode = _codec(symbols).decode_trade
    process: Callable[[Tick], object] = pipeline.process
    if with_recovery:
        process = _recovery(pipeline, symbols).on_tick
    clock = time.time_ns
    start = _cpu()
    for frame in frames:
        tick = decode(frame, clock())
        if tick is not None:
            process(tick)
    rate = len(frames) / (_cpu() - start)
    assert pipeline.bars_completed > 0
    return rate


def run_floor(symbols: list[str], frames: list[bytes]) -> float:
    """Decode each frame into a Tick and hand it to the one TICK handler, nothing else."""
    decode = _codec(symbols).decode_trade
    emit = _pipeline().bus.emit_tick
    clock = time.time_ns
    start = _cpu()
    for frame in frames:
        tick = decode(frame, clock())
        if tick is not None:
            emit(tick, tick.venue, tick.receive_timestamp)
    return len(frames) / (_cpu() - start)


def _per_trade_us(items: Iterable[T], step: Callable[[T], object], n: int) -> float:
    start = _cpu()
    for item in items:
        step(item)
    return (_cpu() - start) * 1e6 / n


def stage_costs(symbols: list[str], frames: list[bytes]) -> dict[str, float]:
    """µs per trade of each stage of the manager's path alone, over the same trades."""
    n = len(frames)
    clock = time.time_ns
    decode = _codec(symbols).decode_trade
    ticks = [t for t in (decode(frame, clock()) for frame in frames) if t is not None]
    capacity = StreamManagerConfig().tick_buffer_size
    rings = {s: TickRing(capacity) for s in symbols}  # one per symbol, as the pipeline keeps
    emit = _pipeline().bus.emit_tick
    general = _pipeline(fast_path=False)
    return {
        "decode_trade (with the clock read)": _per_trade_us(
            frames, lambda f: decode(f, clock()), n),
        "gate.admit": _per_trade_us(ticks, _pipeline().gate.admit, n),
        "aggregator.add": _per_trade_us(
            ticks, _pipeline().aggregator.add, n),
        "tick buffer append (the symbol's ring)": _per_trade_us(
            ticks, lambda t: rings[t.symbol].append(t), n),
        "bus.emit_tick (1 no-op handler)": _per_trade_us(
            ticks, lambda t: emit(t, t.venue, t.receive_timestamp), n),
        "general: pipeline.build (add + buffer + event)": _per_trade_us(
            ticks, _pipeline(fast_path=False).build, n),
        "general: recovery.on_tick (gate + cursor + build)": _per_trade_us(
            ticks, _recovery(general, symbols).on_tick, n),
        "fast: pipeline.process": _per_trade_us(
            ticks, _pipeline().process, n),
        "fast: recovery.on_tick": _per_trade_us(
            ticks, _recovery(_pipeline(), symbols).on_tick, n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stages", action="store_true",
                        help="also print each stage's µs per trade")
    args = parser.parse_args()
    symbols, frames = make_frames(args.messages, args.symbols)
    base, floor, pipe, guarded, general = [], [], [], [], []
    for _ in range(args.runs):
        base.append(run_baseline(frames))
        floor.append(run_floor(symbols, frames))
        pipe.append(run_pipeline(symbols, frames, with_recovery=False))
        guarded.append(run_pipeline(symbols, frames, with_recovery=True))
        general.append(run_pipeline(symbols, frames, with_recovery=True, fast_path=False))
    b, f, p, g, o = (statistics.median(x) for x in (base, floor, pipe, guarded, general))
    print(f"messages: {args.messages:,} across {args.symbols} symbols, runs: {args.runs}")
    print(f"baseline (msgspec decode + sum one field): {b:,.0f} msg/s (median)")
    print(f"floor (bytes -> Tick -> TICK handler, no bars): {f:,.0f} msg/s (median)")
    print(f"pipeline (bytes -> Tick -> 1m/5m/15m bars -> bus): {p:,.0f} msg/s (median)")
    print(f"with gap detection in front (the manager's path): {g:,.0f} msg/s (median)")
    print(f"the manager's path with the fast path off: {o:,.0f} msg/s (median)")
    print(f"ratio pipeline/baseline: {p / b:.3f}; with gap detection: {g / b:.3f}; "
          f"fast path off: {o / b:.3f}; floor: {f / b:.3f}")
    if args.stages:
        runs = [stage_costs(symbols, frames) for _ in range(args.runs)]
        print(f"per stage, alone (µs per trade, median of {args.runs}; baseline "
              f"{1e6 / b:.3f}, the manager's path {1e6 / g:.3f}):")
        for name in runs[0]:
            print(f"  {name}: {statistics.median(r[name] for r in runs):.3f}")


if __name__ == "__main__":
    main()
