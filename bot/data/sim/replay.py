"""Replay of recorded trades: a market that repeats a real trade file exactly.

Two formats are read: the official Binance trades CSV
(``id,price,qty,quote_qty,time,is_buyer_maker,is_best_match``; time in
microseconds from 2025 on, milliseconds before) and freqtrade's trades JSON
(rows ``[timestamp_ms, id, order, side, price, amount, cost]``, ``side`` being
the taker's side), optionally gzipped. Trades keep their ids, prices,
quantities and times; the simulator's market clock decides when they are sent.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

from bot.data.sim.trades import SimTrade, to_e8

# A CSV time above this is in microseconds (milliseconds reach it only in year 5138).
_MICROSECOND_THRESHOLD = 100_000_000_000_000


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8")


def load_binance_csv(path: Path, symbol: str) -> list[SimTrade]:
    """Trades of an official Binance spot trades CSV (header optional)."""
    trades = []
    with _open_text(path) as fh:
        for row in csv.reader(fh):
            if not row or not row[0].strip().isdigit():
                continue
            trade_id, price, qty, _quote, time, buyer_is_maker = row[:6]
            unit = 1_000 if int(time) > _MICROSECOND_THRESHOLD else 1_000_000
            time_ns = int(time) * unit
            trades.append(SimTrade(symbol, int(trade_id), to_e8(price), to_e8(qty), time_ns,
                                   buyer_is_maker.strip().lower() == "true", time_ns))
    return trades


def load_freqtrade_json(path: Path, symbol: str) -> list[SimTrade]:
    """Trades of a freqtrade ``*-trades.json(.gz)`` file."""
    with _open_text(path) as fh:
        rows = json.load(fh)
    trades = []
    for timestamp_ms, trade_id, _order, side, price, amount, _cost in rows:
        time_ns = int(timestamp_ms) * 1_000_000
        trades.append(SimTrade(symbol, int(trade_id), to_e8(float(price)), to_e8(float(amount)),
                               time_ns, side == "sell", time_ns))
    return trades


def load_trades(path: str | Path, symbol: str) -> list[SimTrade]:
    """Load a trade file, choosing the reader by its name (``.json``/``.json.gz`` or CSV)."""
    path = Path(path)
    if path.name.endswith((".json", ".json.gz")):
        return load_freqtrade_json(path, symbol)
    return load_binance_csv(path, symbol)


class ReplaySource:
    """Hands out a recorded symbol's trades as market time reaches them.

    Trades of one instant that share a side form one batch, the way one taker
    order's fills arrive together.
    """

    def __init__(self, trades: list[SimTrade]) -> None:
        self._trades = sorted(trades, key=lambda t: t.trade_id)
        self._index = 0

    @property
    def first_time_ns(self) -> int | None:
        return self._trades[0].time_ns if self._trades else None

    def next_time_ns(self) -> int | None:
        return self._trades[self._index].time_ns if self._index < len(self._trades) else None

    def take_until(self, until_ns: int) -> list[list[SimTrade]]:
        batches: list[list[SimTrade]] = []
        trades = self._trades
        while self._index < len(trades) and trades[self._index].time_ns <= until_ns:
            first = trades[self._index]
            end = self._index + 1
            while (end < len(trades) and trades[end].time_ns == first.time_ns
                   and trades[end].buyer_is_maker == first.buyer_is_maker):
                end += 1
            batches.append(trades[self._index:end])
            self._index = end
        return batches
