"""``BarAggregator``: ticks in, completed OHLCV bars out, for several timeframes at once.

Pure: no I/O, no clock. Time enters only as the ticks' exchange timestamps and
as the ``now`` given to :meth:`BarAggregator.advance`, so the same ticks and the
same ``now`` calls always give the same bars (which is what makes replay equal
live, and what lets the tests drive time by hand).

How a bar completes. Each symbol has a watermark: the latest exchange time seen
minus ``reorder_window_ns``. A bar completes once the watermark passes its end
(with no reorder window: at the first trade of a later interval), or once the
clock given to ``advance`` passes its end plus ``grace_ns``, so a quiet market
still gets its bars on time. A symbol on hold (stream down or being backfilled)
is not advanced by the clock, so its bars wait for complete data; nor, past
the time given for it, is a symbol whose feed is not yet known to have
delivered everything up to ``now``.

How timeframes share the work. Ticks update only bars of the *base* length, the
greatest common divisor of the configured timeframes; each completed base bar
is folded into the longer timeframes. A tick therefore costs one bar update
whatever the number of timeframes, and the longer bars equal a direct
aggregation because OHLCV folds exactly over contiguous sub-intervals.

What it trusts. Ticks reach it through :class:`~bot.data.gate.TickGate`, so
prices, quantities, ids and times are already known to be valid; it does not
check them again. It refuses only what depends on its own state: duplicates and
trades for bars already completed.

How much one call can emit. Empty bars fill the intervals between a symbol's
last completed bar and its watermark. A run of more than :data:`MAX_EMPTY_RUN`
empty base intervals (a venue clock that jumped, a symbol silent for a week) is
not emitted bar by bar: the longer bars still open are closed, the run is
skipped to a boundary of every timeframe and counted in
``counters.empty_skipped``, so no call emits more than ``MAX_EMPTY_RUN`` plus
one longest interval of empty bars per timeframe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce

from bot.data.models import (
    UPDATES_ALL,
    UPDATES_HIGH_LOW,
    UPDATES_OPEN_CLOSE,
    UPDATES_VOLUME,
    Bar,
    BarFlag,
    Side,
    Tick,
)
from bot.data.timeframes import NS_PER_SECOND, TIMEFRAME_SECONDS, align, base_length_ns

_NO_BARS: tuple[Bar, ...] = ()
MAX_EMPTY_RUN = 10_000  # empty base intervals emitted at most in one run (a week of 1m bars)
assert UPDATES_ALL == 7  # literal in the hot path
_BUY = Side.BUY
_SELL = Side.SELL


@dataclass
class AggregatorCounters:
    """What the aggregator refused, by reason (exposed through the manager's metrics)."""

    duplicate: int = 0
    late: int = 0
    empty_skipped: int = 0  # empty base intervals skipped past MAX_EMPTY_RUN


class _Builder:
    """The mutable state of one bar being built (never leaves this module).

    High and low start at -inf/+inf and open/close are unset (``open_ts < 0``)
    until a trade whose conditions allow it updates them; a bar without such
    trades shows ``reference`` (the previous close) for those fields, as
    Binance klines do for intervals without trades.
    """

    __slots__ = (
        "buy_quote",
        "buy_volume",
        "by_id",
        "close",
        "close_ts",
        "count",
        "end_time",
        "first_id",
        "flags",
        "high",
        "ids",
        "last_id",
        "low",
        "open",
        "open_time",
        "open_ts",
        "quote",
        "reference",
        "sell_volume",
        "volume",
    )

    def __init__(self, open_time: int, end_time: int, reference: float) -> None:
        self.open_time = open_time
        self.end_time = end_time
        self.reference = reference
        self.open = self.close = reference
        self.high = -math.inf
        self.low = math.inf
        self.volume = self.quote = self.buy_volume = self.sell_volume = self.buy_quote = 0.0
        self.count = 0
        self.first_id = self.last_id = -1
        self.open_ts = self.close_ts = -1
        self.flags = BarFlag.NONE
        self.ids: set[int] = set()  # trade ids folded in, for deduplication
        self.by_id = True  # equal times ordered by trade id (else by arrival)

    def add_tick(self, tick: Tick) -> None:
        """Fold one trade in, honouring which fields its conditions let it update."""
        updates = tick.updates
        price = tick.price
        if updates & UPDATES_HIGH_LOW:
            if price > self.high:
                self.high = price
            if price < self.low:
                self.low = price
        if updates & UPDATES_OPEN_CLOSE:
            ts = tick.timestamp
            tid = tick.trade_id
            self._take_open_close(price, ts, tid, price, ts, tid)
        if updates & UPDATES_VOLUME:
            qty = tick.volume
            quote = price * qty
            self.volume += qty
            self.quote += quote
            if tick.side is _BUY:
                self.buy_volume += qty
                self.buy_quote += quote
            elif tick.side is _SELL:
                self.sell_volume += qty
        self.count += 1

    def _take_open_close(self, open_price: float, open_ts: int, open_id: int,
                         close_price: float, close_ts: int, close_id: int) -> None:
        """Keep the earliest trade as open and the latest as close, by (time, trade id).

        Where ids are no sequence (``by_id`` false), equal times keep arrival
        order: the first to arrive opens, the last to arrive closes.
        """
        if self.open_ts < 0:
            self.open, self.open_ts, self.first_id = open_price, open_ts, open_id
            self.close, self.close_ts, self.last_id = close_price, close_ts, close_id
            return
        by_id = self.by_id
        if open_ts < self.open_ts or (open_ts == self.open_ts and by_id
                                      and open_id < self.first_id):
            self.open, self.open_ts, self.first_id = open_price, open_ts, open_id
        if close_ts > self.close_ts or (close_ts == self.close_ts and (
                not by_id or close_id > self.last_id)):
            self.close, self.close_ts, self.last_id = close_price, close_ts, close_id

    def merge(self, other: _Builder) -> None:
        """Fold a contiguous sub-interval's state into this one."""
        if other.high > self.high:
            self.high = other.high
        if other.low < self.low:
            self.low = other.low
        if other.open_ts >= 0:
            self._take_open_close(other.open, other.open_ts, other.first_id,
                                  other.close, other.close_ts, other.last_id)
        elif self.open_ts < 0:
            self.open = self.close = other.close
        self.volume += other.volume
        self.quote += other.quote
        self.buy_volume += other.buy_volume
        self.sell_volume += other.sell_volume
        self.buy_quote += other.buy_quote
        self.count += other.count
        self.flags |= other.flags

    @classmethod
    def from_bar(cls, bar: Bar) -> _Builder:
        """A completed bar as builder state, to fold into longer bars (warm-up seeding)."""
        b = cls(bar.open_time, bar.close_time + 1, bar.open)
        b.open, b.high, b.low, b.close = bar.open, bar.high, bar.low, bar.close
        if bar.trade_count:
            b.open_ts, b.close_ts = bar.open_time, bar.close_time
            b.first_id, b.last_id = bar.first_trade_id, bar.last_trade_id
        else:
            b.high, b.low = -math.inf, math.inf
        b.volume, b.quote = bar.volume, bar.quote_volume
        b.buy_volume, b.sell_volume, b.buy_quote = (bar.buy_volume, bar.sell_volume,
                                                     bar.buy_quote_volume)
        b.count = bar.trade_count
        b.flags = bar.flags & ~(BarFlag.EMPTY | BarFlag.PARTIAL)
        return b

    @property
    def fast_path_ready(self) -> bool:
        """True once open, close, high and low are all set by full-eligibility trades."""
        return self.open_ts >= 0 and self.high >= self.low

    def copy(self) -> _Builder:
        """A snapshot for queries (shares the id set, which a snapshot never reads)."""
        clone = _Builder.__new__(_Builder)
        for name in _Builder.__slots__:
            setattr(clone, name, getattr(self, name))
        return clone

    def to_bar(self, venue: str, symbol: str, timeframe: str, coverage_start: int) -> Bar:
        flags = self.flags
        if self.count == 0:
            flags |= BarFlag.EMPTY
        if self.open_time < coverage_start:
            flags |= BarFlag.PARTIAL
        high, low = self.high, self.low
        if high < low:  # no trade could update high/low
            high = max(self.open, self.close)
            low = min(self.open, self.close)
        return Bar(
            venue, symbol, timeframe, self.open_time, self.end_time - 1,
            self.open, high, low, self.close,
            self.volume, self.quote, self.buy_volume, self.sell_volume, self.buy_quote,
            self.count, self.first_id, self.last_id, flags,
        )


class _SymbolState:
    """Per-symbol aggregation state."""

    __slots__ = (
        "closed_ids",
        "coverage_start",
        "cur",
        "emit_empty",
        "held",
        "higher",
        "last_close",
        "last_closed_end",
        "marks",
        "max_id",
        "max_ts",
        "open_bars",
        "sequenced",
        "symbol",
        "venue",
    )

    def __init__(self, venue: str, symbol: str, emit_empty: bool) -> None:
        self.venue = venue
        self.symbol = symbol
        self.sequenced = True  # equal times ordered by trade id (else by arrival)
        self.open_bars: list[_Builder] = []  # base bars not yet complete, by open time
        self.cur: _Builder | None = None  # the only open bar, when there is exactly one
        self.higher: dict[str, _Builder] = {}
        self.max_ts = -1
        self.max_id = -(1 << 63)
        self.closed_ids: set[int] = set()  # trade ids of the last closed bar with trades
        self.last_closed_end: int | None = None
        self.last_close = math.nan
        self.coverage_start: int | None = None
        self.emit_empty = emit_empty
        self.held = False
        self.marks: list[tuple[int, int, BarFlag]] = []  # (start, end) ns ranges to flag


class BarAggregator:
    """Builds bars of every configured timeframe for every symbol from ticks.

    :meth:`add` returns ``None`` for a tick it refused (duplicate or late;
    see :attr:`counters`), otherwise the bars the tick completed,
    oldest first and, for one end time, shortest timeframe first.
    """

    def __init__(self, timeframes: Iterable[str], *, grace_ns: int = 2 * NS_PER_SECOND,
                 reorder_window_ns: int = 0, emit_empty: bool = True) -> None:
        self.timeframes = sorted(set(timeframes), key=TIMEFRAME_SECONDS.__getitem__)
        if not self.timeframes:
            raise ValueError("BarAggregator needs at least one timeframe")
        self.base_ns = base_length_ns(self.timeframes)
        self._lengths = {tf: TIMEFRAME_SECONDS[tf] * NS_PER_SECOND for tf in self.timeframes}
        self._base_tf = next((tf for tf, n in self._lengths.items() if n == self.base_ns), None)
        self._higher = [(tf, n) for tf, n in self._lengths.items() if n != self.base_ns]
        # Every timeframe's bars start on a multiple of this: where a skipped run may resume.
        self._common_ns = reduce(math.lcm, self._lengths.values())
        self.grace_ns = grace_ns
        self.reorder_window_ns = reorder_window_ns
        self.emit_empty = emit_empty
        self.counters = AggregatorCounters()
        self._symbols: dict[str, _SymbolState] = {}

    def timeframe_ns(self, timeframe: str) -> int:
        """The length of a configured timeframe in nanoseconds."""
        return self._lengths[timeframe]

    # -- configuration -------------------------------------------------------------
    def configure_symbol(self, venue: str, symbol: str, *, emit_empty: bool | None = None,
                         sequenced: bool | None = None,
                         complete_from: int | None = None) -> None:
        """Set a symbol's policy before its first tick (its venue's facts).

        ``emit_empty``: whether intervals without trades give empty bars (Binance
        klines do, Alpaca bars do not); it is off whatever is given here when the
        aggregator's own ``emit_empty`` is. ``sequenced``: trade ids are one
        sequence per symbol, so trades of one instant are ordered by id (else by
        arrival, as for Alpaca's per-exchange ids). ``complete_from``: the exchange time from
        which this symbol's trades are known to be complete (after a warm-up
        backfill); bars opening before it are flagged PARTIAL.
        """
        st = self._state(venue, symbol)
        if emit_empty is not None:
            st.emit_empty = self.emit_empty and emit_empty
        if sequenced is not None:
            st.sequenced = sequenced
        if complete_from is not None:
            st.coverage_start = complete_from

    def mark(self, venue: str, symbol: str, start_ns: int, end_ns: int, flag: BarFlag) -> None:
        """Flag every bar of ``symbol`` overlapping ``[start_ns, end_ns]`` when it completes.

        Recovery uses it: BACKFILLED over the span of trades that came from REST,
        GAP over a span whose trades could not be recovered. Bars already
        completed are not revised (completed bars are final).
        """
        if end_ns < start_ns:
            raise ValueError(f"mark range ends before it starts: {start_ns} > {end_ns}")
        self._state(venue, symbol).marks.append((start_ns, end_ns, flag))

    def seed(self, venue: str, symbol: str, bars: Iterable[Bar]) -> None:
        """Continue a symbol from completed bars of the base length (a warm-up from klines).

        The bars (venues without empty bars may skip intervals) must end where
        the stream's first interval opens. They become the symbol's past: the
        longer timeframes' current bars fold them in, so those bars are whole
        even though the stream started inside them; trades before them are late.
        """
        st = self._state(venue, symbol)
        if st.open_bars or st.last_closed_end is not None:
            raise ValueError(f"seed {symbol} before its first trade, not after")
        ordered = sorted(bars, key=lambda b: b.open_time)
        for bar in ordered:
            length = bar.close_time + 1 - bar.open_time
            if length != self.base_ns:
                raise ValueError(f"seed bars must be {self.base_ns // NS_PER_SECOND}s long, "
                                 f"got a {length // NS_PER_SECOND}s bar at {bar.open_time}")
            built = _Builder.from_bar(bar)
            st.last_closed_end = built.end_time
            st.last_close = built.close
            for tf, length in self._higher:
                hb = st.higher.get(tf)
                start = align(bar.open_time, length)
                if hb is None or hb.open_time != start:
                    hb = st.higher[tf] = _Builder(start, start + length, bar.open)
                hb.merge(built)
        if ordered:
            # Only the longer bars still open need the seed; the rest are history already.
            end = ordered[-1].close_time + 1
            st.higher = {tf: hb for tf, hb in st.higher.items() if hb.end_time > end}
            st.coverage_start = ordered[0].open_time

    def hold(self, symbol: str) -> None:
        """Stop the clock from completing this symbol's bars (stream down or backfilling)."""
        if symbol in self._symbols:
            self._symbols[symbol].held = True

    def release(self, symbol: str) -> None:
        if symbol in self._symbols:
            self._symbols[symbol].held = False

    def forget(self, symbol: str) -> None:
        """Drop a symbol's state (after it is unsubscribed)."""
        self._symbols.pop(symbol, None)

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def symbol_state(self, venue: str, symbol: str) -> _SymbolState:
        """``symbol``'s state (made on first use), for the pipeline's fast path, which
        applies :meth:`add`'s fast case to it directly."""
        return self._state(venue, symbol)

    def is_duplicate(self, tick: Tick) -> bool:
        """True when ``tick``'s trade id is already in one of its symbol's recent bars."""
        st = self._symbols.get(tick.symbol)
        if st is None or tick.trade_id > st.max_id:
            return False
        tid = tick.trade_id
        return tid in st.closed_ids or any(tid in b.ids for b in st.open_bars)

    # -- the hot path -------------------------------------------------------------
    def add(self, tick: Tick) -> tuple[Bar, ...] | None:
        """Fold one tick in; return the bars it completed, or None if it was refused."""
        st = self._symbols.get(tick.symbol)
        if st is None:
            st = self._state(tick.venue, tick.symbol)
        tid = tick.trade_id
        if tid > st.max_id:
            st.max_id = tid
        elif tid in st.closed_ids or any(tid in b.ids for b in st.open_bars):
            self.counters.duplicate += 1
            return None
        ts = tick.timestamp
        b = st.cur
        if b is None or ts < b.open_time or ts >= b.end_time or tick.updates != 7:
            return self._add_slow(st, tick)
        # Fast path: the tick falls in the only open bar and may update every field.
        b.ids.add(tid)
        if ts > st.max_ts:
            st.max_ts = ts
        price = tick.price
        if price > b.high:
            b.high = price
        elif price < b.low:
            b.low = price
        if ts > b.close_ts or (ts == b.close_ts and (tid > b.last_id or not b.by_id)):
            b.close = price
            b.close_ts = ts
            b.last_id = tid
        elif ts < b.open_ts or (ts == b.open_ts and b.by_id and tid < b.first_id):
            b.open = price
            b.open_ts = ts
            b.first_id = tid
        qty = tick.volume
        quote = price * qty
        b.volume += qty
        b.quote += quote
        side = tick.side
        if side is _BUY:
            b.buy_volume += qty
            b.buy_quote += quote
        elif side is _SELL:
            b.sell_volume += qty
        b.count += 1
        return _NO_BARS

    def _add_slow(self, st: _SymbolState, tick: Tick) -> tuple[Bar, ...] | None:
        ts = tick.timestamp
        base_open = align(ts, self.base_ns)
        if st.last_closed_end is not None and base_open < st.last_closed_end:
            self.counters.late += 1
            return None
        if st.coverage_start is None:
            st.coverage_start = ts
        bar = next((b for b in st.open_bars if b.open_time == base_open), None)
        if bar is None:
            bar = _Builder(base_open, base_open + self.base_ns, st.last_close)
            bar.by_id = st.sequenced
            st.open_bars.append(bar)
            st.open_bars.sort(key=lambda b: b.open_time)
        bar.add_tick(tick)
        bar.ids.add(tick.trade_id)
        if ts > st.max_ts:
            st.max_ts = ts
        out: list[Bar] = []
        self._complete(st, st.max_ts - self.reorder_window_ns, out)
        _refresh_fast_path(st)
        return tuple(out) if out else _NO_BARS

    # -- time ----------------------------------------------------------------------
    def complete_through(self, symbol: str, through_ns: int) -> list[Bar]:
        """Complete ``symbol``'s bars ending at or before ``through_ns``, held or not.

        For a source that knows the symbol's trades before ``through_ns`` have
        all arrived (a NATS worker's watermark), whatever the local clock says.
        """
        st = self._symbols.get(symbol)
        out: list[Bar] = []
        if st is not None and st.coverage_start is not None:
            self._complete(st, through_ns, out)
            _refresh_fast_path(st)
        return out

    def advance(self, now_ns: int, proven: Mapping[str, int] | None = None) -> list[Bar]:
        """Complete every bar whose end plus the grace is at or before ``now_ns``.

        Symbols on hold are skipped. ``proven`` maps a symbol whose feed is known
        to have delivered everything only up to an earlier time (a connection not
        yet proven alive) to that time, which then takes the place of ``now_ns``.
        Call it a few times a second from a clock; the aggregator never reads one itself.
        """
        out: list[Bar] = []
        grace = self.grace_ns
        watermark = now_ns - grace
        for st in self._symbols.values():
            if not st.held and st.coverage_start is not None:
                until = proven.get(st.symbol) if proven else None
                self._complete(st, watermark if until is None or until >= now_ns
                               else until - grace, out)
                _refresh_fast_path(st)
        return out

    def finish(self, symbol: str, end_ns: int) -> list[Bar]:
        """Close ``symbol``'s bars where its data ends: at ``end_ns`` (exclusive).

        For a source whose trades stop there (the end of a recording). Bars
        ending at or before ``end_ns`` complete as usual, empty ones included;
        the bars still open that began before it complete flagged PARTIAL, since
        the trades after ``end_ns`` are unknown; no bar opening at or after it
        is made. A later trade of those closed intervals is late.
        """
        st = self._symbols.get(symbol)
        out: list[Bar] = []
        if st is None or st.coverage_start is None:
            return out
        self._complete(st, end_ns, out)
        while st.open_bars and st.open_bars[0].open_time < end_ns:
            cut = st.open_bars.pop(0)
            cut.flags |= BarFlag.PARTIAL
            self._close_base(st, cut, out)
        coverage = st.coverage_start
        for tf, _ in self._higher:
            hb = st.higher.get(tf)
            if hb is not None and hb.open_time < end_ns and not any(
                    b.open_time < hb.end_time for b in st.open_bars):
                hb.flags |= BarFlag.PARTIAL
                out.append(hb.to_bar(st.venue, st.symbol, tf, coverage))
                del st.higher[tf]
        _refresh_fast_path(st)
        return out

    def _complete(self, st: _SymbolState, watermark: int, out: list[Bar]) -> None:
        """Close every base bar (and empty interval) that ends at or before ``watermark``."""
        base = self.base_ns
        while True:
            nxt = st.open_bars[0] if st.open_bars else None
            if st.emit_empty and st.last_closed_end is not None:
                limit = nxt.open_time if nxt is not None else watermark
                self._skip_long_empty_run(st, min(limit, align(watermark, base)), out)
                t = st.last_closed_end
                while t < limit and t + base <= watermark:
                    self._close_base(st, _Builder(t, t + base, st.last_close), out)
                    t += base
            if nxt is None or nxt.end_time > watermark:
                break
            st.open_bars.pop(0)
            self._close_base(st, nxt, out)
        self._close_higher(st, watermark, out)

    def _skip_long_empty_run(self, st: _SymbolState, stop: int, out: list[Bar]) -> None:
        """Skip all but the last ``MAX_EMPTY_RUN`` empty intervals before ``stop``.

        The run resumes on a boundary of every timeframe; the longer bars open
        before it are closed first (the skipped intervals hold no trade, so they
        would add nothing to them).
        """
        assert st.last_closed_end is not None
        if (stop - st.last_closed_end) // self.base_ns <= MAX_EMPTY_RUN:
            return
        resume = align(stop - MAX_EMPTY_RUN * self.base_ns, self._common_ns)
        if resume <= st.last_closed_end:
            return
        self._close_higher(st, resume, out)
        self.counters.empty_skipped += (resume - st.last_closed_end) // self.base_ns
        st.last_closed_end = resume

    def _close_base(self, st: _SymbolState, bar: _Builder, out: list[Bar]) -> None:
        if st.marks:
            _apply_marks(st, bar)
        st.last_closed_end = bar.end_time
        st.last_close = bar.close
        for later in st.open_bars:  # a later bar without open/close shows this close
            if later.open_ts < 0:
                later.reference = later.open = later.close = bar.close
        if bar.count:
            st.closed_ids = bar.ids
        coverage = st.coverage_start if st.coverage_start is not None else bar.open_time
        if self._base_tf is not None:
            out.append(bar.to_bar(st.venue, st.symbol, self._base_tf, coverage))
        for tf, length in self._higher:
            hb = st.higher.get(tf)
            if hb is None:
                start = align(bar.open_time, length)
                hb = st.higher[tf] = _Builder(start, start + length, bar.reference)
            hb.merge(bar)
            if hb.end_time <= bar.end_time:
                out.append(hb.to_bar(st.venue, st.symbol, tf, coverage))
                del st.higher[tf]

    def _close_higher(self, st: _SymbolState, watermark: int, out: list[Bar]) -> None:
        """Close longer bars whose end passed while no base bar closed (quiet, no empties)."""
        coverage = st.coverage_start if st.coverage_start is not None else 0
        for tf, _ in self._higher:
            hb = st.higher.get(tf)
            if hb is not None and hb.end_time <= watermark and not any(
                    b.open_time < hb.end_time for b in st.open_bars):
                out.append(hb.to_bar(st.venue, st.symbol, tf, coverage))
                del st.higher[tf]

    # -- queries -------------------------------------------------------------------
    def current_bar(self, symbol: str, timeframe: str) -> Bar | None:
        """Snapshot of the bar being built for ``symbol`` and ``timeframe``, or None."""
        st = self._symbols.get(symbol)
        length = self._lengths.get(timeframe)
        if st is None or length is None or not st.open_bars:
            return None
        latest = st.open_bars[-1]
        start = align(latest.open_time, length)
        if length == self.base_ns:
            acc = latest.copy()
        else:
            held = st.higher.get(timeframe)
            acc = held.copy() if held is not None else _Builder(start, start + length,
                                                                st.last_close)
            for b in st.open_bars:
                if start <= b.open_time < acc.end_time:
                    acc.merge(b)
        coverage = st.coverage_start if st.coverage_start is not None else start
        return acc.to_bar(st.venue, symbol, timeframe, coverage)

    def _state(self, venue: str, symbol: str) -> _SymbolState:
        st = self._symbols.get(symbol)
        if st is None:
            st = self._symbols[symbol] = _SymbolState(venue, symbol, self.emit_empty)
        return st


def _apply_marks(st: _SymbolState, bar: _Builder) -> None:
    """Flag ``bar`` with every mark overlapping it; forget marks that end inside it."""
    keep = []
    for start, end, flag in st.marks:
        if start < bar.end_time and end >= bar.open_time:
            bar.flags |= flag
        if end >= bar.end_time:
            keep.append((start, end, flag))
    st.marks = keep


def _refresh_fast_path(st: _SymbolState) -> None:
    """Let ticks take the fast path only while one bar is open and fully priced."""
    only = st.open_bars[0] if len(st.open_bars) == 1 else None
    st.cur = only if only is not None and only.fast_path_ready else None
