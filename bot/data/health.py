"""Health judgement: per connection and per symbol, an overall status and its reasons.

One :class:`HealthReport` per judgement collects every contributor's reasons and
sections; its status only ever worsens, so no module patches another's verdict.

``assess`` is pure (it takes the facts and ``now``), so every rule is tested
with plain calls. A symbol is judged stale only while its venue's market trades
(``SymbolFacts.trading``; for stocks, NYSE's sessions from the venue's calendar).

Staleness counts from the moment a symbol is *expected* to trade, which
:class:`Expectations` keeps: not before its stream is up and its warm-up or gap
fill has let it through, and never while its connection is down. A symbol
found stale stays expected through a later hold (a resubscription's fill), so
a symbol that stays silent keeps being reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
# A liveness probe is answered within one round trip: a connection without proof of
# life (a frame, or a probe's answer) this long after a bar boundary needed one is
# reported, also while it keeps reconnecting without ever delivering.
UNPROVEN_AFTER_S = 1.0


@dataclass
class SymbolFacts:
    symbol: str
    venue: str
    trading: bool  # its venue's market is open now (stocks: NYSE's session)
    last_tick_ns: int | None  # the last trade its stream delivered
    ticks_last_minute: int
    expected_since_ns: int | None = None  # None: not expected to trade now (see Expectations)


@dataclass
class LoopFacts:
    """How late the event loop ran lately, and the handler with the longest recent call."""

    max_lag_s: float
    stall_after_s: float
    slowest_handler: str | None = None
    slowest_handler_ms: float | None = None


@dataclass
class ConnectionFacts:
    name: str
    venue: str
    state: str
    state_since_ns: int
    last_message_ns: int
    reconnects: int
    symbols: int
    error: str | None
    unproven_s: float | None = None  # how long it has gone without proof of life, if it has


_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}


class HealthReport:
    """One judgement of the stream, to which every contributor adds what it found.

    Connections, symbols and the event loop (:func:`assess`), supervised tasks,
    gaps, the store, the NATS source or publisher: each adds its reasons with
    :meth:`degrade` or :meth:`fail`, and its own section (``sections``). The
    status only ever worsens, so no contributor can hide another's problem.
    """

    def __init__(self, timestamp_ns: int = 0) -> None:
        self._status = HEALTHY
        self.reasons: list[str] = []
        self.timestamp_ns = timestamp_ns
        self.stale_symbols: list[str] = []
        self.connections: list[dict[str, Any]] = []
        self.symbols: list[dict[str, Any]] = []
        self.sections: dict[str, Any] = {}  # event_loop, backfilling, gaps, store, source...

    @property
    def status(self) -> str:
        """``healthy``, ``degraded`` or ``unhealthy``: the worst any contributor found."""
        return self._status

    def worsen(self, status: str, reason: str | None = None) -> None:
        """Raise the status to ``status`` unless it is already worse; add ``reason``."""
        if _RANK[status] > _RANK[self._status]:
            self._status = status
        if reason is not None:
            self.reasons.append(reason)

    def degrade(self, reason: str) -> None:
        """Something is wrong but data flows: ``degraded`` at least."""
        self.worsen(DEGRADED, reason)

    def fail(self, reason: str | None) -> None:
        """Data does not flow: ``unhealthy``."""
        self.worsen(UNHEALTHY, reason)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self._status, "reasons": self.reasons,
                "timestamp_ns": self.timestamp_ns, "stale_symbols": self.stale_symbols,
                "connections": self.connections, "symbols": self.symbols, **self.sections}


class Expectations:
    """Since when each symbol is expected to trade: the clock staleness counts from.

    A symbol becomes expected the first time it is seen connected and not held
    (warm-up or gap fill running); it stops being expected when its connection
    goes down, or when it is held while not stale. A stale symbol keeps its
    expectation through a hold, so resubscribing it cannot hide its silence.
    """

    def __init__(self) -> None:
        self._since: dict[str, int] = {}

    def observe(self, symbol: str, now_ns: int, *, connected: bool, held: bool,
                stale: bool) -> int | None:
        """Update and return ``symbol``'s expected-since time (None: not expected now)."""
        if not connected or (held and not stale):
            self._since.pop(symbol, None)
            return None
        return self._since.setdefault(symbol, now_ns)

    def forget(self, symbol: str) -> None:
        self._since.pop(symbol, None)

    def clear(self) -> None:
        self._since.clear()


def assess(now_ns: int, connections: list[ConnectionFacts], symbols: list[SymbolFacts],
           stale_after_s: float,
           loop: LoopFacts | None = None) -> HealthReport:
    """Judge the stream: UNHEALTHY if a connection FAILED or none is connected,
    DEGRADED if a connection is down or unproven (no proof of life for over
    :data:`UNPROVEN_AFTER_S` since a bar boundary needed one), a symbol is stale
    or the event loop stalled (``loop``), else HEALTHY.

    A symbol is stale when it is expected to trade (``expected_since_ns``) and
    nothing came for ``stale_after_s`` since its last trade or since it became
    expected, whichever is later.
    """
    report = HealthReport(now_ns)
    for c in connections:
        report.connections.append({
            "name": c.name, "venue": c.venue, "state": c.state,
            "state_age_s": round((now_ns - c.state_since_ns) / 1e9, 3),
            "last_message_age_s": (round((now_ns - c.last_message_ns) / 1e9, 3)
                                   if c.last_message_ns else None),
            "reconnects": c.reconnects, "symbols": c.symbols, "error": c.error,
            "unproven_s": None if c.unproven_s is None else round(c.unproven_s, 3),
        })
        if c.state == "failed":
            report.fail(f"connection {c.name} failed: {c.error}")
        elif c.state != "connected":
            report.degrade(f"connection {c.name} is {c.state}")
        if c.state != "failed" and c.unproven_s is not None and c.unproven_s > UNPROVEN_AFTER_S:
            report.degrade(f"connection {c.name} unproven for {c.unproven_s:.1f}s: no frame "
                           "and no answer to its liveness probe since a bar boundary; its "
                           "quiet bars wait")
    if connections and all(c.state in ("failed", "stopped") for c in connections):
        report.fail(None)  # each connection said why
    stale_ns = stale_after_s * 1e9
    for s in symbols:
        age = None if s.last_tick_ns is None else (now_ns - s.last_tick_ns) / 1e9
        is_stale = False
        if s.expected_since_ns is not None and s.trading:
            silent_since = max(s.expected_since_ns, s.last_tick_ns or 0)
            is_stale = now_ns - silent_since > stale_ns
        if is_stale:
            report.stale_symbols.append(s.symbol)
        report.symbols.append({"symbol": s.symbol, "venue": s.venue,
                     "last_tick_age_s": None if age is None else round(age, 3),
                     "ticks_last_minute": s.ticks_last_minute, "stale": is_stale})
    if report.stale_symbols:
        report.degrade(f"no trade for {stale_after_s:g}s: {', '.join(report.stale_symbols)}")
    if loop is not None:
        stalled = loop.max_lag_s > loop.stall_after_s
        report.sections["event_loop"] = {
            "max_lag_s": round(loop.max_lag_s, 3), "stalled": stalled,
            "slowest_handler": loop.slowest_handler,
            "slowest_handler_ms": loop.slowest_handler_ms}
        if stalled:
            cause = (f"; slowest handler: {loop.slowest_handler} "
                     f"(longest call {loop.slowest_handler_ms:g} ms)"
                     if loop.slowest_handler is not None else "")
            report.degrade(f"event loop stalled for {loop.max_lag_s:.1f}s "
                           f"(over {loop.stall_after_s:g}s){cause}")
    return report
