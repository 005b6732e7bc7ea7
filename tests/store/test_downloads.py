"""Binance's public trade files read as the store's tick table, checked on the official file."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.models import Bar, BarFlag, Side
from bot.data.pipeline import TickPipeline
from bot.data.store import read_binance_trades, replay
from bot.data.store.layout import TICK_SCHEMA, rows_to_ticks
from tests.helpers import BTC_TRADES_CSV, btc_minute_kline, btc_minute_trades

MINUTE = 60 * 10**9


async def test_the_official_trades_file_rebuilds_the_official_kline() -> None:
    frame = read_binance_trades(BTC_TRADES_CSV, "BTC/USDT")
    assert frame.columns == TICK_SCHEMA.names
    assert rows_to_ticks(frame.iter_rows(named=True)) == btc_minute_trades()
    (open_us, o, h, low, c, volume, _close_us, quote, count, buy_base, buy_quote,
     _ignore) = btc_minute_kline()
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]))
    bars: list[Bar] = []
    pipeline.bus.on_bar_complete(bars.append)
    minute = int(open_us) * 1000
    await replay(frame, pipeline, progress=False, until=minute + MINUTE)  # the file's end
    (bar,) = bars
    assert (bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (
        minute, float(o), float(h), float(low), float(c), int(count))
    for got, want in ((bar.volume, volume), (bar.quote_volume, quote),
                      (bar.buy_volume, buy_base), (bar.buy_quote_volume, buy_quote)):
        assert math.isclose(got, float(want), rel_tol=1e-9)
    # Not cut at its end (the file covers the minute); its start is not known to be whole.
    assert bar.flags == BarFlag.PARTIAL


def test_a_zipped_file_with_a_header_and_millisecond_times_reads_the_same(
        tmp_path: Path) -> None:
    rows = ["id,price,qty,quote_qty,time,is_buyer_maker,is_best_match",
            "7,100.5,0.25,25.125,1577836800123,True,True",
            "8,100.75,1.5,151.125,1577836800456,False,True"]
    plain = tmp_path / "XRPETH-trades-2020-01-01.csv"
    plain.write_text("\n".join(rows) + "\n")
    archive = tmp_path / "XRPETH-trades-2020-01-01.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(plain, plain.name)
    for path in (plain, archive):
        ticks = rows_to_ticks(read_binance_trades(path, "XRP/ETH").iter_rows(named=True))
        assert [(t.trade_id, t.price, t.volume, t.side, t.timestamp) for t in ticks] == [
            (7, 100.5, 0.25, Side.SELL, 1_577_836_800_123_000_000),
            (8, 100.75, 1.5, Side.BUY, 1_577_836_800_456_000_000)]


def test_an_aggtrades_file_gives_one_tick_per_aggregate(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2025-01-01.csv"
    path.write_text("11,93576.0,0.1,100,102,1735689600010866,false,true\n")
    (tick,) = rows_to_ticks(read_binance_trades(path, "BTC/USDT").iter_rows(named=True))
    assert (tick.trade_id, tick.side, tick.timestamp) == (11, Side.BUY, 1_735_689_600_010_866_000)


def test_a_file_of_another_layout_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "klines.csv"
    path.write_text("1,2,3,4,5,6,7,8,9,10,11,12\n")
    with pytest.raises(ValueError, match=r"klines\.csv: 12 columns; a Binance trades file"):
        read_binance_trades(path, "BTC/USDT")
