"""Binance spot market streams: ``/stream?streams=...`` (combined) and ``/ws/<stream>`` (raw).

Implements the documented behaviour a client depends on: the combined wrapper
``{"stream":..,"data":..}``, ``timeUnit=MICROSECOND``, live SUBSCRIBE /
UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with their
replies and error messages, at most 1024 streams per connection, at most 5
incoming messages (text, ping or pong) per second, a ping frame every 20 s
with disconnection when no pong comes back within a minute, the 24-hour
connection lifetime, and the ``serverShutdown`` event.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from bot.data.sim.binance_dialect import SPOT, BinanceDialect
from bot.data.sim.binance_frames import (
    MICROSECONDS,
    MILLISECONDS,
    book_ticker_event,
    server_shutdown_event,
    ticker_event,
)
from bot.data.sim.clock import MarketClock
from bot.data.sim.connection import Counters, SimConnection, service_unavailable
from bot.data.sim.faults import Fate, Faults
from bot.data.sim.feed import MarketFeed
from bot.data.sim.trades import AggTrade, SimTrade

CHANNELS = ("trade", "aggTrade", "bookTicker", "ticker")
_STREAM = re.compile(r"^([a-z0-9]+)@(trade|aggTrade|bookTicker|ticker)$")
_ID = re.compile(r"^[A-Za-z0-9]{1,36}$")
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
TOO_MANY_REQUESTS = 1008
# What Binance counts against its 5 incoming messages a second: pings, pongs, requests.
COUNTED_MESSAGES = frozenset({WSMsgType.PING, WSMsgType.PONG, WSMsgType.TEXT, WSMsgType.BINARY})


@dataclass
class BinanceStreamSettings:
    """Documented limits, each configurable so that tests can reach them quickly."""

    ping_interval: float = 20.0
    pong_timeout: float = 60.0
    max_streams: int = 1024
    max_incoming_per_second: int = 5
    connection_lifetime: float = 86_400.0  # seconds of market time
    ticker_interval: float = 1.0


class RequestError(Exception):
    """A live request the server answers with ``{"error":{"code":..,"msg":..},"id":..}``."""

    def __init__(self, code: int, msg: str, request_id: Any = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.request_id = request_id


def _encode_frames(messages: list[Any]) -> str:
    return msgspec.json.encode(messages[0]).decode()


class SimBinanceSession:
    """One client connection: its streams, options, keepalive and incoming-rate limit."""

    def __init__(self, hub: BinanceStreams, conn: SimConnection, streams: list[str],
                 combined: bool, unit: int, channels: frozenset[str]) -> None:
        self.hub = hub
        self.channels = channels  # what the connection's path delivers
        self.conn = conn
        self.streams: dict[str, None] = dict.fromkeys(streams)
        self.combined = combined
        self.unit = unit
        self.opened_ns = hub.clock.now()
        self.last_pong = time.monotonic()
        self._incoming: collections.deque[float] = collections.deque()
        # Trade frames sent late: [trade frames still to pass first, stream, payload].
        self._delayed: list[list[Any]] = []

    # -- outgoing ----------------------------------------------------------------
    def emit(self, stream: str, payload: dict[str, Any]) -> None:
        self.conn.send({"stream": stream, "data": payload} if self.combined else payload)

    def on_trades(self, symbol: str, batch: list[SimTrade], aggs: list[AggTrade]) -> None:
        if self.hub.faults.is_quiet(self.hub.dialect.venue, symbol):
            return
        lower = symbol.lower()
        if "trade" in self.channels and (stream := f"{lower}@trade") in self.streams:
            for t in batch:
                self._emit_trade(stream, symbol, t)
        if "aggTrade" in self.channels and (stream := f"{lower}@aggTrade") in self.streams:
            for a in aggs:
                self.emit(stream, self.hub.dialect.agg_trade_event(a, symbol, self.unit))
        market = [t for t in batch if t.is_market]
        if (market and "bookTicker" in self.channels
                and (stream := f"{lower}@bookTicker") in self.streams):
            self.emit(stream, book_ticker_event(self.hub.next_book_id(symbol), market[-1],
                                                self.hub.tick_e8(symbol)))

    def _emit_trade(self, stream: str, symbol: str, trade: SimTrade) -> None:
        """One ``@trade`` frame, as the trade's fate says: lost, doubled, late, or plain."""
        fate = self.hub.faults.fate(self.hub.dialect.venue, symbol, trade.trade_id)
        payload = self.hub.dialect.trade_event(trade, self.unit)
        if fate is Fate.LOSE:
            return
        if fate is Fate.DELAY:
            self._delayed.append([self.hub.faults.delay_frames, stream, payload])
            return
        self.emit(stream, payload)
        if fate is Fate.DUPLICATE:
            self.emit(stream, payload)
        if self._delayed:
            self._release_delayed(stream)

    def _release_delayed(self, stream: str) -> None:
        """Count one more frame of ``stream`` past its delayed frames; send those now due."""
        waiting = []
        for entry in self._delayed:
            if entry[1] == stream:
                entry[0] -= 1
                if entry[0] <= 0:
                    self.emit(stream, entry[2])
                    continue
            waiting.append(entry)
        self._delayed = waiting

    def emit_tickers(self) -> None:
        now = self.hub.clock.now()
        for stream in self.streams:
            symbol, _, channel = stream.partition("@")
            log = self.hub.feed.log(self.hub.dialect.venue, symbol.upper())
            if (channel != "ticker" or channel not in self.channels or log is None
                    or self.hub.faults.is_quiet(self.hub.dialect.venue, symbol.upper())):
                continue
            payload = ticker_event(log, symbol.upper(), now, self.hub.tick_e8(symbol.upper()),
                                   self.unit)
            if payload is not None:
                self.emit(stream, payload)

    # -- incoming ----------------------------------------------------------------
    def over_rate_limit(self) -> bool:
        """Count one incoming message; True when the last second holds too many."""
        now = time.monotonic()
        self._incoming.append(now)
        while self._incoming and self._incoming[0] <= now - 1.0:
            self._incoming.popleft()
        return len(self._incoming) > self.hub.settings.max_incoming_per_second

    def answer(self, text: str) -> dict[str, Any]:
        """The reply to one live request (a result or a documented error)."""
        try:
            result, request_id = self._execute(text)
        except RequestError as exc:
            return {"error": {"code": exc.code, "msg": exc.msg}, "id": exc.request_id}
        return {"result": result, "id": request_id}

    def _execute(self, text: str) -> tuple[Any, Any]:
        """Run one request; return its result and id, or raise :class:`RequestError`."""
        try:
            request = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RequestError(3, f"Invalid JSON: {exc.msg.lower()} at line {exc.lineno} "
                                  f"column {exc.colno}") from None
        if not isinstance(request, dict):
            raise RequestError(3, "Invalid JSON: expected an object at line 1 column 1")
        request_id = request.get("id")
        if not (request_id is None or (isinstance(request_id, int)
                                       and not isinstance(request_id, bool)
                                       and -2**63 <= request_id < 2**63)
                or (isinstance(request_id, str) and _ID.match(request_id))):
            raise RequestError(2, "Invalid request: request ID must be an unsigned integer")
        method = request.get("method")
        if method is None:
            raise RequestError(2, f"Invalid request: missing field `method` at line 1 column "
                                  f"{len(text)}", request_id)
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            raise RequestError(2, f"Invalid request: unknown variant `{method}`, expected one of "
                                  f"{expected} at line 1 column 28", request_id)
        params = request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return list(self.streams), request_id
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(method, params, request_id), request_id
        self._subscribe(method, params, request_id)
        return None, request_id

    def _subscribe(self, method: str, params: Any, request_id: Any) -> None:
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise RequestError(2, "Invalid request: invalid stream", request_id)
        if not all(_STREAM.match(p) for p in params):
            raise RequestError(2, "Invalid request: invalid stream", request_id)
        if method == "UNSUBSCRIBE":
            for stream in params:
                self.streams.pop(stream, None)
            return
        wanted = dict.fromkeys(params)
        if len(self.streams.keys() | wanted.keys()) > self.hub.settings.max_streams:
            raise RequestError(2, f"Invalid request: too many streams; a connection can listen "
                                  f"to at most {self.hub.settings.max_streams}", request_id)
        self.streams.update(wanted)

    def _property(self, method: str, params: Any, request_id: Any) -> Any:
        if not isinstance(params, list) or not params:
            raise RequestError(2, "Invalid request: property name must be a string", request_id)
        if len(params) > (2 if method == "SET_PROPERTY" else 1):
            raise RequestError(2, "Invalid request: too many parameters", request_id)
        if not isinstance(params[0], str):
            raise RequestError(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            raise RequestError(0, "Unknown property", request_id)
        if method == "GET_PROPERTY":
            return self.combined
        if len(params) < 2 or not isinstance(params[1], bool):
            raise RequestError(1, "Invalid value type: expected Boolean", request_id)
        self.combined = params[1]
        return None


class BinanceStreams:
    """The ``/stream`` and ``/ws`` routes (under the dialect's prefix) and their sessions."""

    def __init__(self, feed: MarketFeed, clock: MarketClock, faults: Faults,
                 counters: Counters, settings: BinanceStreamSettings,
                 ticks: dict[str, int], dialect: BinanceDialect = SPOT) -> None:
        self.dialect = dialect
        self.feed = feed
        self.clock = clock
        self.faults = faults
        self.counters = counters
        self.settings = settings
        self._ticks = ticks
        self._book_ids: dict[str, int] = collections.defaultdict(lambda: 1_000_000)
        self.sessions: set[SimBinanceSession] = set()

    def tick_e8(self, symbol: str) -> int:
        return self._ticks.get(symbol, 1_000_000)

    def next_book_id(self, symbol: str) -> int:
        self._book_ids[symbol] += 1
        return self._book_ids[symbol]

    def routes(self) -> list[web.RouteDef]:
        """``/stream``, ``/ws`` and ``/ws/<streams>`` under each of the dialect's paths."""
        routes = []
        for path, channels in self.dialect.routes.items():
            prefix = self.dialect.ws_root + path
            combined = functools.partial(self.handle_combined, channels=channels)
            raw = functools.partial(self.handle_raw, channels=channels)
            routes += [web.get(f"{prefix}/stream", combined), web.get(f"{prefix}/ws", raw),
                       web.get(prefix + "/ws/{streams:.*}", raw)]
        return routes

    async def handle_combined(self, request: web.Request, *,
                              channels: frozenset[str]) -> web.StreamResponse:
        names = [s for s in request.query.get("streams", "").split("/") if s]
        return await self._serve(request, names, True, channels)

    async def handle_raw(self, request: web.Request, *,
                         channels: frozenset[str]) -> web.StreamResponse:
        names = [s for s in request.match_info.get("streams", "").split("/") if s]
        return await self._serve(request, names, False, channels)

    async def _serve(self, request: web.Request, names: list[str], combined: bool,
                     channels: frozenset[str]) -> web.StreamResponse:
        unit_name = request.query.get("timeUnit", "MILLISECOND").upper()
        if unit_name not in ("MILLISECOND", "MICROSECOND"):
            return web.json_response({"code": -1194, "msg": "Invalid value for time unit; "
                                      "expected either MICROSECOND or MILLISECOND."}, status=400)
        if not all(_STREAM.match(n) for n in names):
            return web.json_response({"code": 2, "msg": "Invalid request: invalid stream"},
                                     status=400)
        if len(set(names)) > self.settings.max_streams:
            return web.json_response(
                {"code": 2, "msg": f"Invalid request: too many streams; a connection can listen "
                                   f"to at most {self.settings.max_streams}"}, status=400)
        if self.faults.accept_delay:
            await asyncio.sleep(self.faults.accept_delay)
        if self.faults.refusing_connections():
            self.counters.connections_refused += 1
            return service_unavailable()
        ws = web.WebSocketResponse(autoping=False, heartbeat=None)
        await ws.prepare(request)
        self.counters.connections_accepted += 1
        self.counters.connections_open += 1
        conn = SimConnection(request, ws, self.faults, self.counters, _encode_frames)
        unit = MICROSECONDS if unit_name == "MICROSECOND" else MILLISECONDS
        session = SimBinanceSession(self, conn, names, combined, unit, channels)
        self.sessions.add(session)
        self.feed.subscribe(self.dialect.venue, session.on_trades)
        keepalive = asyncio.create_task(self._keepalive(session), name="sim-binance-keepalive")
        try:
            await self._read(session, ws)
        finally:
            self.feed.unsubscribe(self.dialect.venue, session.on_trades)
            self.sessions.discard(session)
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            await conn.finish()
            self.counters.connections_open -= 1
        return ws

    async def _read(self, session: SimBinanceSession, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if session.conn.closed.is_set():
                break
            if msg.type not in COUNTED_MESSAGES:
                continue
            self.counters.messages_received += 1
            if session.over_rate_limit():
                self.counters.rate_limit_closes += 1
                await session.conn.close(TOO_MANY_REQUESTS, "Too many requests")
                break
            if msg.type == WSMsgType.PING and not self.faults.silent:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                session.last_pong = time.monotonic()
            elif msg.type == WSMsgType.TEXT:
                session.conn.send(session.answer(msg.data))

    async def _keepalive(self, session: SimBinanceSession) -> None:
        """Pings, the pong deadline, the connection lifetime and the ticker cadence."""
        settings = self.settings
        last_ping = time.monotonic()
        next_ticker = time.monotonic()
        while not session.conn.closed.is_set():
            now = time.monotonic()
            if now - session.last_pong > settings.pong_timeout:
                await session.conn.close(1008, "Pong timeout")
                return
            lifetime_ns = int(settings.connection_lifetime * 1e9)
            if self.clock.now() - session.opened_ns >= lifetime_ns:
                await session.conn.close(1000, "Connection lifetime expired")
                return
            next_ping = last_ping + settings.ping_interval  # read each turn: tests change it
            if now >= next_ping:
                last_ping = now
                next_ping = now + settings.ping_interval
                if not self.faults.silent:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await session.conn.ws.ping(str(int(time.time() * 1000)).encode())
            if now >= next_ticker:
                next_ticker = now + settings.ticker_interval
                session.emit_tickers()
            await asyncio.sleep(min(0.05, max(next_ping - now, 0.001)))

    async def shutdown(self, grace: float) -> None:
        """Send ``serverShutdown`` to every open connection, then close those after ``grace``."""
        now = self.clock.now()
        notified = list(self.sessions)
        for session in notified:
            payload = server_shutdown_event(now, session.unit)
            session.conn.send({"stream": "!serverShutdown", "data": payload}
                              if session.combined else payload)
        await asyncio.sleep(grace)
        # Only the server shutting down closes: connections opened since land elsewhere.
        await asyncio.gather(*(s.conn.close(1001, "Server shutdown") for s in notified))

    async def close_all(self, code: int, reason: str) -> None:
        await asyncio.gather(*(s.conn.close(code, reason) for s in list(self.sessions)))

    def drop_all(self) -> None:
        for session in list(self.sessions):
            session.conn.abort()
