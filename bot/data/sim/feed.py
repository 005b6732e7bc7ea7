"""The simulator's matching engine stand-in: runs every trade source on market time.

:class:`MarketFeed` pulls the batches each source has executed up to the
current market time, records them in the symbol's :class:`TradeLog` (the
exchange's truth, read by REST and tests), and hands them to the listeners
(the open stream connections). One task drives it; it sleeps until the next
trade is due, so a quiet market costs nothing and a fast clock stays exact.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import msgspec

from bot.data.sim.clock import MarketClock
from bot.data.sim.faults import Faults
from bot.data.sim.trades import AggTrade, SimTrade, TradeLog

# Longest wall-clock nap between two looks at the clock (picks up an injected clock's jumps).
MAX_IDLE_SECONDS = 0.05

Listener = Callable[[str, list[SimTrade], list[AggTrade]], None]


class TradeSource(Protocol):
    def next_time_ns(self) -> int | None: ...

    def take_until(self, until_ns: int) -> list[list[SimTrade]]: ...


class MarketFeed:
    """Trade sources per ``(venue, symbol)``, their logs, and the listeners of new trades."""

    def __init__(self, clock: MarketClock, retention: int, faults: Faults | None = None) -> None:
        self.clock = clock
        self.retention = retention
        self.faults = faults or Faults()
        self.sources: dict[tuple[str, str], TradeSource] = {}
        self.logs: dict[tuple[str, str], TradeLog] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add_source(self, venue: str, symbol: str, source: TradeSource) -> None:
        self.sources[(venue, symbol)] = source
        self.logs[(venue, symbol)] = TradeLog(self.retention)

    def log(self, venue: str, symbol: str) -> TradeLog | None:
        return self.logs.get((venue, symbol))

    def subscribe(self, venue: str, listener: Listener) -> None:
        self._listeners.setdefault(venue, []).append(listener)

    def unsubscribe(self, venue: str, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.get(venue, []).remove(listener)

    def pump(self) -> int:
        """Execute and publish every trade due by now; return how many there were."""
        now = self.clock.now()
        count = 0
        for (venue, symbol), source in self.sources.items():
            log = self.logs[(venue, symbol)]
            for batch in source.take_until(now):
                batch = self._with_refused(venue, symbol, batch)
                aggs = log.record(batch)
                count += len(batch)
                for listener in list(self._listeners.get(venue, ())):
                    listener(symbol, batch, aggs)
        return count

    def _with_refused(self, venue: str, symbol: str, batch: list[SimTrade]) -> list[SimTrade]:
        """The batch with the trades the faults turn into refused (price 0, quantity 0) records."""
        if not self.faults.refused_pending:
            return batch
        return [msgspec.structs.replace(t, price_e8=0, qty_e8=0)
                if self.faults.take_refused(venue, symbol) else t for t in batch]

    def _next_due_ns(self) -> int | None:
        times = [t for s in self.sources.values() if (t := s.next_time_ns()) is not None]
        return min(times) if times else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sim-market-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def nudge(self) -> None:
        """Look at the clock now (after a test moved an injected clock)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self.pump()
            due = self._next_due_ns()
            delay = MAX_IDLE_SECONDS
            if due is not None:
                delay = min(delay, self.clock.wall_seconds(due - self.clock.now()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.001))
