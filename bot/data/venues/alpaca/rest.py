"""Alpaca over REST: historical trades and bars (``/v2/stocks/{symbol}/...``) from the
data API, and the assets symbols are checked against (``/v2/assets``) from the trading API.

A REST trade becomes the :class:`~bot.data.models.Tick` the stream session
(:mod:`bot.data.venues.alpaca`) makes for the same trade, field by field but
the receive time: trade id ``stock_trade_id(x, i)``, exact nanosecond time,
conditions, exchange and the ``updates`` mask of the conditions. Stock trades
carry no taker side; the stream infers it with the tick rule, and so do these
ticks, in time order, continuing from the price before the window when the
caller knows it.

Requests carry ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` (never shown in a
repr, log or error), ``feed`` from the configuration, and follow
``next_page_token`` until the answer is complete (a repeated token or more than
``MAX_PAGES`` pages end the paging with an error). The asset list is one request
(``GET /v2/assets?asset_class=us_equity``, every status) to ``alpaca_trading_url``,
in the same budget (a second to the paper host when the default live host refuses
the keys). A refused request raises
:class:`~bot.data.rest.limits.RestError` with Alpaca's ``message`` (and
``code`` when it sends one); 429 waits ``Retry-After`` and retries.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp
import msgspec

from bot.data.config import ALPACA_TRADING_DEFAULT, StreamManagerConfig
from bot.data.errors import ConfigError, MalformedFrame
from bot.data.listing import Listing
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.rest.limits import HttpClient, RateLimiter, RequestBudget, RestError, decode
from bot.data.timeframes import NS_PER_SECOND, timeframe_ns
from bot.data.venues.alpaca.conditions import updates_for
from bot.data.venues.alpaca.session import VENUE_ALPACA, AlpacaCredentials, stock_trade_id
from bot.data.venues.alpaca.timestamps import parse_rfc3339_ns
from bot.data.venues.tickrule import TickRule

# Three quarters of Alpaca's 200 requests per minute.
ALPACA_BUDGET = RequestBudget(requests_per_minute=150, weight_per_minute=150)
PAGE_LIMIT = 10_000  # the documented maximum rows per request
MAX_PAGES = 1_000  # pages one answer may take (ten million rows): a runaway venue ends here
# The project's timeframes Alpaca's bars endpoint serves, by Alpaca's name.
TIMEFRAMES = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "1h": "1Hour", "1d": "1Day"}
# The REST feeds: the stream's "test" feed has no REST counterpart (the server default is used).
REST_FEEDS = {"iex": "iex", "sip": "sip", "delayed_sip": "delayed_sip", "test": None}
# How far back bars() looks for `limit` bars: the span of `limit` bars times this, or
# MIN_LOOKBACK_NS (weekends and holidays), whichever is longer.
MAX_SPARSITY = 64
MIN_LOOKBACK_NS = 14 * 86_400 * NS_PER_SECOND
ASSETS = "/v2/assets"
# An asset's status meaning it is listed now (the other: "inactive"). An active asset
# with tradable=false is still served as market data, so it streams.
ACTIVE = "active"
PAPER_TRADING_URL = "https://paper-api.alpaca.markets"


class _Trade(msgspec.Struct, gc=False):
    t: str
    x: str
    p: float
    s: float
    i: int
    c: tuple[str, ...] = ()


class _TradesPage(msgspec.Struct):
    trades: list[_Trade] | None = None
    next_page_token: str | None = None


class _Bar(msgspec.Struct, gc=False):
    t: str
    o: float
    h: float
    low: float = msgspec.field(name="l")
    c: float
    v: float
    n: int = 0
    vw: float = 0.0


class _BarsPage(msgspec.Struct):
    bars: list[_Bar] | None = None
    next_page_token: str | None = None


class _Asset(msgspec.Struct, gc=False):
    """The fields of an Asset entity the listing needs (others ignored)."""

    symbol: str
    status: str


_ASSETS = msgspec.json.Decoder(list[_Asset])
_TRADES_PAGE = msgspec.json.Decoder(_TradesPage)
_BARS_PAGE = msgspec.json.Decoder(_BarsPage)
P = TypeVar("P", _TradesPage, _BarsPage)


def rfc3339_ns(time_ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 with nine fractional digits, in UTC."""
    seconds, fraction = divmod(time_ns, NS_PER_SECOND)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


class AlpacaRest(HttpClient):
    """Alpaca stock trades and bars for the configured feed."""

    budget = ALPACA_BUDGET
    # Alpaca's live trading host refuses paper-trading keys and the paper host live ones;
    # both list the same assets. At the default (live) host, refused keys are tried on the
    # paper host once.
    TRADING_FALLBACK = {ALPACA_TRADING_DEFAULT: PAPER_TRADING_URL}

    venue = VENUE_ALPACA

    def __init__(self, config: StreamManagerConfig, credentials: AlpacaCredentials, *,
                 session: aiohttp.ClientSession | None = None,
                 limiter: RateLimiter | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        """``clock`` (ns since the epoch) stamps the receive time of the trades it returns:
        a manager passes its own, the one its live ticks are stamped by."""
        super().__init__(config.alpaca_rest_url or "", config.connect_timeout,
                         session=session, limiter=limiter,
                         headers={"APCA-API-KEY-ID": credentials.key_id,
                                  "APCA-API-SECRET-KEY": credentials.secret_key})
        self.feed = REST_FEEDS[config.alpaca_feed]
        self.trading_url = config.alpaca_trading_url or ""
        self._clock = clock

    def __repr__(self) -> str:
        return f"AlpacaRest(feed={self.feed!r}, base_url={self.base_url!r})"

    async def listing(self) -> Listing:
        """Every US equity Alpaca lists (active or inactive), by symbol: one request to
        the trading API (two when the default live host refuses the keys and the paper host
        takes them). Keys no host takes raise a RestError saying which host takes which."""
        hosts = [self.trading_url]
        if self.trading_url in self.TRADING_FALLBACK:
            hosts.append(self.TRADING_FALLBACK[self.trading_url])
        for host in hosts:
            try:
                body = await self._get(ASSETS, {"asset_class": "us_equity"}, base_url=host)
                break
            except RestError as exc:
                if exc.status not in (401, 403):
                    raise
                refused = exc
        else:
            asked = " and ".join(f"{host}{ASSETS}" for host in hosts)
            raise RestError(self.venue, refused.status, refused.code,
                            f"{refused.text} (asking {asked}; live keys are answered by "
                            f"{ALPACA_TRADING_DEFAULT}, paper-trading keys by {PAPER_TRADING_URL}: "
                            "set ALPACA_TRADING_URL)") from None
        assets = decode(_ASSETS, body, "assets")
        return Listing(self.venue, {a.symbol: a.status for a in assets}, ACTIVE)

    async def trades(self, symbol: str, start_ns: int, end_ns: int, *,
                     previous_price: float | None = None,
                     previous_side: Side = Side.UNKNOWN) -> list[Tick]:
        """Every trade with ``start_ns <= time <= end_ns``, ordered by time, without duplicates.

        Duplicates (same exchange, id and time, e.g. across pages) are kept
        once. Sides come from the tick rule applied in order, continued from
        the last trade before the window (``previous_price`` and
        ``previous_side``) when given, so they equal the stream's.
        """
        symbol = _stock_symbol(symbol)
        if end_ns < start_ns:
            raise ConfigError("end_ns", end_ns, f"must be >= start_ns ({start_ns})")
        params = {"start": rfc3339_ns(start_ns), "end": rfc3339_ns(end_ns)}
        unique: dict[tuple[str, int, int], tuple[int, int, _Trade]] = {}
        async for page in self._pages(f"/v2/stocks/{symbol}/trades", params, _TRADES_PAGE):
            for row in page.trades or ():
                timestamp, trade_id = _trade_keys(row)
                unique.setdefault((row.x, row.i, timestamp), (timestamp, trade_id, row))
        receive_ns = self._clock()
        rule = TickRule()
        if previous_price is not None:
            rule.seed(symbol, previous_price, previous_side)
        return [Tick(VENUE_ALPACA, symbol, r.p, r.s, rule.classify(symbol, r.p), trade_id,
                     timestamp, receive_ns, r.c, r.x, updates_for(r.c))
                for timestamp, trade_id, r in sorted(unique.values(), key=lambda e: e[0])]

    async def bars(self, symbol: str, timeframe: str, *, limit: int,
                   end_ns: int | None = None) -> list[Bar]:
        """The last ``limit`` bars closed at or before ``end_ns`` (default: now), oldest first.

        ``timeframe`` is one of ``1m 5m 15m 1h 1d``. Alpaca bars carry no taker
        side: ``buy_volume``, ``sell_volume`` and ``buy_quote_volume`` are 0 (all
        volume is of unknown side); ``quote_volume`` is ``vw * v``,
        ``trade_count`` is ``n``, trade ids are -1. Alpaca has no bar for an
        interval without an eligible trade. Its daily bars open at midnight New
        York time, not UTC. One window is asked, newest first (``sort=desc``),
        reaching back ``MAX_SPARSITY`` times the bars' span (at least 14 days:
        weekends and holidays), and read until ``limit`` bars are found: one
        request for up to 10,000 bars however long the market was closed. A
        sparser symbol returns fewer bars. Should the answer come oldest first
        (a server that ignores ``sort``), the whole window is read instead.
        """
        symbol = _stock_symbol(symbol)
        name = TIMEFRAMES.get(timeframe)
        if name is None:
            raise ConfigError("timeframe", timeframe,
                              f"Alpaca bars allow: {', '.join(TIMEFRAMES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError("limit", limit, "must be an integer >= 1")
        length = timeframe_ns(timeframe)
        end = time.time_ns() if end_ns is None else end_ns
        horizon = max(end - max(limit * length * MAX_SPARSITY, MIN_LOOKBACK_NS), 0)
        params = {"timeframe": name, "start": rfc3339_ns(horizon // length * length),
                  "end": rfc3339_ns(end), "sort": "desc"}
        found: dict[int, Bar] = {}
        newest_first = True
        pages = self._pages(f"/v2/stocks/{symbol}/bars", params, _BARS_PAGE)
        async with contextlib.aclosing(pages):
            async for page in pages:
                bars = [self._bar(row, symbol, timeframe, length) for row in page.bars or ()]
                if len(bars) > 1 and bars[0].open_time < bars[-1].open_time:
                    newest_first = False
                for bar in bars:
                    if bar.close_time <= end:
                        found.setdefault(bar.open_time, bar)
                if newest_first and len(found) >= limit:
                    break
        return [found[t] for t in sorted(found)[-limit:]]

    def _bar(self, row: _Bar, symbol: str, timeframe: str, length: int) -> Bar:
        try:
            open_ns = parse_rfc3339_ns(row.t)
        except ValueError as exc:
            raise MalformedFrame(f"bad bar in Alpaca's answer: {exc}",
                                 msgspec.json.encode(row)) from None
        return Bar(VENUE_ALPACA, symbol, timeframe, open_ns, open_ns + length - 1,
                   row.o, row.h, row.low, row.c, row.v, row.vw * row.v, 0.0, 0.0, 0.0,
                   row.n, -1, -1, BarFlag.NONE)

    async def _pages(self, path: str, params: dict[str, str], decoder: msgspec.json.Decoder[P]
                     ) -> AsyncGenerator[P, None]:
        """Every page of a paginated answer, following ``next_page_token``.

        A token the venue already gave (its paging would never end) or more than
        :data:`MAX_PAGES` pages raise :class:`~bot.data.errors.MalformedFrame`
        naming the path: the answer is incomplete, and no request is repeated.
        """
        query = {**params, "limit": str(PAGE_LIMIT)}
        if self.feed is not None:
            query["feed"] = self.feed
        seen: set[str] = set()
        while True:
            page = decode(decoder, await self._get(path, query), path)
            yield page
            token = page.next_page_token
            if not token:
                return
            if token in seen:
                raise MalformedFrame(f"Alpaca repeated a next_page_token on {path} after "
                                     f"{len(seen) + 1} pages: paging stopped, answer incomplete",
                                     token)
            if len(seen) + 1 >= MAX_PAGES:
                raise MalformedFrame(f"Alpaca's answer on {path} goes on past {MAX_PAGES} pages "
                                     f"of {PAGE_LIMIT} rows: paging stopped, answer incomplete",
                                     token)
            seen.add(token)
            query["page_token"] = token


def _trade_keys(row: _Trade) -> tuple[int, int]:
    """A trade's time in ns and its per-symbol id, as the stream session computes them."""
    try:
        return parse_rfc3339_ns(row.t), stock_trade_id(row.x, row.i)
    except ValueError as exc:
        raise MalformedFrame(f"bad trade in Alpaca's answer: {exc}",
                             msgspec.json.encode(row)) from None


def _stock_symbol(symbol: str) -> str:
    ticker = symbol.strip().upper()
    if not ticker or "/" in ticker:
        raise ConfigError("symbol", symbol, "Alpaca stock history takes tickers such as 'TSLA'")
    return ticker
