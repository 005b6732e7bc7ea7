"""``ExchangeSimulator``: one loopback aiohttp server speaking Binance and Alpaca.

It composes the market (generated or replayed trades on an injectable market
clock), the venue protocols (Binance streams and REST, Alpaca streams and
REST) and the fault switches, and exposes the exchange's truth (every trade it
executed, its klines) so tests can compare a client's view against it::

    async with ExchangeSimulator(symbols=["BTC/USDT"], stock_symbols=["AAPL"]) as sim:
        os.environ.update(sim.env())
        ...
        sim.drop_all()                      # every connection cut, no close frame
        truth = sim.trades("binance", "BTC/USDT")
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from aiohttp import web

from bot.data.sim.alpaca_assets import SimAlpacaAssets
from bot.data.sim.alpaca_rest import SimAlpacaRest
from bot.data.sim.alpaca_ws import AlpacaStreams, AlpacaStreamSettings
from bot.data.sim.binance_rest import SimBinanceRest
from bot.data.sim.binance_usdm import USDM, USDM_WS_ROOT, VENUE_USDM, usdm_stream_settings
from bot.data.sim.binance_ws import BinanceStreams, BinanceStreamSettings
from bot.data.sim.clock import Clock, MarketClock
from bot.data.sim.connection import Counters, RawFrame
from bot.data.sim.faults import GARBAGE, REST_STATUSES, SHORT, Fate, Faults, RestFault
from bot.data.sim.feed import MarketFeed
from bot.data.sim.klines import Kline, select_klines
from bot.data.sim.market import Instrument, TradeGenerator, crypto_instrument, stock_instrument
from bot.data.sim.replay import ReplaySource, load_trades
from bot.data.sim.trades import SimTrade
from bot.data.timeframes import timeframe_ns

DEFAULT_KEY = "sim-key"
DEFAULT_SECRET = "sim-secret"
TEST_SYMBOL = "FAKEPACA"
BINANCE_FIRST_TRADE_ID = 3_000_000_000
ALPACA_FIRST_TRADE_ID = 1
# The longest request line accepted, as a real HTTP server's (aiohttp's default, nginx's
# 8 KB buffers): a client naming a connection's 1024 streams in the URL is refused.
MAX_URL_BYTES = 8190
REST_LOG_SIZE = 10_000


def binance_symbol(symbol: str) -> str:
    """``"BTC/USDT"``, ``"btcusdt"`` or the perpetual ``"BTC/USDT:USDT"`` -> ``"BTCUSDT"``."""
    return symbol.partition(":")[0].replace("/", "").replace("-", "").upper()


class ExchangeSimulator:
    """Simulated Binance spot and Alpaca market data on one local port.

    ``symbols`` are Binance pairs (``"BTC/USDT"``), ``stock_symbols`` Alpaca
    stocks, ``alpaca_crypto_symbols`` Alpaca crypto pairs (``"BTC/USD"``); the
    stock ``FAKEPACA`` always trades for the ``/v2/test`` feed. ``replay`` maps a
    Binance pair (or a USDⓈ-M perpetual) to a trade file that feeds it instead of the
    generator. ``futures_symbols`` are Binance USDⓈ-M perpetuals (``"BTC/USDT:USDT"``,
    :mod:`bot.data.sim.binance_usdm`); a perpetual given among ``symbols`` is one too.
    ``clock`` (ns) and ``speed`` set market time; ``start_time_ns`` is the
    market time at start (default: now, or the first replayed trade), and
    ``history_seconds`` of generated trades exist before it. ``listed`` symbols
    (pairs, perpetuals, stocks) are listed too (``exchangeInfo``, Alpaca's assets)
    without a market of their own: a catalogue beside the symbols simulated, costing
    nothing.
    """

    def __init__(
        self,
        symbols: Sequence[str] = ("BTC/USDT",),
        stock_symbols: Sequence[str] = (),
        *,
        alpaca_crypto_symbols: Sequence[str] = (),
        futures_symbols: Sequence[str] = (),
        listed: Sequence[str] = (),
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.time_ns,
        speed: float = 1.0,
        start_time_ns: int | None = None,
        history_seconds: float = 0.0,
        replay: Mapping[str, str | Path] | None = None,
        retention: int = 200_000,
        alpaca_keys: Mapping[str, str] | None = None,
        alpaca_auth_timeout: float = 10.0,
        alpaca_connections_per_key: int = 1,
        ping_interval: float = 20.0,
        pong_timeout: float = 60.0,
        max_streams: int = 1024,
        max_incoming_per_second: int = 5,
        connection_lifetime: float = 86_400.0,
        rest_weight_limit: int = 6000,
        faults: Faults | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.faults = faults or Faults()
        self.counters = Counters()
        replayed = {(self._replay_venue(s), binance_symbol(s)): load_trades(p, binance_symbol(s))
                    for s, p in (replay or {}).items()}
        if start_time_ns is None and replayed:
            start_time_ns = min(t[0].time_ns for t in replayed.values() if t)
        self.clock = MarketClock(clock, speed, start_time_ns)
        self.feed = MarketFeed(self.clock, retention, self.faults)
        self.instruments: dict[str, Instrument] = {}
        origin = self.clock.origin_ns - int(history_seconds * 1e9)
        self.futures_instruments: dict[str, Instrument] = {}
        # A perpetual among ``symbols`` ("BTC/USDT:USDT") is served by USDⓈ-M too.
        futures = [*futures_symbols, *(s for s in symbols if self._replay_venue(s) == VENUE_USDM)]
        pairs_by_venue = (("binance", [s for s in symbols if s not in futures], self.instruments),
                          (VENUE_USDM, futures, self.futures_instruments))
        for venue, pairs, instruments in pairs_by_venue:
            for pair in pairs:
                name, instrument = self._pair(pair)
                instruments[name] = instrument
                recorded = replayed.get((venue, name))
                self.feed.add_source(venue, name, ReplaySource(recorded) if recorded is not None
                                     else TradeGenerator(instrument, seed, origin,
                                                         BINANCE_FIRST_TRADE_ID))
        alpaca = [stock_instrument(s.upper()) for s in dict.fromkeys([*stock_symbols, TEST_SYMBOL])]
        for pair in alpaca_crypto_symbols:
            base, _, quote = pair.upper().partition("/")
            alpaca.append(crypto_instrument(base, quote, pair.upper()))
        for instrument in alpaca:
            self.feed.add_source("alpaca", instrument.symbol, TradeGenerator(
                instrument, seed, origin, ALPACA_FIRST_TRADE_ID))
        alpaca_listed = self._list(listed, alpaca)
        self.feed.pump()
        self.alpaca_keys = dict(alpaca_keys or {DEFAULT_KEY: DEFAULT_SECRET})
        self.binance_settings = BinanceStreamSettings(
            ping_interval, pong_timeout, max_streams, max_incoming_per_second,
            connection_lifetime)
        self.alpaca_settings = AlpacaStreamSettings(
            self.alpaca_keys, alpaca_auth_timeout, alpaca_connections_per_key)
        self.binance_streams = BinanceStreams(
            self.feed, self.clock, self.faults, self.counters, self.binance_settings,
            {s: i.tick_e8 for s, i in self.instruments.items()})
        self.alpaca_streams = AlpacaStreams(self.feed, self.faults, self.counters,
                                            self.alpaca_settings)
        self.binance_rest = SimBinanceRest(self.feed, self.clock, self.instruments,
                                        rest_weight_limit)
        self.usdm_settings = usdm_stream_settings(self.binance_settings)
        self.usdm_streams = BinanceStreams(
            self.feed, self.clock, self.faults, self.counters, self.usdm_settings,
            {s: i.tick_e8 for s, i in self.futures_instruments.items()}, USDM)
        self.usdm_rest = SimBinanceRest(self.feed, self.clock, self.futures_instruments,
                                        rest_weight_limit, USDM)
        self.alpaca_rest = SimAlpacaRest(self.feed, self.clock, self.alpaca_keys)
        self.alpaca_assets = SimAlpacaAssets(alpaca_listed, self.alpaca_keys)
        self._runner: web.AppRunner | None = None
        # The latest REST requests as "path?query", oldest first.
        self.rest_log: collections.deque[str] = collections.deque(maxlen=REST_LOG_SIZE)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the port (0 picks a free one) and start the market."""
        app = web.Application(middlewares=[self._rest_faults])
        app.add_routes(self.binance_streams.routes() + self.binance_rest.routes()
                       + self.usdm_streams.routes() + self.usdm_rest.routes()
                       + self.alpaca_rest.routes() + self.alpaca_assets.routes()
                       + self.alpaca_streams.routes())
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0, max_line_size=MAX_URL_BYTES)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.feed.start()

    async def stop(self) -> None:
        """Close every connection politely, stop the market and release the port."""
        await self.feed.stop()
        await asyncio.gather(self.binance_streams.close_all(1001, "Server shutdown"),
                             self.usdm_streams.close_all(1001, "Server shutdown"),
                             self.alpaca_streams.close_all(1001, "Server shutdown"))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ExchangeSimulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    @staticmethod
    def _pair(pair: str) -> tuple[str, Instrument]:
        """Binance's name of a pair or perpetual and its instrument."""
        base, _, quote = pair.partition(":")[0].partition("/")
        name = binance_symbol(pair)
        return name, crypto_instrument(base or name[:-4], quote or name[-4:], name)

    def _list(self, listed: Sequence[str], alpaca: list[Instrument]) -> list[Instrument]:
        """Add the ``listed`` symbols no market feeds to the venues' listings; returns
        Alpaca's listing (``alpaca`` and the listed stocks)."""
        stocks = {i.symbol: i for i in alpaca}
        for symbol in listed:
            if "/" not in symbol:
                stocks.setdefault(symbol.upper(), stock_instrument(symbol.upper()))
                continue
            name, instrument = self._pair(symbol)
            listing = (self.futures_instruments if self._replay_venue(symbol) == VENUE_USDM
                       else self.instruments)
            listing.setdefault(name, instrument)
        return list(stocks.values())

    @web.middleware
    async def _rest_faults(self, request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
        path = request.path
        venue = "binance" if path.startswith(("/api/", "/fapi/")) else "alpaca" if path.startswith(
            ("/v2/stocks/", "/v2/assets")) else None
        if venue is None:
            return await handler(request)
        self.counters.rest_requests += 1
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else path
        by_endpoint = self.counters.rest_by_endpoint
        by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + 1
        self.rest_log.append(request.path_qs)
        fault = self.faults.take_rest_fault(venue)
        if fault is None:
            return await handler(request)
        self.counters.rest_rejected += 1
        if fault.status in (GARBAGE, SHORT):
            return self._spoiled(await handler(request), fault.status)
        assert isinstance(fault.status, int)
        if fault.status >= 500:
            return self._server_error(venue, fault.status)
        headers = {"Retry-After": str(fault.retry_after)}
        if venue == "alpaca":
            return web.json_response({"message": "too many requests."}, status=fault.status,
                                     headers=headers)
        msg = ("Too much request weight used; current limit is "
               f"{self.binance_rest.weights.limit} request weight per 1 MINUTE. Please use "
               "WebSocket Streams for live updates to avoid polling the API."
               if fault.status == 429 else
               f"Way too much request weight used; IP banned until "
               f"{(self.clock.now() // 1_000_000) + fault.retry_after * 1000}. Please use "
               "WebSocket Streams for live updates to avoid bans.")
        headers["X-MBX-USED-WEIGHT-1M"] = str(self.binance_rest.weights.used)
        return web.json_response({"code": -1003, "msg": msg}, status=fault.status,
                                 headers=headers)

    @staticmethod
    def _server_error(venue: str, status: int) -> web.Response:
        """A 5xx as the venue (or the gateway in front of it) sends it."""
        if status in (502, 504):
            title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
            return web.Response(status=status, content_type="text/html",
                                text=f"<html><head><title>{title}</title></head><body>"
                                     f"<center><h1>{title}</h1></center></body></html>")
        if venue == "alpaca":
            return web.json_response({"message": "internal server error"}, status=status)
        body = ({"code": -1008, "msg": "Server is currently overloaded with other requests. "
                                      "Please try again in a few minutes."}
                if status == 503 else
                {"code": -1001, "msg": "Internal error; unable to process your request. "
                                       "Please try again."})
        return web.json_response(body, status=status)

    @staticmethod
    def _spoiled(response: web.StreamResponse, kind: int | str) -> web.StreamResponse:
        """A successful answer cut short: half its body (garbage), or half its rows (short)."""
        if not isinstance(response, web.Response) or response.status != 200 \
                or not isinstance(response.body, bytes):
            return response
        body = response.body
        if kind == GARBAGE:
            spoiled = body[:len(body) // 2]
        else:
            rows = json.loads(body)
            if not isinstance(rows, list) or len(rows) < 2:
                return response
            spoiled = json.dumps(rows[:len(rows) // 2], separators=(",", ":")).encode()
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-type")}
        return web.Response(status=200, body=spoiled, headers=headers,
                            content_type="application/json")

    # -- addresses -------------------------------------------------------------------
    @property
    def base_http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def binance_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def binance_rest_url(self) -> str:
        return self.base_http

    @property
    def usdm_ws_url(self) -> str:
        """USDⓈ-M's stream host: ``/market/stream`` and ``/public/stream`` are under it."""
        return self.binance_ws_url + USDM_WS_ROOT

    @property
    def alpaca_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def alpaca_rest_url(self) -> str:
        return self.base_http

    @property
    def alpaca_trading_url(self) -> str:
        """Alpaca's trading API (the asset list), on the same port."""
        return self.base_http

    def env(self) -> dict[str, str]:
        """Environment variables that point the stream client at this simulator."""
        key, secret = next(iter(self.alpaca_keys.items()))
        return {"BINANCE_WS_URL": self.binance_ws_url, "BINANCE_REST_URL": self.binance_rest_url,
                "BINANCE_FUTURES_WS_URL": self.usdm_ws_url,
                "BINANCE_FUTURES_REST_URL": self.binance_rest_url,
                "ALPACA_WS_URL": self.alpaca_ws_url, "ALPACA_REST_URL": self.alpaca_rest_url,
                "ALPACA_TRADING_URL": self.alpaca_trading_url,
                "ALPACA_API_KEY": key, "ALPACA_SECRET_KEY": secret}

    # -- the exchange's truth ----------------------------------------------------------
    def now_ns(self) -> int:
        """Current market time."""
        return self.clock.now()

    def _venue_symbol(self, venue: str, symbol: str) -> str:
        return symbol.upper() if venue == "alpaca" else binance_symbol(symbol)

    @staticmethod
    def _replay_venue(symbol: str) -> str:
        """A replayed perpetual (``"BTC/USDT:USDT"``) feeds USDⓈ-M, a pair Binance spot."""
        return VENUE_USDM if ":" in symbol else "binance"

    def trades(self, venue: str, symbol: str) -> list[SimTrade]:
        """Every retained trade the simulator executed for ``symbol`` on ``venue``, in order."""
        self.feed.pump()
        log = self.feed.log(venue, self._venue_symbol(venue, symbol))
        if log is None:
            raise KeyError(f"{venue} does not trade {symbol!r} in this simulator")
        return list(log.trades)

    def klines(self, symbol: str, timeframe: str = "1m", limit: int = 1000,
               start_ns: int | None = None, end_ns: int | None = None) -> list[Kline]:
        """The official klines of ``symbol`` (what ``/api/v3/klines`` returns, or
        ``/fapi/v1/klines`` for a perpetual ``"BTC/USDT:USDT"``)."""
        self.feed.pump()
        venue = self._replay_venue(symbol)
        log = self.feed.log(venue, binance_symbol(symbol))
        if log is None:
            raise KeyError(f"{venue} does not trade {symbol!r} in this simulator")
        return select_klines(log, timeframe_ns(timeframe), self.clock.now(), limit,
                             start_ns, end_ns)

    def advance(self) -> None:
        """Publish everything due by now at once (after an injected clock moved)."""
        self.feed.pump()
        self.feed.nudge()

    # -- faults ----------------------------------------------------------------------
    def drop_after(self, messages: int | None) -> None:
        """Cut each connection (no close frame) once it has sent ``messages`` frames."""
        self.faults.drop_after_messages = messages

    def drop_randomly(self, probability: float) -> None:
        """Cut a connection before any frame with this probability (0 turns it off)."""
        self.faults.drop_probability = probability

    def drop_all(self) -> None:
        """Cut every open connection now, without close frames."""
        self.binance_streams.drop_all()
        self.usdm_streams.drop_all()
        self.alpaca_streams.drop_all()

    def go_silent(self, silent: bool = True) -> None:
        """Stop (or resume) sending anything, pings and pongs included, keeping sockets open."""
        self.faults.silent = silent

    def go_quiet(self, symbol: str, quiet: bool = True, venue: str | None = None) -> None:
        """Stop (or resume) streaming ``symbol``'s trades while everything else flows.

        The market keeps trading it (the trade log and REST show every trade) and
        every socket stays open; only the stream frames of that symbol (trades,
        aggregate trades, tickers) are withheld, as when an exchange's stream
        stalls for one symbol. ``venue`` is ``"binance"`` or ``"alpaca"``; by
        default every venue that trades ``symbol``.
        """
        venues = [v for v in ("binance", "alpaca") if venue in (None, v)]
        if not venues:
            raise ValueError(f"venue must be 'binance', 'alpaca' or None, got {venue!r}")
        keys = [(v, self._venue_symbol(v, symbol)) for v in venues]
        keys = [key for key in keys if self.feed.log(*key) is not None]
        if not keys:
            raise KeyError(f"{symbol!r} is not traded by {venue or 'any venue'} in this "
                           "simulator")
        for key in keys:
            if quiet:
                self.faults.quiet.add(key)
            else:
                self.faults.quiet.discard(key)

    def send_malformed(self, rate: float) -> None:
        """Corrupt this fraction of frames (cut-off JSON or wrong value types)."""
        self.faults.malformed_rate = rate

    def refuse_auth(self, refuse: bool = True) -> None:
        """Answer every Alpaca authentication with 402 auth failed."""
        self.faults.refuse_auth = refuse

    def set_alpaca_connection_limit(self, per_key: int) -> None:
        """Sessions one key may hold per endpoint; the next one gets 406."""
        self.alpaca_settings.connections_per_key = per_key

    def set_connection_lifetime(self, seconds: float) -> None:
        """Binance connection lifetime in market seconds (24 h by default), open ones too."""
        self.binance_settings.connection_lifetime = seconds

    def slow_start(self, seconds: float) -> None:
        """Delay every WebSocket handshake by ``seconds`` before accepting it."""
        self.faults.accept_delay = seconds

    def fail_rest(self, count: int, status: int = 429, retry_after: int = 1,
                  venue: str | None = None) -> None:
        """Answer the next ``count`` REST requests with ``status``.

        418 and 429 carry ``Retry-After``; 500 and 503 carry Binance's error
        body (-1001, -1008), 502 and 504 the HTML page of the gateway in front.
        """
        if status not in REST_STATUSES:
            raise ValueError(f"status must be one of {REST_STATUSES}, got {status!r}")
        self.faults.rest = RestFault(status, retry_after, count, venue)

    def garble_rest(self, count: int, venue: str | None = None) -> None:
        """Answer the next ``count`` REST requests with HTTP 200 and half of their body."""
        self.faults.rest = RestFault(GARBAGE, 0, count, venue)

    def short_rest_pages(self, count: int, venue: str | None = None) -> None:
        """Answer the next ``count`` REST list requests with only the first half of their rows."""
        self.faults.rest = RestFault(SHORT, 0, count, venue)

    def refuse_connections(self, seconds: float) -> None:
        """Answer every WebSocket handshake with HTTP 503 for the next ``seconds`` (wall clock)."""
        self.faults.refuse_connections_until = time.monotonic() + seconds

    def refuse_trades(self, symbol: str, count: int = 1) -> None:
        """Record the next ``count`` trades of Binance ``symbol`` as price 0, quantity 0
        (a perpetual, ``"BTC/USDT:USDT"``, on USDⓈ-M, its records typed ``NA``).

        The ids stay consecutive: the records are in the trade log, the stream
        and spot's REST ``historicalTrades``, but not in klines or aggregate trades
        (nor USDⓈ-M's trade lists), as with the non-``MARKET`` records of Binance
        USDⓈ-M trade data.
        """
        venue = self._replay_venue(symbol)
        self.faults.refused_pending[(venue, self._known(venue, symbol))] += count

    def lose_trade_frames(self, symbol: str, count: int = 1) -> None:
        """Do not stream the next ``count`` trades of Binance ``symbol`` (REST still has them)."""
        self._queue_fates(symbol, [Fate.LOSE] * count)

    def duplicate_trade_frames(self, symbol: str, count: int = 1) -> None:
        """Stream each of the next ``count`` trades of Binance ``symbol`` twice."""
        self._queue_fates(symbol, [Fate.DUPLICATE] * count)

    def delay_trade_frames(self, symbol: str, count: int = 1, behind: int = 3) -> None:
        """Stream each of the next ``count`` trades of ``symbol`` after the ``behind`` next ones."""
        self.faults.delay_frames = behind
        self._queue_fates(symbol, [Fate.DELAY] * count)

    def _queue_fates(self, symbol: str, fates: list[Fate]) -> None:
        venue = self._replay_venue(symbol)
        key = (venue, self._known(venue, symbol))
        self.faults.fates_pending.setdefault(key, []).extend(fates)

    def _known(self, venue: str, symbol: str) -> str:
        name = self._venue_symbol(venue, symbol)
        if self.feed.log(venue, name) is None:
            raise KeyError(f"{venue} does not trade {symbol!r} in this simulator")
        return name

    def set_ping_interval(self, seconds: float) -> None:
        """Seconds between the Binance server's ping frames (20 by default), open ones too."""
        self.binance_settings.ping_interval = seconds

    def send_nested_frame(self, depth: int = 100_000) -> None:
        """Send every open connection one frame of JSON objects nested ``depth`` deep."""
        frame = RawFrame('{"a":' * depth + "1" + "}" * depth)
        for conn in [*(s.conn for s in self.binance_streams.sessions),
                     *(s.conn for s in self.alpaca_streams.sessions)]:
            conn.send(frame)

    async def server_shutdown(self, grace: float = 0.1) -> None:
        """Send Binance's ``serverShutdown`` event, then close those (not newer) connections."""
        await self.binance_streams.shutdown(grace)

    def clear_faults(self) -> None:
        """Back to a healthy exchange."""
        self.faults.reset()
