"""Fault switches shared by every connection and REST route of the simulator.

Each switch models a way real exchanges fail a client: connections cut without
a close frame, streams that go quiet while the socket stays open (all of them,
or one symbol's while the others flow), garbage frames, refused credentials,
slow handshakes, handshakes refused with HTTP 503 during an outage, REST rate
limiting, bans, server errors, garbage and short REST answers, and per-trade
stream faults (a trade's frame lost, sent twice or sent late). They are plain
state read on every send or request, so a test can flip them at any time.

Trades the exchange records but does not count as market trades (Binance
USDⓈ-M data has records with price 0 and quantity 0 and a trade type other
than ``MARKET``) are injected into the trade log itself, so the stream and
REST both serve them; see :meth:`Faults.take_refused`.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

# REST answers a fault can give: rate limit, ban, and the server errors Binance documents.
REST_STATUSES = (418, 429, 500, 502, 503, 504)
GARBAGE = "garbage"  # HTTP 200 with a body that is not the JSON asked for
SHORT = "short"  # HTTP 200 with only the first rows of a list answer


class Fate(Enum):
    """What a stream does with one trade's frame."""

    LOSE = "lose"  # never sent (the trade is in the log and REST)
    DUPLICATE = "duplicate"  # sent twice
    DELAY = "delay"  # sent after the next few trades of its stream


@dataclass
class RestFault:
    """The next ``remaining`` REST requests (of ``venue``, or of both if None) fail.

    ``status`` is an HTTP status from :data:`REST_STATUSES`, or :data:`GARBAGE`
    / :data:`SHORT` for a 200 answer whose body is garbage or cut short.
    """

    status: int | str
    retry_after: int
    remaining: int
    venue: str | None = None


@dataclass
class Faults:
    """Current fault settings; the simulator's fault methods write them."""

    drop_after_messages: int | None = None
    drop_probability: float = 0.0
    silent: bool = False
    malformed_rate: float = 0.0
    refuse_auth: bool = False
    accept_delay: float = 0.0
    rest: RestFault | None = None
    # Handshakes before this time.monotonic() reading are refused with HTTP 503.
    refuse_connections_until: float = 0.0
    # (venue, venue symbol) pairs whose trades are executed and logged but not streamed.
    quiet: set[tuple[str, str]] = field(default_factory=set)
    # (venue, venue symbol) -> how many of its next trades are recorded as refused (0, 0).
    refused_pending: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (venue, venue symbol) -> the fates its next trades' frames get, in order.
    fates_pending: dict[tuple[str, str], list[Fate]] = field(default_factory=dict)
    # Trade frames a delayed frame waits behind.
    delay_frames: int = 3
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # (venue, venue symbol, trade id) -> the fate decided for that trade, shared by sessions.
    _fates: dict[tuple[str, str, int], Fate] = field(default_factory=dict)
    _decided: dict[tuple[str, str], int] = field(default_factory=dict)

    def reset(self) -> None:
        """Turn every fault off."""
        self.drop_after_messages = None
        self.drop_probability = 0.0
        self.silent = False
        self.malformed_rate = 0.0
        self.refuse_auth = False
        self.accept_delay = 0.0
        self.rest = None
        self.refuse_connections_until = 0.0
        self.quiet.clear()
        self.refused_pending.clear()
        self.fates_pending.clear()

    def is_quiet(self, venue: str, symbol: str) -> bool:
        """True while the streams of ``venue`` must not publish ``symbol`` (venue spelling)."""
        return bool(self.quiet) and (venue, symbol) in self.quiet

    def should_drop(self, messages_sent: int) -> bool:
        """True when a connection that has sent ``messages_sent`` frames must be cut now."""
        if self.drop_after_messages is not None and messages_sent >= self.drop_after_messages:
            return True
        return self.drop_probability > 0 and self.rng.random() < self.drop_probability

    def should_garble(self) -> bool:
        return self.malformed_rate > 0 and self.rng.random() < self.malformed_rate

    def refusing_connections(self) -> bool:
        """True while new WebSocket handshakes must be answered with HTTP 503."""
        return time.monotonic() < self.refuse_connections_until

    def take_rest_fault(self, venue: str) -> RestFault | None:
        """The REST failure this request of ``venue`` must get, consuming one, or None."""
        fault = self.rest
        if fault is None or fault.remaining <= 0 or fault.venue not in (None, venue):
            return None
        fault.remaining -= 1
        if fault.remaining == 0:
            self.rest = None
        return fault

    def take_refused(self, venue: str, symbol: str) -> bool:
        """True when the trade being recorded now must be a refused (0, 0) record."""
        key = (venue, symbol)
        if not self.refused_pending[key]:
            return False
        self.refused_pending[key] -= 1
        return True

    def fate(self, venue: str, symbol: str, trade_id: int) -> Fate | None:
        """The fate of trade ``trade_id``'s frames: decided once, the same for every session."""
        key = (venue, symbol)
        if trade_id > self._decided.get(key, -1):
            self._decided[key] = trade_id
            pending = self.fates_pending.get(key)
            if pending:
                self._fates[(venue, symbol, trade_id)] = pending.pop(0)
            return self._fates.get((venue, symbol, trade_id))
        return self._fates.get((venue, symbol, trade_id)) if self._fates else None
