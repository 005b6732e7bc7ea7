"""Alpaca historical stock data: ``/v2/stocks/{symbol}/trades`` and ``/v2/stocks/{symbol}/bars``.

Requests must carry ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY`` (else 403).
``start``/``end`` are RFC-3339 (``start`` defaults to the beginning of the
current day, ``end`` to now), ``limit`` is 1-10000 (default 1000), ``sort`` is
``asc`` (the default: oldest first) or ``desc`` (newest first), and a
``next_page_token`` continues a result that did not fit, in the same order. Bars are built from
the simulator's trades with per-field trade-condition rules: odd lots (``I``)
count toward volume but not prices, and a bucket without a price-eligible trade
has no bar. Bars are UTC epoch multiples of the timeframe.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.data.sim.alpaca_frames import parse_rfc3339, price_number, rest_trade, rfc3339
from bot.data.sim.clock import MarketClock
from bot.data.sim.feed import MarketFeed
from bot.data.sim.trades import E8, SimTrade

VENUE = "alpaca"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
NS_PER_DAY = 86_400_000_000_000
# Conditions that keep a trade out of a bar's prices / volume (a published
# reconstruction of the SIP rules that reproduces Alpaca's bars).
EXCLUDED_HIGH_LOW = frozenset({"C", "H", "I", "M", "N", "Q", "R", "T", "U", "V", "W", "7"})
EXCLUDED_OPEN_CLOSE = frozenset({"C", "G", "H", "I", "M", "N", "P", "Q", "R", "T", "U", "V",
                                 "W", "Z", "4", "7"})
EXCLUDED_VOLUME = frozenset({"M", "Q", "9"})
_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D)$")
_UNIT_NS = {"Min": 60, "T": 60, "Hour": 3600, "H": 3600, "Day": 86400, "D": 86400}
_UNIT_MAX = {"Min": 59, "T": 59, "Hour": 23, "H": 23, "Day": 1, "D": 1}


class InvalidQuery(Exception):
    """A query parameter Alpaca rejects with HTTP 422 ``{"message": ...}``."""


def encode_token(time_ns: int, trade_id: int) -> str:
    return base64.urlsafe_b64encode(f"{time_ns}|{trade_id}".encode()).decode()


def decode_token(token: str) -> tuple[int, int]:
    try:
        time_ns, trade_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return int(time_ns), int(trade_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidQuery("invalid page token") from None


def _descending(request: web.Request) -> bool:
    """The ``sort`` parameter: ``desc`` is newest first; ``asc``, the default, oldest first."""
    sort = request.query.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise InvalidQuery(f"invalid sort: {sort}")
    return sort == "desc"


def bar_length_ns(timeframe: str) -> int:
    match = _TIMEFRAME.match(timeframe)
    if not match or not 1 <= int(match[1]) <= _UNIT_MAX[match[2]]:
        raise InvalidQuery(f"invalid timeframe: {timeframe}")
    return int(match[1]) * _UNIT_NS[match[2]] * 1_000_000_000


def build_bar(open_ns: int, trades: list[SimTrade]) -> dict[str, Any] | None:
    """One Alpaca bar from a bucket's trades; None when no trade may set its prices."""
    high_low = [t for t in trades if not EXCLUDED_HIGH_LOW.intersection(t.conditions)]
    if not high_low:
        return None
    open_close = [t for t in trades if not EXCLUDED_OPEN_CLOSE.intersection(t.conditions)]
    counted = [t for t in trades if not EXCLUDED_VOLUME.intersection(t.conditions)]
    volume = sum(t.qty_e8 for t in counted)
    ends = open_close or high_low
    return {
        "t": rfc3339(open_ns, nanos=False),
        "o": price_number(ends[0].price_e8),
        "h": price_number(max(t.price_e8 for t in high_low)),
        "l": price_number(min(t.price_e8 for t in high_low)),
        "c": price_number(ends[-1].price_e8),
        "v": volume // E8,
        "n": len(counted),
        "vw": round(sum(t.price_e8 * t.qty_e8 for t in counted) / volume / E8, 6)
        if volume else 0.0,
    }


class SimAlpacaRest:
    """The stock history routes over the simulator's trade logs."""

    def __init__(self, feed: MarketFeed, clock: MarketClock, keys: dict[str, str]) -> None:
        self.feed = feed
        self.clock = clock
        self.keys = keys

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v2/stocks/{symbol}/trades", self._endpoint(self.trades)),
                web.get("/v2/stocks/{symbol}/bars", self._endpoint(self.bars))]

    def _endpoint(self, handler: Callable[[web.Request], dict[str, Any]]
                  ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            key = request.headers.get("APCA-API-KEY-ID")
            if key is None or self.keys.get(key) != request.headers.get("APCA-API-SECRET-KEY"):
                return web.json_response({"message": "forbidden"}, status=403)
            try:
                self.feed.pump()
                return web.json_response(handler(request))
            except InvalidQuery as exc:
                return web.json_response({"message": str(exc)}, status=422)

        return endpoint

    def _window(self, request: web.Request) -> tuple[int, int, int]:
        now = self.clock.now()
        try:
            start = (parse_rfc3339(request.query["start"]) if "start" in request.query
                     else now - now % NS_PER_DAY)
            end = parse_rfc3339(request.query["end"]) if "end" in request.query else now
        except ValueError as exc:
            raise InvalidQuery(f"invalid time: {exc}") from None
        text = request.query.get("limit", str(DEFAULT_LIMIT))
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise InvalidQuery(f"invalid limit: {text}")
        return start, min(end, now), int(text)

    def _trades(self, symbol: str, start: int, end: int) -> list[SimTrade]:
        log = self.feed.log(VENUE, symbol)
        return [] if log is None else log.between(start, end)

    def trades(self, request: web.Request) -> dict[str, Any]:
        symbol = request.match_info["symbol"]
        start, end, limit = self._window(request)
        descending = _descending(request)
        trades = self._trades(symbol, start, end)
        if descending:
            trades.reverse()
        if "page_token" in request.query:
            token = decode_token(request.query["page_token"])
            trades = [t for t in trades
                      if ((t.time_ns, t.trade_id) <= token if descending
                          else (t.time_ns, t.trade_id) >= token)]
        page, rest = trades[:limit], trades[limit:]
        next_token = encode_token(rest[0].time_ns, rest[0].trade_id) if rest else None
        return {"trades": [rest_trade(t) for t in page], "symbol": symbol,
                "next_page_token": next_token}

    def bars(self, request: web.Request) -> dict[str, Any]:
        symbol = request.match_info["symbol"]
        if "timeframe" not in request.query:
            raise InvalidQuery("timeframe is required")
        length = bar_length_ns(request.query["timeframe"])
        start, end, limit = self._window(request)
        descending = _descending(request)
        first = start - start % length
        buckets: dict[int, list[SimTrade]] = {}
        for t in self._trades(symbol, first, end):
            if t.time_ns >= first:
                buckets.setdefault(t.time_ns - t.time_ns % length, []).append(t)
        bars = [(open_ns, bar) for open_ns, trades in sorted(buckets.items())
                if (bar := build_bar(open_ns, trades))]
        if descending:
            bars.reverse()
        if "page_token" in request.query:
            key = decode_token(request.query["page_token"])[0]
            bars = [(o, b) for o, b in bars if (o <= key if descending else o >= key)]
        page, rest = bars[:limit], bars[limit:]
        token = encode_token(rest[0][0], 0) if rest else None
        return {"bars": [bar for _, bar in page], "symbol": symbol, "next_page_token": token}
