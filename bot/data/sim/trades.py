"""The exchange's record of trades: the truth that streams, REST and tests share.

Prices and quantities are integers in units of 1e-8 (Binance's eight decimals),
so sums such as kline volumes are exact and every venue formats the same value.
A :class:`TradeLog` keeps one symbol's trades in id order for a bounded
retention, which is how a test can ask for a trade the exchange no longer has.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from decimal import Decimal

import msgspec

E8 = 100_000_000


class SimTrade(msgspec.Struct, frozen=True, gc=False):
    """One trade as the simulated exchange executed it.

    ``symbol`` is the venue's own spelling (``"BTCUSDT"``, ``"AAPL"``,
    ``"BTC/USD"``). ``buyer_is_maker`` is Binance's ``m``: true when the taker
    sold. ``event_time_ns`` is when the exchange published it (``E``).
    ``exchange``, ``conditions`` and ``tape`` are filled for stock trades only.
    """

    symbol: str
    trade_id: int
    price_e8: int
    qty_e8: int
    time_ns: int
    buyer_is_maker: bool
    event_time_ns: int
    exchange: str = ""
    conditions: tuple[str, ...] = ()
    tape: str = ""

    @property
    def price(self) -> Decimal:
        return Decimal(self.price_e8) / E8

    @property
    def qty(self) -> Decimal:
        return Decimal(self.qty_e8) / E8

    @property
    def is_market(self) -> bool:
        """False for a record with price or quantity 0: not a market trade.

        Binance USDⓈ-M trade data has such records (a trade type other than
        ``MARKET``); its klines and aggregate trades leave them out.
        """
        return self.price_e8 > 0 and self.qty_e8 > 0


class AggTrade(msgspec.Struct, frozen=True, gc=False):
    """Binance aggregate trade: consecutive fills of one taker order at one price."""

    agg_id: int
    price_e8: int
    qty_e8: int
    first_id: int
    last_id: int
    time_ns: int
    buyer_is_maker: bool
    event_time_ns: int


def format_e8(value_e8: int) -> str:
    """An e8 integer as Binance prints it: always eight decimals (``"0.00100000"``)."""
    sign = "-" if value_e8 < 0 else ""
    whole, frac = divmod(abs(value_e8), E8)
    return f"{sign}{whole}.{frac:08d}"


def format_e16(value_e16: int) -> str:
    """A price x quantity product (units of 1e-16) rounded half-even to eight decimals."""
    return format_e8(int((Decimal(value_e16) / E8).to_integral_value()))


def to_e8(text: str | float) -> int:
    """Parse a decimal string (or float, via its shortest repr) into e8 units exactly."""
    value = Decimal(repr(text)) if isinstance(text, float) else Decimal(text)
    return int((value * E8).to_integral_value())


class TradeLog:
    """One symbol's trades and aggregate trades, oldest first, bounded by ``retention``.

    Ids are consecutive, so a trade is found by arithmetic; times are
    non-decreasing, so a time range is found by bisection.
    """

    def __init__(self, retention: int, first_agg_id: int = 1) -> None:
        if retention < 1:
            raise ValueError(f"retention must be at least 1 trade, got {retention!r}")
        self.retention = retention
        self.trades: list[SimTrade] = []
        self.aggs: list[AggTrade] = []
        self._next_agg_id = first_agg_id

    def record(self, batch: Sequence[SimTrade]) -> list[AggTrade]:
        """Append the fills of one taker order; return the aggregate trades they form.

        Records that are not market trades (:attr:`SimTrade.is_market`) are
        logged with their id but form no aggregate trade.
        """
        new_aggs: list[AggTrade] = []
        for trade in batch:
            if not trade.is_market:
                continue
            last = new_aggs[-1] if new_aggs else None
            if (last is not None and last.price_e8 == trade.price_e8
                    and last.buyer_is_maker == trade.buyer_is_maker
                    and last.last_id + 1 == trade.trade_id):
                new_aggs[-1] = msgspec.structs.replace(
                    last, qty_e8=last.qty_e8 + trade.qty_e8, last_id=trade.trade_id)
            else:
                new_aggs.append(AggTrade(
                    self._next_agg_id, trade.price_e8, trade.qty_e8, trade.trade_id,
                    trade.trade_id, trade.time_ns, trade.buyer_is_maker, trade.event_time_ns))
                self._next_agg_id += 1
        self.trades.extend(batch)
        self.aggs.extend(new_aggs)
        self._trim()
        return new_aggs

    def _trim(self) -> None:
        # Trim in chunks so that a long run costs amortised O(1) per trade.
        excess = len(self.trades) - self.retention
        if excess > max(self.retention // 10, 1) or (excess > 0 and self.retention < 10):
            del self.trades[:excess]
            oldest_id = self.trades[0].trade_id
            cut = bisect.bisect_left(self.aggs, oldest_id, key=lambda a: a.first_id)
            del self.aggs[:cut]

    def __len__(self) -> int:
        return len(self.trades)

    def from_id(self, trade_id: int, limit: int, market_only: bool = False) -> list[SimTrade]:
        """Up to ``limit`` trades starting at ``trade_id`` (market trades only, when asked);
        empty if it was not retained."""
        if not self.trades or trade_id < self.trades[0].trade_id:
            return []
        start = trade_id - self.trades[0].trade_id
        if not market_only:
            return self.trades[start:start + limit]
        market = (self.trades[i] for i in range(start, len(self.trades))
                  if self.trades[i].is_market)
        return list(itertools.islice(market, limit))

    def recent(self, limit: int, market_only: bool = False) -> list[SimTrade]:
        """The last ``limit`` trades (market trades only, when asked), oldest first."""
        if limit <= 0:
            return []
        if not market_only:
            return self.trades[-limit:]
        market = (t for t in reversed(self.trades) if t.is_market)
        return list(itertools.islice(market, limit))[::-1]

    def between(self, start_ns: int, end_ns: int) -> list[SimTrade]:
        """Trades with ``start_ns <= time_ns <= end_ns``."""
        lo = bisect.bisect_left(self.trades, start_ns, key=lambda t: t.time_ns)
        hi = bisect.bisect_right(self.trades, end_ns, key=lambda t: t.time_ns)
        return self.trades[lo:hi]

    def last_before(self, time_ns: int) -> SimTrade | None:
        """The latest market trade strictly before ``time_ns``, if retained."""
        index = bisect.bisect_left(self.trades, time_ns, key=lambda t: t.time_ns)
        while index and not self.trades[index - 1].is_market:
            index -= 1
        return self.trades[index - 1] if index else None

    def aggs_from_id(self, agg_id: int, limit: int) -> list[AggTrade]:
        if not self.aggs or agg_id < self.aggs[0].agg_id:
            return []
        start = agg_id - self.aggs[0].agg_id
        return self.aggs[start:start + limit]

    def aggs_between(self, start_ns: int, end_ns: int) -> list[AggTrade]:
        lo = bisect.bisect_left(self.aggs, start_ns, key=lambda a: a.time_ns)
        hi = bisect.bisect_right(self.aggs, end_ns, key=lambda a: a.time_ns)
        return self.aggs[lo:hi]
