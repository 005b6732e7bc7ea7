"""BarHistory: bounded, compact, and a DataFrame of the documented shape."""

from __future__ import annotations

import math

import pandas as pd

from bot.data.history import BAR_DTYPE, BarHistory
from bot.data.models import Bar, BarFlag

MINUTE = 60 * 10**9


def _bar(i: int) -> Bar:
    return Bar("binance", "BTC/USDT", "1m", i * MINUTE, (i + 1) * MINUTE - 1, 10.0 + i, 12.0 + i,
               9.0 + i, 11.0 + i, 2.0, 2.0 * (10.5 + i), 1.5, 0.5, 1.5 * 10.5, 3, i * 3, i * 3 + 2)


def test_a_stored_bar_costs_at_most_120_bytes() -> None:
    assert BAR_DTYPE.itemsize <= 120
    assert BarHistory("binance", "BTC/USDT", "1m", 500).nbytes == 500 * BAR_DTYPE.itemsize


def test_ring_keeps_only_the_last_capacity_bars_in_order() -> None:
    hist = BarHistory("binance", "BTC/USDT", "1m", 5)
    for i in range(12):
        hist.append(_bar(i))
    assert len(hist) == 5
    assert [b.open_time for b in hist.bars()] == [i * MINUTE for i in range(7, 12)]
    assert hist.bars(2) == [_bar(10), _bar(11)]


def test_dataframe_is_indexed_by_utc_open_time_with_the_documented_columns() -> None:
    hist = BarHistory("binance", "BTC/USDT", "1m", 10)
    for i in range(4):
        hist.append(_bar(i))
    hist.append(Bar("binance", "BTC/USDT", "1m", 4 * MINUTE, 5 * MINUTE - 1, 14.0, 14.0, 14.0,
                    14.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, -1, -1, BarFlag.EMPTY))
    df = hist.dataframe(limit=3)
    assert list(df.index) == [pd.Timestamp(i * MINUTE, unit="ns", tz="UTC") for i in (2, 3, 4)]
    for col in ("open", "high", "low", "close", "volume", "quote_volume", "vwap", "buy_volume",
                "sell_volume", "trade_count"):
        assert col in df.columns
    assert df["vwap"].iloc[0] == 12.5
    assert math.isnan(df["vwap"].iloc[-1])
    assert df["flags"].iloc[-1] == BarFlag.EMPTY
