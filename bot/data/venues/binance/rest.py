"""Binance spot REST market data: trades by id, aggregate trades, klines.

A REST trade becomes the very :class:`~bot.data.models.Tick` the stream codec
(:mod:`bot.data.venues.binance`) makes for the same trade, field by field but
the receive time: same venue and unified symbol, ``id`` (``a`` for aggregate
trades) as trade id, ``isBuyerMaker``/``m`` true meaning a taker SELL,
millisecond times scaled to nanoseconds, prices parsed from the same decimal
strings by the same parser.

Endpoints and request weights (Binance spot API documentation):
``/api/v3/historicalTrades`` 25, ``/api/v3/aggTrades`` 4, ``/api/v3/klines`` 2,
``/api/v3/time`` 1, ``/api/v3/exchangeInfo`` 20 (the whole list; the
``symbols`` parameter costs the same and answers only ``-1121 Invalid symbol.``
when one is unknown, which names none); at most 1000 rows per request. Requests go through a
:class:`~bot.data.rest.limits.RateLimiter` that keeps the minute's weight under
the limit and honours ``Retry-After``; a refused request raises
:class:`~bot.data.rest.limits.RestError` with Binance's ``code`` and ``msg``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import msgspec

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.listing import Listing
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.rest.limits import HttpClient, RateLimiter, RequestBudget, decode
from bot.data.timeframes import NS_PER_MS, timeframe_ns
from bot.data.venues.binance.session import to_raw_symbol

MAX_LIMIT = 1000
# Half of Binance spot's 6000 weight per minute (and far under its raw-request limit).
BINANCE_BUDGET = RequestBudget(requests_per_minute=1200, weight_per_minute=3000)
WEIGHTS = {"historicalTrades": 25, "aggTrades": 4, "klines": 2, "time": 1, "exchangeInfo": 20}
# exchangeInfo's status of a symbol that trades now (others: BREAK, HALT, END_OF_DAY...).
TRADING = "TRADING"
# How long the venue clock's offset from ours, once read, is used before it is read again.
SERVER_TIME_TTL_S = 60.0


class _Trade(msgspec.Struct, gc=False):
    """A ``historicalTrades`` row; prices and quantities arrive as decimal strings."""

    id: int
    price: float
    qty: float
    time: int
    isBuyerMaker: bool  # Binance's field name


class _AggTrade(msgspec.Struct, gc=False):
    """An ``aggTrades`` row: ``a`` aggregate id, ``f`` its first trade id, ``T`` time."""

    a: int
    p: float
    q: float
    f: int
    T: int
    m: bool


class _Kline(msgspec.Struct, array_like=True, gc=False):
    """A kline row, in the documented column order."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: int
    quote_volume: float
    count: int
    taker_buy_volume: float
    taker_buy_quote_volume: float
    ignore: str


class _ServerTime(msgspec.Struct):
    serverTime: int  # Binance's field name


class _SymbolInfo(msgspec.Struct, gc=False):
    """The fields of an exchangeInfo ``symbols`` entry the listing needs (others ignored)."""

    symbol: str
    status: str
    baseAsset: str  # Binance's field names
    quoteAsset: str
    contractType: str = ""  # futures only: PERPETUAL, CURRENT_QUARTER...


class _ExchangeInfo(msgspec.Struct):
    serverTime: int
    symbols: list[_SymbolInfo]


# strict=False: decimal strings decode into floats, exactly as the stream codec reads them.
_TRADES = msgspec.json.Decoder(list[_Trade], strict=False)
_AGG_TRADES = msgspec.json.Decoder(list[_AggTrade], strict=False)
_KLINES = msgspec.json.Decoder(list[_Kline], strict=False)
_SERVER_TIME = msgspec.json.Decoder(_ServerTime)
_EXCHANGE_INFO = msgspec.json.Decoder(_ExchangeInfo)


def _require_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigError("limit", limit, f"must be an integer from 1 to {MAX_LIMIT}")
    return limit


class BinanceRest(HttpClient):
    """Binance (or Binance.US, per ``config.binance_venue``) spot market data over REST.

    Symbols are unified (``"BTC/USDT"``); ticks and bars carry them that way.
    Use ``async with BinanceRest(config) as rest:`` or call :meth:`close`.
    """

    budget = BINANCE_BUDGET
    API = "/api/v3"  # the market-data endpoints' path, under the base URL
    WEIGHTS = WEIGHTS

    def __init__(self, config: StreamManagerConfig, *,
                 session: aiohttp.ClientSession | None = None,
                 limiter: RateLimiter | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        """``clock`` (ns since the epoch) stamps the receive time of the trades it returns:
        a manager passes its own, the one its live ticks are stamped by."""
        venue, base_url = self.endpoint(config)
        super().__init__(base_url, config.connect_timeout, session=session, limiter=limiter)
        self.venue = venue
        self._clock = clock
        # The venue's clock minus ours (ms) and when it was read (monotonic s); see
        # _server_time_ms. The lock makes concurrent callers share one request.
        self._server_offset_ms: int | None = None
        self._server_offset_at = 0.0
        self._server_time_lock = asyncio.Lock()

    @classmethod
    def endpoint(cls, config: StreamManagerConfig) -> tuple[str, str]:
        """(venue name, REST base URL) for ``config``; a venue speaking the same API elsewhere
        overrides it, with :attr:`API`, :attr:`WEIGHTS`, :meth:`klines_weight` and
        :meth:`raw_symbol`."""
        return config.binance_venue, config.binance_rest_url or ""

    def raw_symbol(self, symbol: str) -> str:
        """The venue's name of a unified symbol (a ConfigError if it is not one)."""
        return to_raw_symbol(symbol)

    def unified_symbol(self, base: str, quote: str, contract_type: str) -> str | None:
        """The unified symbol of an ``exchangeInfo`` entry (None: one this venue's streams
        do not carry)."""
        return f"{base}/{quote}".upper()

    def klines_weight(self, limit: int) -> int:
        """The weight of one klines request of ``limit`` rows."""
        return self.WEIGHTS["klines"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(venue={self.venue!r}, base_url={self.base_url!r})"

    @property
    def used_weight(self) -> int:
        """The last ``X-MBX-USED-WEIGHT-1M`` Binance reported (reset when a new minute starts)."""
        return self.limiter.used_weight

    # -- symbols -----------------------------------------------------------------------
    async def listing(self) -> Listing:
        """Every symbol the venue lists (``"BTC/USDT"``, from its base and quote assets)
        with its status, and the venue's clock: one ``exchangeInfo`` request."""
        body = await self._get(f"{self.API}/exchangeInfo", {},
                               weight=self.WEIGHTS["exchangeInfo"])
        received_ns = self._clock()  # the clock receive times are stamped by
        info = decode(_EXCHANGE_INFO, body, "exchangeInfo")
        self._note_server_time(info.serverTime, received_ns)
        listed = ((self.unified_symbol(s.baseAsset, s.quoteAsset, s.contractType), s.status)
                  for s in info.symbols)
        return Listing(self.venue, {symbol: status for symbol, status in listed
                                    if symbol is not None}, TRADING,
                       venue_time_ns=info.serverTime * NS_PER_MS, local_time_ns=received_ns)

    # -- trades ------------------------------------------------------------------------
    async def historical_trades(self, symbol: str, from_id: int,
                                limit: int = 1000) -> list[Tick]:
        """Up to ``limit`` (1-1000) trades from trade id ``from_id`` on, oldest first."""
        raw = self.raw_symbol(symbol)
        params = {"symbol": raw, "fromId": str(from_id), "limit": str(_require_limit(limit))}
        body = await self._get(f"{self.API}/historicalTrades", params,
                               weight=self.WEIGHTS["historicalTrades"])
        rows = decode(_TRADES, body, "historicalTrades")
        receive_ns = self._clock()
        unified = symbol.upper()
        return [Tick(self.venue, unified, r.price, r.qty, Side.SELL if r.isBuyerMaker else Side.BUY,
                     r.id, r.time * NS_PER_MS, receive_ns) for r in rows]

    async def agg_trades(self, symbol: str, *, from_id: int | None = None,
                         start_ms: int | None = None, end_ms: int | None = None,
                         limit: int = 1000) -> list[Tick]:
        """Up to ``limit`` aggregate trades, as the ``@aggTrade`` stream's ticks.

        From aggregate id ``from_id``, or within ``[start_ms, end_ms]``
        (milliseconds, inclusive), or the most recent ones when neither is given.
        A tick's ``trade_id`` is the aggregate id.
        """
        if from_id is not None and (start_ms is not None or end_ms is not None):
            raise ConfigError("from_id", from_id,
                              "give either from_id or start_ms/end_ms, not both")
        params = {"symbol": self.raw_symbol(symbol), "limit": str(_require_limit(limit))}
        for name, value in (("fromId", from_id), ("startTime", start_ms), ("endTime", end_ms)):
            if value is not None:
                params[name] = str(value)
        rows = await self._agg_rows(params)
        receive_ns = self._clock()
        unified = symbol.upper()
        return [Tick(self.venue, unified, r.p, r.q, Side.SELL if r.m else Side.BUY, r.a,
                     r.T * NS_PER_MS, receive_ns) for r in rows]

    async def trades_from(self, symbol: str, from_id: int, *, until_id: int | None = None,
                          aggregate: bool = False) -> list[Tick]:
        """Every trade from id ``from_id`` to ``until_id`` (inclusive), or up to the latest.

        Pages of 1000 through ``historicalTrades`` (``aggTrades`` and aggregate
        ids when ``aggregate``), until ``until_id`` is reached or a short page
        says the venue has nothing newer. Ordered by id, without duplicates.
        Trades older than the venue keeps are not served: the result then
        starts later than ``from_id`` (or is empty).
        """
        if until_id is not None and until_id < from_id:
            raise ConfigError("until_id", until_id, f"must be >= from_id ({from_id})")
        out: list[Tick] = []
        next_id = from_id
        while until_id is None or next_id <= until_id:
            want = MAX_LIMIT if until_id is None else min(MAX_LIMIT, until_id - next_id + 1)
            if aggregate:
                page = await self.agg_trades(symbol, from_id=next_id, limit=want)
            else:
                page = await self.historical_trades(symbol, next_id, want)
            fresh = [t for t in page if t.trade_id >= next_id
                     and (until_id is None or t.trade_id <= until_id)]
            out.extend(fresh)
            if len(page) < want or not fresh:
                break
            next_id = fresh[-1].trade_id + 1
        return out

    async def first_trade_id_at(self, symbol: str, start_ms: int) -> int | None:
        """Id of the first trade at or after ``start_ms``; None if there is none yet.

        One ``aggTrades`` request from ``startTime``: the first aggregate trade's
        ``f`` is its first trade's id.
        """
        rows = await self._agg_rows({"symbol": self.raw_symbol(symbol), "startTime": str(start_ms),
                                     "limit": "1"})
        return rows[0].f if rows else None

    async def _agg_rows(self, params: dict[str, str]) -> list[_AggTrade]:
        body = await self._get(f"{self.API}/aggTrades", params, weight=self.WEIGHTS["aggTrades"])
        return decode(_AGG_TRADES, body, "aggTrades")

    # -- klines ------------------------------------------------------------------------
    async def klines(self, symbol: str, timeframe: str, *, limit: int,
                     end_ms: int | None = None) -> list[Bar]:
        """The last ``limit`` closed klines ending at or before ``end_ms`` (default now), as bars.

        Oldest first, fetched in pages of 1000 backwards from the end. The
        still-open kline is never returned: Binance's clock (``/api/v3/time``)
        decides what is closed. Bars are shaped as the aggregator makes them:
        ``close_time = open_time + length - 1`` ns, taker-buy volumes from the
        kline, ``sell_volume = volume - buy_volume``, trade ids -1 (klines
        carry none), flags EMPTY for a kline without trades and NONE otherwise.
        Fewer bars come back when the symbol's history is shorter.
        """
        length_ns = timeframe_ns(timeframe)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError("limit", limit, "must be an integer >= 1")
        length_ms = length_ns // NS_PER_MS
        now_ms = await self._server_time_ms()
        last_close = now_ms - 1 if end_ms is None else min(end_ms, now_ms - 1)
        last_open = (last_close + 1 - length_ms) // length_ms * length_ms
        if last_open < 0:
            return []
        raw, unified = self.raw_symbol(symbol), symbol.upper()
        pages: list[list[_Kline]] = []
        remaining = limit
        while remaining > 0:
            want = min(MAX_LIMIT, remaining)
            body = await self._get(f"{self.API}/klines", {
                "symbol": raw, "interval": timeframe, "endTime": str(last_open),
                "limit": str(want)}, weight=self.klines_weight(want))
            rows = [k for k in decode(_KLINES, body, "klines") if k.open_time <= last_open]
            pages.append(rows)
            remaining -= len(rows)
            if len(rows) < want:
                break
            last_open = rows[0].open_time - length_ms
        return [self._bar(k, unified, timeframe, length_ns)
                for rows in reversed(pages) for k in rows]

    def _bar(self, k: _Kline, symbol: str, timeframe: str, length_ns: int) -> Bar:
        open_ns = k.open_time * NS_PER_MS
        return Bar(self.venue, symbol, timeframe, open_ns, open_ns + length_ns - 1,
                   k.open, k.high, k.low, k.close, k.volume, k.quote_volume,
                   k.taker_buy_volume, k.volume - k.taker_buy_volume, k.taker_buy_quote_volume,
                   k.count, -1, -1, BarFlag.NONE if k.count else BarFlag.EMPTY)

    async def _server_time_ms(self) -> int:
        """The venue's clock now (ms), from its offset to ours read at most every
        :data:`SERVER_TIME_TTL_S` seconds (``/api/v3/time``, or an ``exchangeInfo``
        answer's ``serverTime``), so a warm-up of N symbols asks it a few times, not N.

        The offset is taken with the local time the answer arrived, so the estimate
        is never ahead of the venue: what it calls closed is closed.
        """
        async with self._server_time_lock:
            if (self._server_offset_ms is None
                    or time.monotonic() - self._server_offset_at >= SERVER_TIME_TTL_S):
                body = await self._get(f"{self.API}/time", {}, weight=self.WEIGHTS["time"])
                self._note_server_time(decode(_SERVER_TIME, body, "time").serverTime,
                                       self._clock())
            assert self._server_offset_ms is not None
            return self._clock() // NS_PER_MS + self._server_offset_ms

    def _note_server_time(self, server_ms: int, received_ns: int) -> None:
        """The venue's clock read ``server_ms`` when the local clock read ``received_ns``."""
        self._server_offset_ms = server_ms - received_ns // NS_PER_MS
        self._server_offset_at = time.monotonic()
