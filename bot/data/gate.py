"""``TickGate``: the one check every tick passes before it can touch a bar.

Live streams, REST backfill and warm-up, store replay and the NATS remote
source all hand their ticks to :meth:`TickGate.admit` (through
:class:`~bot.data.pipeline.TickPipeline`), and nothing behind it validates
again. A tick passes when:

* its price and quantity are finite and greater than zero;
* its trade id is an ``int`` in ``[0, 2**63 - 1]``;
* its exchange time is an ``int`` of nanoseconds within int64 and within a
  plausible window of the *venue's* clock (below);
* the venue's own rule, when it has one (:data:`VenueRule`), does not refuse it.

A refused tick is counted by reason (:attr:`TickGate.refused`), logged at most
once per period per reason with a sample, and goes no further: it builds no
bar. Its id still counts as seen (recovery moves its sequence cursor past it),
so the trade after it is not taken for a gap.

The venue clock. Exchanges (and the project's simulator, which may run its
clock far ahead of the machine's) do not share our clock, so "plausible" is
judged against an estimate of each venue's clock: ``anchor_exchange +
(receive_time - anchor_local)``, anchored at the venue's own clock when it
told it (:meth:`TickGate.observe_venue_clock`: Binance's ``serverTime``), else
at its first tick on the local clock, and moved forward by every accepted tick
stamped ahead of it. The same estimate measures how long trades take to reach
us (:meth:`TickGate.venue_delay_ns`): on the venue's clock, never ours, so a
venue (or simulator) whose clock runs ahead never shows a negative latency. A
tick within ``[reference - past_window, reference + future_window]`` passes.
One outside is a *suspect*: it is held (one per venue) until the venue's next
tick decides. If that tick is outside the window on the same side and near
the suspect (no earlier than ``future_window`` before it, no later than
``future_window`` plus :data:`MAX_CLOCK_RATE` times the local time elapsed
since it: a simulator may run its clock hundreds of times faster), the venue's
clock really jumped (a simulator after a silence, a long outage): the clock is
re-anchored at the later of the two and both pass, in order. Otherwise the
suspect is refused (``time_out_of_range``) and the new tick is judged on its
own. A suspect still undecided after ``suspect_timeout_s`` of
local time is refused by :meth:`TickGate.expire`, which the clock loop calls.

So one tick alone can never move a venue's clock or reach the aggregator from
outside the window: bars built from one tick span at most ``past_window +
future_window``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from enum import StrEnum

from bot.data.models import Tick
from bot.data.throttle import LogThrottle
from bot.data.timeframes import NS_PER_SECOND

logger = logging.getLogger(__name__)

MAX_INT64 = (1 << 63) - 1
_INF = math.inf
DEFAULT_FUTURE_WINDOW_NS = 60 * NS_PER_SECOND
DEFAULT_PAST_WINDOW_NS = 24 * 3600 * NS_PER_SECOND
SUSPECT_TIMEOUT_S = 3.0
MAX_CLOCK_RATE = 1000  # a venue clock runs at most this many times faster than ours

VenueRule = Callable[[Tick], "str | None"]
"""A venue's own rule: the reason it refuses ``tick``, or None when the tick may pass.

Example: Binance USDⓈ-M trade records whose type is not ``MARKET`` carry price
0 and are not counted by its klines; a futures venue would refuse them here.
Binance spot and Alpaca have no such rule.
"""


class Refusal(StrEnum):
    """Why the gate refused a tick (the keys of ``rejected_by_reason`` in the metrics)."""

    PRICE = "price"
    QUANTITY = "quantity"
    TRADE_ID = "trade_id"
    TIMESTAMP = "timestamp"
    TIME_OUT_OF_RANGE = "time_out_of_range"


class _VenueClock:
    """One venue's clock as estimated from its ticks, and the suspect it holds.

    The estimate is kept as ``offset``: anchor_exchange - anchor_local, so the
    venue's time at local time ``t`` is ``t + offset``.
    """

    __slots__ = ("ahead", "held_at", "offset", "suspect")

    def __init__(self) -> None:
        self.offset = 0  # anchored on the local clock until the venue's ticks say otherwise
        self.suspect: Tick | None = None
        self.ahead = False  # the suspect is ahead of the clock (else behind it)
        self.held_at = 0.0  # monotonic seconds when the suspect was held

    def ahead_of(self, tick: Tick) -> int:
        """How far ``tick`` is ahead of this clock (negative: behind it)."""
        return tick.timestamp - tick.receive_timestamp - self.offset


def valid_trade_id(trade_id: object) -> bool:
    """True for an ``int`` trade id in ``[0, 2**63 - 1]`` (the range the store can keep)."""
    return type(trade_id) is int and 0 <= trade_id <= MAX_INT64


class TickGate:
    """Admits ticks that pass every rule; counts and logs the rest by reason.

    ``past_window_ns`` must cover the oldest trade a source legitimately
    delivers (store resume, REST backfill after an outage, a warm-up window);
    ``future_window_ns`` how far ahead of the estimated venue clock a trade may
    be (clock skew, jitter, a fast simulator between two ticks).
    ``venue_rules`` maps a venue name to its own rule.
    """

    def __init__(self, *, past_window_ns: int = DEFAULT_PAST_WINDOW_NS,
                 future_window_ns: int = DEFAULT_FUTURE_WINDOW_NS,
                 venue_rules: Mapping[str, VenueRule] | None = None,
                 suspect_timeout_s: float = SUSPECT_TIMEOUT_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if past_window_ns <= 0 or future_window_ns <= 0:
            raise ValueError("the gate's time windows must be positive")
        self.past_window_ns = past_window_ns
        self.future_window_ns = future_window_ns
        self.venue_rules = dict(venue_rules or {})
        self.suspect_timeout_s = suspect_timeout_s
        self.refused: dict[str, int] = {}
        # Suspects the last admitted tick confirmed: they go on first (see admit).
        self.released: list[Tick] = []
        self._clocks: dict[str, _VenueClock] = {}
        self._monotonic = monotonic
        self._log = LogThrottle(logger)

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def passing(self, tick: Tick) -> tuple[Tick, ...]:
        """The ticks that may go on now, in order: ``()`` when ``tick`` is refused or
        held, ``(suspect, tick)`` when it confirms a held suspect, else ``(tick,)``."""
        if not self.admit(tick):
            return ()
        return (*self.take_released(), tick) if self.released else (tick,)

    def admit(self, tick: Tick) -> bool:
        """True when ``tick`` may go on now; False when it is refused or held as a suspect.

        The hot path. When it returns True and :attr:`released` is not empty,
        ``tick`` confirmed a held suspect: pass :meth:`take_released` on first.
        """
        price = tick.price
        qty = tick.volume
        tid = tick.trade_id
        ts = tick.timestamp
        if not (0.0 < price < _INF and 0.0 < qty < _INF and type(tid) is int
                and 0 <= tid <= MAX_INT64 and type(ts) is int and 0 <= ts <= MAX_INT64):
            return self._refuse(tick, _invalid_field(tick))
        if self.venue_rules:
            rule = self.venue_rules.get(tick.venue)
            reason = rule(tick) if rule is not None else None
            if reason is not None:
                return self._refuse(tick, reason)
        clock = self._clocks.get(tick.venue)
        if clock is None:
            clock = self._clocks[tick.venue] = _VenueClock()
        if clock.suspect is not None:
            return self._decide(clock, tick)
        offset = ts - tick.receive_timestamp - clock.offset
        if offset > 0:
            if offset > self.future_window_ns:
                return self._hold(clock, tick, ahead=True)
            clock.offset = ts - tick.receive_timestamp  # the venue's clock is at least here
        elif -offset > self.past_window_ns:
            return self._hold(clock, tick, ahead=False)
        return True

    def observe_venue_clock(self, venue: str, venue_ns: int, local_ns: int) -> None:
        """The venue's clock read at least ``venue_ns`` when ``local_ns`` was the local time.

        Its own answer (Binance's ``serverTime``, taken with the local time the
        answer arrived, so the estimate stays a lower bound as the ticks' is):
        the first anchors the venue's clock, later ones only move it forward.
        """
        offset = venue_ns - local_ns
        clock = self._clocks.get(venue)
        if clock is None:
            clock = self._clocks[venue] = _VenueClock()
            clock.offset = offset
        elif offset > clock.offset:
            clock.offset = offset

    def venue_time_ns(self, venue: str, local_ns: int) -> int:
        """The venue's clock at local time ``local_ns`` as estimated (the local clock
        itself while the venue has told nothing)."""
        clock = self._clocks.get(venue)
        return local_ns + (clock.offset if clock is not None else 0)

    def venue_clock(self, venue: str) -> _VenueClock:
        """``venue``'s clock estimate (made on first use): the pipeline's fast path
        applies :meth:`admit`'s common case to it directly."""
        clock = self._clocks.get(venue)
        if clock is None:
            clock = self._clocks[venue] = _VenueClock()
        return clock

    def venue_delay_ns(self, tick: Tick) -> int:
        """How long after its exchange time ``tick`` was received, on the venue's clock.

        The venue's time at the tick's receipt is the estimate (local receive
        time plus the venue's offset) or the tick's own time when that is later
        (a venue's clock is at least at its newest trade), so it is never below 0.
        """
        clock = self._clocks.get(tick.venue)
        offset = clock.offset if clock is not None else 0
        return max(0, tick.receive_timestamp + offset - tick.timestamp)

    def take_released(self) -> list[Tick]:
        """The suspects confirmed by the tick just admitted, oldest first (and forget them)."""
        out, self.released = self.released, []
        return out

    def expire(self) -> list[Tick]:
        """Refuse the suspects held longer than ``suspect_timeout_s``; returns them."""
        now = self._monotonic()
        out = []
        for clock in self._clocks.values():
            suspect = clock.suspect
            if suspect is not None and now - clock.held_at >= self.suspect_timeout_s:
                clock.suspect = None
                self._refuse(suspect, Refusal.TIME_OUT_OF_RANGE)
                out.append(suspect)
        return out

    def forget(self, symbol: str) -> None:
        """Drop a suspect of ``symbol`` (unsubscribed): it must not come back later."""
        for clock in self._clocks.values():
            if clock.suspect is not None and clock.suspect.symbol == symbol:
                clock.suspect = None

    def _hold(self, clock: _VenueClock, tick: Tick, *, ahead: bool) -> bool:
        clock.suspect = tick
        clock.ahead = ahead
        clock.held_at = self._monotonic()
        return False

    def _decide(self, clock: _VenueClock, tick: Tick) -> bool:
        """``tick`` confirms or refutes the held suspect; then it is judged itself."""
        suspect = clock.suspect
        assert suspect is not None
        clock.suspect = None
        offset = clock.ahead_of(tick)
        same_side = (offset > self.future_window_ns if clock.ahead
                     else -offset > self.past_window_ns)
        elapsed = max(0, tick.receive_timestamp - suspect.receive_timestamp)
        step = tick.timestamp - suspect.timestamp
        near = -self.future_window_ns <= step <= self.future_window_ns + MAX_CLOCK_RATE * elapsed
        if same_side and near:
            # The venue's clock really moved: follow it from the later of the two.
            later = tick if step >= 0 else suspect
            clock.offset = later.timestamp - later.receive_timestamp
            self.released.append(suspect)
            return True
        self._refuse(suspect, Refusal.TIME_OUT_OF_RANGE)
        return self.admit(tick)

    def _refuse(self, tick: Tick, reason: str) -> bool:
        """Count and log a refusal (one line per reason per period, with a sample)."""
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self._log.log(f"refused {reason}", logging.WARNING,
                      "refused a %s tick of %s (%s): price=%r qty=%r trade_id=%r time=%r",
                      tick.venue, tick.symbol, reason, tick.price, tick.volume,
                      tick.trade_id, tick.timestamp)
        return False


def _invalid_field(tick: Tick) -> Refusal:
    """Which of the rules :meth:`TickGate.admit` checks at once ``tick`` breaks."""
    if not 0.0 < tick.price < _INF:
        return Refusal.PRICE
    if not 0.0 < tick.volume < _INF:
        return Refusal.QUANTITY
    if not valid_trade_id(tick.trade_id):
        return Refusal.TRADE_ID
    return Refusal.TIMESTAMP
