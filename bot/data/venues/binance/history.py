"""Binance's REST history as recovery and warm-up read it: trades by id, klines.

Also :func:`binance_request_bound`, the bound of REST requests a run makes that
the tests check against the fake exchange's counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from bot.data.models import Bar, Tick
from bot.data.timeframes import NS_PER_MS, NS_PER_SECOND, TIMEFRAME_SECONDS, base_length_ns
from bot.data.venues.history import TradePosition, VenueHistory
from bot.data.venues.spec import VenueFacts

if TYPE_CHECKING:
    from bot.data.venues.binance.rest import BinanceRest


class BinanceTradeHistory(VenueHistory):
    """Binance trades by id: ``historicalTrades`` (or ``aggTrades`` for the aggTrade channel)."""

    def __init__(self, rest: BinanceRest, facts: VenueFacts, *, aggregate: bool) -> None:
        super().__init__(rest, facts)
        self.rest: BinanceRest = rest
        self.aggregate = aggregate

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
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
                          retries: int = 0, run_seconds: float | None = None) -> int:
    """An upper bound of the Binance REST requests a run makes.

    ``symbols`` warmed up (``warm_up``), each: per timeframe
    ``ceil(bar_history_size / 1000)`` klines pages; the seed of the longer bars
    (the base bars of the longest interval, 1000 a page); one ``aggTrades``
    per longer timeframe for its first trade id; the fill's first-id lookup
    and its first page. The venue's clock (``/time``) is read at most once per
    ``SERVER_TIME_TTL_S`` (60 s) by each REST client: ``run_seconds // 60 + 1``
    reads for a run of that length when given, else (a run of unknown length,
    restarts) one per symbol. ``fills``: the trades each gap fill fetched (and
    any warm-up fill past its first page), ``n // 1000 + 1`` pages each.
    ``retries``: answers retried (429, 5xx, no answer: ``max_retries`` (5) per
    request at most; a success whose body is no JSON: once), one request each.
    """
    from bot.data.venues.binance.rest import SERVER_TIME_TTL_S  # the REST client, when used

    lengths = sorted({TIMEFRAME_SECONDS[tf] for tf in timeframes})
    base = base_length_ns(list(timeframes)) // NS_PER_SECOND
    longer = sum(1 for n in lengths if n != base)
    seed_bars = lengths[-1] // base - 1
    per_symbol = (len(lengths) * _pages(bar_history_size)
                  + (_pages(seed_bars) if seed_bars else 0) + longer + 2)
    clock_reads = symbols if run_seconds is None else int(run_seconds // SERVER_TIME_TTL_S) + 1
    return ((symbols * per_symbol + clock_reads) if warm_up else 0) \
        + sum(n // BINANCE_PAGE + 1 for n in fills) + retries


def _pages(rows: int) -> int:
    return -(-rows // BINANCE_PAGE)
