"""USDⓈ-M trade history without an API key: the ``@trade`` stream's trades from the
public ``trades`` and ``aggTrades``.

USDⓈ-M's ``historicalTrades`` (trades by id) is a MARKET_DATA endpoint: the venue
refuses it without an API key (``-2014 API-key format invalid.``), so a fill of the
``@trade`` channel cannot use it. ``trades`` is public and gives the last 1000
trades exactly: a gap that recent (a reconnect's) is filled from it alone.
Older trades come from ``aggTrades``, public too: each of its
records is the market trades ``f`` to ``l`` of one taker order, at one price,
on one side, at one time. Those trades are rebuilt as ``l - f + 1`` ticks of
equal quantity (the last takes what rounding left), so every bar the fill
builds has the official kline's open, high, low, close, volume, quote volume,
taker buy and sell volumes and trade count; only the split of the aggregate's
quantity among its trades is not the venue's. So the one inexact case is an
aggregate the stream had partly delivered before the gap: the share its
missing trades get is not what they weighed, and the volumes of that bar are
off by the difference (its open, high, low, close and count stay exact).

Trade ids ``aggTrades`` does not cover, between two of its records (or between
the last known trade and the first record, or the last record and the trade
the stream resumed with), are records that are not market trades (``NA``,
insurance fund, ADL): aggregates hold market trades only. They come back as
ticks of price and quantity 0 with the condition ``not_market``, which the
gate refuses as it refuses them live, so the fill covers their ids instead of
reporting them missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.data.models import Side, Tick
from bot.data.timeframes import NS_PER_MS
from bot.data.venues.binance.history import BinanceTradeHistory
from bot.data.venues.binance_usdm.spec import NOT_MARKET
from bot.data.venues.history import TradePosition

if TYPE_CHECKING:
    from bot.data.venues.binance_usdm.rest import BinanceUsdmRest, UsdmAggTrade


class UsdmTradeHistory(BinanceTradeHistory):
    """USDⓈ-M trades by id: the public recent ``trades`` and, for what is older, the
    trades rebuilt from ``aggTrades`` (``@trade`` channel); or aggregate trades."""

    rest: BinanceUsdmRest

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        """Trades after ``after`` (or from ``after.since_ns``) up to ``until``.

        The venue's last 1000 trades (``trades``, public) are exact: when they reach
        back to the first missing id they are the whole answer. The trades older
        than them are rebuilt from the aggregate trades from the last known trade's
        time on, up to the end of the aggregate the recent trades start in (whole
        aggregates add up to their quantity), and the recent trades give the rest.
        """
        if self.aggregate:
            return await super().fetch(symbol, after, until, now_ns)
        if after.last_id < 0 and after.since_ns is None:
            return []
        first_id = after.last_id + 1 if after.last_id >= 0 else None
        until_id = until.trade_id - 1 if until is not None else None
        if until_id is not None and first_id is not None and until_id < first_id:
            return []
        recent = await self.rest.recent_trades(symbol)
        reaches_back = bool(recent) and (
            recent[0].trade_id <= first_id if first_id is not None
            else after.since_ns is not None and recent[0].timestamp <= after.since_ns)
        older: list[Tick] = []
        covered = -1  # the last id the answers account for
        if recent:
            covered = recent[-1].trade_id
        if not reaches_back:
            start_ns = max(after.last_ts, 0) if first_id is not None else after.since_ns or 0
            stop_after = recent[0].trade_id - 1 if recent else until_id
            rebuilt = await self._rebuilt(symbol, start_ns, _Rebuilt(
                symbol.upper(), self.rest.venue, first_id, until_id, stop_after))
            older = rebuilt.ticks
            covered = max(covered, (rebuilt.next_id or 0) - 1)
        known = older[-1].trade_id if older else (after.last_id if first_id is not None else -1)
        ticks = older + [t for t in recent if t.trade_id > known
                         and (until_id is None or t.trade_id <= until_id)]
        # Ids the answers cover but do not hold are not market trades: aggregates and (on
        # the venue) the trade lists hold market trades only. From the first missing id
        # when the answers reach back to it, up to the stream's next trade when they reach it.
        start = first_id if reaches_back or older else None
        end = until_id if until_id is not None and covered >= until_id else None
        return _not_market_filled(ticks, start, end, self.rest.receive_time_ns())

    async def _rebuilt(self, symbol: str, start_ns: int, rebuilt: _Rebuilt) -> _Rebuilt:
        """``rebuilt`` filled from the aggregate trades from ``start_ns`` on, a page of 1000
        at a time."""
        page = await self.rest.agg_trade_rows(symbol, start_ms=start_ns // NS_PER_MS)
        while True:
            rebuilt.extend(page, self.rest.receive_time_ns())
            if rebuilt.done or len(page) < self.rest.PAGE:
                return rebuilt
            page = await self.rest.agg_trade_rows(symbol, from_id=page[-1].a + 1)


class _Rebuilt:
    """The ticks of aggregate trades, kept from ``next_id`` (None: from the first) to
    ``until_id`` (None: all); done once the aggregate holding ``stop_after`` (default
    ``until_id``) is in. ``next_id`` follows the last id accounted for, in an aggregate
    or between two."""

    def __init__(self, symbol: str, venue: str, next_id: int | None,
                 until_id: int | None, stop_after: int | None = None) -> None:
        self.symbol = symbol
        self.venue = venue
        self.next_id = next_id
        self.until_id = until_id
        self.stop_after = until_id if stop_after is None else stop_after
        self.ticks: list[Tick] = []

    @property
    def done(self) -> bool:
        """Every id up to ``stop_after`` is accounted for."""
        return (self.stop_after is not None and self.next_id is not None
                and self.next_id > self.stop_after)

    def extend(self, rows: Iterable[UsdmAggTrade], receive_ns: int) -> None:
        for row in rows:
            if self.done:
                return
            if self.next_id is None:
                self.next_id = row.f
            last = row.l if self.until_id is None else min(row.l, self.until_id)
            stop = row.f if self.until_id is None else min(row.f, self.until_id + 1)
            first = max(row.f, self.next_id)
            if first <= last:
                self.ticks.extend(_split(row, first, last, self.venue, self.symbol, receive_ns))
            self.next_id = max(self.next_id, last + 1, stop)


def _not_market_filled(ticks: list[Tick], start: int | None, end: int | None,
                       receive_ns: int) -> list[Tick]:
    """``ticks`` (ordered by id) with a refused ``not_market`` record for every id missing
    between them, and from ``start`` and up to ``end`` when given (None: not known)."""
    out: list[Tick] = []
    expected = start
    for tick in ticks:
        if expected is not None:
            out.extend(_not_market(tick, trade_id, tick.timestamp, receive_ns)
                       for trade_id in range(expected, tick.trade_id))
        out.append(tick)
        expected = tick.trade_id + 1
    if end is not None and expected is not None and out:
        out.extend(_not_market(out[-1], trade_id, out[-1].timestamp, receive_ns)
                   for trade_id in range(expected, end + 1))
    return out


def _not_market(like: Tick, trade_id: int, time_ns: int, receive_ns: int) -> Tick:
    """A record of price and quantity 0 that is not a market trade, in ``like``'s symbol."""
    return Tick(like.venue, like.symbol, 0.0, 0.0, Side.UNKNOWN, trade_id, time_ns, receive_ns,
                (NOT_MARKET,))


def _split(row: UsdmAggTrade, first: int, last: int, venue: str, symbol: str,
           receive_ns: int) -> list[Tick]:
    """Trades ``first`` to ``last`` of the aggregate ``row``, each its equal share of the
    aggregate's quantity; the last share takes what rounding left, so the shares of the
    whole aggregate add up to its quantity."""
    count = row.l - row.f + 1
    share = row.q / count
    side = Side.SELL if row.m else Side.BUY
    time_ns = row.T * NS_PER_MS
    return [Tick(venue, symbol, row.p, row.q - share * (count - 1) if trade_id == row.l else share,
                 side, trade_id, time_ns, receive_ns)
            for trade_id in range(first, last + 1)]
