"""Binance spot REST market data: exchangeInfo, klines, trades, historicalTrades, aggTrades.

Answers follow the documentation: JSON arrays oldest first, prices as
eight-decimal strings, errors as ``{"code":..,"msg":..}`` with HTTP 400, an
``X-MBX-USED-WEIGHT-1M`` header on every answer, and HTTP 429 with
``Retry-After`` once a minute's request weight is spent. The header
``X-MBX-TIME-UNIT: MICROSECOND`` switches times to microseconds. An endpoint the
dialect keys (USDⓈ-M's ``historicalTrades``) answers HTTP 401 ``-2014 API-key format
invalid.`` to a request without an ``X-MBX-APIKEY`` header. Everything is
computed from the simulator's own trade logs, so klines are the official bars
of the simulated market.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.data.sim.binance_dialect import SPOT, BinanceDialect
from bot.data.sim.binance_frames import (
    MICROSECONDS,
    MILLISECONDS,
    kline_row,
)
from bot.data.sim.clock import MarketClock
from bot.data.sim.feed import MarketFeed
from bot.data.sim.klines import select_klines
from bot.data.sim.market import Instrument
from bot.data.sim.trades import TradeLog
from bot.data.timeframes import TIMEFRAME_SECONDS

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
NS_PER_MINUTE = 60_000_000_000


class ApiError(Exception):
    """A request Binance rejects with ``{"code":..,"msg":..}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


class WeightMeter:
    """Request weight used per wall-clock minute, against the exchange's limit."""

    def __init__(self, clock: Callable[[], int], limit: int) -> None:
        self._clock = clock
        self.limit = limit
        self._minute = -1
        self.used = 0

    def spend(self, weight: int) -> int | None:
        """Count ``weight``; return seconds to wait when the minute's limit is exceeded."""
        now = self._clock()
        minute = now // NS_PER_MINUTE
        if minute != self._minute:
            self._minute, self.used = minute, 0
        self.used += weight
        if self.used > self.limit:
            return int(((minute + 1) * NS_PER_MINUTE - now) // 1_000_000_000) + 1
        return None


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range "
                              f"is '^[0-9]{{1,20}}$'.")
    return int(text)


def _limit(request: web.Request) -> int:
    limit = _int_param(request, "limit")
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


class SimBinanceRest:
    """The market-data routes (``/api/v3``, or the dialect's) over the simulator's trade logs."""

    def __init__(self, feed: MarketFeed, clock: MarketClock,
                 instruments: dict[str, Instrument], weight_limit: int,
                 dialect: BinanceDialect = SPOT) -> None:
        self.dialect = dialect
        self.feed = feed
        self.clock = clock
        self.instruments = instruments
        # The venue's own limit, or a lower one a test asks for.
        self.weights = WeightMeter(clock.clock, min(weight_limit, dialect.weight_limit))

    def routes(self) -> list[web.RouteDef]:
        handlers: dict[str, Callable[[web.Request, int], Any]] = {
            "exchangeInfo": self.exchange_info, "klines": self.klines, "trades": self.trades,
            "historicalTrades": self.historical_trades, "aggTrades": self.agg_trades,
            "ping": lambda _r, _u: {}, "time": lambda _r, u: {"serverTime": self.clock.now() // u},
        }
        return [web.get(f"{self.dialect.rest_api}/{name}", self._endpoint(name, handler))
                for name, handler in handlers.items()]

    def _endpoint(self, name: str, handler: Callable[[web.Request, int], Any]
                  ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            wait = self.weights.spend(self.dialect.weights[name])
            headers = {"X-MBX-USED-WEIGHT-1M": str(self.weights.used)}
            if wait is not None:
                headers["Retry-After"] = str(wait)
                return _error_response(ApiError(
                    -1003, f"Too much request weight used; current limit is "
                           f"{self.weights.limit} request weight per 1 MINUTE. Please use "
                           f"WebSocket Streams for live updates to avoid polling the API.",
                    status=429), headers)
            unit_name = request.headers.get("X-MBX-TIME-UNIT", "MILLISECOND").upper()
            try:
                if name in self.dialect.keyed and not request.headers.get("X-MBX-APIKEY"):
                    raise ApiError(-2014, "API-key format invalid.", status=401)
                if unit_name not in ("MILLISECOND", "MICROSECOND"):
                    raise ApiError(-1194, "Invalid value for time unit; expected either "
                                          "MICROSECOND or MILLISECOND.")
                self.feed.pump()
                unit = MICROSECONDS if unit_name == "MICROSECOND" else MILLISECONDS
                body = handler(request, unit)
            except ApiError as exc:
                return _error_response(exc, headers)
            return web.json_response(body, headers=headers)

        return endpoint

    def _log(self, request: web.Request) -> tuple[str, TradeLog]:
        symbol = request.query.get("symbol", "")
        if not symbol:
            raise ApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                                  "or malformed.")
        log = self.feed.log(self.dialect.venue, symbol)
        if log is None:
            raise ApiError(-1121, "Invalid symbol.")
        return symbol, log

    def exchange_info(self, request: web.Request, unit: int) -> dict[str, Any]:
        wanted = list(self.instruments)
        if "symbol" in request.query:
            wanted = [request.query["symbol"]]
        elif "symbols" in request.query:
            try:
                wanted = json.loads(request.query["symbols"])
            except json.JSONDecodeError:
                raise ApiError(-1100, "Illegal characters found in parameter 'symbols'; legal "
                                      "range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\")"
                                      "{0,}){0,1}\\]$'.") from None
        if any(s not in self.instruments for s in wanted):
            raise ApiError(-1121, "Invalid symbol.")
        symbols = [self.dialect.symbol_info(self.instruments[s]) for s in wanted]
        return self.dialect.exchange_info(self.clock.now() // unit, self.weights.limit, symbols)

    def klines(self, request: web.Request, unit: int) -> list[list[Any]]:
        _symbol, log = self._log(request)
        interval = request.query.get("interval")
        if not interval:
            raise ApiError(-1102, "Mandatory parameter 'interval' was not sent, was "
                                  "empty/null, or malformed.")
        if interval not in TIMEFRAME_SECONDS:
            raise ApiError(-1120, "Invalid interval.")
        start, end, limit = _int_param(request, "startTime"), _int_param(request, "endTime"), \
            _limit(request)
        rows = select_klines(log, TIMEFRAME_SECONDS[interval] * 1_000_000_000, self.clock.now(),
                             limit, None if start is None else start * unit,
                             None if end is None else end * unit + unit - 1)
        return [kline_row(k, unit) for k in rows]

    def trades(self, request: web.Request, unit: int) -> list[dict[str, Any]]:
        _symbol, log = self._log(request)
        return [self.dialect.rest_trade(t, unit)
                for t in log.recent(_limit(request), self.dialect.market_trades_only)]

    def historical_trades(self, request: web.Request, unit: int) -> list[dict[str, Any]]:
        _symbol, log = self._log(request)
        limit, from_id = _limit(request), _int_param(request, "fromId")
        market_only = self.dialect.market_trades_only
        chosen = (log.recent(limit, market_only) if from_id is None
                  else log.from_id(from_id, limit, market_only))
        return [self.dialect.rest_trade(t, unit) for t in chosen]

    def agg_trades(self, request: web.Request, unit: int) -> list[dict[str, Any]]:
        _symbol, log = self._log(request)
        limit, from_id = _limit(request), _int_param(request, "fromId")
        start, end = _int_param(request, "startTime"), _int_param(request, "endTime")
        if from_id is not None:
            aggs = log.aggs_from_id(from_id, limit)
        elif start is not None or end is not None:
            lo = 0 if start is None else start * unit
            hi = self.clock.now() if end is None else end * unit + unit - 1
            aggs = log.aggs_between(lo, hi)[:limit]
        else:
            aggs = log.aggs[-limit:]
        return [self.dialect.rest_agg_trade(a, unit) for a in aggs]


def _error_response(exc: ApiError, headers: dict[str, str]) -> web.Response:
    return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status,
                             headers=headers)
