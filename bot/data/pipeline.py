"""``TickPipeline``: the one path every tick takes, whatever its source.

tick -> gate -> aggregator -> tick buffer -> TICK event -> completed bars -> bar
history -> BAR_COMPLETE events. Live connections, REST backfill, replay and the
remote (NATS) source all feed :meth:`TickPipeline.process` (recovery, which must
see a tick's verdict before deciding whether it opens a gap, calls the two halves
itself: :attr:`TickPipeline.gate` then :meth:`TickPipeline.build`), so every tick
is checked once and they cannot disagree on how bars are built.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from bot.data.aggregation import BarAggregator
from bot.data.config import StreamManagerConfig
from bot.data.errors import UnknownSeriesError
from bot.data.events import EventBus, EventType
from bot.data.gate import DEFAULT_FUTURE_WINDOW_NS, TickGate
from bot.data.history import BarHistory
from bot.data.models import Bar, Tick
from bot.data.tick_buffer import TickRing
from bot.data.timeframes import NS_PER_MS, NS_PER_SECOND, TIMEFRAME_SECONDS
from bot.data.venues.registry import facts_of, gate_rules

PAST_WINDOW_MARGIN_NS = 3600 * NS_PER_SECOND


def past_window_ns(config: StreamManagerConfig) -> int:
    """How old a trade the gate lets through: what a store resume or a warm-up can replay.

    A resume replays trades from up to ``store_resume_max_gap_seconds`` ago, from the
    open of their interval; a backfill after a stream outage reaches back as long as
    the outage. Two of the longest timeframe and an hour of margin cover both.
    """
    longest = max(TIMEFRAME_SECONDS[tf] for tf in config.supported_timeframes) * NS_PER_SECOND
    return (int(config.store_resume_max_gap_seconds * NS_PER_SECOND) + 2 * longest
            + PAST_WINDOW_MARGIN_NS)


class TickPipeline:
    """Aggregates ticks into bars, keeps bounded history and publishes events."""

    def __init__(self, config: StreamManagerConfig, bus: EventBus | None = None, *,
                 gate: TickGate | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        """``clock`` (ns since the epoch) is the one receive times come from: dispatch
        latency is measured on it."""
        self.config = config
        self._clock = clock
        self.bus = bus if bus is not None else EventBus(config.async_handler_backlog)
        self.gate = gate if gate is not None else TickGate(
            past_window_ns=past_window_ns(config), future_window_ns=DEFAULT_FUTURE_WINDOW_NS,
            venue_rules=gate_rules())
        self.aggregator = BarAggregator(
            config.supported_timeframes,
            grace_ns=config.bar_close_grace_ms * NS_PER_MS,
            reorder_window_ns=config.reorder_window_ms * NS_PER_MS,
            emit_empty=config.emit_empty_bars,
        )
        self.ticks: dict[str, TickRing] = {}
        self.bars: dict[tuple[str, str], BarHistory] = {}
        self.bars_completed = 0
        self.ticks_accepted = 0
        # Receive (or clock) time -> BAR_COMPLETE dispatch, for the latency metrics.
        self.dispatch_latency_ns: deque[int] = deque(maxlen=10_000)

    def process(self, tick: Tick) -> bool:
        """Run one tick through the gate and the pipeline; False if it did not build a bar.

        A tick the gate holds (a suspect time) returns False now and is built
        when the next tick of its venue confirms it.
        """
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
            buf = self.ticks[tick.symbol] = TickRing(self.config.tick_buffer_size)
        bars = self.aggregator.add(tick)
        if bars is None:
            return False
        buf.append(tick)
        self.ticks_accepted += 1
        self.bus.emit_tick(tick, tick.venue, tick.receive_timestamp)
        if bars:
            self.publish_bars(bars, tick.receive_timestamp)
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
