"""Bars rebuilt from real trades equal the exchange's (and a third party's) candles."""

from __future__ import annotations

import math

import pandas as pd

from bot.data.aggregation import BarAggregator
from bot.data.models import BarFlag
from tests.helpers import XRPETH_DIR, btc_minute_kline, btc_minute_trades, xrpeth_trades

MINUTE_NS = 60 * 10**9


def test_btcusdt_minute_equals_official_binance_kline_in_every_field() -> None:
    (open_us, o, h, low, c, volume, close_us, quote, count, buy_base, buy_quote,
     _ignore) = btc_minute_kline()
    agg = BarAggregator(["1m"])
    agg.configure_symbol("binance", "BTC/USDT", complete_from=int(open_us) * 1000)
    for tick in btc_minute_trades():
        assert agg.add(tick) == ()
    (bar,) = agg.advance((int(close_us) + 1) * 1000 + agg.grace_ns)
    assert bar.open_time == int(open_us) * 1000
    assert bar.close_time == int(close_us) * 1000 + 999  # ns resolution of Binance's end
    assert (bar.open, bar.high, bar.low, bar.close) == (float(o), float(h), float(low), float(c))
    assert bar.trade_count == int(count)
    # Floats inside: sums agree with the official decimals to 1e-9 relative.
    assert math.isclose(bar.volume, float(volume), rel_tol=1e-9)
    assert math.isclose(bar.quote_volume, float(quote), rel_tol=1e-9)
    assert math.isclose(bar.buy_volume, float(buy_base), rel_tol=1e-9)
    assert math.isclose(bar.buy_quote_volume, float(buy_quote), rel_tol=1e-9)
    assert math.isclose(bar.sell_volume, float(volume) - float(buy_base), rel_tol=1e-9)
    assert bar.flags == BarFlag.NONE
    assert bar.first_trade_id == 4359935386 and bar.last_trade_id == 4359938016


def test_first_bar_started_mid_interval_is_flagged_partial() -> None:
    agg = BarAggregator(["1m"])
    ticks = btc_minute_trades()
    for tick in ticks[100:]:
        agg.add(tick)
    (bar,) = agg.advance(ticks[-1].timestamp + MINUTE_NS + agg.grace_ns)
    assert bar.flags & BarFlag.PARTIAL


def test_xrpeth_trades_rebuild_every_freqtrade_candle() -> None:
    candles = pd.read_feather(XRPETH_DIR / "XRP_ETH-1m.feather")
    agg = BarAggregator(["1m"])
    bars = []
    ticks = xrpeth_trades()
    for tick in ticks:
        out = agg.add(tick)
        assert out is not None
        bars.extend(out)
    bars.extend(agg.advance(ticks[-1].timestamp + MINUTE_NS + agg.grace_ns))
    traded = {b.open_time: b for b in bars if not b.flags & BarFlag.EMPTY}
    assert len(traded) == len(candles) == 2469
    for row in candles.itertuples():
        bar = traded[pd.Timestamp(row.date).value]
        assert (bar.open, bar.high, bar.low, bar.close) == (row.open, row.high, row.low, row.close)
        assert math.isclose(bar.volume, row.volume, rel_tol=1e-9)
    # Minutes without trades in between are empty bars at the previous close, as klines are.
    empties = [b for b in bars if b.flags & BarFlag.EMPTY]
    assert len(empties) == len(bars) - len(traded) > 0
    by_time = {b.open_time: b for b in bars}
    for empty in empties:
        previous = by_time[empty.open_time - MINUTE_NS]
        assert empty.open == empty.high == empty.low == empty.close == previous.close
        assert empty.volume == 0 and empty.trade_count == 0
