"""Bulk aggregation gives exactly the streaming aggregator's bars, vectorized."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.data.frames import BAR_COLUMNS
from bot.data.models import BarFlag, Side, Tick
from bot.data.store import TradeStore, aggregate_ticks
from bot.data.store.layout import ticks_to_table
from bot.data.timeframes import timeframe_ns
from tests.helpers import btc_minute_trades, xrpeth_trades
from tests.store.support import (
    TIMEFRAMES,
    assert_bars_equal,
    frame_bars,
    record_live,
    stream_bars,
    until_for,
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


def test_btc_minute_equals_the_streaming_bar_and_is_not_partial() -> None:
    ticks = btc_minute_trades()
    bars = frame_bars(aggregate_ticks(_frame(ticks), ["1m"], coverage_start=START)["1m"])
    assert bars[0].trade_count == 2631 and bars[0].flags == BarFlag.NONE


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
@given(deliveries(), st.booleans(), st.sampled_from([TIMEFRAMES, ["3m", "5m"], ["1s", "1m"]]))
def test_bulk_equals_the_stream_for_gaps_duplicates_and_quiet_periods(
        case: tuple[list[Tick], list[Tick]], emit_empty: bool, timeframes: list[str]) -> None:
    trades, delivered = case
    valid = [t for t in trades if t.volume > 0]
    if not valid:
        return
    until = until_for(valid, max(timeframe_ns(tf) for tf in timeframes))
    expected = stream_bars(delivered, timeframes, emit_empty=emit_empty, until=until)
    bulk = aggregate_ticks(_frame(delivered), timeframes, emit_empty=emit_empty)
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
