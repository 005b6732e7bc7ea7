"""Alpaca market-data streams: stocks ``/v2/{feed}`` and crypto ``/v1beta3/crypto/us``.

The documented session: ``[{"T":"success","msg":"connected"}]`` on connect;
authentication by message (``{"action":"auth",...}``) within the auth window
or by ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers; ``authenticated``,
or the error codes 401-406 (402 closes the session, 404 when the window
passes, 406 when the key already has its allowed sessions on this endpoint);
subscribe/unsubscribe answered with the whole current ``subscription``; data
points packed several to a frame. Control messages travel alone.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from bot.data.sim.alpaca_frames import stream_trade
from bot.data.sim.connection import Counters, SimConnection, service_unavailable
from bot.data.sim.faults import Faults
from bot.data.sim.feed import MarketFeed
from bot.data.sim.trades import AggTrade, SimTrade

VENUE = "alpaca"
STOCK_FEEDS = ("iex", "sip", "delayed_sip", "test")
CRYPTO_PATH = "v1beta3/crypto/us"
STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
CRYPTO_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "orderbooks")
# Stock trade subscriptions bring trade corrections and cancel/errors along.
TRADE_COMPANIONS = ("corrections", "cancelErrors")
IEX_SYMBOL_LIMIT = 30
MAX_POINTS_PER_FRAME = 500


def _error(code: int, msg: str) -> dict[str, Any]:
    return {"T": "error", "code": code, "msg": msg}


ERRORS = {
    400: _error(400, "invalid syntax"),
    401: _error(401, "not authenticated"),
    402: _error(402, "auth failed"),
    403: _error(403, "already authenticated"),
    404: _error(404, "auth timeout"),
    405: _error(405, "symbol limit exceeded"),
    406: _error(406, "connection limit exceeded"),
}


def _encode_frame(messages: list[Any]) -> str:
    return msgspec.json.encode(messages).decode()


@dataclass
class AlpacaStreamSettings:
    """Credentials and limits; defaults are the simulator's documented test keys."""

    keys: dict[str, str] = field(default_factory=lambda: {"sim-key": "sim-secret"})
    auth_timeout: float = 10.0
    connections_per_key: int = 1


class SimAlpacaSession:
    """One client connection: authentication state and subscriptions."""

    def __init__(self, hub: AlpacaStreams, conn: SimConnection, endpoint: str,
                 crypto: bool) -> None:
        self.hub = hub
        self.conn = conn
        self.endpoint = endpoint
        self.crypto = crypto
        self.key: str | None = None
        channels = CRYPTO_CHANNELS if crypto else STOCK_CHANNELS + TRADE_COMPANIONS
        self.subscriptions: dict[str, dict[str, None]] = {c: {} for c in channels}
        self.authenticated = asyncio.Event()

    def on_trades(self, symbol: str, batch: list[SimTrade], _aggs: list[AggTrade]) -> None:
        wanted = self.subscriptions["trades"]
        if ("/" in symbol) != self.crypto or (symbol not in wanted and "*" not in wanted):
            return
        if self.hub.faults.is_quiet(VENUE, symbol):
            return
        for t in batch:
            self.conn.send(stream_trade(t, self.crypto), batchable=True)

    def control(self, message: dict[str, Any]) -> None:
        self.conn.send(message)

    def authenticate(self, key: Any, secret: Any) -> bool:
        """Check credentials and the per-key session limit; False means: close now."""
        if self.key is not None:
            self.control(ERRORS[403])
            return True
        if (self.hub.faults.refuse_auth or not isinstance(key, str)
                or self.hub.settings.keys.get(key) != secret):
            self.control(ERRORS[402])
            return False
        active = sum(1 for s in self.hub.sessions
                     if s.key == key and s.endpoint == self.endpoint)
        if active >= self.hub.settings.connections_per_key:
            self.control(ERRORS[406])
            return False
        self.key = key
        self.authenticated.set()
        self.control({"T": "success", "msg": "authenticated"})
        return True

    def handle(self, text: str) -> bool:
        """Answer one client message; False when the session must end."""
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            self.control(ERRORS[400])
            return True
        if not isinstance(message, dict):
            self.control(ERRORS[400])
            return True
        action = message.get("action")
        if action == "auth":
            return self.authenticate(message.get("key"), message.get("secret"))
        if action not in ("subscribe", "unsubscribe"):
            self.control(ERRORS[400])
            return True
        if self.key is None:
            self.control(ERRORS[401])
            return True
        self._change(action, message)
        return True

    def _change(self, action: str, message: dict[str, Any]) -> None:
        requested = {c: message[c] for c in self.subscriptions if c in message}
        if not requested or not all(isinstance(v, list) and all(isinstance(s, str) for s in v)
                                    for v in requested.values()):
            self.control(ERRORS[400])
            return
        updated = {c: dict(symbols) for c, symbols in self.subscriptions.items()}
        for channel, symbols in requested.items():
            targets = [channel] + (list(TRADE_COMPANIONS)
                                   if channel == "trades" and not self.crypto else [])
            for target in targets:
                for symbol in symbols:
                    if action == "subscribe":
                        updated[target][symbol] = None
                    else:
                        updated[target].pop(symbol, None)
        if self.endpoint == "v2/iex" and (len(updated["trades"].keys() | updated["quotes"].keys())
                                         > IEX_SYMBOL_LIMIT):
            self.control(ERRORS[405])
            return
        self.subscriptions = updated
        self.control({"T": "subscription", **{c: list(s) for c, s in updated.items()}})


class AlpacaStreams:
    """The Alpaca stream routes and the sessions open on them."""

    def __init__(self, feed: MarketFeed, faults: Faults, counters: Counters,
                 settings: AlpacaStreamSettings) -> None:
        self.feed = feed
        self.faults = faults
        self.counters = counters
        self.settings = settings
        self.sessions: set[SimAlpacaSession] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v2/{feed}", self.handle_stocks),
                web.get("/" + CRYPTO_PATH, self.handle_crypto)]

    async def handle_stocks(self, request: web.Request) -> web.StreamResponse:
        feed = request.match_info["feed"]
        if feed not in STOCK_FEEDS:
            raise web.HTTPNotFound()
        return await self._serve(request, f"v2/{feed}", crypto=False)

    async def handle_crypto(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, CRYPTO_PATH, crypto=True)

    async def _serve(self, request: web.Request, endpoint: str,
                     crypto: bool) -> web.StreamResponse:
        if self.faults.accept_delay:
            await asyncio.sleep(self.faults.accept_delay)
        if self.faults.refusing_connections():
            self.counters.connections_refused += 1
            return service_unavailable()
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.counters.connections_accepted += 1
        self.counters.connections_open += 1
        conn = SimConnection(request, ws, self.faults, self.counters, _encode_frame,
                          max_batch=MAX_POINTS_PER_FRAME)
        session = SimAlpacaSession(self, conn, endpoint, crypto)
        self.sessions.add(session)
        self.feed.subscribe(VENUE, session.on_trades)
        session.control({"T": "success", "msg": "connected"})
        try:
            key = request.headers.get("APCA-API-KEY-ID")
            if key is not None and not session.authenticate(
                    key, request.headers.get("APCA-API-SECRET-KEY")):
                await conn.close(1008, "auth failed")
            else:
                await self._read(session, ws)
        finally:
            self.feed.unsubscribe(VENUE, session.on_trades)
            self.sessions.discard(session)
            await conn.finish()
            self.counters.connections_open -= 1
        return ws

    async def _read(self, session: SimAlpacaSession, ws: web.WebSocketResponse) -> None:
        deadline = asyncio.get_running_loop().time() + self.settings.auth_timeout
        while not session.conn.closed.is_set():
            timeout = None
            if session.key is None:
                timeout = deadline - asyncio.get_running_loop().time()
            try:
                msg = await ws.receive(timeout=timeout if timeout is None else max(timeout, 0))
            except TimeoutError:
                session.control(ERRORS[404])
                await session.conn.close(1008, "auth timeout")
                return
            if msg.type != WSMsgType.TEXT:
                return
            self.counters.messages_received += 1
            if not session.handle(msg.data):
                await session.conn.close(1008, "closed")
                return

    def drop_all(self) -> None:
        for session in list(self.sessions):
            session.conn.abort()

    async def close_all(self, code: int, reason: str) -> None:
        await asyncio.gather(*(s.conn.close(code, reason) for s in list(self.sessions)))

