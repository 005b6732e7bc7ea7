"""Health judgement: per connection and per symbol, an overall status and its reasons.

``assess`` is pure (it takes the facts and ``now``), so every rule is tested
with plain calls. Stock symbols are judged stale only while NYSE is open, by
the maintained ``exchange_calendars`` NYSE calendar (sessions, holidays, early
closes) rather than hand-written hours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"


@dataclass
class SymbolFacts:
    symbol: str
    venue: str
    asset_class: str  # "crypto" or "stock"
    last_tick_ns: int | None
    ticks_last_minute: int


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


@dataclass
class HealthReport:
    status: str
    reasons: list[str]
    connections: list[dict[str, Any]]
    symbols: list[dict[str, Any]]
    stale_symbols: list[str] = field(default_factory=list)
    timestamp_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "timestamp_ns": self.timestamp_ns,
                "stale_symbols": self.stale_symbols, "connections": self.connections,
                "symbols": self.symbols}


def assess(now_ns: int, connections: list[ConnectionFacts], symbols: list[SymbolFacts],
           stale_after_s: float, market_open: Callable[[int], bool]) -> HealthReport:
    """Judge the stream: UNHEALTHY if a connection FAILED or none is connected,
    DEGRADED if a connection is down or a symbol is stale, else HEALTHY."""
    reasons: list[str] = []
    status = HEALTHY
    conns = []
    for c in connections:
        conns.append({
            "name": c.name, "venue": c.venue, "state": c.state,
            "state_age_s": round((now_ns - c.state_since_ns) / 1e9, 3),
            "last_message_age_s": (round((now_ns - c.last_message_ns) / 1e9, 3)
                                   if c.last_message_ns else None),
            "reconnects": c.reconnects, "symbols": c.symbols, "error": c.error,
        })
        if c.state == "failed":
            status = UNHEALTHY
            reasons.append(f"connection {c.name} failed: {c.error}")
        elif c.state != "connected":
            status = _worst(status, DEGRADED)
            reasons.append(f"connection {c.name} is {c.state}")
    if connections and all(c.state in ("failed", "stopped") for c in connections):
        status = UNHEALTHY
    stale: list[str] = []
    syms = []
    stale_ns = stale_after_s * 1e9
    for s in symbols:
        age = None if s.last_tick_ns is None else (now_ns - s.last_tick_ns) / 1e9
        judged = s.asset_class != "stock" or market_open(now_ns)
        is_stale = judged and (age is None or age * 1e9 > stale_ns)
        if is_stale:
            stale.append(s.symbol)
        syms.append({"symbol": s.symbol, "venue": s.venue,
                     "last_tick_age_s": None if age is None else round(age, 3),
                     "ticks_last_minute": s.ticks_last_minute, "stale": is_stale})
    if stale:
        status = _worst(status, DEGRADED)
        reasons.append(f"no trade for {stale_after_s:g}s: {', '.join(stale)}")
    return HealthReport(status, reasons, conns, syms, stale, now_ns)


def _worst(a: str, b: str) -> str:
    order = (HEALTHY, DEGRADED, UNHEALTHY)
    return a if order.index(a) >= order.index(b) else b


@functools.lru_cache(maxsize=1)
def _nyse() -> Any:
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS")


def nyse_open(now_ns: int) -> bool:
    """True while NYSE's regular session is open at ``now_ns`` (holidays and half days known)."""
    import pandas as pd

    cal = _nyse()
    minute = pd.Timestamp(now_ns, unit="ns", tz="UTC").floor("min")
    if minute < cal.first_minute or minute > cal.last_minute:
        return False
    return bool(cal.is_open_on_minute(minute))
