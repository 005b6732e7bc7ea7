"""Streamed bars equal a vectorized reference for any tick sequence (hypothesis)."""

from __future__ import annotations

import itertools
import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.data.aggregation import BarAggregator
from bot.data.models import Bar, BarFlag, Side, Tick
from tests.reference import reference_bars

SECOND = 10**9
TIMEFRAMES = ["1m", "5m", "15m"]
START = 1_735_689_600 * SECOND  # an epoch multiple of 15 minutes


@st.composite
def tick_streams(draw: st.DrawFn) -> tuple[list[Tick], list[Tick], int]:
    """(true trades, delivered sequence with duplicates and disorder, disorder bound ns)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    n_symbols = draw(st.integers(1, 3))
    disorder_ns = draw(st.sampled_from([0, 0, 200_000_000, 1_500 * 1_000_000]))
    trades: list[Tick] = []
    for s in range(n_symbols):
        t = START + rng.randrange(0, 120 * SECOND)
        price = rng.uniform(1, 1000)
        trade_id = 1000 * (s + 1)
        for _ in range(draw(st.integers(1, 150))):
            gap = rng.choice([0, 0, 1_000, 50_000_000, SECOND, 20 * SECOND,
                              rng.randrange(SECOND, 40 * 60 * SECOND)])  # incl. quiet periods
            t += gap
            price = round(max(0.01, price * (1 + rng.gauss(0, 0.002))), 2)
            trade_id += 1
            side = rng.choice([Side.BUY, Side.SELL])
            trades.append(Tick("binance", f"S{s}/USDT", price, round(rng.uniform(0.001, 5), 3),
                               side, trade_id, t, t))
    # Delivery: each trade may arrive up to disorder_ns late, and some arrive twice.
    delivered = [(tk.timestamp + rng.randrange(0, disorder_ns + 1), i, tk)
                 for i, tk in enumerate(trades)]
    for i in rng.sample(range(len(trades)), k=min(len(trades), rng.randrange(0, 10))):
        tk = trades[i]
        delivered.append((tk.timestamp + rng.randrange(0, disorder_ns + 1), len(delivered), tk))
    delivered.sort(key=lambda x: (x[0], x[1]))
    return trades, [tk for _, _, tk in delivered], disorder_ns


def _stream(delivered: list[Tick], disorder_ns: int) -> list[Bar]:
    agg = BarAggregator(TIMEFRAMES, reorder_window_ns=disorder_ns,
                        grace_ns=disorder_ns + SECOND)
    bars: list[Bar] = []
    for tick in delivered:
        out = agg.add(tick)
        if out:
            bars.extend(out)
    bars.extend(agg.advance(max(t.timestamp for t in delivered) + 3600 * SECOND))
    return bars


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_streams())
def test_streamed_bars_equal_vectorized_reference_for_1m_5m_15m(data) -> None:
    trades, delivered, disorder_ns = data
    bars = _stream(delivered, disorder_ns)
    for tf in TIMEFRAMES:
        ref = reference_bars(trades, tf)
        mine = [b for b in bars if b.timeframe == tf]
        traded = {(b.symbol, b.open_time): b for b in mine if not b.flags & BarFlag.EMPTY}
        assert set(traded) == set(ref.index)
        for (symbol, open_time), row in ref.iterrows():
            bar = traded[(symbol, open_time)]
            assert (bar.open, bar.high, bar.low, bar.close) == (
                row.open, row.high, row.low, row.close)
            assert bar.trade_count == row.trade_count
            assert (bar.first_trade_id, bar.last_trade_id) == (
                row.first_trade_id, row.last_trade_id)
            for field in ("volume", "quote_volume", "buy_volume", "sell_volume",
                          "buy_quote_volume"):
                assert math.isclose(getattr(bar, field), row[field], rel_tol=1e-9, abs_tol=1e-12)
        _check_empty_bars_fill_the_quiet_intervals(mine, tf)


def _check_empty_bars_fill_the_quiet_intervals(bars: list[Bar], tf: str) -> None:
    by_symbol: dict[str, list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    for series in by_symbol.values():
        length = series[0].close_time + 1 - series[0].open_time
        for prev, cur in itertools.pairwise(series):
            assert cur.open_time == prev.open_time + length, "bars are contiguous, in order"
            if cur.flags & BarFlag.EMPTY:
                assert cur.open == cur.high == cur.low == cur.close == prev.close
                assert cur.volume == 0 and cur.trade_count == 0


@settings(max_examples=60, deadline=None)
@given(tick_streams())
def test_no_trade_is_counted_twice_and_none_is_lost(data) -> None:
    trades, delivered, disorder_ns = data
    bars = _stream(delivered, disorder_ns)
    for tf in TIMEFRAMES:
        assert sum(b.trade_count for b in bars if b.timeframe == tf) == len(trades)
