"""A venue's REST history as gap recovery and the warm-up see it.

Each venue package adapts its REST client to :class:`TradeHistory`: trades after
a known :class:`TradePosition` (what :class:`~bot.data.recovery.GapRecovery`
fetches to fill a gap) and the last completed bars (what the warm-up loads into
the bar history). How recovery reads the answers (sequenced ids, inferred
sides) comes from the venue's facts, which the adapter carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.data.models import Bar, Side, Tick
from bot.data.venues.spec import VenueFacts


@dataclass
class TradePosition:
    """Where a symbol's known trades end: what a fetch continues from.

    ``last_id`` / ``last_ts`` / ``last_price`` / ``last_side`` describe the last trade passed on
    (``last_id`` < 0 and ``last_ts`` < 0 when there is none yet); ``since_ns``
    is where to start when there is no last trade (the warm-up's interval open).
    """

    last_id: int = -1
    last_ts: int = -1
    last_price: float | None = None
    since_ns: int | None = None
    last_side: Side = Side.UNKNOWN


class RestClient(Protocol):
    """What the manager needs of a venue's REST client besides its history calls."""

    limiter: Any  # a :class:`~bot.data.rest.limits.RateLimiter`

    async def close(self) -> None:
        ...


class TradeFetcher(Protocol):
    """A venue's REST history of trades, as gap recovery reads it."""

    sequenced: bool  # trade ids are consecutive per symbol (gap = id jump)
    tick_rule: bool  # sides are inferred by the tick rule (stocks), so order matters

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        """Trades after ``after`` up to ``until`` (exclusive) or, without it, up to now.

        For a warm-up (``after.since_ns`` and no last trade) trades before
        ``since_ns`` may come too: they only give the tick rule its start.
        """
        ...


class TradeHistory(TradeFetcher, Protocol):
    """A venue's REST history of trades and bars (recovery and warm-up)."""

    rest: RestClient

    async def first_trade_id(self, symbol: str, start_ns: int) -> int | None:
        """The id of the first trade at or after ``start_ns`` (None where ids are not known)."""
        ...

    async def bars(self, symbol: str, timeframe: str, limit: int, end_ns: int) -> list[Bar]:
        """The last ``limit`` bars closed at or before ``end_ns``, oldest first."""
        ...


class VenueHistory:
    """Base of the venue adapters: the REST client and the facts recovery reads."""

    def __init__(self, rest: Any, facts: VenueFacts) -> None:
        self.rest = rest
        self.sequenced = facts.sequenced
        self.tick_rule = facts.sides_inferred
