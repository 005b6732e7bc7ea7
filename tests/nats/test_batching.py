"""Where tick batches end: from the trades alone, the same on every worker; and how they are named.

The reference grouping here is written apart from :class:`TickBatcher`: runs of
one symbol's consecutive trades in one exchange-time window, split every
``max_ticks``.
"""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.data.models import Side, Tick
from bot.data.nats.batching import TickBatch, TickBatcher
from bot.data.nats.subjects import batch_msg_id

T0 = 1_735_689_600_000_000_000
MS = 1_000_000


def trade(symbol: str, trade_id: int, ts: int) -> Tick:
    return Tick("binance", symbol, 100.0, 1.0, Side.BUY, trade_id, ts, ts)


def reference(feed: list[Tick], window_ns: int, max_ticks: int) -> dict[str, list[list[int]]]:
    """Per symbol, its trades' ids grouped by window, each group cut every ``max_ticks``."""
    runs: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
    for tick in feed:
        window = tick.timestamp // window_ns
        symbol_runs = runs[tick.symbol]
        if symbol_runs and symbol_runs[-1][0] == window and len(symbol_runs[-1][1]) < max_ticks:
            symbol_runs[-1][1].append(tick.trade_id)
        else:
            symbol_runs.append((window, [tick.trade_id]))
    return {symbol: [ids for _, ids in r] for symbol, r in runs.items()}


def cut(feed: list[Tick], window_ns: int, max_ticks: int, chunks: list[int]) -> list[TickBatch]:
    """Feed ``feed`` to a batcher a chunk at a time, asking for due batches in between
    (the clock never reaches a deadline: nothing is late), then close the rest."""
    batcher = TickBatcher(window_ns, max_ticks=max_ticks)
    out: list[TickBatch] = []
    now = 0
    i = 0
    for size in chunks:
        for tick in feed[i:i + size]:
            batcher.add(tick, out.append, now)
        i += size
        now += 1
        batcher.due(now, out.append)
    for tick in feed[i:]:
        batcher.add(tick, out.append, now)
    batcher.close_all(out.append)
    return out


def by_symbol(batches: list[TickBatch]) -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = defaultdict(list)
    for batch in batches:
        assert {t.symbol for t in batch.ticks} == {batch.symbol}
        out[batch.symbol].append([t.trade_id for t in batch.ticks])
    return dict(out)


def interleave(feed: list[Tick], rng: random.Random) -> list[Tick]:
    """The same trades, each symbol's in its order, the symbols mixed another way (another
    worker's connections deliver them in another order)."""
    queues: dict[str, list[Tick]] = defaultdict(list)
    for tick in feed:
        queues[tick.symbol].append(tick)
    out = []
    while queues:
        symbol = rng.choice(sorted(queues))
        out.append(queues[symbol].pop(0))
        if not queues[symbol]:
            del queues[symbol]
    return out


@st.composite
def feeds(draw: st.DrawFn) -> list[Tick]:
    """A few symbols' trades: consecutive ids, exchange times that never go back."""
    feed = []
    next_id = {"BTC/USDT": 1, "ETH/USDT": 1_000, "SOL/USDT": 50}
    clock = dict.fromkeys(next_id, T0)
    for _ in range(draw(st.integers(1, 300))):
        symbol = draw(st.sampled_from(sorted(next_id)))
        clock[symbol] += draw(st.sampled_from([0, 0, 1, 3 * MS, 20 * MS, 70 * MS, 400 * MS]))
        feed.append(trade(symbol, next_id[symbol], clock[symbol]))
        next_id[symbol] += 1
    return feed


@settings(max_examples=150, deadline=None)
@given(feed=feeds(), window_ms=st.sampled_from([1, 10, 50, 250]),
       max_ticks=st.sampled_from([1, 3, 1000]), seed=st.integers(0, 2**32))
def test_batches_end_where_the_trades_say_whatever_the_arrival_pace_and_order(
        feed: list[Tick], window_ms: int, max_ticks: int, seed: int) -> None:
    rng = random.Random(seed)
    window_ns = window_ms * MS
    one = cut(feed, window_ns, max_ticks, [len(feed)])
    chunks = [rng.randint(1, 20) for _ in range(len(feed))]
    other = cut(interleave(feed, rng), window_ns, max_ticks, chunks)
    expected = reference(feed, window_ns, max_ticks)
    assert by_symbol(one) == expected
    assert by_symbol(other) == expected
    ids = {batch_msg_id(b.venue, b.symbol, [t.trade_id for t in b.ticks]) for b in one}
    assert ids == {batch_msg_id(b.venue, b.symbol, [t.trade_id for t in b.ticks])
                   for b in other}, "the same batches under the same message ids"
    assert len(ids) == len(one), "no two batches share an id"


def test_a_batch_filled_partly_never_shares_the_whole_ones_id() -> None:
    whole = batch_msg_id("binance", "BTC/USDT", [7, 8, 9, 10])
    assert whole.startswith("binance:BTC/USDT:7-10:4:")
    assert whole == batch_msg_id("binance", "BTC/USDT", [7, 8, 9, 10])
    for part in ([7, 8, 9], [8, 9, 10], [7, 9, 10], [7, 8, 10], [7, 10]):
        assert batch_msg_id("binance", "BTC/USDT", part) != whole, part
    # The same first, last and count, another trade in the middle: still another id.
    assert (batch_msg_id("binance", "BTC/USDT", [7, 8, 10])
            != batch_msg_id("binance", "BTC/USDT", [7, 9, 10]))
    assert batch_msg_id("binance", "ETH/USDT", [7, 8, 9, 10]) != whole
    assert batch_msg_id("binance", "BTC/USDT", [8, 7]) != batch_msg_id("binance", "BTC/USDT",
                                                                      [7, 8])


def test_a_window_without_a_later_trade_goes_out_one_window_after_its_end() -> None:
    batcher = TickBatcher(50 * MS)
    out: list[TickBatch] = []
    opened = 1_000 * MS  # the local clock when the first trade came
    batcher.add(trade("BTC/USDT", 1, T0 + 10 * MS), out.append, opened)  # 40 ms left
    batcher.add(trade("BTC/USDT", 2, T0 + 30 * MS), out.append, opened + 20 * MS)
    assert batcher.next_deadline() == opened + 90 * MS
    batcher.due(opened + 90 * MS - 1, out.append)
    assert not out and batcher.open_ticks == 2
    batcher.due(opened + 90 * MS, out.append)
    assert [[t.trade_id for t in b.ticks] for b in out] == [[1, 2]]
    assert not batcher and batcher.next_deadline() is None


def test_a_trade_of_another_window_closes_the_batch_and_its_deadline_no_longer_counts(
        ) -> None:
    batcher = TickBatcher(50 * MS)
    out: list[TickBatch] = []
    batcher.add(trade("BTC/USDT", 1, T0), out.append, 0)
    batcher.add(trade("BTC/USDT", 2, T0 + 50 * MS), out.append, 0)
    assert [[t.trade_id for t in b.ticks] for b in out] == [[1]]
    assert batcher.next_deadline() == 100 * MS  # the second batch's, not the first's
    batcher.close_through("BTC/USDT", T0 + 50 * MS, out.append)  # a bar ended before it
    assert [[t.trade_id for t in b.ticks] for b in out] == [[1]] and batcher
    batcher.close_through("BTC/USDT", T0 + 100 * MS, out.append)  # its own window's end
    batcher.close_through("BTC/USDT", T0 + 200 * MS, out.append)  # nothing open: nothing
    assert [[t.trade_id for t in b.ticks] for b in out] == [[1], [2]]


def test_window_zero_sends_every_trade_alone() -> None:
    batcher = TickBatcher(0)
    out: list[TickBatch] = []
    for i in range(3):
        batcher.add(trade("BTC/USDT", i, T0), out.append, 0)
    assert [[t.trade_id for t in b.ticks] for b in out] == [[0], [1], [2]]
    assert not batcher
