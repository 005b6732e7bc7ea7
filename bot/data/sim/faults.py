"""Fault switches shared by every connection and REST route of the simulator.

Each switch models a way real exchanges fail a client: connections cut without
a close frame, streams that go quiet while the socket stays open (all of them,
or one symbol's while the others flow), garbage frames, refused credentials,
slow handshakes and REST rate limiting. They are plain state read on every
send or request, so a test can flip them at any time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class RestFault:
    """The next ``remaining`` REST requests (of ``venue``, or of both if None) fail."""

    status: int
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
    # (venue, venue symbol) pairs whose trades are executed and logged but not streamed.
    quiet: set[tuple[str, str]] = field(default_factory=set)
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def reset(self) -> None:
        """Turn every fault off."""
        self.drop_after_messages = None
        self.drop_probability = 0.0
        self.silent = False
        self.malformed_rate = 0.0
        self.refuse_auth = False
        self.accept_delay = 0.0
        self.rest = None
        self.quiet.clear()

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

    def take_rest_fault(self, venue: str) -> RestFault | None:
        """The REST failure this request of ``venue`` must get, consuming one, or None."""
        fault = self.rest
        if fault is None or fault.remaining <= 0 or fault.venue not in (None, venue):
            return None
        fault.remaining -= 1
        if fault.remaining == 0:
            self.rest = None
        return fault
