"""Memory per buffered tick and per stored bar, and what keeping a tick costs.

Bytes per buffered tick: ``--symbols`` tick buffers of ``--capacity`` ticks each,
filled past their capacity with fresh Tick objects (as decoded from frames),
measured with tracemalloc: the packed ring the pipeline keeps (``TickRing``)
beside a ``deque(maxlen=capacity)`` of the same ticks, what it kept before.
Bytes per bar: a full ``BarHistory`` of ``--bars`` bars. Append cost: ns per
tick appended to a full buffer, ring beside deque. Every figure is the median of
``--runs`` runs, the ring's and the deque's measured in the same run.

    python benchmarks/memory.py [--capacity 10000] [--symbols 3] [--bars 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from bot.data.history import BarHistory
from bot.data.models import Bar, Side, Tick
from bot.data.tick_buffer import TickRing

T0 = 1_735_689_600 * 10**9


class Buffer(Protocol):
    def append(self, tick: Tick, /) -> None: ...


def fresh_ticks(symbol: str, n: int) -> Iterator[Tick]:
    """Trades as a decoder makes them: new floats and ints in every tick."""
    for i in range(n):
        yield Tick("binance", symbol, 50_000.0 + i / 100, (i % 997) / 1000,
                   Side.BUY if i % 3 else Side.SELL, 10**9 + i, T0 + i * 1000, T0 + i * 1000 + 5)


def traced_bytes(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated after ``build()`` (what it returns keeps them alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def bytes_per_tick(make: Callable[[int], Buffer], capacity: int, n_symbols: int) -> float:
    def fill() -> list[Buffer]:
        buffers = []
        for s in range(n_symbols):
            buffer = make(capacity)
            for tick in fresh_ticks(f"S{s}/USDT", 2 * capacity + 77):
                buffer.append(tick)
            buffers.append(buffer)
        return buffers

    held, _ = traced_bytes(fill)
    return held / (capacity * n_symbols)


def bytes_per_bar(n_bars: int) -> float:
    def fill() -> BarHistory:
        history = BarHistory("binance", "BTC/USDT", "1m", n_bars)
        for i in range(n_bars + 7):
            t = T0 + i * 60 * 10**9
            history.append(Bar("binance", "BTC/USDT", "1m", t, t + 60 * 10**9 - 1, 1.0, 2.0,
                               0.5, 1.5, 10.0, 15.0, 6.0, 4.0, 9.0, 100, i * 100, i * 100 + 99))
        return history

    held, _ = traced_bytes(fill)
    return held / n_bars


def append_ns(make: Callable[[int], Buffer], ticks: list[Tick], capacity: int) -> float:
    """ns per append into a buffer already full."""
    buffer = make(capacity)
    for tick in ticks[:capacity]:
        buffer.append(tick)
    append = buffer.append
    start = time.perf_counter_ns()
    for tick in ticks:
        append(tick)
    return (time.perf_counter_ns() - start) / len(ticks)


def old_buffer(capacity: int) -> deque[Tick]:
    return deque(maxlen=capacity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=10_000, help="ticks kept per symbol")
    parser.add_argument("--symbols", type=int, default=3)
    parser.add_argument("--bars", type=int, default=500, help="bars kept per series")
    parser.add_argument("--appends", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ticks = list(fresh_ticks("BTC/USDT", args.appends))
    ring_bytes, deque_bytes, bar_bytes, ring_ns, deque_ns = [], [], [], [], []
    for _ in range(args.runs):
        ring_bytes.append(bytes_per_tick(TickRing, args.capacity, args.symbols))
        deque_bytes.append(bytes_per_tick(old_buffer, args.capacity, args.symbols))
        bar_bytes.append(bytes_per_bar(args.bars))
        ring_ns.append(append_ns(TickRing, ticks, args.capacity))
        deque_ns.append(append_ns(old_buffer, ticks, args.capacity))
    med = statistics.median
    print(f"tick buffers: {args.symbols} x {args.capacity:,} ticks; bar history: {args.bars} "
          f"bars; runs: {args.runs} (medians)")
    print(f"bytes per buffered tick: ring {med(ring_bytes):.1f}, "
          f"deque of Ticks {med(deque_bytes):.1f} (x{med(deque_bytes) / med(ring_bytes):.1f})")
    print(f"bytes per bar in history: {med(bar_bytes):.1f}")
    print(f"append ns per tick: ring {med(ring_ns):.0f}, deque {med(deque_ns):.0f}")


if __name__ == "__main__":
    main()
