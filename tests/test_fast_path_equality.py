"""The pipeline's fast path is the general path, faster: equal in every bar, event and counter.

The same random sequences (in-sequence trades, id gaps, duplicates, late and
out-of-order trades, interval jumps, ties, invalid fields, suspect and jumping
venue clocks, a venue with its own rule, held symbols, clock advances, restricted
stock trades) go through a pipeline with the fast path and one forced onto the
general path, fed directly (:meth:`TickPipeline.process`) and behind gap recovery
(:meth:`GapRecovery.on_tick`, with REST fills). Everything either emits, keeps or
counts must be identical. Bars are also held to the separately written reference.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.data.config import StreamManagerConfig
from bot.data.events import EventType, StreamEvent
from bot.data.gate import TickGate
from bot.data.models import UPDATES_HIGH_LOW, UPDATES_VOLUME, BarFlag, Side, Tick
from bot.data.pipeline import TickPipeline
from bot.data.recovery import GapRecovery
from bot.data.venues.history import TradePosition
from bot.data.venues.registry import VENUES, facts_of, gate_rules
from tests.reference import reference_bars

SECOND = 10**9
MINUTE = 60 * SECOND
TIMEFRAMES = ["1m", "5m", "15m"]
START = 1_735_689_600 * SECOND  # an epoch multiple of 15 minutes
PAST_WINDOW = 3600 * SECOND
FUTURE_WINDOW = 60 * SECOND
RULED_VENUE = next(iter(gate_rules()))  # a venue with its own rule (refuses non-market trades)
UNSEQUENCED_VENUE = next(name for name in VENUES if not facts_of(name).sequenced)

Op = tuple[str, Any]


class _Monotonic:
    """The gate's monotonic clock, moved by the script (suspects expire on it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pipeline(fast: bool, monotonic: _Monotonic) -> TickPipeline:
    config = StreamManagerConfig(supported_timeframes=TIMEFRAMES, bar_history_size=5000,
                                 tick_buffer_size=50)
    gate = TickGate(past_window_ns=PAST_WINDOW, future_window_ns=FUTURE_WINDOW,
                    venue_rules=gate_rules(), monotonic=monotonic)
    return TickPipeline(config, gate=gate, clock=lambda: START, fast_path=fast)


def _odd(rng: random.Random, tick: Tick) -> Tick:
    """``tick`` with one thing the fast path must leave to the general path."""
    kind = rng.randrange(13)
    replace = msgspec.structs.replace
    if kind == 0:
        return replace(tick, price=rng.choice([0.0, -1.0, math.nan, math.inf]))
    if kind == 1:
        return replace(tick, volume=rng.choice([0.0, -0.5, math.nan, math.inf]))
    if kind == 2:
        return replace(tick, trade_id=rng.choice([-1, 1 << 63, float(tick.trade_id)]))
    if kind == 3:
        return replace(tick, timestamp=float(tick.timestamp))
    if kind == 4:  # far ahead of the venue's clock: a suspect
        return replace(tick, timestamp=tick.timestamp + rng.choice([2, 90]) * FUTURE_WINDOW)
    if kind == 5:  # far behind it: a suspect
        return replace(tick, timestamp=tick.timestamp - 2 * PAST_WINDOW)
    if kind == 6:
        return replace(tick, updates=rng.choice([UPDATES_HIGH_LOW, UPDATES_VOLUME, 0]))
    if kind == 8:  # received long before its time: ahead of the venue's clock, a suspect
        return replace(tick, receive_timestamp=tick.receive_timestamp - 2 * FUTURE_WINDOW)
    if kind == 9:  # received long after its time: behind the venue's clock, a suspect
        return replace(tick, receive_timestamp=tick.receive_timestamp + 2 * PAST_WINDOW)
    if kind == 7:
        return replace(tick, conditions=("ADL",), venue=RULED_VENUE)
    if kind == 10:  # sale conditions the tick buffer must keep
        return replace(tick, conditions=("I",))
    if kind == 11:  # an exchange code the tick buffer must keep
        return replace(tick, exchange="V")
    return replace(tick, side=Side.UNKNOWN)


@st.composite
def scripts(draw: st.DrawFn) -> tuple[list[Op], list[Tick]]:
    """(operations in order, the true trades) for up to three symbols."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    n_symbols = draw(st.integers(1, 3))
    odd_rate = draw(st.sampled_from([0.0, 0.02, 0.1]))
    cursors = {f"S{s}/USDT": [START + rng.randrange(0, 2 * MINUTE), 1000 * (s + 1),
                              rng.uniform(1, 1000)] for s in range(n_symbols)}
    # Binance; a venue with its own rule; one whose ids are no sequence and that has no empty bars.
    venue = {sym: rng.choice(["binance", "binance", RULED_VENUE, UNSEQUENCED_VENUE])
             for sym in cursors}
    ops: list[Op] = []
    trades: list[Tick] = []
    sent: list[Tick] = []
    for _ in range(draw(st.integers(1, 400))):
        sym = rng.choice(list(cursors))
        cur = cursors[sym]
        roll = rng.random()
        if roll < 0.03:
            ops.append(("advance", cur[0] + rng.choice([0, SECOND, 3 * SECOND, 2 * MINUTE])))
            continue
        if roll < 0.05:
            ops.append((rng.choice(["hold", "release"]), sym))
            continue
        if roll < 0.09 and sent:  # a duplicate, or a late delivery of an earlier trade
            ops.append(("tick", rng.choice(sent[-30:])))
            continue
        cur[0] += rng.choice([0, 0, 1_000_000, 1_000_000, 50_000_000, SECOND, 20 * SECOND,
                              rng.randrange(SECOND, 20 * MINUTE)])
        if rng.random() < 0.005:  # the venue's clock jumps (a simulator after a silence)
            cur[0] += 2 * PAST_WINDOW
        cur[1] += 1 if rng.random() > 0.05 else rng.randrange(2, 6)  # sometimes an id gap
        trade_id = cur[1]
        if venue[sym] == UNSEQUENCED_VENUE:  # ids unique but in no order
            trade_id = 1_000_000 * trade_id + rng.choice([0, -2_000_000, 3_000_000])
        cur[2] = round(max(0.01, cur[2] * (1 + rng.gauss(0, 0.002))), 2)
        ts = cur[0] - (rng.randrange(0, 3 * SECOND) if rng.random() < 0.05 else 0)  # disorder
        earlier = [t.timestamp for t in sent[-20:] if t.symbol == sym]
        if earlier and rng.random() < 0.05:  # the time of an earlier trade: a tie
            ts = rng.choice(earlier)
        tick = Tick(venue[sym], sym, cur[2], round(rng.uniform(0.001, 5), 3),
                    rng.choice([Side.BUY, Side.SELL]), trade_id, ts,
                    ts + rng.randrange(-2 * SECOND, 300_000_000))  # the venue's clock may lead
        trades.append(tick)
        if rng.random() < odd_rate:
            ops.append(("tick", _odd(rng, tick)))
            if rng.random() < 0.5:
                continue  # this trade reaches no one but REST
        ops.append(("tick", tick))
        sent.append(tick)
        if rng.random() < 0.01:
            ops.append(("expire", None))
    ops.append(("advance", max(c[0] for c in cursors.values()) + 20 * MINUTE))
    return ops, trades


class _Recorder:
    """Every event a pipeline emits, as bytes (so NaN fields compare equal to themselves)."""

    def __init__(self, pipeline: TickPipeline) -> None:
        self.events: list[bytes] = []
        pipeline.bus.on(EventType.TICK, self._record)
        pipeline.bus.on(EventType.BAR_COMPLETE, self._record)

    def _record(self, event: StreamEvent) -> None:
        self.events.append(msgspec.msgpack.encode(event))


def _state(pipeline: TickPipeline) -> bytes:
    """What a pipeline keeps and counts, as bytes."""
    return msgspec.msgpack.encode({
        "ticks": {s: buf.recent() for s, buf in pipeline.ticks.items()},
        "bars": {f"{s} {tf}": h.bars(None) for (s, tf), h in pipeline.bars.items()},
        "accepted": pipeline.ticks_accepted,
        "completed": pipeline.bars_completed,
        "refused": pipeline.gate.refused,
        "venue_clocks": [pipeline.gate.venue_clock(v).offset
                         for v in ("binance", RULED_VENUE, UNSEQUENCED_VENUE)],
        "aggregator": pipeline.aggregator.counters,
        "current": [pipeline.aggregator.current_bar(s, tf)
                    for s in sorted(pipeline.ticks) for tf in TIMEFRAMES],
    })


def _apply(op: Op, pipeline: TickPipeline, monotonic: _Monotonic,
           on_tick: Any) -> None:
    kind, arg = op
    if kind == "tick":
        on_tick(arg)
    elif kind == "advance":
        monotonic.now += 1.0
        pipeline.advance(arg)
    elif kind == "expire":
        monotonic.now += 10.0
        pipeline.gate.expire()
    elif kind == "hold":
        pipeline.aggregator.hold(arg)
    else:
        pipeline.aggregator.release(arg)


def _run_direct(ops: list[Op], fast: bool) -> tuple[list[bytes], bytes, int]:
    monotonic = _Monotonic()
    pipeline = _pipeline(fast, monotonic)
    recorder = _Recorder(pipeline)
    general_adds = 0
    add = pipeline.aggregator.add

    def counted_add(tick: Tick) -> Any:
        nonlocal general_adds
        general_adds += 1
        return add(tick)

    pipeline.aggregator.add = counted_add  # type: ignore[method-assign]
    for op in ops:
        _apply(op, pipeline, monotonic, pipeline.process)
    return recorder.events, _state(pipeline), general_adds


class _History:
    """REST history over the true trades: what recovery fetches to fill a gap."""

    sequenced = True
    tick_rule = False

    def __init__(self, trades: list[Tick]) -> None:
        self.trades = trades

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        hi = until.trade_id - 1 if until is not None else 1 << 62
        return [t for t in self.trades
                if t.symbol == symbol and after.last_id < t.trade_id <= hi]


def _run_recovered(ops: list[Op], trades: list[Tick], fast: bool) -> tuple[list[bytes], bytes]:
    async def run() -> tuple[list[bytes], bytes]:
        monotonic = _Monotonic()
        pipeline = _pipeline(fast, monotonic)
        recorder = _Recorder(pipeline)
        history = _History(trades)
        recovery = GapRecovery(pipeline, dict.fromkeys(
                                   ("binance", RULED_VENUE, UNSEQUENCED_VENUE), history),
                               clock=lambda: START)
        for symbol in {t.symbol: t.venue for t in trades}.items():
            recovery.track(symbol[1], symbol[0])
        for i, op in enumerate(ops):
            _apply(op, pipeline, monotonic, recovery.on_tick)
            if i % 7 == 0:  # let fills run now and then, as the event loop would
                for _ in range(3):
                    await asyncio.sleep(0)
        for _ in range(10):
            await asyncio.sleep(0)
        await recovery.stop()
        cursors = {s: c.position for s, c in sorted(recovery._cursors.items())}
        counters = {k: v for k, v in vars(recovery.counters).items()
                    if k != "backfill_latency_ns"}
        return recorder.events, _state(pipeline) + msgspec.msgpack.encode([cursors, counters])

    return asyncio.run(run())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_fast_path_emits_keeps_and_counts_exactly_what_the_general_path_does(script) -> None:
    ops, _ = script
    fast_events, fast_state, fast_adds = _run_direct(ops, fast=True)
    general_events, general_state, general_adds = _run_direct(ops, fast=False)
    assert fast_events == general_events
    assert fast_state == general_state
    assert fast_adds <= general_adds


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_fast_path_behind_gap_recovery_equals_the_general_path(script) -> None:
    ops, trades = script
    assert _run_recovered(ops, trades, fast=True) == _run_recovered(ops, trades, fast=False)


def test_in_sequence_trades_take_the_fast_path_and_build_the_reference_bars() -> None:
    """Only each symbol's first trade and the first of each interval go the general way."""
    rng = random.Random(5)
    trades = []
    for i in range(3000):
        ts = START + i * 200_000_000
        trades.append(Tick("binance", f"S{i % 3}/USDT", round(rng.uniform(99, 101), 2),
                           round(rng.uniform(0.001, 2), 3), rng.choice([Side.BUY, Side.SELL]),
                           10_000 + i, ts, ts + 5_000_000))
    ops: list[Op] = [("tick", t) for t in trades]
    ops.append(("advance", trades[-1].timestamp + 20 * MINUTE))
    events, state, general_adds = _run_direct(ops, fast=True)
    intervals = len({(t.symbol, t.timestamp // MINUTE) for t in trades})
    assert general_adds == intervals  # every other trade: the fast path
    assert (events, state) == _run_direct(ops, fast=False)[:2]
    monotonic = _Monotonic()
    pipeline = _pipeline(True, monotonic)
    for op in ops:
        _apply(op, pipeline, monotonic, pipeline.process)
    for tf in TIMEFRAMES:
        ref = reference_bars(trades, tf)
        for (symbol, tf_), history in pipeline.bars.items():
            if tf_ != tf:
                continue
            got = [b for b in history.bars(None) if not b.flags & BarFlag.EMPTY]
            expected = ref.loc[symbol]
            assert [b.open_time for b in got] == list(expected.index)
            for bar, (_, row) in zip(got, expected.iterrows(), strict=True):
                assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (
                    row.open, row.high, row.low, row.close, row.trade_count)
                assert math.isclose(bar.volume, row.volume, rel_tol=1e-12)
                assert math.isclose(bar.buy_volume, row.buy_volume, rel_tol=1e-12)
