"""Shared helpers of the store tests: live recording and field-by-field bar comparison."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from bot.data.aggregation import BarAggregator
from bot.data.config import StreamManagerConfig
from bot.data.gate import TickGate
from bot.data.models import Bar, Tick
from bot.data.pipeline import TickPipeline
from bot.data.store import Recorder
from bot.data.store.layout import rows_to_bars
from bot.data.venues.registry import facts_of

TIMEFRAMES = ["1m", "5m", "15m"]
SUM_FIELDS = ("volume", "quote_volume", "buy_volume", "sell_volume", "buy_quote_volume")
LONGEST_NS = 900 * 10**9


def until_for(ticks: Sequence[Tick], length_ns: int = LONGEST_NS) -> int:
    """End of the longest timeframe's bar holding the last trade (replay's and bulk's default)."""
    last = max(t.timestamp for t in ticks)
    return last - last % length_ns + length_ns


async def record_live(ticks: Sequence[Tick], root: Path, **recorder_options: object,
                      ) -> tuple[Recorder, list[Bar]]:
    """Feed ``ticks`` through a TickPipeline with a Recorder attached, as a live session would.

    The clock is advanced to the end of the last 15m bar at the end; returns the
    stopped recorder and the bars the bus announced.
    """
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=TIMEFRAMES))
    recorder = Recorder(root, **recorder_options)  # type: ignore[arg-type]
    recorder.attach(pipeline.bus)
    live: list[Bar] = []
    pipeline.bus.on_bar_complete(live.append)
    await recorder.start()
    for tick in ticks:
        pipeline.process(tick)
    pipeline.advance(until_for(ticks) + pipeline.aggregator.grace_ns)
    await recorder.stop()
    return recorder, live


def stream_bars(ticks: Sequence[Tick], timeframes: Sequence[str] = TIMEFRAMES, *,
                emit_empty: bool = True, complete_from: int | None = None,
                until: int | None = None) -> list[Bar]:
    """What the stream completes for ``ticks`` in the given order (the gate, then the
    BarAggregator) when their data ends at ``until`` (default: just after the last valid
    trade), closed there as replay closes a recording (``finish``)."""
    valid = [t for t in ticks if t.price > 0 and t.volume > 0]
    end = until if until is not None else max(t.timestamp for t in valid) + 1
    gate = TickGate()
    agg = BarAggregator(timeframes, emit_empty=emit_empty)
    facts = facts_of(ticks[0].venue)  # the policy the pipeline gives the symbol
    agg.configure_symbol(ticks[0].venue, ticks[0].symbol, emit_empty=facts.empty_bars,
                         sequenced=facts.sequenced, complete_from=complete_from)
    out: list[Bar] = []
    for tick in ticks:
        if tick.timestamp < end:
            for admitted in gate.passing(tick):
                out.extend(agg.add(admitted) or ())
    out.extend(agg.finish(ticks[0].symbol, end))
    return out


def frame_bars(frame: pl.DataFrame) -> list[Bar]:
    return rows_to_bars(frame.iter_rows(named=True))


def assert_bars_equal(expected: Sequence[Bar], actual: Sequence[Bar]) -> None:
    """Every field equal; the float sums to 1e-9 relative (their order of addition may differ)."""
    assert [b.open_time for b in actual] == [b.open_time for b in expected]
    for want, got in zip(expected, actual, strict=True):
        for name in Bar.__struct_fields__:
            a, b = getattr(want, name), getattr(got, name)
            if name in SUM_FIELDS:
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (name, want, got)
            else:
                assert a == b, (name, want, got)
