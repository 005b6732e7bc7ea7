"""The store answers ranges, the last trade, and SQL over what was recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.frames import TICK_COLUMNS
from bot.data.models import Side, Tick
from bot.data.pipeline import TickPipeline
from bot.data.store import Recorder, TradeStore
from tests.helpers import btc_minute_trades, xrpeth_trades
from tests.store.support import record_live, until_for


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XRP/ETH (2.5 days) and one BTC/USDT minute, recorded live."""
    import asyncio

    root = tmp_path_factory.mktemp("store")
    for ticks in (xrpeth_trades(), btc_minute_trades()):
        asyncio.run(record_live(ticks, root))
    return root


def test_ticks_returns_a_pandas_frame_in_exchange_order_indexed_by_utc_time(
        recorded: Path) -> None:
    frame = TradeStore(recorded).ticks("binance", "XRP/ETH")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 12_477
    assert tuple(frame.columns) == TICK_COLUMNS
    assert frame.index.name == "timestamp" and str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index.is_monotonic_increasing
    ticks = sorted(xrpeth_trades(), key=lambda t: (t.timestamp, t.trade_id))
    assert [t.value for t in frame.index] == [t.timestamp for t in ticks]
    assert frame["trade_id"].tolist() == [t.trade_id for t in ticks]
    assert str(frame["receive_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert set(frame["side"]) == {"buy", "sell"}


@pytest.mark.parametrize("bound", [
    "2025-01-01T00:00:30Z",
    datetime(2025, 1, 1, 0, 0, 30),  # naive: UTC
    datetime(2025, 1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    pd.Timestamp("2024-12-31 19:00:30", tz="America/New_York"),
    np.datetime64("2025-01-01T00:00:30"),
    1_735_689_630 * 10**9,
    np.int64(1_735_689_630 * 10**9),
], ids=["iso-string", "naive-datetime", "aware-datetime", "timestamp", "datetime64", "ns-int",
        "numpy-int"])
def test_time_bounds_take_what_pandas_takes(recorded: Path, bound: object) -> None:
    # Every form names the same instant, 2025-01-01 00:00:30 UTC, inside the recorded minute.
    instant = 1_735_689_630 * 10**9
    ticks = btc_minute_trades()
    store = TradeStore(recorded)
    after = store.ticks("binance", "BTC/USDT", start=bound)
    before = store.ticks("binance", "BTC/USDT", end=bound)
    assert 0 < len(before) < len(ticks)
    assert after["trade_id"].tolist() == [t.trade_id for t in ticks if t.timestamp >= instant]
    assert before["trade_id"].tolist() == [t.trade_id for t in ticks if t.timestamp < instant]
    every_bar = store.bar_records("binance", "BTC/USDT", "1m")
    bars = store.bars("binance", "BTC/USDT", "1m", start=bound)
    assert [t.value for t in bars.index] == [b.open_time for b in every_bar
                                             if b.open_time >= instant]


def test_a_date_string_bounds_a_whole_day(recorded: Path) -> None:
    store = TradeStore(recorded)
    day = store.ticks("binance", "BTC/USDT", start="2025-01-01", end="2025-01-02")
    assert len(day) == len(btc_minute_trades()) == 2631
    assert len(store.ticks("binance", "BTC/USDT", start="2025-01-02")) == 0


@pytest.mark.parametrize(("bound", "error"), [
    (1.7e18, TypeError), (True, TypeError), ([2025], TypeError),
    ("the first of January", ValueError), ("NaT", ValueError),
])
def test_a_bound_that_is_not_a_time_is_refused_naming_the_argument_and_the_forms(
        recorded: Path, bound: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^end=.* not a time.*'2025-01-01'.*nanoseconds"):
        TradeStore(recorded).ticks("binance", "BTC/USDT", end=bound)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"^start="):
        TradeStore(recorded).bars("binance", "BTC/USDT", "1m", start=bound)  # type: ignore[arg-type]


def test_ticks_honours_start_and_end_as_ns_or_datetimes(recorded: Path) -> None:
    store = TradeStore(recorded)
    ticks = xrpeth_trades()
    lo, hi = ticks[1000].timestamp, ticks[9000].timestamp
    by_ns = store.ticks("binance", "XRP/ETH", lo, hi, as_polars=True)
    assert isinstance(by_ns, pl.DataFrame)
    assert by_ns["trade_id"].to_list() == [t.trade_id for t in ticks if lo <= t.timestamp < hi]
    as_dt = datetime.fromtimestamp(lo / 1e9, tz=UTC)
    assert len(store.ticks("binance", "XRP/ETH", start=as_dt)) == sum(
        t.timestamp >= lo for t in ticks)


def test_bars_of_one_timeframe_within_a_range(recorded: Path) -> None:
    frame = TradeStore(recorded).bars("binance", "BTC/USDT", "1m", as_polars=True)
    assert list(frame["timeframe"].unique()) == ["1m"]
    assert frame["open_time"].is_sorted()
    assert frame["trade_count"][0] == 2631


def test_last_trade_is_the_latest_recorded_tick(recorded: Path) -> None:
    store = TradeStore(recorded)
    assert store.last_trade("binance", "XRP/ETH") == max(
        xrpeth_trades(), key=lambda t: (t.timestamp, t.trade_id))
    assert store.last_trade("binance", "ETH/USDT") is None


async def test_a_trade_recorded_twice_is_read_once(tmp_path: Path) -> None:
    tick = Tick("binance", "BTC/USDT", 100.0, 1.0, Side.SELL, 7, 10**18, 10**18)
    for _ in range(2):  # two sessions overlapping after a restart
        recorder = Recorder(tmp_path)
        recorder.record_tick(tick)
        await recorder.flush()
    assert TradeStore(tmp_path).tick_records("binance", "BTC/USDT") == [tick]


def test_series_lists_every_recorded_venue_and_symbol(recorded: Path) -> None:
    assert TradeStore(recorded).series() == [("binance", "BTC/USDT"), ("binance", "XRP/ETH")]


def test_sql_runs_over_hive_partitioned_ticks_and_bars(recorded: Path) -> None:
    store = TradeStore(recorded)
    counts = store.sql("SELECT symbol, count(*) AS n FROM ticks GROUP BY symbol ORDER BY symbol")
    assert counts.to_dict("records") == [{"symbol": "BTC/USDT", "n": 2631},
                                         {"symbol": "XRP/ETH", "n": 12_477}]
    volume = store.sql("SELECT sum(volume) AS v FROM bars WHERE timeframe = '15m' "
                       "AND symbol = 'XRP/ETH'", as_polars=True)
    assert isinstance(volume, pl.DataFrame)
    assert volume["v"][0] == pytest.approx(sum(t.volume for t in xrpeth_trades()), rel=1e-9)


def test_the_documented_hourly_vwap_query_runs(recorded: Path) -> None:
    hourly = TradeStore(recorded).sql("""
        SELECT symbol,
               time_bucket(INTERVAL 1 HOUR, make_timestamp(timestamp // 1000)) AS hour,
               sum(price * volume) / sum(volume) AS vwap,
               count(*) AS trades
        FROM ticks
        WHERE venue = 'binance' AND date >= '2019-01-01'
        GROUP BY ALL ORDER BY ALL
    """)
    assert hourly["trades"].sum() == 12_477 + 2631
    assert (hourly["vwap"] > 0).all()


def test_sql_on_an_empty_store_sees_empty_views(tmp_path: Path) -> None:
    assert TradeStore(tmp_path).sql("SELECT count(*) AS n FROM ticks")["n"][0] == 0


async def test_stored_bars_are_the_live_bar_dataframe_row_for_row(tmp_path: Path) -> None:
    ticks = xrpeth_trades()
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m", "15m"],
                                                bar_history_size=100_000))
    recorder = Recorder(tmp_path)
    recorder.attach(pipeline.bus)
    await recorder.start()
    for tick in ticks:
        pipeline.process(tick)
    pipeline.advance(until_for(ticks) + pipeline.aggregator.grace_ns)
    await recorder.stop()
    for timeframe in ("1m", "15m"):
        live = pipeline.history("binance", "XRP/ETH", timeframe).dataframe(None)
        stored = TradeStore(tmp_path).bars("binance", "XRP/ETH", timeframe)
        assert len(live) > 200
        pd.testing.assert_frame_equal(stored, live)  # index dtype and name, columns, values
