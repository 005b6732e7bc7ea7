"""Alpaca's REST history as recovery and warm-up read it: stock trades by time window, bars."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.data.models import Bar, Tick
from bot.data.timeframes import NS_PER_SECOND
from bot.data.venues.history import TradePosition, VenueHistory
from bot.data.venues.spec import VenueFacts

if TYPE_CHECKING:
    from bot.data.venues.alpaca.rest import AlpacaRest


TICK_RULE_LEAD_NS = 5 * 60 * NS_PER_SECOND  # trades read before a warm-up window, for sides


class AlpacaTradeHistory(VenueHistory):
    """Alpaca stock trades by time window (Alpaca trades carry no sequence)."""

    def __init__(self, rest: AlpacaRest, facts: VenueFacts) -> None:
        super().__init__(rest, facts)
        self.rest: AlpacaRest = rest

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
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
