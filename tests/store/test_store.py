"""The store answers ranges, the last trade, and SQL over what was recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from bot.data.models import Side, Tick
from bot.data.store import Recorder, TradeStore
from tests.helpers import btc_minute_trades, xrpeth_trades
from tests.store.support import record_live


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XRP/ETH (2.5 days) and one BTC/USDT minute, recorded live."""
    import asyncio

    root = tmp_path_factory.mktemp("store")
    for ticks in (xrpeth_trades(), btc_minute_trades()):
        asyncio.run(record_live(ticks, root))
    return root


def test_ticks_returns_a_pandas_frame_in_exchange_order(recorded: Path) -> None:
    frame = TradeStore(recorded).ticks("binance", "XRP/ETH")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 12_477
    assert frame["timestamp"].is_monotonic_increasing
    assert set(frame["side"]) == {"buy", "sell"}


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
    frame = TradeStore(recorded).bars("binance", "BTC/USDT", "1m")
    assert list(frame["timeframe"].unique()) == ["1m"]
    assert frame["open_time"].is_monotonic_increasing
    assert frame["trade_count"].iloc[0] == 2631


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
