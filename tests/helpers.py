"""Readers for the real fixture files under tests/data (see tests/data/SOURCES.md)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

from bot.data.models import Side, Tick

DATA = Path(__file__).parent / "data"
BTC_MINUTE_DIR = DATA / "binance" / "spot_BTCUSDT_2025-01-01"
BTC_TRADES_CSV = BTC_MINUTE_DIR / "BTCUSDT-trades-2025-01-01_rows0-2630_minute0000.csv"
BTC_KLINE_CSV = BTC_MINUTE_DIR / "BTCUSDT-1m-2025-01-01_row0_0000.csv"
XRPETH_DIR = DATA / "binance" / "freqtrade_XRPETH_2019-10"


def btc_minute_trades() -> list[Tick]:
    """Every BTCUSDT trade of 2025-01-01 00:00 UTC (official file; time in microseconds)."""
    ticks = []
    with BTC_TRADES_CSV.open() as fh:
        for trade_id, price, qty, _quote, time_us, buyer_is_maker, _best in csv.reader(fh):
            ticks.append(Tick("binance", "BTC/USDT", float(price), float(qty),
                              Side.SELL if buyer_is_maker == "True" else Side.BUY,
                              int(trade_id), int(time_us) * 1000, int(time_us) * 1000))
    return ticks


def btc_minute_kline() -> list[str]:
    """The official 1m kline row for that minute, as strings."""
    with BTC_KLINE_CSV.open() as fh:
        return next(csv.reader(fh))


def xrpeth_trades() -> list[Tick]:
    """12,477 consecutive XRP/ETH trades (freqtrade test data; side is the taker side)."""
    with gzip.open(XRPETH_DIR / "XRP_ETH-trades.json.gz") as fh:
        rows = json.load(fh)
    return [Tick("binance", "XRP/ETH", float(price), float(amount),
                 Side.BUY if side == "buy" else Side.SELL, int(tid), ts * 1_000_000,
                 ts * 1_000_000)
            for ts, tid, _order, side, price, amount, _cost in rows]
