"""Gap recovery: no trade lost between the stream and the bars.

``GapRecovery`` stands between the venue connections and the
:class:`~bot.data.pipeline.TickPipeline`. Per symbol it keeps a cursor (the
last trade passed on) and finds gaps two ways:

* **sequence**: Binance trade ids (and aggTrade ids) are consecutive per
  symbol, so a jump is a gap whatever caused it (reconnect, rollover, a frame
  lost in between);
* **window**: Alpaca has no sequence, so every reconnect opens a gap from the
  last trade received before it to the moment the stream is back.

A gap is filled from REST before the bars it touches complete: the symbol is
held (the clock does not complete its bars), live ticks wait in a buffer, the
missing trades are fetched and passed on in order, then the buffer follows
(duplicates are refused by the aggregator's trade-id check, so no trade is
delivered twice as a TICK). Bars that received REST trades are flagged
BACKFILLED. What REST cannot give (older than its history, endpoint refused,
a ban, a timeout) is flagged GAP on the bars of that span and reported; it is
never hidden.

Every tick, live or fetched, passes the pipeline's gate first. A refused tick
still moves the sequence cursor (in its place among the buffered ticks while a
fill runs): its id was the exchange's, so the next trade is no gap, and it
never causes a fetch.

Each span is fetched once. When a fill ends, the cursor is past the live tick
that ended the gap whatever the fill brought: what is still missing is reported
as a gap, never fetched again. A fill has a timeout; while it runs, at most
``max_buffered`` live ticks of its symbol wait: one more ends the fill, which
reports its span as a gap and lets the buffer through.

The warm-up at start uses the same path: the cursor is placed at the open of
the current interval and the "gap" up to the live stream is filled, within the
warm-up's own deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bot.data.gate import valid_trade_id
from bot.data.models import BarFlag, Tick
from bot.data.pipeline import TickPipeline
from bot.data.supervision import Supervisor
from bot.data.throttle import LogThrottle
from bot.data.venues.history import TradeFetcher, TradePosition
from bot.data.venues.tickrule import TickRule

logger = logging.getLogger(__name__)
_log_throttle = LogThrottle(logger)

MAX_BUFFERED = 100_000  # live ticks one symbol may buffer while its gap is filled
# How long a window fill (a venue without trade sequence) waits for the stream's first trade
# after its fetch: that trade, not the venue's clock as estimated, is where the window ends.
STREAM_WAIT_S = 1.0


@dataclass
class GapReport:
    """A span of trades that could not be recovered (its bars carry GAP).

    The span is ordered whatever the evidence: times that disagree (a clock
    behind the venue's, a venue answer out of order) widen it, never reverse it.
    """

    venue: str
    symbol: str
    start_ns: int
    end_ns: int
    cause: str
    missing_ids: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.start_ns > self.end_ns:
            self.start_ns, self.end_ns = self.end_ns, self.start_ns

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "symbol": self.symbol, "start_ns": self.start_ns,
                "end_ns": self.end_ns, "cause": self.cause,
                "missing_ids": list(self.missing_ids) if self.missing_ids else None}


@dataclass
class RecoveryCounters:
    gaps_found: int = 0
    gaps_filled: int = 0
    gaps_unfilled: int = 0
    trades_backfilled: int = 0
    backfill_latency_ns: deque[int] = field(default_factory=lambda: deque(maxlen=1000))


class _Cursor:
    __slots__ = ("buffer", "connected", "fetcher", "filling", "live", "overflow", "position",
                 "refill", "symbol", "task", "tick_rule", "timeout", "venue")

    def __init__(self, venue: str, symbol: str, fetcher: TradeFetcher | None) -> None:
        self.venue = venue
        self.symbol = symbol
        self.fetcher = fetcher
        self.position = TradePosition()
        self.filling = False
        self.connected = True
        self.refill = False  # reconnected while a fill ran: the new window needs one too
        self.tick_rule = TickRule() if fetcher is not None and fetcher.tick_rule else None
        # Live ticks in arrival order while a fill runs; False marks a tick the gate refused
        # or held (only its id counts: it moves the cursor in its place).
        self.buffer: list[tuple[Tick, bool]] = []
        self.live = asyncio.Event()  # set when an admitted live tick is buffered
        self.task: asyncio.Task[None] | None = None  # the fill running, if any
        self.timeout: float | None = None  # the next fill's own timeout (a warm-up's deadline)
        self.overflow = False  # the buffer passed its bound: the running fill gives up


class GapRecovery:
    """Detects gaps per symbol and fills them from REST before their bars complete.

    ``fetchers`` maps a venue to its REST trade history; a venue without one
    passes ticks straight through (its gaps are then only visible as GAP-free
    but short bars, which is why every supported venue has one). ``on_gap`` is
    told about every span that could not be recovered.
    """

    def __init__(self, pipeline: TickPipeline, fetchers: dict[str, TradeFetcher], *,
                 clock: Callable[[], int] = time.time_ns,
                 on_gap: Callable[[GapReport], None] | None = None,
                 concurrency: int = 4, fetch_timeout: float = 60.0,
                 max_buffered: int = MAX_BUFFERED, supervisor: Supervisor | None = None) -> None:
        """``supervisor`` runs the fills (a fill that fails is logged, counted and shown
        in health there); its own one when not given."""
        self.pipeline = pipeline
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        self._fast_process = pipeline.fast_process
        self.fetchers = fetchers
        self.counters = RecoveryCounters()
        self._clock = clock
        self._on_gap = on_gap
        self._cursors: dict[str, _Cursor] = {}
        self._limit = asyncio.Semaphore(concurrency)
        self._fetch_timeout = fetch_timeout
        self._max_buffered = max_buffered
        self._tasks: set[asyncio.Task[None]] = set()

    # -- symbols -------------------------------------------------------------------
    def track(self, venue: str, symbol: str, *, since_ns: int | None = None,
              after: Tick | None = None) -> None:
        """Follow ``symbol``; with ``since_ns`` its trades from then on are filled from REST
        first (warm-up), live ticks waiting meanwhile. ``after``: the last trade
        already known (stored before a restart); the fill continues after it."""
        cur = self._cursors.get(symbol)
        if cur is None:
            cur = self._cursors[symbol] = _Cursor(venue, symbol, self.fetchers.get(venue))
        if after is not None:
            cur.position = TradePosition(after.trade_id, after.timestamp, after.price,
                                    last_side=after.side)
        if since_ns is not None and cur.fetcher is not None:
            cur.position.since_ns = since_ns
            cur.filling = True
            self.pipeline.aggregator.hold(symbol)

    def forget(self, symbol: str) -> None:
        self._cursors.pop(symbol, None)

    def begin(self, symbol: str, timeout: float | None = None) -> None:
        """Start the warm-up fill registered by :meth:`track` (``since_ns``); nothing when
        none waits to start (a fill already runs, or none was registered).

        ``timeout``: how long the fill may take (default: the fills' timeout).
        """
        cur = self._cursors.get(symbol)
        if cur is not None and cur.filling and cur.task is None:
            cur.timeout = timeout
            self._spawn(cur)

    def disconnected(self, symbols: Iterable[str]) -> None:
        """The stream of these symbols is down: hold their bars until it is back and filled."""
        for symbol in symbols:
            cur = self._cursors.get(symbol)
            if cur is not None:
                cur.connected = False
            self.pipeline.aggregator.hold(symbol)

    def reconnected(self, symbols: Iterable[str]) -> None:
        """The stream is back: fill what was missed while it was down, then release."""
        for symbol in symbols:
            cur = self._cursors.get(symbol)
            if cur is None:
                self.pipeline.aggregator.release(symbol)
                continue
            cur.connected = True
            if cur.filling:
                cur.refill = True  # the running fill ends before this window; fill it after
                continue
            has_position = cur.position.last_ts >= 0 or cur.position.since_ns is not None
            if cur.fetcher is not None and has_position:
                self.counters.gaps_found += 1
                cur.filling = True
                self._spawn(cur)
            else:
                self.pipeline.aggregator.release(symbol)

    # -- the hot path ----------------------------------------------------------------
    def on_tick(self, tick: Tick) -> None:
        """Gate a live tick, then pass it on or buffer it while its symbol's gap is filled.

        Only tracked symbols pass: ticks of a symbol just removed, still in
        flight, would otherwise bring its state back."""
        cur = self._cursors.get(tick.symbol)
        if cur is None:
            return  # not (or no longer) subscribed: in flight before the unsubscribe took effect
        pos = cur.position
        # The common case: the next trade of a symbol with no fill running, which the
        # pipeline's fast path takes whole (else it changes nothing and all goes below).
        if (tick.trade_id == pos.last_id + 1 and not cur.filling and cur.tick_rule is None
                and self._fast_process(tick)):
            pos.last_id = tick.trade_id  # as _pass_on moves the cursor
            if tick.timestamp >= pos.last_ts:
                pos.last_ts = tick.timestamp
                pos.last_price = tick.price
                pos.last_side = tick.side
            return
        gate = self.pipeline.gate
        if not gate.admit(tick):  # refused, or held as a suspect
            self._seen(tick)
            return
        if gate.released:
            for suspect in gate.take_released():
                self._sequence(suspect)
        self._sequence_on(cur, tick)

    def _sequence(self, tick: Tick) -> None:
        """An admitted live tick: buffered during a fill, else checked for a gap and passed on."""
        cur = self._cursors.get(tick.symbol)
        if cur is not None:
            self._sequence_on(cur, tick)

    def _sequence_on(self, cur: _Cursor, tick: Tick) -> None:
        if cur.filling:
            self._buffer(cur, tick, True)
            return
        pos = cur.position
        if (pos.last_id >= 0 and tick.trade_id > pos.last_id + 1 and cur.fetcher is not None
                and cur.fetcher.sequenced):
            self.counters.gaps_found += 1
            cur.filling = True
            cur.buffer.append((tick, True))
            self.pipeline.aggregator.hold(tick.symbol)
            self._spawn(cur)
            return
        self._pass_on(cur, tick)

    def _seen(self, tick: Tick) -> None:
        """A tick the gate refused or held: its id moves the cursor, in its place in order.

        Only when it is the next id: after a jump, the cursor stays, so the next
        admitted tick finds the gap before it (and its fill covers this id too).
        """
        cur = self._cursors.get(tick.symbol)
        if cur is None or not valid_trade_id(tick.trade_id):
            return
        if cur.filling:
            self._buffer(cur, tick, False)
        elif cur.position.last_id < 0 or tick.trade_id == cur.position.last_id + 1:
            cur.position.last_id = tick.trade_id

    def _buffer(self, cur: _Cursor, tick: Tick, admitted: bool) -> None:
        cur.buffer.append((tick, admitted))
        if admitted:
            cur.live.set()
        if len(cur.buffer) > self._max_buffered and not cur.overflow:
            cur.overflow = True
            if cur.task is not None:
                cur.task.cancel()  # the fill reports its span as a gap and drains the buffer

    def _pass_on(self, cur: _Cursor, tick: Tick) -> bool:
        """Build an admitted tick; the cursor moves past its id whatever the aggregator says."""
        rule = cur.tick_rule
        if rule is not None:
            tick = self._classified(rule, tick)
        built = self.pipeline.build(tick)
        pos = cur.position
        if tick.trade_id > pos.last_id:
            pos.last_id = tick.trade_id
        if not built:
            return False
        if tick.timestamp >= pos.last_ts:
            pos.last_ts = tick.timestamp
            pos.last_price = tick.price
            pos.last_side = tick.side
        return True

    def _classified(self, rule: TickRule, tick: Tick) -> Tick:
        """The tick with the tick-rule side its place in the final sequence gives.

        The stream classified live ticks against the last trade *it* saw, which
        after a gap is not the trade before them; here every trade passes in
        its final order, recovered ones included. A duplicate (refused next)
        does not move the rule.
        """
        if self.pipeline.aggregator.is_duplicate(tick):
            return tick
        side = rule.follow(tick.symbol, tick.price, tick.side)
        return tick if side is tick.side else msgspec.structs.replace(tick, side=side)

    # -- filling ---------------------------------------------------------------------
    def _spawn(self, cur: _Cursor) -> None:
        # The live tick that ends the gap (a gap is only ever opened by an admitted one).
        until = _first_live(cur)
        if cur.timeout is not None:
            timeout, late = cur.timeout, "the warm-up did not finish by its deadline"
        else:
            timeout = self._fetch_timeout
            late = f"the fill did not finish within {timeout:g} s"
        cur.timeout = None
        cur.overflow = False
        task = self.supervisor.job(f"backfill-{cur.symbol}",
                                   self._fill(cur, until, timeout, late))
        cur.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, cur: _Cursor, until: Tick | None, timeout: float,
                    late: str) -> None:
        """Fetch the gap within ``timeout`` seconds (``late`` says it did not), then apply."""
        started = time.monotonic_ns()
        fetcher = cur.fetcher
        assert fetcher is not None
        before = dataclasses.replace(cur.position)
        trades: list[Tick] = []
        error: str | None = None
        try:
            async with asyncio.timeout(timeout):
                now = self._venue_now(cur)
                async with self._limit:
                    trades = await fetcher.fetch(cur.symbol, before, until, now)
                if until is None and not fetcher.sequenced:
                    until, more = await self._reach_stream(cur, before, trades, now)
                    trades += more
        except asyncio.CancelledError:
            if not cur.overflow:
                raise
            error = (f"more than {self._max_buffered} live ticks arrived while the fill ran; "
                     "the fill was given up")
        except TimeoutError:
            error = late
        except Exception as exc:  # any failure is reported as a gap, never hidden
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            _log_throttle.log(f"backfill {cur.symbol}", logging.WARNING,
                              "backfill of %s failed: %s", cur.symbol, error)
        cur.task = None
        if self._cursors.get(cur.symbol) is not cur:
            return  # unsubscribed meanwhile
        try:
            self._apply(cur, before, until, trades, error)
        except Exception as exc:
            # A defect applying the fill must neither hide the span nor hold the symbol:
            # the span is reported as a gap, the symbol goes on, the supervisor shows it.
            self._apply(cur, before, until, [],
                        f"the fill could not be applied ({type(exc).__name__}: {exc})")
            raise
        finally:
            self.counters.backfill_latency_ns.append(time.monotonic_ns() - started)
            self._drain(cur)

    async def _reach_stream(self, cur: _Cursor, before: TradePosition, trades: list[Tick],
                            fetched_to: int) -> tuple[Tick | None, list[Tick]]:
        """Where a window fill without a live trade to stop at ends, and what more it reads.

        The window was read up to ``fetched_to``, the venue's now as estimated, which
        trails a venue clock running faster than ours (a simulator). The stream's
        first trade once it is back (awaited up to :data:`STREAM_WAIT_S`) is where the
        window really ends: the trades between are read too, from the last one
        fetched. Returns that trade (None when none came) and the trades read up to it.
        """
        live = _first_live(cur)
        if live is None:
            cur.live.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STREAM_WAIT_S):
                    await cur.live.wait()
            live = _first_live(cur)
        if live is None or live.timestamp <= fetched_to:
            return None, []
        last = trades[-1] if trades else None
        after = before if last is None else TradePosition(
            last.trade_id, last.timestamp, last.price, last_side=last.side)
        assert cur.fetcher is not None
        async with self._limit:
            return live, await cur.fetcher.fetch(cur.symbol, after, live, self._venue_now(cur))

    def _apply(self, cur: _Cursor, before: TradePosition, until: Tick | None,
               trades: list[Tick], error: str | None) -> None:
        """Pass the fetched trades on, flag what they built, and report what is missing."""
        agg = self.pipeline.aggregator
        if until is not None:
            trades = [t for t in trades if t.timestamp <= until.timestamp]
        if before.last_ts < 0 and before.since_ns is not None:
            trades = self._context_only(cur, trades, before.since_ns)
        hole = self._hole(cur, before, until, trades, error)
        # Marks go first: passing the trades on may already complete their bars.
        if trades:
            times = [t.timestamp for t in trades]
            agg.mark(cur.venue, cur.symbol, min(times), max(times), BarFlag.BACKFILLED)
        if hole is not None:
            agg.mark(cur.venue, cur.symbol, hole.start_ns, hole.end_ns, BarFlag.GAP)
        late_before = agg.counters.late
        for tick in trades:
            admitted = self.pipeline.gate.passing(tick)
            if not admitted and valid_trade_id(tick.trade_id) \
                    and tick.trade_id > cur.position.last_id:
                cur.position.last_id = tick.trade_id  # fetched and refused: covered, not missing
            for t in admitted:
                if t is not tick:
                    self._sequence(t)  # a held live suspect this trade confirmed
                elif self._pass_on(cur, t):
                    self.counters.trades_backfilled += 1
        late = agg.counters.late - late_before
        if late and hole is None:
            # Recovered, but their bars had completed already (the loss was noticed
            # after the grace): those bars are final and short, so say so.
            hole = GapReport(cur.venue, cur.symbol, trades[0].timestamp, trades[-1].timestamp,
                             f"{late} recovered trades arrived after their bars completed")
        if (hole is None and until is not None and before.last_id >= 0 and cur.fetcher is not None
                and cur.fetcher.sequenced and cur.position.last_id < until.trade_id - 1):
            # Whatever the answer looked like, the span is not covered: never ask again.
            hole = GapReport(cur.venue, cur.symbol, max(before.last_ts, 0), until.timestamp,
                             "the fill did not reach the stream",
                             (cur.position.last_id + 1, until.trade_id - 1))
            agg.mark(cur.venue, cur.symbol, hole.start_ns, hole.end_ns, BarFlag.GAP)
        if hole is None:
            self.counters.gaps_filled += 1
            return
        self.counters.gaps_unfilled += 1
        if until is not None and until.trade_id - 1 > cur.position.last_id:
            cur.position.last_id = until.trade_id - 1  # accept the hole, do not chase it again
        if self._on_gap is not None:
            self._on_gap(hole)

    def _context_only(self, cur: _Cursor, trades: list[Tick], since_ns: int) -> list[Tick]:
        """Drop the trades a warm-up fetch returned from before ``since_ns``.

        A venue whose sides come from the tick rule returns a few for context:
        the last of them starts the rule, so the first trade of the window gets
        the side an uninterrupted session would give it.
        """
        context = [t for t in trades if t.timestamp < since_ns]
        if context and cur.tick_rule is not None:
            last = context[-1]
            cur.tick_rule.seed(last.symbol, last.price, last.side)
        return [t for t in trades if t.timestamp >= since_ns] if context else trades

    def _venue_now(self, cur: _Cursor) -> int:
        """Now on ``cur``'s venue clock: what a fill without a live tick to stop at reads
        up to. Trade times are the venue's; the local clock may be behind it."""
        return self.pipeline.gate.venue_time_ns(cur.venue, self._clock())

    def _hole(self, cur: _Cursor, before: TradePosition, until: Tick | None,
              trades: list[Tick], error: str | None) -> GapReport | None:
        """The span still missing after the fetch, or None when it was filled."""
        fetcher = cur.fetcher
        assert fetcher is not None
        start = before.last_ts if before.last_ts >= 0 else (before.since_ns or 0)
        end_of_gap = until.timestamp if until is not None else self._venue_now(cur)
        if error is not None:
            ids = ((before.last_id + 1, until.trade_id - 1)
                   if fetcher.sequenced and until is not None and before.last_id >= 0 else None)
            return GapReport(cur.venue, cur.symbol, start, end_of_gap, error, ids)
        if not fetcher.sequenced or before.last_id < 0:
            return None
        expected = before.last_id + 1
        got = sorted(t.trade_id for t in trades)
        if got and got[0] > expected:
            return GapReport(cur.venue, cur.symbol, start, trades[0].timestamp,
                             "older than the venue's REST history", (expected, got[0] - 1))
        if until is not None and (got[-1] if got else before.last_id) < until.trade_id - 1:
            last = got[-1] if got else before.last_id
            return GapReport(cur.venue, cur.symbol, start, until.timestamp,
                             "the venue's REST history ends before the stream resumed",
                             (last + 1, until.trade_id - 1))
        return None

    def _drain(self, cur: _Cursor) -> None:
        """Pass the buffered live ticks on; a new gap among them starts a new fill."""
        buffered, cur.buffer = cur.buffer, []
        cur.filling = False
        cur.position.since_ns = None
        for i, (tick, admitted) in enumerate(buffered):
            if admitted:
                self._sequence(tick)
            else:
                self._seen(tick)
            if cur.filling:
                cur.buffer.extend(buffered[i + 1:])
                return
        if cur.refill and cur.connected:
            cur.refill = False
            self.counters.gaps_found += 1
            cur.filling = True
            self._spawn(cur)
        elif cur.connected:
            self.pipeline.aggregator.release(cur.symbol)

    async def stop(self) -> None:
        """Cancel running fills and end the session.

        Each symbol keeps only its position, so the next start fills from its
        last trade; the ticks its fill buffered are dropped, and nothing stays
        filling or held (a cancelled fill never drains).
        """
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for symbol, cur in self._cursors.items():
            self._cursors[symbol] = fresh = _Cursor(cur.venue, symbol, cur.fetcher)
            fresh.position = dataclasses.replace(cur.position, since_ns=None)
            fresh.tick_rule = cur.tick_rule  # the last price stays the best reference
            self.pipeline.aggregator.release(symbol)

    def filling_symbols(self) -> list[str]:
        """Symbols whose live ticks wait for a fill right now."""
        return sorted(s for s, cur in self._cursors.items() if cur.filling)


def _first_live(cur: _Cursor) -> Tick | None:
    """The first live tick the gate admitted among those ``cur``'s fill buffered."""
    return next((t for t, admitted in cur.buffer if admitted), None)
