"""Binance spot combined-stream codec and session (sans-I/O), for Binance and Binance.US.

Frames arrive wrapped as ``{"stream": "btcusdt@trade", "data": {...}}``. The hot
path decodes a trade frame straight into a typed struct with msgspec (prices
and quantities arrive as decimal strings and are parsed by msgspec's C code),
then builds one :class:`~bot.data.models.Tick`. Anything else (ticker updates,
replies to SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS, error replies, ``serverShutdown``) takes a
slower path that first decodes the envelope and then the payload by stream.

Side: Binance's ``m`` is "buyer is the maker", so ``m: true`` means the taker
sold. Kline taker-buy volume is the sum of quantities with ``m: false``.

Trade channel: ``@trade`` gives one tick per trade (id ``t``); ``@aggTrade``
gives one tick per taker order and price (id ``a``, the aggregate id), so a
bar's trade count then counts aggregate trades, not the kline's ``n``.

Times: milliseconds by default; a session created with ``microseconds=True``
asks for ``timeUnit=MICROSECOND`` in the URL and scales accordingly. Ticks
always carry nanoseconds.

Limits (published in Binance's WebSocket docs): at most
:data:`MAX_STREAMS_PER_CONNECTION` streams per connection and
:data:`MAX_CONTROL_MESSAGES_PER_SECOND` incoming messages per second per
connection, pings and pongs included. The connection URL names at most
:data:`MAX_URL_STREAM_BYTES` of streams (servers refuse request lines past
about 8 KB; 1024 streams take about 16 KB) and the rest are subscribed once
it is open. The session splits a subscription into requests of at most
:data:`MAX_STREAMS_PER_REQUEST` streams; the transport paces their sending at
the venue's control interval.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import msgspec

from bot.data.config import (
    BINANCE_TRADE_CHANNELS,
    BINANCE_VENUES,
    MAX_STREAMS_PER_BINANCE_CONNECTION,
    StreamManagerConfig,
    SymbolForm,
)
from bot.data.errors import ConfigError, ExchangeError, MalformedFrame
from bot.data.models import Side, Tick
from bot.data.venues.protocol import (
    ControlEvent,
    Received,
    ServerShutdown,
    SubscriptionResult,
    TickerUpdate,
)

VENUE_BINANCE = "binance"
MAX_STREAMS_PER_CONNECTION = MAX_STREAMS_PER_BINANCE_CONNECTION
MAX_CONTROL_MESSAGES_PER_SECOND = 5
# Binance documents no cap per request, but very long SUBSCRIBE requests (a few
# hundred streams) have been seen to fail without an answer; 200 stays clear.
MAX_STREAMS_PER_REQUEST = 200
# Bytes of stream names the connection URL carries at most. HTTP servers refuse request
# lines past about 8 KB (a connection's 1024 streams would take about 16 KB); the
# streams past this go in SUBSCRIBE requests once the connection is open.
MAX_URL_STREAM_BYTES = 6144
# The WebSocket error replies Binance documents (codes 0-3); all concern a bad
# request of ours, so none is fatal.
WS_ERROR_CODES = {
    0: "unknown property",
    1: "invalid value type",
    2: "invalid request",
    3: "invalid JSON",
}
_BUY = Side.BUY
_SELL = Side.SELL
# The trade type of a trade in the order book. Any other (USDⓈ-M's "INSURANCE_FUND",
# "ADL", "NA") is kept as the tick's condition: the venue's klines do not count it.
MARKET = "MARKET"
_NO_CONDITIONS: tuple[str, ...] = ()

LIFETIME_S = 23.5 * 3600  # Binance closes connections at 24 h; roll over before.
# Binance closes a connection that sends more than 5 messages a second, pings and pongs
# included: control messages go out at most 2 a second, leaving room for the keepalive.
CONTROL_INTERVAL_S = 0.5


class _Trade(msgspec.Struct, gc=False):
    """A ``@trade`` payload (the decoder checks ``e``); ``X`` is the trade type where the
    venue sends one (USDⓈ-M)."""

    e: Literal["trade"]
    s: str
    t: int
    p: float
    q: float
    T: int
    m: bool
    X: str = MARKET


class _TradeFrame(msgspec.Struct, gc=False):
    data: _Trade  # the envelope's stream name is not read: the payload names its symbol


class _AggTrade(msgspec.Struct, gc=False):
    """An ``@aggTrade`` payload (the decoder checks ``e``); the aggregate id ``a`` is read
    as the trade id."""

    e: Literal["aggTrade"]
    s: str
    t: int = msgspec.field(name="a")
    p: float
    q: float
    T: int
    m: bool
    X: str = MARKET  # never sent: aggregate trades are market trades


class _AggTradeFrame(msgspec.Struct, gc=False):
    data: _AggTrade


class _BookTicker(msgspec.Struct, gc=False):
    """``@bookTicker``: spot frames carry no event time; futures ones add ``E``."""

    s: str
    b: float
    B: float
    a: float
    A: float
    E: int | None = None


class _Ticker(msgspec.Struct, gc=False):
    """``@ticker`` (24 h rolling statistics): only the fields a TickerUpdate needs."""

    E: int
    s: str
    c: float
    b: float
    B: float
    a: float
    A: float


class _Shutdown(msgspec.Struct):
    E: int | None = None


class _ErrorBody(msgspec.Struct):
    code: int | None = None
    msg: str | None = None


class _Envelope(msgspec.Struct):
    """Any frame: a stream event, a reply to a request, or an error reply.

    Error replies come in two shapes: the documented flat one (``{"code": 2, "msg":
    "...", "id": 1}``) and one seen from the live servers with the code nested
    (``{"error": {"code": 2, "msg": "..."}, "id": 1}``); both refuse the request.
    """

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty when absent
    id: int | msgspec.UnsetType | None = msgspec.UNSET
    code: int | None = None
    msg: str | None = None
    error: _ErrorBody | None = None


# Binance's legal range for a symbol is ``^[A-Z0-9-_.]{1,20}$`` (error -1100); spot pairs
# use letters and digits only, and stream names are lower-case letters and digits. The
# unified form puts a '/' between base and quote asset, so at most 21 characters in all.
BINANCE_PAIR = SymbolForm(
    re.compile(r"[A-Za-z0-9]{1,19}/[A-Za-z0-9]{1,19}"),
    "must look like 'BASE/QUOTE', e.g. 'BTC/USDT': letters A-Z and digits on both sides "
    "of one '/', at most 20 of them in all; no spaces or other characters",
    max_length=21)


def to_raw_symbol(symbol: str, field: str = "symbol") -> str:
    """``"BTC/USDT"`` -> ``"BTCUSDT"`` (Binance's form); a :class:`ConfigError` naming the
    symbol if it is not a ``BASE/QUOTE`` pair Binance could carry."""
    return BINANCE_PAIR.normalise(symbol, field).replace("/", "")


class BinanceCodec:
    """Decodes Binance spot trade frames into ticks for a known set of symbols.

    ``time_unit_ns`` is how many nanoseconds one unit of the frame's timestamps
    is: 1_000_000 for the default milliseconds, 1_000 when the connection asked
    for ``timeUnit=MICROSECOND``. ``trade_channel`` is ``"trade"`` or
    ``"aggTrade"``: the one :meth:`decode_trade` decodes.
    """

    def __init__(self, venue: str = VENUE_BINANCE, time_unit_ns: int = 1_000_000,
                 trade_channel: str = "trade") -> None:
        if trade_channel not in BINANCE_TRADE_CHANNELS:
            raise ConfigError("binance_trade_channel", trade_channel,
                              f"allowed: {', '.join(BINANCE_TRADE_CHANNELS)}")
        self.venue = venue
        self.time_unit_ns = time_unit_ns
        self.trade_channel = trade_channel
        self._unified: dict[str, str] = {}
        frame_type: type[_TradeFrame | _AggTradeFrame] = (
            _TradeFrame if trade_channel == "trade" else _AggTradeFrame)
        self._trade_decoder = msgspec.json.Decoder(frame_type, strict=False)

    def raw_symbol(self, symbol: str) -> str:
        """The venue's name of a unified symbol (a ConfigError if it is not one)."""
        return to_raw_symbol(symbol)

    def add_symbol(self, symbol: str) -> str:
        """Register a unified symbol; returns its raw Binance name."""
        raw = self.raw_symbol(symbol)
        self._unified[raw] = symbol.upper()
        return raw

    def unified(self, raw: str) -> str:
        """Unified name of a raw symbol; unregistered ones are returned unchanged."""
        return self._unified.get(raw, raw)

    def _tick(self, d: _Trade | _AggTrade, receive_ns: int) -> Tick:
        return Tick(self.venue, self.unified(d.s), d.p, d.q, _SELL if d.m else _BUY,
                    d.t, d.T * self.time_unit_ns, receive_ns,
                    _NO_CONDITIONS if d.X == MARKET else (d.X,))

    def decode_trade(self, frame: bytes | str, receive_ns: int) -> Tick | None:
        """Decode a frame of the trade channel; None when the frame is something else.

        Invalid JSON raises ``msgspec.DecodeError``.
        """
        try:
            d = self._trade_decoder.decode(frame).data
        except msgspec.ValidationError:  # another event or stream, or a field missing
            return None
        # _tick's body, inlined: one call less per trade.
        return Tick(self.venue, self._unified.get(d.s) or d.s, d.p, d.q,
                    _SELL if d.m else _BUY, d.t, d.T * self.time_unit_ns, receive_ns,
                    _NO_CONDITIONS if d.X == MARKET else (d.X,))


class BinanceSession(BinanceCodec):
    """One Binance combined-stream connection: URL, (un)subscriptions, frames to ticks.

    A venue speaking the same protocol elsewhere (another host, a routed path,
    another symbol spelling) subclasses it: :meth:`endpoint`,
    :attr:`STREAM_PATH`, :attr:`MAX_STREAMS` and :meth:`raw_symbol`.

    Symbols requested while no connection is open go into the next URL (or, if
    the URL was already built, into SUBSCRIBE requests returned by
    :meth:`on_open`). Requests are numbered from 1 and never reuse an id; a
    failed SUBSCRIBE drops its symbols again and a failed UNSUBSCRIBE restores
    them, so :attr:`symbols` stays what the server carries.
    """

    def __init__(self, config: StreamManagerConfig, symbols: Iterable[str] = (), *,
                 microseconds: bool = False) -> None:
        """Venue, base URL, channels and stream limit come from ``config``.

        ``microseconds`` asks the server for microsecond timestamps.
        """
        trade_channel = self.trade_channel_of(config)
        venue, base_url = self.endpoint(config)
        super().__init__(venue, 1_000 if microseconds else 1_000_000, trade_channel)
        self.base_url = base_url.rstrip("/")
        self.microseconds = microseconds
        self.max_streams = min(config.binance_max_streams_per_connection, self.MAX_STREAMS)
        ticker = self.ticker_channel_of(config)
        self._channels = (trade_channel,) if ticker is None else (trade_channel, ticker)
        self._symbols: dict[str, str] = {}  # unified -> raw, in subscription order
        self._in_url: frozenset[str] = frozenset()
        self._open = False
        self._next_id = 1
        self._pending: dict[int, tuple[str, tuple[str, ...]]] = {}
        self._decode_envelope = msgspec.json.Decoder(_Envelope).decode
        self._payload_handlers: dict[str, Callable[[msgspec.Raw, int], Tick | TickerUpdate]] = {
            "trade": self._trade_payload,
            "aggTrade": self._agg_trade_payload,
            "bookTicker": self._book_ticker_payload,
            "ticker": self._ticker_payload,
        }
        self.subscribe(list(symbols))

    STREAM_PATH = "/stream"  # where combined streams are served, under the base URL
    MAX_STREAMS = MAX_STREAMS_PER_CONNECTION

    @classmethod
    def endpoint(cls, config: StreamManagerConfig) -> tuple[str, str]:
        """(venue name, WebSocket base URL) for ``config``."""
        venue = config.binance_venue
        return venue, config.binance_ws_url or BINANCE_VENUES[venue][0]

    @classmethod
    def trade_channel_of(cls, config: StreamManagerConfig) -> str:
        """The trade channel this venue streams for ``config``."""
        return config.binance_trade_channel

    @classmethod
    def ticker_channel_of(cls, config: StreamManagerConfig) -> str | None:
        """The ticker channel this venue streams for ``config`` (None: none)."""
        return config.binance_ticker_channel

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(venue={self.venue!r}, channels={self._channels}, "
                f"symbols={len(self._symbols)}, ready={self._open})")

    # -- VenueSession ----------------------------------------------------------------
    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    @property
    def ready(self) -> bool:
        return self._open

    def url(self) -> str:
        """Combined-stream URL for a new connection: the current symbols, in subscription
        order, as far as :data:`MAX_URL_STREAM_BYTES` of stream names go; :meth:`on_open`
        subscribes the others."""
        self._open = False
        self._pending.clear()
        streams: list[str] = []
        in_url: list[str] = []
        size = 0
        for symbol in self._symbols:
            names = self._streams((symbol,))
            size += sum(len(name) + 1 for name in names)
            if size > MAX_URL_STREAM_BYTES:
                break
            streams += names
            in_url.append(symbol)
        self._in_url = frozenset(in_url)
        query = []
        if streams:
            query.append("streams=" + "/".join(streams))
        if self.microseconds:
            query.append("timeUnit=MICROSECOND")
        return f"{self.base_url}{self.STREAM_PATH}" + ("?" + "&".join(query) if query else "")

    def on_open(self) -> list[str]:
        """Nothing when the URL still matches the symbol set, else the requests that catch up."""
        self._open = True
        added = [s for s in self._symbols if s not in self._in_url]
        removed = sorted(s for s in self._in_url if s not in self._symbols)
        return self._requests("UNSUBSCRIBE", removed) + self._requests("SUBSCRIBE", added)

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        """Add unified symbols; SUBSCRIBE requests to send now if connected.

        Raises :class:`ConfigError` if the connection would exceed its stream limit.
        """
        raw = {s: self.raw_symbol(s) for s in symbols}  # every symbol checked before any is taken
        new = [s for s in dict.fromkeys(s.upper() for s in raw) if s not in self._symbols]
        streams = (len(self._symbols) + len(new)) * len(self._channels)
        if streams > self.max_streams:
            raise ConfigError("symbols", len(self._symbols) + len(new),
                              f"{streams} streams exceed {self.max_streams} per connection; "
                              "spread the symbols over several connections")
        for symbol in new:
            self._symbols[symbol] = self.add_symbol(symbol)
        return self._requests("SUBSCRIBE", new) if self._open else []

    def unsubscribe(self, symbols: Sequence[str]) -> list[str]:
        """Remove unified symbols; UNSUBSCRIBE requests to send now if connected."""
        gone = [s for s in dict.fromkeys(s.upper() for s in symbols) if s in self._symbols]
        for symbol in gone:
            del self._symbols[symbol]
        return self._requests("UNSUBSCRIBE", gone) if self._open else []

    def receive(self, frame: bytes | str, receive_ns: int) -> Tick | Received:
        """A trade frame of the configured channel gives its Tick; anything else a Received."""
        # The body of decode_trade, inlined: one call less per trade.
        try:
            d = self._trade_decoder.decode(frame).data
        except msgspec.ValidationError:
            return self._receive_other(frame, receive_ns)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(f"invalid JSON: {exc}", frame) from None
        return Tick(self.venue, self._unified.get(d.s) or d.s, d.p, d.q,
                    _SELL if d.m else _BUY, d.t, d.T * self.time_unit_ns, receive_ns,
                    _NO_CONDITIONS if d.X == MARKET else (d.X,))

    def probe(self) -> tuple[int, str]:
        """A ``LIST_SUBSCRIPTIONS`` request (the liveness probe) and its id.

        Binance answers it in order on the same stream (``{"result": [...], "id": N}``),
        so its answer proves every frame sent before it was delivered. It counts
        against the 5 incoming messages a second like any request; the transport paces it.
        """
        request_id = self._next_id
        self._next_id += 1
        return request_id, msgspec.json.encode(
            {"method": "LIST_SUBSCRIPTIONS", "id": request_id}).decode()

    # -- requests ----------------------------------------------------------------------
    def _streams(self, symbols: Iterable[str]) -> list[str]:
        """Stream names of ``symbols`` (also of ones just removed from the set)."""
        return [f"{(self._symbols.get(s) or self.raw_symbol(s)).lower()}@{channel}"
                for s in symbols for channel in self._channels]

    def _requests(self, method: str, symbols: Sequence[str]) -> list[str]:
        per_request = MAX_STREAMS_PER_REQUEST // len(self._channels)
        out = []
        for start in range(0, len(symbols), per_request):
            chunk = tuple(symbols[start:start + per_request])
            request_id = self._next_id
            self._next_id += 1
            self._pending[request_id] = (method, chunk)
            out.append(msgspec.json.encode(
                {"method": method, "params": self._streams(chunk), "id": request_id}).decode())
        return out

    # -- everything but the trade fast path ---------------------------------------------
    def _receive_other(self, frame: bytes | str, receive_ns: int) -> Received:
        try:
            env = self._decode_envelope(frame)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(f"not a Binance stream frame or reply: {exc}", frame) from None
        if env.stream is not None and len(env.data):
            return self._stream_event(env.stream, env.data, frame, receive_ns)
        if env.code is not None or env.error is not None:
            return Received(events=[self._error_reply(env)])
        if env.id is not msgspec.UNSET:
            return Received(events=[self._settle(env.id, None, None)])
        raise MalformedFrame("neither a stream event nor a reply", frame)

    def _stream_event(self, stream: str, data: msgspec.Raw, frame: bytes | str,
                      receive_ns: int) -> Received:
        if stream == "!serverShutdown":
            try:
                shutdown = _decode_shutdown(data)
            except msgspec.DecodeError as exc:
                raise MalformedFrame(f"bad serverShutdown event: {exc}", frame) from None
            ts = None if shutdown.E is None else shutdown.E * self.time_unit_ns
            return Received(events=[ServerShutdown(ts)])
        channel = stream.partition("@")[2]
        handler = self._payload_handlers.get(channel)
        if handler is None:  # a stream this session does not decode (depth, kline...)
            return Received()
        try:
            item = handler(data, receive_ns)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(f"bad {channel} event: {exc}", frame) from None
        if isinstance(item, Tick):
            return Received(ticks=[item])
        return Received(events=[item])

    def _error_reply(self, env: _Envelope) -> ControlEvent:
        nested = env.error if env.error is not None else _ErrorBody()
        code = env.code if env.code is not None else nested.code
        if code is None:
            code = -1
        text = env.msg or nested.msg or WS_ERROR_CODES.get(code, "unknown error")
        if isinstance(env.id, int):
            return self._settle(env.id, code, text)
        return ExchangeError(self.venue, code, text, fatal=False)

    def _settle(self, request_id: int | None, code: int | None,
                text: str | None) -> SubscriptionResult:
        """Close a pending request; undo its effect on the symbol set if it failed."""
        pending = self._pending.pop(request_id, None) if request_id is not None else None
        if pending is not None and code is not None:
            method, symbols = pending
            if method == "SUBSCRIBE":
                for symbol in symbols:
                    self._symbols.pop(symbol, None)
            else:
                for symbol in symbols:
                    self._symbols.setdefault(symbol, self.raw_symbol(symbol))
        return SubscriptionResult(request_id, code is None, code, text)

    def _trade_payload(self, data: msgspec.Raw, receive_ns: int) -> Tick:
        return self._tick(_decode_trade_payload(data), receive_ns)

    def _agg_trade_payload(self, data: msgspec.Raw, receive_ns: int) -> Tick:
        return self._tick(_decode_agg_trade_payload(data), receive_ns)

    def _book_ticker_payload(self, data: msgspec.Raw, receive_ns: int) -> TickerUpdate:
        d = _decode_book_ticker(data)
        ts = None if d.E is None else d.E * self.time_unit_ns
        return TickerUpdate(self.venue, self.unified(d.s), d.b, d.B, d.a, d.A, None,
                            ts, receive_ns)

    def _ticker_payload(self, data: msgspec.Raw, receive_ns: int) -> TickerUpdate:
        d = _decode_ticker(data)
        return TickerUpdate(self.venue, self.unified(d.s), d.b, d.B, d.a, d.A, d.c,
                            d.E * self.time_unit_ns, receive_ns)


_decode_trade_payload = msgspec.json.Decoder(_Trade, strict=False).decode
_decode_agg_trade_payload = msgspec.json.Decoder(_AggTrade, strict=False).decode
_decode_book_ticker = msgspec.json.Decoder(_BookTicker, strict=False).decode
_decode_ticker = msgspec.json.Decoder(_Ticker, strict=False).decode
_decode_shutdown = msgspec.json.Decoder(_Shutdown, strict=False).decode
