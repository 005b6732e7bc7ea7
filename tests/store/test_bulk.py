"""Bulk aggregation gives exactly the streaming aggregator's bars, vectorized."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.data.frames import BAR_COLUMNS
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.store import TradeStore, aggregate_ticks
from bot.data.store.layout import ticks_to_table
from tests.helpers import btc_minute_trades, xrpeth_trades
from tests.store.support import (
    TIMEFRAMES,
    assert_bars_equal,
    frame_bars,
    record_live,
    stream_bars,
)

SECOND = 10**9
START = 1_735_689_600 * SECOND  # a multiple of 15 minutes


def _frame(ticks: list[Tick]) -> pl.DataFrame:
    return pl.from_arrow(ticks_to_table(ticks))  # type: ignore[return-value]


def _assert_same(ticks: list[Tick], *, emit_empty: bool = True,
                 coverage_start: int | None = None) -> None:
    """Bulk over ``ticks`` equals the stream fed the same ticks, for 1m/5m/15m."""
    expected = stream_bars(ticks, emit_empty=emit_empty, complete_from=coverage_start)
    bulk = aggregate_ticks(_frame(ticks), TIMEFRAMES, emit_empty=emit_empty,
                           coverage_start=coverage_start)
    for tf in TIMEFRAMES:
        assert_bars_equal([b for b in expected if b.timeframe == tf], frame_bars(bulk[tf]))


@pytest.mark.parametrize("trades", [btc_minute_trades, xrpeth_trades],
                         ids=["btcusdt-minute", "xrpeth-2.5-days"])
def test_fixture_trades_give_the_streaming_bars_for_1m_5m_15m(
        trades: Callable[[], list[Tick]]) -> None:
    _assert_same(trades())


def test_fixture_trades_without_empty_bars_and_with_a_given_coverage_start() -> None:
    ticks = xrpeth_trades()
    _assert_same(ticks, emit_empty=False)
    _assert_same(ticks[500:], coverage_start=ticks[0].timestamp)


def test_btc_minute_is_whole_when_until_is_the_files_end_and_partial_without() -> None:
    """The file holds the whole minute: given its end, the bar is whole; without it, the
    data is known only up to the last trade, inside the minute."""
    ticks = btc_minute_trades()
    whole = frame_bars(aggregate_ticks(_frame(ticks), ["1m"], coverage_start=START,
                                       until=START + 60 * SECOND)["1m"])
    assert [(b.trade_count, b.flags) for b in whole] == [(2631, BarFlag.NONE)]
    cut = frame_bars(aggregate_ticks(_frame(ticks), ["1m"], coverage_start=START)["1m"])
    assert [(b.trade_count, b.flags) for b in cut] == [(2631, BarFlag.PARTIAL)]


def test_pandas_in_pandas_out_shaped_as_the_live_bar_dataframe() -> None:
    frame = _frame(btc_minute_trades()).to_pandas()
    polars_bars = frame_bars(aggregate_ticks(_frame(btc_minute_trades()), ["5m"])["5m"])
    out = aggregate_ticks(frame, ["5m"])["5m"]
    assert isinstance(out, pd.DataFrame) and tuple(out.columns) == BAR_COLUMNS
    assert out.index.name == "open_time" and str(out.index.dtype) == "datetime64[ns, UTC]"
    assert [t.value for t in out.index] == [b.open_time for b in polars_bars]
    assert out["trade_count"].tolist() == [b.trade_count for b in polars_bars]


def test_the_stores_pandas_ticks_aggregate_as_their_polars_form(tmp_path: Path) -> None:
    ticks = btc_minute_trades()
    asyncio.run(record_live(ticks, tmp_path))
    store = TradeStore(tmp_path)
    by_pandas = aggregate_ticks(store.ticks("binance", "BTC/USDT"), ["1m"],
                                venue="binance", symbol="BTC/USDT")["1m"]
    by_polars = frame_bars(aggregate_ticks(store.ticks("binance", "BTC/USDT", as_polars=True),
                                           ["1m"])["1m"])
    assert by_pandas["close"].tolist() == [b.close for b in by_polars]
    assert by_pandas["last_trade_id"].tolist() == [b.last_trade_id for b in by_polars]
    assert by_pandas["trade_count"].sum() == len(ticks)


def test_a_frame_of_several_symbols_is_refused_with_the_remedy() -> None:
    ticks = [*btc_minute_trades()[:5], Tick("binance", "ETH/USDT", 1.0, 1.0, Side.BUY, 1, 1, 1)]
    with pytest.raises(ValueError, match="partition_by"):
        aggregate_ticks(_frame(ticks), ["1m"])


def test_no_valid_tick_gives_empty_frames_with_the_bar_columns() -> None:
    tick = Tick("binance", "BTC/USDT", 0.0, 1.0, Side.BUY, 1, START, START)
    out = aggregate_ticks(_frame([tick]), ["1m", "5m"])
    assert out["1m"].height == 0 and "buy_quote_volume" in out["5m"].columns


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Tick], list[Tick]]:
    """(trades in exchange order, delivered sequence with duplicates and invalid ticks)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    t = START + rng.randrange(0, 30 * 60 * SECOND)
    price = rng.uniform(1, 1000)
    trade_id = rng.randrange(0, 10**9)
    trades = []
    for _ in range(draw(st.integers(1, 200))):
        t += rng.choice([0, 0, 1_000, 50_000_000, SECOND, 45 * SECOND,
                         rng.randrange(SECOND, 50 * 60 * SECOND)])  # incl. quiet periods
        price = round(max(0.01, price * (1 + rng.gauss(0, 0.003))), 2)
        trade_id += 1
        side = rng.choice([Side.BUY, Side.SELL, Side.SELL, Side.UNKNOWN])
        volume = 0.0 if rng.random() < 0.03 else round(rng.uniform(0.001, 5), 3)
        trades.append(Tick("binance", "S/USDT", price, volume, side, trade_id, t, t))
    delivered = list(trades)
    for _ in range(draw(st.integers(0, 10))):  # re-deliveries, a little later
        i = rng.randrange(len(trades))
        delivered.insert(min(len(delivered), delivered.index(trades[i]) + rng.randrange(1, 4)),
                         trades[i])
    return trades, delivered


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries(), st.booleans(), st.sampled_from([TIMEFRAMES, ["3m", "5m"], ["1s", "1m"]]),
       st.one_of(st.none(), st.integers(-20 * 60 * SECOND, 20 * 60 * SECOND)))
def test_bulk_equals_the_stream_finished_where_the_data_ends(
        case: tuple[list[Tick], list[Tick]], emit_empty: bool, timeframes: list[str],
        end_shift: int | None) -> None:
    """Gaps, duplicates, quiet periods, and an end anywhere: just after the last trade
    (default), or ``until`` before or after it, on or off a bar boundary."""
    trades, delivered = case
    valid = [t for t in trades if t.volume > 0]
    if not valid:
        return
    until = None if end_shift is None else max(valid[-1].timestamp + end_shift,
                                               valid[0].timestamp + 1)
    expected = stream_bars(delivered, timeframes, emit_empty=emit_empty, until=until)
    bulk = aggregate_ticks(_frame(delivered), timeframes, emit_empty=emit_empty, until=until)
    for tf in timeframes:
        assert_bars_equal([b for b in expected if b.timeframe == tf], frame_bars(bulk[tf]))


def test_stock_trades_of_one_instant_keep_arrival_order_as_the_stream_does() -> None:
    from bot.data.venues.alpaca.session import stock_trade_id

    rng = random.Random(4)
    ticks = []
    ts = START
    for i in range(3000):
        ts += rng.choice([0, 0, 0, 1_000, 250 * 10**6, 40 * SECOND])  # many equal times
        exchange = rng.choice("KPQVZ")
        ticks.append(Tick("alpaca", "AAPL", round(100 + rng.gauss(0, 1), 2), 1.0 + i % 7,
                          Side.UNKNOWN, stock_trade_id(exchange, i), ts, ts))
    assert len(ticks) - len({t.timestamp for t in ticks}) > 1000, "ties are the point"
    # Stock bars skip intervals without trades, in the stream and in bulk alike.
    _assert_same(ticks, emit_empty=False)


# -- where the data ends: replay's rule, against a reference written from the rule ------

def _reference_bar(ticks: list[Tick], open_time: int, length: int) -> tuple[Any, ...]:
    """OHLC, volume, count and trade ids of the trades in ``[open_time, +length)``, summed
    straight from the trades."""
    inside = [t for t in ticks if open_time <= t.timestamp < open_time + length]
    prices = [t.price for t in inside]
    return (open_time, prices[0], max(prices), min(prices), prices[-1],
            sum(t.volume for t in inside), len(inside), inside[0].trade_id,
            inside[-1].trade_id)


def _summary(bar: Bar) -> tuple[Any, ...]:
    return (bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume,
            bar.trade_count, bar.first_trade_id, bar.last_trade_id)


def test_a_recording_cut_mid_minute_ends_with_partial_bars_and_none_after() -> None:
    """1,500 real trades, ending 00:00:2x: the 1m and 5m bars holding them are PARTIAL,
    equal to the trades' own sums, and no empty minute follows."""
    ticks = btc_minute_trades()[:1500]
    out = aggregate_ticks(_frame(ticks), ["1m", "5m"], coverage_start=START)
    for tf, length in (("1m", 60 * SECOND), ("5m", 300 * SECOND)):
        (bar,) = frame_bars(out[tf])
        want = _reference_bar(ticks, START, length)
        got = _summary(bar)
        assert got[:5] == want[:5] and got[6:] == want[6:]
        assert math.isclose(got[5], want[5], rel_tol=1e-12)
        assert bar.flags == BarFlag.PARTIAL


def test_an_end_after_the_data_completes_the_bars_before_it_and_cuts_the_one_it_falls_in(
        ) -> None:
    """Data known to 00:03:30 (``until``), the trades stop at 00:00:2x: the traded minute and
    the empty 00:01 and 00:02 are whole; 00:03 holds nothing seen whole, so it is not made;
    the 5m bar is cut: PARTIAL with every trade."""
    ticks = btc_minute_trades()[:1500]
    until = START + 210 * SECOND
    out = aggregate_ticks(_frame(ticks), ["1m", "5m"], coverage_start=START, until=until)
    minutes = frame_bars(out["1m"])
    assert [(b.open_time - START) // SECOND for b in minutes] == [0, 60, 120]
    assert [b.flags for b in minutes] == [BarFlag.NONE, BarFlag.EMPTY, BarFlag.EMPTY]
    assert _summary(minutes[0])[:5] == _reference_bar(ticks, START, 60 * SECOND)[:5]
    assert all(b.open == b.close == ticks[-1].price for b in minutes[1:])
    (five,) = frame_bars(out["5m"])
    assert five.flags == BarFlag.PARTIAL and five.trade_count == 1500


def test_trades_at_or_after_until_are_left_out() -> None:
    ticks = btc_minute_trades()
    until = ticks[999].timestamp + 1
    kept = [t for t in ticks if t.timestamp < until]
    (bar,) = frame_bars(aggregate_ticks(_frame(ticks), ["1m"], until=until)["1m"])
    assert bar.trade_count == len(kept) and bar.last_trade_id == kept[-1].trade_id
    assert bar.flags == BarFlag.PARTIAL
