"""The tick ring gives what a ``deque(maxlen=capacity)`` of the same ticks gives, exactly,
in a fraction of the memory."""

from __future__ import annotations

import gc
import struct
import tracemalloc
from collections import deque
from itertools import takewhile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.data.config import StreamManagerConfig
from bot.data.models import UPDATES_ALL, UPDATES_HIGH_LOW, Side, Tick
from bot.data.pipeline import TickPipeline
from bot.data.tick_buffer import TickRing

VENUE, SYMBOL = "binance", "BTC/USDT"
T0 = 1_735_689_600 * 10**9
INT64 = st.integers(-(2**63), 2**63 - 1)


def exactly(tick: Tick) -> tuple[Any, ...]:
    """A tick's fields with floats as their bits: equal only when equal to the last bit
    (NaN and -0.0 included), and other fields compared with their type (a side equal
    to a Side member may come back as that member)."""
    return (tick.side, *(struct.pack("<d", v) if type(v) is float else (type(v), v)
                         for v in (tick.venue, tick.symbol, tick.price, tick.volume,
                                   tick.trade_id, tick.timestamp, tick.receive_timestamp,
                                   tick.conditions, tick.exchange, tick.updates)))


def plain_ticks() -> st.SearchStrategy[Tick]:
    """A crypto trade of the ring's symbol: any float, any int64."""
    return st.builds(Tick, st.just(VENUE), st.just(SYMBOL), st.floats(), st.floats(),
                     st.sampled_from(Side), INT64, INT64, INT64)


def stock_ticks() -> st.SearchStrategy[Tick]:
    """A stock trade: sale conditions, an exchange code, fields it may not update."""
    return st.builds(
        Tick, st.just(VENUE), st.just(SYMBOL), st.floats(0, 1e6), st.floats(0, 1e6),
        st.sampled_from(Side), INT64, INT64, INT64,
        st.lists(st.sampled_from(["@", "I", "T", "Z", "4"]), max_size=3).map(tuple),
        st.sampled_from(["", "V", "Q", "N"]), st.sampled_from([0, UPDATES_HIGH_LOW, UPDATES_ALL]))


def unfit_ticks() -> st.SearchStrategy[Tick]:
    """Ticks no row holds: another venue or symbol, ints beyond int64, a side not a Side."""
    return st.one_of(
        st.builds(Tick, st.sampled_from(["alpaca", VENUE]), st.sampled_from(["ETH/USDT", "TSLA"]),
                  st.floats(), st.floats(), st.sampled_from(Side), INT64, INT64, INT64),
        st.builds(Tick, st.just(VENUE), st.just(SYMBOL), st.floats(), st.floats(),
                  st.sampled_from(Side),
                  st.integers(2**63, 2**70) | st.integers(-(2**70), -(2**63) - 1), INT64, INT64),
        st.builds(Tick, st.just(VENUE), st.just(SYMBOL), st.floats(), st.floats(),
                  st.sampled_from(["buy", "sideways", ""]), INT64, INT64, INT64))


def any_ticks() -> st.SearchStrategy[Tick]:
    return st.one_of(plain_ticks(), plain_ticks(), stock_ticks(), unfit_ticks())


def deque_recent(ticks: deque[Tick], limit: int | None) -> list[Tick]:
    """The old buffer's answer, as ``TickPipeline.recent_ticks`` gave it."""
    if limit is None or limit >= len(ticks):
        return list(ticks)
    return list(ticks)[-limit:] if limit > 0 else []


def deque_count_since(ticks: deque[Tick], since: int) -> int:
    """The health check's old count: the newest ticks in a row at or after ``since``."""
    return sum(1 for _ in takewhile(lambda t: t.timestamp >= since, reversed(ticks)))


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 40),
       steps=st.lists(st.tuples(any_ticks(), st.booleans()), max_size=120),
       limits=st.lists(st.none() | st.integers(-2, 50), min_size=1, max_size=4),
       cutoff=INT64)
def test_any_appends_and_any_limit_give_what_a_bounded_deque_gives(
        capacity: int, steps: list[tuple[Tick, bool]],
        limits: list[int | None], cutoff: int) -> None:
    ring, reference = TickRing(capacity), deque[Tick](maxlen=capacity)
    for tick, look in steps:
        ring.append(tick)
        reference.append(tick)
        if look:
            assert len(ring) == len(reference)
            for limit in limits:
                got, want = ring.recent(limit), deque_recent(reference, limit)
                assert [exactly(t) for t in got] == [exactly(t) for t in want]
            for since in (cutoff, -(2**63)):  # -(2**63): every tick counts
                assert ring.count_since(since) == deque_count_since(reference, since)
            assert ring.last_receive_timestamp() == reference[-1].receive_timestamp


def test_an_empty_ring_has_no_ticks_no_count_and_no_receive_time() -> None:
    ring = TickRing(10)
    assert (len(ring), ring.recent(), ring.recent(5), ring.count_since(0),
            ring.last_receive_timestamp()) == (0, [], [], 0, None)


def test_recent_ticks_are_equal_objects_with_their_sides_as_side_members() -> None:
    ticks = [Tick(VENUE, SYMBOL, 100.0 + i, 0.5, side, 1000 + i, T0 + i, T0 + i + 7)
             for i, side in enumerate([Side.BUY, Side.SELL, Side.UNKNOWN] * 40)]
    ring = TickRing(100)
    for tick in ticks:
        ring.append(tick)
    got = ring.recent()
    assert got == ticks[-100:]
    assert all(type(t.side) is Side for t in got)


def test_a_ring_of_stock_trades_with_ever_new_conditions_keeps_its_kind_table_bounded() -> None:
    ring = TickRing(8)
    ticks = [Tick("alpaca", "TSLA", 200.0, 1.0, Side.BUY, i, T0 + i, T0 + i,
                  (f"c{i}",), "V", UPDATES_HIGH_LOW) for i in range(5000)]
    for tick in ticks:
        ring.append(tick)
    assert ring.recent() == ticks[-8:]
    # Every tick brought a new combination; the table keeps about what the rows use.
    assert len(ring._kinds) <= 2 * 8 + 3 + 1


def test_a_full_ring_of_ten_thousand_ticks_takes_at_most_64_bytes_a_tick() -> None:
    capacity = 10_000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ring = TickRing(capacity)
        for i in range(3 * capacity + 77):  # fresh objects, as decoded from frames
            ring.append(Tick(VENUE, SYMBOL, 50_000.0 + i / 100, i / 1000,
                             Side.BUY if i % 3 else Side.SELL, 10**9 + i, T0 + i, T0 + i + 5))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(ring) == capacity
    assert held / capacity <= 64, f"{held / capacity:.1f} bytes a tick"


def test_rings_of_symbols_that_rarely_trade_hold_what_they_have_not_their_capacity() -> None:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rings = [TickRing(10_000) for _ in range(1000)]
        for r, ring in enumerate(rings):
            for i in range(5):
                ring.append(Tick(VENUE, f"S{r}/USDT", 1.0 + i, 2.0, Side.BUY, i, T0 + i, T0 + i))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(len(ring) == 5 for ring in rings)
    assert held / len(rings) < 2000, f"{held / len(rings):.0f} bytes a ring of 5 ticks"


def traced_pipeline_bytes(tick_buffer_size: int, symbols: list[str], per_symbol: int) -> int:
    """Bytes a pipeline holds after building ``per_symbol`` fresh trades of each symbol."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"],
                                                    tick_buffer_size=tick_buffer_size))
        for i in range(per_symbol):
            for s, symbol in enumerate(symbols):
                t = T0 + i * 1_000_000 + s
                assert pipeline.process(Tick(VENUE, symbol, 100.0 + i % 50 / 8, 0.25 + i % 7,
                                             Side.BUY if i % 3 else Side.SELL, 10**9 + i, t, t))
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_pipeline_keeps_each_buffered_tick_in_at_most_64_bytes() -> None:
    symbols, size = ["BTC/USDT", "ETH/USDT", "XRP/USDT"], 10_000
    full = traced_pipeline_bytes(size, symbols, 2 * size + 11)
    bare = traced_pipeline_bytes(1, symbols, 2 * size + 11)  # the same, but one tick kept
    per_tick = (full - bare) / (len(symbols) * (size - 1))
    assert per_tick <= 64, f"{per_tick:.1f} bytes a buffered tick"


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_ring_without_room_is_refused_with_what_it_needs(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity >= 1"):
        TickRing(capacity)


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 12), ticks=st.lists(any_ticks(), max_size=60))
def test_appending_plain_fields_keeps_what_appending_the_tick_keeps(
        capacity: int, ticks: list[Tick]) -> None:
    """The fast path's append (the fields it holds, with the tick for a fallback) gives what
    append gives, tick for tick, also when a field does not fit a row: the packing it
    began is overwritten, and no older row is touched."""
    plain, whole = TickRing(capacity, VENUE, SYMBOL), TickRing(capacity, VENUE, SYMBOL)
    for tick in ticks:
        plain_kind = (tick.venue, tick.symbol, tick.conditions, tick.exchange, tick.updates) \
            == (VENUE, SYMBOL, (), "", UPDATES_ALL) and tick.side in list(Side)
        if plain_kind:
            plain.append_plain(tick, tick.price, tick.volume, tick.trade_id, tick.timestamp,
                               tick.receive_timestamp, tick.side)
        else:
            plain.append(tick)
        whole.append(tick)
        assert [exactly(t) for t in plain.recent()] == [exactly(t) for t in whole.recent()]


def test_a_plain_trade_whose_receive_time_does_not_fit_leaves_the_oldest_row_intact() -> None:
    ring = TickRing(3, VENUE, SYMBOL)
    kept = [Tick(VENUE, SYMBOL, 1.0 + i, 2.0, Side.BUY, i, T0 + i, T0 + i) for i in range(3)]
    for tick in kept:
        ring.append_plain(tick, tick.price, tick.volume, tick.trade_id, tick.timestamp,
                          tick.receive_timestamp, tick.side)
    odd = Tick(VENUE, SYMBOL, 9.0, 9.0, Side.SELL, 9, T0 + 9, 2**70)
    ring.append_plain(odd, odd.price, odd.volume, odd.trade_id, odd.timestamp,
                      odd.receive_timestamp, odd.side)
    assert ring.recent() == [*kept[1:], odd]
