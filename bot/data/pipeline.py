"""``TickPipeline``: the one path every tick takes, whatever its source.

tick -> gate -> aggregator -> tick buffer -> TICK event -> completed bars -> bar
history -> BAR_COMPLETE events. Live connections, REST backfill, replay and the
remote (NATS) source all feed :meth:`TickPipeline.process` (recovery, which must
see a tick's verdict before deciding whether it opens a gap, calls the two halves
itself: :attr:`TickPipeline.gate` then :meth:`TickPipeline.build`), so every tick
is checked once and they cannot disagree on how bars are built.

The fast path. Most ticks are the common case: a valid trade of a symbol
already started, inside its venue's clock window, newer than every trade of its
symbol and inside the one bar it has open. :meth:`TickPipeline.fast_process`
takes those in one frame, with the symbol's state gathered in one object (a
:class:`_Lane`): the gate's decision, the bar update, the tick buffer and the
TICK event, exactly as :meth:`TickGate.admit`, :meth:`BarAggregator.add` and
:meth:`TickPipeline.build` would give them. Anything else (a first tick, an
invalid field, a suspect time or one held, a venue rule, a duplicate, a late
trade, a new interval) is left untouched for the general path. Its bar update
repeats :meth:`BarAggregator.add`'s on purpose (a call per trade is what it
saves); tests/test_fast_path_equality.py holds the two equal, event for event.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from bot.data.aggregation import BarAggregator
from bot.data.bar_check import BarCheck
from bot.data.config import StreamManagerConfig
from bot.data.errors import UnknownSeriesError
from bot.data.events import EventBus, EventType
from bot.data.gate import DEFAULT_FUTURE_WINDOW_NS, MAX_INT64, TickGate
from bot.data.history import BarHistory
from bot.data.models import Bar, Side, Tick
from bot.data.tick_buffer import TickRing
from bot.data.timeframes import NS_PER_MS, NS_PER_SECOND, TIMEFRAME_SECONDS
from bot.data.venues.registry import facts_of, gate_rules

if TYPE_CHECKING:
    from bot.data.aggregation import _SymbolState

PAST_WINDOW_MARGIN_NS = 3600 * NS_PER_SECOND
_INF = math.inf
_BUY = Side.BUY
_SELL = Side.SELL


def past_window_ns(config: StreamManagerConfig) -> int:
    """How old a trade the gate lets through: what a store resume or a warm-up can replay.

    A resume replays trades from up to ``store_resume_max_gap_seconds`` ago, from the
    open of their interval; a backfill after a stream outage reaches back as long as
    the outage. Two of the longest timeframe and an hour of margin cover both.
    """
    longest = max(TIMEFRAME_SECONDS[tf] for tf in config.supported_timeframes) * NS_PER_SECOND
    return (int(config.store_resume_max_gap_seconds * NS_PER_SECOND) + 2 * longest
            + PAST_WINDOW_MARGIN_NS)


class _Lane:
    """What the fast path needs of one symbol, found with one lookup: its bar state,
    its tick buffer, its venue's clock estimate and the gate's windows."""

    __slots__ = ("bars", "clock", "future_ns", "past_ns", "ticks", "venue")

    def __init__(self, venue: str, bars: _SymbolState, ticks: TickRing, gate: TickGate) -> None:
        self.venue = venue
        self.bars = bars
        self.ticks = ticks
        self.clock = gate.venue_clock(venue)
        self.future_ns = gate.future_window_ns
        self.past_ns = gate.past_window_ns


class TickPipeline:
    """Aggregates ticks into bars, keeps bounded history and publishes events."""

    def __init__(self, config: StreamManagerConfig, bus: EventBus | None = None, *,
                 gate: TickGate | None = None,
                 clock: Callable[[], int] = time.time_ns, fast_path: bool = True) -> None:
        """``clock`` (ns since the epoch) is the one receive times come from: dispatch
        latency is measured on it. ``fast_path=False`` sends every tick the general
        way (the tests hold the two equal)."""
        self.config = config
        self._clock = clock
        self.bus = bus if bus is not None else EventBus(config.async_handler_backlog)
        self.aggregator = BarAggregator(
            config.supported_timeframes,
            grace_ns=config.bar_close_grace_ms * NS_PER_MS,
            reorder_window_ns=config.reorder_window_ms * NS_PER_MS,
            emit_empty=config.emit_empty_bars,
        )
        self.gate = gate if gate is not None else TickGate(
            past_window_ns=past_window_ns(config), future_window_ns=DEFAULT_FUTURE_WINDOW_NS,
            venue_rules=gate_rules(), newest_trade=self.aggregator.newest_trade)
        # The venue's own bars (warm-up history) pass this as ticks pass the gate.
        self.bar_check = BarCheck()
        self.ticks: dict[str, TickRing] = {}
        self.bars: dict[tuple[str, str], BarHistory] = {}
        self._fast_path = fast_path
        self._lanes: dict[str, _Lane] = {}
        self.bars_completed = 0
        self.ticks_accepted = 0
        # Receive (or clock) time -> BAR_COMPLETE dispatch, for the latency metrics.
        self.dispatch_latency_ns: deque[int] = deque(maxlen=10_000)

    def process(self, tick: Tick) -> bool:
        """Run one tick through the gate and the pipeline; False if it did not build a bar.

        A tick the gate holds (a suspect time) returns False now and is built
        when the next tick of its venue confirms it.
        """
        if self.fast_process(tick):
            return True
        gate = self.gate
        if not gate.admit(tick):
            return False
        if gate.released:
            for suspect in gate.take_released():
                self.build(suspect)
        return self.build(tick)

    def build(self, tick: Tick) -> bool:
        """Aggregate a tick the gate admitted; False if the aggregator refused it
        (a duplicate, or late for bars already completed)."""
        buf = self.ticks.get(tick.symbol)
        if buf is None:  # the symbol's first tick: its venue's policy first
            self.configure(tick.venue, tick.symbol)
            buf = self.ticks[tick.symbol] = TickRing(self.config.tick_buffer_size,
                                                     tick.venue, tick.symbol)
            # A venue with its own rule sends every tick the general way.
            if self._fast_path and tick.venue not in self.gate.venue_rules:
                self._lanes[tick.symbol] = _Lane(
                    tick.venue, self.aggregator.symbol_state(tick.venue, tick.symbol), buf,
                    self.gate)
        bars = self.aggregator.add(tick)
        if bars is None:
            return False
        buf.append(tick)
        self.ticks_accepted += 1
        self.bus.emit_tick(tick, tick.venue, tick.receive_timestamp)
        if bars:
            self.publish_bars(bars, tick.receive_timestamp)
        return True

    def fast_process(self, tick: Tick) -> bool:
        """Gate and build ``tick`` if it is the common case (see the module's docstring);
        False, with nothing changed, when the general path must take it.

        The same effect as ``gate.admit(tick)`` then :meth:`build` for such a
        tick, without their calls and lookups.
        """
        lane = self._lanes.get(tick.symbol)
        if lane is None:
            return False
        st = lane.bars
        b = st.cur
        clock = lane.clock
        tid = tick.trade_id
        ts = tick.timestamp
        price = tick.price
        qty = tick.volume
        # The gate's checks, the aggregator's fast case; anything else is the general path's.
        if (b is None or tid <= st.max_id or not b.open_time <= ts < b.end_time
                or type(tid) is not int or tid > MAX_INT64 or type(ts) is not int
                or not (0.0 < price < _INF and 0.0 < qty < _INF) or tick.updates != 7
                or clock.suspect is not None or tick.venue != lane.venue
                or tick.conditions or tick.exchange):
            return False
        recv = tick.receive_timestamp
        ahead = ts - recv - clock.offset
        if ahead > lane.future_ns or -ahead > lane.past_ns:
            return False
        side = tick.side
        # Admitted: build's remainder, the tick buffer first.
        lane.ticks.append_plain(tick, price, qty, tid, ts, recv, side)
        if ahead > 0:
            clock.offset = ts - recv  # the venue's clock is at least here
        # BarAggregator.add's fast case.
        st.max_id = tid
        b.ids.add(tid)
        if ts > st.max_ts:
            st.max_ts = ts
        if price > b.high:
            b.high = price
        elif price < b.low:
            b.low = price
        # Its id is above every id so far, so it closes a tie and never opens one.
        if ts >= b.close_ts:
            b.close = price
            b.close_ts = ts
            b.last_id = tid
        elif ts < b.open_ts:
            b.open = price
            b.open_ts = ts
            b.first_id = tid
        quote = price * qty
        b.volume += qty
        b.quote += quote
        if side is _BUY:
            b.buy_volume += qty
            b.buy_quote += quote
        elif side is _SELL:
            b.sell_volume += qty
        b.count += 1
        # The TICK event (it completed no bar).
        self.ticks_accepted += 1
        self.bus.emit_tick(tick, tick.venue, recv)
        return True

    def configure(self, venue: str, symbol: str) -> None:
        """Give the aggregator ``symbol``'s policy from its venue's facts (before its ticks)."""
        facts = facts_of(venue)
        self.aggregator.configure_symbol(venue, symbol, emit_empty=facts.empty_bars,
                                         sequenced=facts.sequenced)

    def advance(self, now_ns: int, proven: Mapping[str, int] | None = None) -> list[Bar]:
        """Complete the bars whose time is up by the clock; returns them after publishing.

        ``proven``: per symbol whose feed is proven only up to an earlier time, that
        time (see :meth:`BarAggregator.advance`). Also refuses the gate's suspects
        that no later tick decided in time.
        """
        self.gate.expire()
        bars = self.aggregator.advance(now_ns, proven)
        if bars:
            self.publish_bars(bars, now_ns)
        return bars

    def finish(self, symbol: str, end_ns: int) -> list[Bar]:
        """Complete and publish ``symbol``'s bars where its data ends, at ``end_ns``
        (exclusive); the bars it cuts are PARTIAL (see :meth:`BarAggregator.finish`)."""
        bars = self.aggregator.finish(symbol, end_ns)
        if bars:
            self.publish_bars(bars, end_ns)
        return bars

    def complete_through(self, symbol: str, through_ns: int) -> list[Bar]:
        """Complete and publish ``symbol``'s bars ending by ``through_ns`` (a watermark)."""
        bars = self.aggregator.complete_through(symbol, through_ns)
        if bars:
            self.publish_bars(bars, self._clock())
        return bars

    def publish_bars(self, bars: Iterable[Bar], trigger_ns: int) -> None:
        """Store and announce completed bars.

        ``trigger_ns`` is when what completed them reached us: the receive time
        of the tick that closed them, or the clock reading that did. It becomes
        the BAR_COMPLETE event's timestamp, from which tick-to-signal latency is
        measured.
        """
        for bar in bars:
            self.history(bar.venue, bar.symbol, bar.timeframe).append(bar)
            self.bars_completed += 1
            self.bus.emit(EventType.BAR_COMPLETE, bar, bar.venue, trigger_ns)
            self.dispatch_latency_ns.append(self._clock() - trigger_ns)

    def history(self, venue: str, symbol: str, timeframe: str) -> BarHistory:
        key = (symbol, timeframe)
        hist = self.bars.get(key)
        if hist is None:
            hist = self.bars[key] = BarHistory(venue, symbol, timeframe,
                                               self.config.bar_history_size)
        return hist

    def recent_ticks(self, symbol: str, limit: int | None = None) -> list[Tick]:
        """The last ``limit`` ticks of ``symbol`` (all kept when None), oldest first."""
        buf = self.ticks.get(symbol)
        return buf.recent(limit) if buf is not None else []

    def forget(self, symbol: str) -> None:
        """Drop everything kept for ``symbol`` (after it is unsubscribed)."""
        self.gate.forget(symbol)
        self.aggregator.forget(symbol)
        self.ticks.pop(symbol, None)
        self._lanes.pop(symbol, None)
        for key in [k for k in self.bars if k[0] == symbol]:
            del self.bars[key]

    # -- queries -------------------------------------------------------------------
    def check_series(self, symbol: str, timeframe: str, known_symbols: Iterable[str]) -> None:
        """Raise :class:`UnknownSeriesError` naming what is subscribed if the pair is unknown."""
        known = sorted(set(known_symbols))
        if symbol not in known:
            raise UnknownSeriesError(
                f"symbol {symbol!r} is not subscribed; subscribed: {', '.join(known) or 'none'}")
        if timeframe not in self.config.supported_timeframes:
            raise UnknownSeriesError(
                f"timeframe {timeframe!r} is not configured; configured: "
                f"{', '.join(self.config.supported_timeframes)}")
