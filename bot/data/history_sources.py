"""The venues' REST history as recovery and warm-up need it.

Two small adapters per venue over the REST clients of :mod:`bot.data.rest`:
trades after a known position (what :class:`~bot.data.recovery.GapRecovery`
fetches to fill a gap) and the last completed bars (what the warm-up loads
into the bar history).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from bot.data.models import Bar, Tick
from bot.data.recovery import Position
from bot.data.timeframes import NS_PER_MS, NS_PER_SECOND, TIMEFRAME_SECONDS, base_length_ns

if TYPE_CHECKING:
    from bot.data.rest.alpaca import AlpacaRest
    from bot.data.rest.binance import BinanceRest


class BinanceTradeHistory:
    """Binance trades by id: ``historicalTrades`` (or ``aggTrades`` for the aggTrade channel)."""

    sequenced = True
    tick_rule = False

    def __init__(self, rest: BinanceRest, *, aggregate: bool) -> None:
        self.rest = rest
        self.aggregate = aggregate

    async def fetch(self, symbol: str, after: Position, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        """Trades from the one after ``after`` (or from ``after.since_ns``) up to ``until``."""
        if after.last_id >= 0:
            from_id: int | None = after.last_id + 1
        elif after.since_ns is not None:
            from_id = await self.first_trade_id(symbol, after.since_ns)
        else:
            return []
        if from_id is None:
            return []
        until_id = until.trade_id - 1 if until is not None else None
        if until_id is not None and until_id < from_id:
            return []
        return await self.rest.trades_from(symbol, from_id, until_id=until_id,
                                           aggregate=self.aggregate)

    async def first_trade_id(self, symbol: str, start_ns: int) -> int | None:
        """The id (trade or aggTrade, as streamed) of the first trade at or after ``start_ns``."""
        start_ms = start_ns // NS_PER_MS
        if not self.aggregate:
            return await self.rest.first_trade_id_at(symbol, start_ms)
        first = await self.rest.agg_trades(symbol, start_ms=start_ms, limit=1)
        return first[0].trade_id if first else None

    async def bars(self, symbol: str, timeframe: str, limit: int, end_ns: int) -> list[Bar]:
        """The last ``limit`` klines closed at or before ``end_ns``."""
        bars = await self.rest.klines(symbol, timeframe, limit=limit, end_ms=end_ns // NS_PER_MS)
        return [b for b in bars if b.close_time <= end_ns]


BINANCE_PAGE = 1000  # rows per Binance REST page (klines, historicalTrades, aggTrades)


def binance_request_bound(*, symbols: int, timeframes: Sequence[str], bar_history_size: int,
                          warm_up: bool = True, fills: Iterable[int] = (),
                          retries: int = 0) -> int:
    """An upper bound of the Binance REST requests a run makes.

    ``symbols`` warmed up (``warm_up``), each: per timeframe one ``/time`` and
    ``ceil(bar_history_size / 1000)`` klines pages; the seed of the longer bars
    (one ``/time`` and the base bars of the longest interval, 1000 a page); one
    ``aggTrades`` per longer timeframe for its first trade id; the fill's
    first-id lookup and its first page. ``fills``: the trades each gap fill
    fetched (and any warm-up fill past its first page), ``n // 1000 + 1`` pages
    each. ``retries``: answers retried (429, 5xx, no answer), one request each;
    ``max_retries`` (5) per request at most.
    """
    lengths = sorted({TIMEFRAME_SECONDS[tf] for tf in timeframes})
    base = base_length_ns(list(timeframes)) // NS_PER_SECOND
    longer = sum(1 for n in lengths if n != base)
    seed_bars = lengths[-1] // base - 1
    per_symbol = (len(lengths) * (1 + _pages(bar_history_size))
                  + (1 + _pages(seed_bars) if seed_bars else 0) + longer + 2)
    return (symbols * per_symbol if warm_up else 0) \
        + sum(n // BINANCE_PAGE + 1 for n in fills) + retries


def _pages(rows: int) -> int:
    return -(-rows // BINANCE_PAGE)


TICK_RULE_LEAD_NS = 5 * 60 * NS_PER_SECOND  # trades read before a warm-up window, for sides


class AlpacaTradeHistory:
    """Alpaca stock trades by time window (Alpaca trades carry no sequence)."""

    sequenced = False
    tick_rule = True  # stock trades carry no side

    def __init__(self, rest: AlpacaRest) -> None:
        self.rest = rest

    async def fetch(self, symbol: str, after: Position, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        """Trades from the last one received (inclusive: duplicates are refused downstream)
        up to ``until`` or now; the tick rule continues from the last price."""
        end = until.timestamp if until is not None else now_ns
        if after.last_ts >= 0:
            return await self.rest.trades(symbol, after.last_ts, end,
                                          previous_price=after.last_price,
                                          previous_side=after.last_side)
        if after.since_ns is None:
            return []
        # A warm-up: the trades just before ``since`` come too, to start the tick rule
        # (recovery keeps them as context only).
        return await self.rest.trades(symbol, after.since_ns - TICK_RULE_LEAD_NS, end)

    async def first_trade_id(self, symbol: str, start_ns: int) -> int | None:
        """None: Alpaca trade ids are per exchange, not a sequence to start from."""
        return None

    async def bars(self, symbol: str, timeframe: str, limit: int, end_ns: int) -> list[Bar]:
        """The last ``limit`` bars closed at or before ``end_ns`` (the configured feed)."""
        bars = await self.rest.bars(symbol, timeframe, limit=limit, end_ns=end_ns)
        return [b for b in bars if b.close_time <= end_ns]
