"""What a venue session promises the transport, and the control events it reports.

A :class:`VenueSession` is the sans-I/O half of one WebSocket connection: it
says where to connect and what to send, and turns each received frame into
ticks, frames to send back and control events. It never touches a socket or a
clock, so the transport owns all I/O and timing (pacing, pings, backoff) and
the sessions are tested with plain calls on recorded frames.

The session object outlives a single connection: each call to :meth:`url`
starts a new connection attempt and resets the per-connection state
(handshake, pending requests), while the symbol set carries over, so a
reconnect resubscribes everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import msgspec

from bot.data.errors import ExchangeError, MalformedFrame
from bot.data.models import Tick

VenueError: TypeAlias = ExchangeError
"""An error the exchange reported, delivered as an event (an exception instance, not raised)."""


class Ready(msgspec.Struct, frozen=True):
    """The handshake is done and the subscriptions are confirmed: data flows from now on."""


class SubscriptionResult(msgspec.Struct, frozen=True):
    """The exchange's answer to a subscribe or unsubscribe request.

    ``request_id`` is the id the request carried (Binance), or None where the
    venue does not number requests (Alpaca). ``symbols`` is the venue's whole
    confirmed trade subscription when it reports one (Alpaca), else empty.
    """

    request_id: int | None
    ok: bool
    error_code: int | None = None
    error_msg: str | None = None
    symbols: tuple[str, ...] = ()


class ServerShutdown(msgspec.Struct, frozen=True):
    """The server is about to close the connection: reconnect now to avoid a gap.

    ``timestamp`` is the event time in nanoseconds when the venue sends one.
    """

    timestamp: int | None = None


class TickerUpdate(msgspec.Struct, frozen=True, gc=False):
    """Best bid/ask (and last price when the channel carries it) of one symbol.

    ``timestamp`` is the exchange's event time in nanoseconds, None when the
    channel carries none (Binance spot ``@bookTicker``); ``receive_timestamp``
    is always the local receive time.
    """

    venue: str
    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    last: float | None
    timestamp: int | None
    receive_timestamp: int


ControlEvent: TypeAlias = Ready | SubscriptionResult | ServerShutdown | TickerUpdate | VenueError


class Received(msgspec.Struct):
    """Everything one frame produced besides the single-trade fast path.

    ``send`` holds frames the transport must send now, in order; ``events`` the
    control events, in the order the frame carried them. ``malformed``: the
    frame's messages the session could not read and skipped (a frame of many
    messages loses only those); the transport counts each as a parse error.
    """

    ticks: list[Tick] = msgspec.field(default_factory=list)
    send: list[str] = msgspec.field(default_factory=list)
    events: list[ControlEvent] = msgspec.field(default_factory=list)
    malformed: list[MalformedFrame] = msgspec.field(default_factory=list)


class SecretFrame(str):
    """A frame to send that carries a secret (an auth message).

    It is a ``str`` holding the real text, so the transport sends it as is
    (``encode()`` gives the real bytes), but ``repr``, ``str`` and formatting
    show a placeholder, so logging a frame or a :class:`Received` cannot leak
    the secret.
    """

    __slots__ = ()
    PLACEHOLDER = "<frame with credentials hidden>"

    def __repr__(self) -> str:
        return self.PLACEHOLDER

    def __str__(self) -> str:
        return self.PLACEHOLDER

    def __format__(self, spec: str) -> str:
        return format(self.PLACEHOLDER, spec)


@runtime_checkable
class VenueSession(Protocol):
    """One venue connection, sans I/O; see the module docstring for the life cycle."""

    venue: str

    def url(self) -> str:
        """Full URL of the next connection; resets the per-connection state."""
        ...

    def on_open(self) -> list[str]:
        """Frames to send right after the socket opened."""
        ...

    def receive(self, frame: bytes | str, receive_ns: int) -> Tick | Received:
        """Decode one frame; a frame that cannot be parsed raises MalformedFrame."""
        ...

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        """Add symbols: frames to send now (none before the connection is up)."""
        ...

    def unsubscribe(self, symbols: Sequence[str]) -> list[str]:
        """Remove symbols: frames to send now (none before the connection is up)."""
        ...

    @property
    def symbols(self) -> frozenset[str]:
        """Unified symbols this session carries (requested, including unconfirmed ones)."""
        ...

    @property
    def ready(self) -> bool:
        """True once the handshake is done and the subscriptions are confirmed."""
        ...


@runtime_checkable
class ProbingSession(Protocol):
    """A session whose venue answers a request in order on the same stream.

    The answer to :meth:`probe` arrives after every frame the venue sent before
    it read the probe, so it proves the connection delivered everything up to
    the moment the probe was sent. A venue without such a request (Alpaca's
    streams have none) does not implement it; its quiet bars complete by time.
    """

    def probe(self) -> tuple[int, str]:
        """A request that changes nothing, and the id its answer will carry."""
        ...
