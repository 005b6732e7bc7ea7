"""Binance klines computed from the simulator's own trades: the official bars.

Klines follow Binance's rules: intervals are UTC epoch multiples, every
interval from the symbol's first known trade up to now has a kline, an
interval without trades repeats the previous close with zero volume, and
records that are not market trades (price or quantity 0) are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from bot.data.sim.trades import SimTrade, TradeLog


class Kline(msgspec.Struct, frozen=True, gc=False):
    """One kline with exact sums (prices and volumes e8, quote sums e16)."""

    open_time_ns: int
    close_time_ns: int
    open_e8: int
    high_e8: int
    low_e8: int
    close_e8: int
    volume_e8: int
    quote_e16: int
    count: int
    taker_buy_volume_e8: int
    taker_buy_quote_e16: int


def _kline(open_ns: int, length_ns: int, trades: Sequence[SimTrade], prev_close: int) -> Kline:
    if not trades:
        return Kline(open_ns, open_ns + length_ns - 1, prev_close, prev_close, prev_close,
                     prev_close, 0, 0, 0, 0, 0)
    prices = [t.price_e8 for t in trades]
    buys = [t for t in trades if not t.buyer_is_maker]
    return Kline(
        open_ns, open_ns + length_ns - 1, prices[0], max(prices), min(prices), prices[-1],
        sum(t.qty_e8 for t in trades), sum(t.price_e8 * t.qty_e8 for t in trades), len(trades),
        sum(t.qty_e8 for t in buys), sum(t.price_e8 * t.qty_e8 for t in buys))


def select_klines(log: TradeLog, length_ns: int, now_ns: int, limit: int,
                  start_ns: int | None = None, end_ns: int | None = None) -> list[Kline]:
    """The klines Binance's ``/api/v3/klines`` would return for these parameters.

    Open times are ``>= start_ns`` and ``<= end_ns``; without ``start_ns`` the
    most recent ``limit`` klines up to ``end_ns`` (or now) are returned.
    Klines before the oldest retained trade are unknown to the simulator.
    """
    if not log.trades:
        return []
    first_open = log.trades[0].time_ns - log.trades[0].time_ns % length_ns
    last_open = now_ns - now_ns % length_ns
    if end_ns is not None:
        last_open = min(last_open, end_ns - end_ns % length_ns)
    if start_ns is not None:
        lo = max(first_open, -(-start_ns // length_ns) * length_ns)
        hi = min(last_open, lo + (limit - 1) * length_ns)
    else:
        hi = last_open
        lo = max(first_open, hi - (limit - 1) * length_ns)
    if hi < lo:
        return []
    before = log.last_before(lo)
    first = next((t for t in log.trades if t.is_market), log.trades[0])
    prev_close = before.price_e8 if before else first.price_e8
    trades = [t for t in log.between(lo, hi + length_ns - 1) if t.is_market]
    out: list[Kline] = []
    index = 0
    for open_ns in range(lo, hi + 1, length_ns):
        begin = index
        while index < len(trades) and trades[index].time_ns < open_ns + length_ns:
            index += 1
        kline = _kline(open_ns, length_ns, trades[begin:index], prev_close)
        prev_close = kline.close_e8
        out.append(kline)
    return out
