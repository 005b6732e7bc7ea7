"""Alpaca market data stream codec and session (sans-I/O): stocks v2 and crypto v1beta3.

URLs: stocks ``{base}/v2/{feed}`` (feeds ``iex``, ``sip``, ``delayed_sip`` and
``test``, whose only symbol is ``FAKEPACA``), crypto ``{base}/v1beta3/crypto/us``.

Handshake, as documented: the server greets with
``[{"T":"success","msg":"connected"}]``; we answer with
``{"action":"auth","key":..,"secret":..}``; the server confirms with
``[{"T":"success","msg":"authenticated"}]``; we send
``{"action":"subscribe","trades":[...]}``; the server answers with its whole
subscription ``[{"T":"subscription","trades":[...],...}]`` and the session is
ready. Every server frame is a JSON array of messages; data frames may carry
many. Errors ``[{"T":"error","code":..,"msg":..}]`` become
:class:`~bot.data.errors.ExchangeError` events, fatal for the codes where
reconnecting cannot help (:data:`FATAL_ERROR_CODES`). The session speaks JSON
(the transport does not ask for msgpack).

Trades (``T: "t"``): ``t`` is RFC 3339 with nanoseconds, parsed exactly to
integer nanoseconds. Crypto trades carry the taker side ``tks`` (``B``/``S``).
Stock trades carry none; their side comes from the tick rule
(:mod:`bot.data.venues.tickrule`). Stock trades keep their conditions ``c``
and exchange ``x``; ``Tick.updates`` follows the per-field condition rules of
:mod:`bot.data.venues.alpaca.conditions`.

Trade ids: Alpaca's stock trade ids are unique per exchange, not per symbol,
so a stock tick's ``trade_id`` is ``ord(x) << 56 | i``: the exchange code's
ASCII value in the top bits (below the sign bit) and Alpaca's id in the low 56.
It stays a positive 64-bit integer, unique per symbol, and
:func:`split_stock_trade_id` recovers both parts. Crypto ids are used as sent.

Credentials: :class:`AlpacaCredentials` never shows the key or the secret in a
repr or message, and registers both with :mod:`bot.data.redaction` when it is
made, so no log line of any library (``websockets`` logs the auth frame at
DEBUG), health or metrics report can show them; the auth frame is a
:class:`~bot.data.venues.protocol.SecretFrame`.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from bot.data.config import ALPACA_FEEDS, ALPACA_WS_DEFAULT, StreamManagerConfig, SymbolForm
from bot.data.errors import ConfigError, ExchangeError, MalformedFrame, MissingCredentialsError
from bot.data.models import UPDATES_ALL, Side, Tick
from bot.data.redaction import register_secret
from bot.data.venues.alpaca.conditions import updates_for
from bot.data.venues.alpaca.timestamps import parse_rfc3339_ns
from bot.data.venues.protocol import (
    ControlEvent,
    Ready,
    Received,
    SecretFrame,
    SubscriptionResult,
)
from bot.data.venues.tickrule import TickRule

VENUE_ALPACA = "alpaca"
CRYPTO_PATH = "/v1beta3/crypto/us"
KEY_VARIABLES = ("ALPACA_API_KEY", "APCA_API_KEY_ID")
SECRET_VARIABLES = ("ALPACA_SECRET_KEY", "APCA_API_SECRET_KEY")

# The stream's error codes: 400-409 and 500 from Alpaca's stream documentation,
# 410 and 411 from Alpaca's official Go SDK.
ERROR_CODES = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    408: "v2 not enabled",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    411: "insufficient scope",
    500: "internal error",
}
# Errors that reconnecting with the same credentials and symbols cannot cure: auth failed,
# symbol limit exceeded, v2 not enabled, insufficient subscription, invalid subscribe action
# for this feed, insufficient scope. Not 406 (connection limit exceeded): the server frees a
# dropped connection's session after a while, so the transport reconnects with backoff, as
# Alpaca's own client does.
FATAL_ERROR_CODES = frozenset({402, 405, 408, 409, 410, 411})

_TRADE_ID_BITS = 56
_TRADE_ID_MASK = (1 << _TRADE_ID_BITS) - 1
_TAKER_SIDES = {"B": Side.BUY, "S": Side.SELL}


@dataclass(frozen=True, repr=False)
class AlpacaCredentials:
    """An Alpaca API key id and secret; neither ever appears in a repr or a message."""

    key_id: str
    secret_key: str

    def __post_init__(self) -> None:
        if not self.key_id or not self.secret_key:
            raise MissingCredentialsError("Alpaca credentials need both a key id and a secret key")
        register_secret(self.key_id)
        register_secret(self.secret_key)

    def __repr__(self) -> str:
        return "AlpacaCredentials(key_id=<hidden>, secret_key=<hidden>)"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlpacaCredentials:
        """Read ALPACA_API_KEY / ALPACA_SECRET_KEY, else alpaca-py's names.

        alpaca-py reads APCA_API_KEY_ID / APCA_API_SECRET_KEY; either pair works.
        """
        env = os.environ if environ is None else environ
        key = next((env[v].strip() for v in KEY_VARIABLES if env.get(v, "").strip()), "")
        secret = next((env[v].strip() for v in SECRET_VARIABLES if env.get(v, "").strip()), "")
        if not key or not secret:
            missing = [" or ".join(names) for names, value in
                       ((KEY_VARIABLES, key), (SECRET_VARIABLES, secret)) if not value]
            raise MissingCredentialsError(
                "Alpaca streaming needs credentials: set " + " and ".join(missing)
                + " in the environment")
        return cls(key, secret)


# Class shares are spelled with a dot, as Alpaca does ("BRK.B"); crypto pairs "BASE/QUOTE".
STOCK_TICKER = SymbolForm(
    re.compile(r"[A-Za-z0-9]{1,10}(?:\.[A-Za-z0-9]{1,5}){0,2}"),
    "this Alpaca stream takes stock tickers without '/', e.g. 'TSLA' or 'BRK.B': 1 to 10 "
    "letters A-Z or digits, then up to two '.CLASS' suffixes; no spaces or other characters",
    max_length=22)
CRYPTO_PAIR = SymbolForm(
    re.compile(r"[A-Za-z0-9]{1,15}/[A-Za-z0-9]{1,15}"),
    "this Alpaca stream takes 'BASE/QUOTE' crypto pairs, e.g. 'BTC/USD': letters A-Z and "
    "digits on both sides of one '/'; no spaces or other characters",
    max_length=31)


def alpaca_symbol(symbol: object, *, crypto: bool, field: str = "symbols") -> str:
    """``symbol`` in upper case if it fits the stream (stock tickers or crypto pairs);
    else a :class:`ConfigError` naming it and the form allowed."""
    return (CRYPTO_PAIR if crypto else STOCK_TICKER).normalise(symbol, field)


def stock_trade_id(exchange: str, trade_id: int) -> int:
    """Alpaca's per-exchange stock trade id made unique per symbol (see the module docstring)."""
    if len(exchange) != 1 or not exchange.isascii() or not 0 <= trade_id <= _TRADE_ID_MASK:
        raise ValueError(f"cannot combine exchange {exchange!r} and trade id {trade_id}: "
                         "need one ASCII character and an id below 2**56")
    return ord(exchange) << _TRADE_ID_BITS | trade_id


def split_stock_trade_id(combined: int) -> tuple[str, int]:
    """Inverse of :func:`stock_trade_id`: ``(exchange code, Alpaca trade id)``."""
    return chr(combined >> _TRADE_ID_BITS), combined & _TRADE_ID_MASK


class _Trade(msgspec.Struct, tag="t", tag_field="T", gc=False):
    S: str
    i: int
    p: float
    s: float
    t: str
    x: str = ""
    c: tuple[str, ...] = ()
    z: str = ""
    tks: str = ""


class _Success(msgspec.Struct, tag="success", tag_field="T"):
    msg: str


class _Error(msgspec.Struct, tag="error", tag_field="T"):
    code: int
    msg: str = ""


class _Subscription(msgspec.Struct, tag="subscription", tag_field="T"):
    trades: list[str] = []


class _Head(msgspec.Struct):
    T: str


_Message = _Trade | _Success | _Error | _Subscription
_HANDLED_TYPES = frozenset({"t", "success", "error", "subscription"})
_decode_messages = msgspec.json.Decoder(list[_Message]).decode
_decode_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_head = msgspec.json.Decoder(_Head).decode
_decode_message = msgspec.json.Decoder(_Message).decode


class _State(enum.Enum):
    CONNECTING = "waiting for 'connected'"
    AUTHENTICATING = "waiting for 'authenticated'"
    SUBSCRIBING = "waiting for the subscription"
    READY = "ready"


class AlpacaSession:
    """One Alpaca stream connection: handshake, trade subscriptions, frames to ticks.

    Symbols added before authentication go into the first subscribe message;
    after it, each change is sent at once. The tick rule's memory outlives
    reconnections (the last price stays the best reference).
    """

    venue = VENUE_ALPACA

    def __init__(self, config: StreamManagerConfig, credentials: AlpacaCredentials,
                 symbols: Iterable[str] = (), *, crypto: bool = False) -> None:
        """Feed and base URL come from ``config``; ``crypto`` selects the v1beta3 crypto stream."""
        self.crypto = crypto
        self.feed = "crypto/us" if crypto else config.alpaca_feed
        if not crypto and self.feed not in ALPACA_FEEDS:
            raise ConfigError("alpaca_feed", self.feed, f"allowed: {', '.join(ALPACA_FEEDS)}")
        self.base_url = (config.alpaca_ws_url or ALPACA_WS_DEFAULT).rstrip("/")
        self._credentials = credentials
        self._symbols: dict[str, None] = {}
        self._state = _State.CONNECTING
        self._tick_rule = TickRule()
        self.subscribe(list(symbols))

    def __repr__(self) -> str:
        return (f"AlpacaSession(feed={self.feed!r}, state={self._state.value!r}, "
                f"symbols={len(self._symbols)})")

    # -- VenueSession ----------------------------------------------------------------
    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    @property
    def ready(self) -> bool:
        return self._state is _State.READY

    def url(self) -> str:
        """The stream URL; starts a new connection (the handshake begins again)."""
        self._state = _State.CONNECTING
        if self.crypto:
            return self.base_url + CRYPTO_PATH
        return f"{self.base_url}/v2/{self.feed}"

    def on_open(self) -> list[str]:
        """Nothing: the client authenticates only after the server's 'connected'."""
        return []

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        """Add trade subscriptions; the message to send now once authenticated."""
        new = [s for s in dict.fromkeys(self._normalise(s) for s in symbols)
               if s not in self._symbols]
        self._symbols.update(dict.fromkeys(new))
        return self._request("subscribe", new) if self._authenticated else []

    def unsubscribe(self, symbols: Sequence[str]) -> list[str]:
        """Remove trade subscriptions; the message to send now once authenticated."""
        gone = [s for s in dict.fromkeys(self._normalise(s) for s in symbols)
                if s in self._symbols]
        for symbol in gone:
            del self._symbols[symbol]
            self._tick_rule.forget(symbol)
        return self._request("unsubscribe", gone) if self._authenticated else []

    def receive(self, frame: bytes | str, receive_ns: int) -> Received:
        """Decode one frame (a JSON array of messages) into ticks, replies and events.

        A data frame carries many trades: a message that cannot be read is left
        out and reported in ``malformed``, the others still count.
        """
        out = Received()
        for message in self._messages(frame, out.malformed):
            if type(message) is _Trade:
                try:
                    out.ticks.append(self._tick(message, receive_ns))
                except ValueError as exc:
                    out.malformed.append(MalformedFrame(f"bad trade: {exc}",
                                                        msgspec.json.encode(message)))
            elif type(message) is _Success:
                self._on_success(message.msg, out)
            elif type(message) is _Error:
                out.events.append(self._error(message))
            elif type(message) is _Subscription:
                self._on_subscription(message, out.events)
        return out

    # -- handshake ----------------------------------------------------------------------
    @property
    def _authenticated(self) -> bool:
        return self._state in (_State.SUBSCRIBING, _State.READY)

    def _on_success(self, msg: str, out: Received) -> None:
        if msg == "connected":
            self._state = _State.AUTHENTICATING
            out.send.append(SecretFrame(msgspec.json.encode({
                "action": "auth", "key": self._credentials.key_id,
                "secret": self._credentials.secret_key}).decode()))
        elif msg == "authenticated":
            if self._symbols:
                self._state = _State.SUBSCRIBING
                out.send.extend(self._request("subscribe", list(self._symbols)))
            else:
                self._state = _State.READY
                out.events.append(Ready())

    def _on_subscription(self, message: _Subscription, events: list[ControlEvent]) -> None:
        events.append(SubscriptionResult(None, True, symbols=tuple(message.trades)))
        if self._state is _State.SUBSCRIBING:
            self._state = _State.READY
            events.append(Ready())

    def _error(self, message: _Error) -> ExchangeError:
        text = message.msg or ERROR_CODES.get(message.code, "unknown error")
        return ExchangeError(self.venue, message.code, text,
                             fatal=message.code in FATAL_ERROR_CODES)

    def _request(self, action: str, symbols: list[str]) -> list[str]:
        if not symbols:
            return []
        return [msgspec.json.encode({"action": action, "trades": symbols}).decode()]

    def _normalise(self, symbol: str) -> str:
        return alpaca_symbol(symbol, crypto=self.crypto)

    # -- data ---------------------------------------------------------------------------
    def _messages(self, frame: bytes | str, malformed: list[MalformedFrame]) -> list[_Message]:
        """The messages of a frame this session handles; others (quotes, bars...) are skipped,
        and those it cannot read go to ``malformed``. A frame that is no JSON array raises."""
        try:
            return _decode_messages(frame)
        except msgspec.ValidationError:
            pass  # a message type we do not handle, or a bad one: sort them out one by one
        except msgspec.DecodeError as exc:
            raise MalformedFrame(f"invalid JSON: {exc}", frame) from None
        try:
            raws = _decode_raw_list(frame)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(f"not an Alpaca message array: {exc}", frame) from None
        messages = []
        for raw in raws:
            try:
                if _decode_head(raw).T in _HANDLED_TYPES:
                    messages.append(_decode_message(raw))
            except msgspec.DecodeError as exc:
                malformed.append(MalformedFrame(f"bad message: {exc}", bytes(raw)))
        return messages

    def _tick(self, m: _Trade, receive_ns: int) -> Tick:
        """The trade as a tick; ValueError when its time or id cannot be one."""
        timestamp = parse_rfc3339_ns(m.t)
        if self.crypto:
            return Tick(self.venue, m.S, m.p, m.s, _TAKER_SIDES.get(m.tks, Side.UNKNOWN),
                        m.i, timestamp, receive_ns, m.c, m.x, UPDATES_ALL)
        trade_id = stock_trade_id(m.x, m.i)  # before the tick rule sees a trade that may not be
        return Tick(self.venue, m.S, m.p, m.s, self._tick_rule.classify(m.S, m.p), trade_id,
                    timestamp, receive_ns, m.c, m.x, updates_for(m.c))
