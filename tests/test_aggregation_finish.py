"""Where the data ends: ``BarAggregator.finish`` completes what is whole, flags what it cuts.

Checked against the separately written reference (tests/reference.py) for any
trades and any end: the bars hold exactly the trades before the end, a bar is
PARTIAL exactly when the data began after it opened or ended before it closed,
and no bar opens at or after the end.
"""

from __future__ import annotations

import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.data.aggregation import BarAggregator
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.timeframes import TIMEFRAME_SECONDS
from tests.reference import reference_bars

SECOND = 10**9
TIMEFRAMES = ["1m", "5m", "15m"]
START = 1_735_689_600 * SECOND


@st.composite
def cut_recordings(draw: st.DrawFn) -> tuple[list[Tick], int]:
    """Trades of one symbol in exchange order, and where the recording ends (ns, exclusive)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    t = START + rng.randrange(0, 120 * SECOND)
    price = 100.0
    trades = []
    for trade_id in range(1, draw(st.integers(1, 120)) + 1):
        t += rng.choice([0, 1_000, SECOND, 20 * SECOND, rng.randrange(SECOND, 30 * 60 * SECOND)])
        price = round(max(0.01, price * (1 + rng.gauss(0, 0.002))), 2)
        trades.append(Tick("binance", "BTC/USDT", price, round(rng.uniform(0.001, 5), 3),
                           rng.choice([Side.BUY, Side.SELL]), trade_id, t, t))
    last = trades[-1].timestamp
    end = draw(st.sampled_from([
        last + 1,                                            # just after the last trade
        last - last % (60 * SECOND) + 60 * SECOND,           # at the end of its minute
        last + rng.randrange(1, 40 * 60 * SECOND),           # some quiet time later
    ]))
    return trades, end


def _finished(trades: list[Tick], end: int) -> list[Bar]:
    agg = BarAggregator(TIMEFRAMES)
    bars: list[Bar] = []
    for tick in trades:
        bars.extend(agg.add(tick) or ())
    bars.extend(agg.finish("BTC/USDT", end))
    return bars


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut_recordings())
def test_finished_bars_hold_the_trades_before_the_end_and_flag_the_cut_ones(data) -> None:
    trades, end = data
    bars = _finished(trades, end)
    first = trades[0].timestamp
    for tf in TIMEFRAMES:
        length = TIMEFRAME_SECONDS[tf] * SECOND
        mine = [b for b in bars if b.timeframe == tf]
        opens = [b.open_time for b in mine]
        assert opens == list(range(opens[0], opens[-1] + 1, length))  # contiguous, no repeat
        assert opens[0] == first - first % length and opens[-1] < end
        for bar in mine:
            cut = bar.open_time < first or bar.close_time >= end
            assert bool(bar.flags & BarFlag.PARTIAL) == cut, (tf, bar, end)
        ref = reference_bars(trades, tf)
        traded = {b.open_time: b for b in mine if not b.flags & BarFlag.EMPTY}
        assert sorted(traded) == sorted(open_time for _, open_time in ref.index)
        for (_, open_time), row in ref.iterrows():
            bar = traded[open_time]
            assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (
                row.open, row.high, row.low, row.close, row.trade_count)
            assert math.isclose(bar.volume, row.volume, rel_tol=1e-9)


def test_a_trade_after_the_end_for_a_cut_bar_is_late() -> None:
    trades = [Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY, i, START + i * SECOND,
                   START + i * SECOND) for i in range(1, 4)]
    agg = BarAggregator(["1m"])
    for tick in trades:
        agg.add(tick)
    (cut,) = agg.finish("BTC/USDT", START + 4 * SECOND)
    assert cut.flags == BarFlag.PARTIAL and cut.trade_count == 3
    later = Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY, 9, START + 10 * SECOND,
                 START + 10 * SECOND)
    assert agg.add(later) is None and agg.counters.late == 1


def test_finishing_a_symbol_without_trades_makes_no_bar() -> None:
    assert BarAggregator(["1m"]).finish("BTC/USDT", START) == []
