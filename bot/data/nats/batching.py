"""``TickBatcher``: a symbol's ticks cut into batches that every worker cuts alike.

A publisher sends one JetStream message per batch, not per trade. Redundant
workers batch on their own, so where a batch ends must follow from the trades,
never from when they arrived; then two workers holding the same trades send
the same batch, under the same id (:func:`~bot.data.nats.subjects.batch_msg_id`
names a batch by its trades), and JetStream stores it once.

The rule. Each symbol's exchange time is cut into windows of ``window_ns``
(aligned on the epoch; a window divides a second, so no window spans two
bars). A batch holds consecutive ticks of one symbol in one window, in the
order they were passed on. It ends when:

* a tick of the symbol in another window comes (the feed moved on: every
  trade of the window is in, since a worker passes a symbol's trades on in
  order, recovered gaps included);
* it holds ``max_ticks`` (a split by count from the window's start, the same
  on every worker that holds the same trades);
* the symbol completes a bar and the batch's window ends by the bar's end (the
  watermark must follow the bar's trades; :meth:`close_through`), or the
  publisher stops (:meth:`close_all`);
* the worker's clock says the window is over by one more window (:meth:`due`):
  the last trades before a silence must not wait for the next trade. The
  window's end on the local clock is where it was when the batch opened plus
  what was left of the window after its first tick, so a burst of old trades
  (a recovered gap) gets the same time to fill its windows as a live feed.

Only the last two can depend on timing (a bar the clock completed, a silence).
A batch cut short by them holds fewer trades than another worker's whole one,
so its id differs: both are stored, and the consumer skips the trades it
already has.

``window_ns`` 0 sends every trade alone.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from bot.data.models import Tick


class TickBatch:
    """Ticks of one symbol in one window, in the order they were passed on."""

    __slots__ = ("symbol", "ticks", "venue", "window")

    def __init__(self, tick: Tick, window: int) -> None:
        self.venue = tick.venue
        self.symbol = tick.symbol
        self.window = window
        self.ticks = [tick]

    def __repr__(self) -> str:
        ids = [t.trade_id for t in self.ticks]
        return f"TickBatch({self.venue}, {self.symbol}, window {self.window}, ids {ids})"


Emit = Callable[[TickBatch], None]


class TickBatcher:
    """Open batches per symbol; closed ones go to the ``emit`` function each call is given."""

    def __init__(self, window_ns: int, *, max_ticks: int = 1000) -> None:
        if window_ns < 0:
            raise ValueError(f"window_ns={window_ns} must be >= 0 (0: every trade alone)")
        if max_ticks < 1:
            raise ValueError(f"max_ticks={max_ticks} must be >= 1")
        self.window_ns = window_ns
        self.max_ticks = max_ticks if window_ns else 1
        self._open: dict[str, TickBatch] = {}
        self._deadlines: list[tuple[int, int, TickBatch]] = []  # (local ns, order, batch)
        self._order = 0

    @property
    def open_ticks(self) -> int:
        """Ticks waiting in open batches."""
        return sum(len(b.ticks) for b in self._open.values())

    def __bool__(self) -> bool:
        return bool(self._open)

    def add(self, tick: Tick, emit: Emit, now_ns: int) -> None:
        """Put ``tick`` in its symbol's batch; ``emit`` receives every batch that closes.

        ``now_ns``: the local clock (ns), when the tick opens a batch.
        """
        window_ns = self.window_ns
        window = tick.timestamp // window_ns if window_ns else 0
        batch = self._open.get(tick.symbol)
        if batch is not None:
            if batch.window == window:
                batch.ticks.append(tick)
                if len(batch.ticks) >= self.max_ticks:
                    del self._open[tick.symbol]
                    emit(batch)
                return
            del self._open[tick.symbol]
            emit(batch)
        batch = TickBatch(tick, window)
        if self.max_ticks == 1:
            emit(batch)
            return
        self._open[tick.symbol] = batch
        window_end = (window + 1) * window_ns
        deadline = now_ns + (window_end - tick.timestamp) + window_ns
        self._order += 1
        heapq.heappush(self._deadlines, (deadline, self._order, batch))

    def close_through(self, symbol: str, through_ns: int, emit: Emit) -> None:
        """Close ``symbol``'s open batch if its window ends by ``through_ns`` (exclusive), so
        that a watermark there follows it; a batch of a later window stays open."""
        batch = self._open.get(symbol)
        if batch is not None and (batch.window + 1) * self.window_ns <= through_ns:
            del self._open[symbol]
            emit(batch)

    def close_all(self, emit: Emit) -> None:
        for batch in self._open.values():
            emit(batch)
        self._open.clear()
        self._deadlines.clear()

    def due(self, now_ns: int, emit: Emit) -> None:
        """Close the batches whose window ended a window ago by the local clock ``now_ns``."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now_ns:
            batch = heapq.heappop(deadlines)[2]
            if self._open.get(batch.symbol) is batch:
                del self._open[batch.symbol]
                emit(batch)

    def next_deadline(self) -> int | None:
        """Local time (ns) when :meth:`due` may close the next batch; None when none is open."""
        deadlines = self._deadlines
        while deadlines and self._open.get(deadlines[0][2].symbol) is not deadlines[0][2]:
            heapq.heappop(deadlines)  # closed by the feed meanwhile
        return deadlines[0][0] if deadlines else None
