"""Replay recorded ticks through a :class:`TickPipeline`, as fast as possible or paced.

Replay feeds the very ``TickPipeline.process`` the live stream uses, so the bars
(and every event downstream: predictions, signals) are those the live session
built from the same trades. Ticks go in exchange order, ``(timestamp,
trade_id)``. At the end the pipeline's clock is advanced to ``until`` (by
default the end of the longest timeframe's bar holding the last trade) so the
last bars complete, as they would have live once their time was up.

With ``speed`` set, replay keeps exchange time and wall time in the ratio
``speed`` (2.0 = twice real time), sleeping between ticks and advancing the
pipeline's clock meanwhile, so quiet intervals complete their bars on time as
they did live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import polars as pl
from tqdm import tqdm

from bot.data.models import Tick
from bot.data.pipeline import TickPipeline
from bot.data.store.layout import rows_to_ticks
from bot.data.store.store import TimeBound, TradeStore
from bot.data.timeframes import timeframe_ns
from bot.data.venues.registry import facts_of

_CHUNK = 10_000  # ticks between yields to the event loop (and progress updates)
_MIN_SLEEP_S = 0.001


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: ticks fed, ticks the pipeline refused, bars completed."""

    ticks: int
    refused: int
    bars: int
    wall_seconds: float


async def replay(source: TradeStore | Iterable[Tick] | pd.DataFrame | pl.DataFrame,
                 pipeline: TickPipeline, *, speed: float | None = None, progress: bool = True,
                 series: Sequence[tuple[str, str]] | None = None, start: TimeBound = None,
                 end: TimeBound = None, until: int | None = None) -> ReplayResult:
    """Feed recorded ticks through ``pipeline`` and complete the last bars.

    ``source`` is a :class:`TradeStore` (``series`` picks ``(venue, symbol)``
    pairs, all recorded ones by default; ``start``/``end`` bound the time),
    Tick records, or a tick DataFrame as the store returns it. ``speed=None``
    replays as fast as possible; a number paces replay at that multiple of
    real time. ``progress`` shows a progress bar on stderr.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed={speed!r} must be > 0 (or None for as fast as possible)")
    ticks = _load(source, series, start, end)
    started = time.perf_counter()
    bars_before = pipeline.bars_completed
    refused = 0
    if ticks:
        refused = await _feed(ticks, pipeline, speed, progress)
        if until is None:
            longest = max(timeframe_ns(tf) for tf in pipeline.config.supported_timeframes)
            last = ticks[-1].timestamp
            until = last - last % longest + longest
        pipeline.advance(until + pipeline.aggregator.grace_ns)
    return ReplayResult(len(ticks), refused, pipeline.bars_completed - bars_before,
                        time.perf_counter() - started)


def _load(source: TradeStore | Iterable[Tick] | pd.DataFrame | pl.DataFrame,
          series: Sequence[tuple[str, str]] | None, start: TimeBound,
          end: TimeBound) -> list[Tick]:
    """The ticks to replay, in exchange order."""
    if isinstance(source, TradeStore):
        pairs = series if series is not None else source.series()
        ticks = [t for venue, symbol in pairs
                 for t in source.tick_records(venue, symbol, start, end)]
    elif isinstance(source, pd.DataFrame | pl.DataFrame):
        frame = pl.from_pandas(source) if isinstance(source, pd.DataFrame) else source
        ticks = rows_to_ticks(frame.iter_rows(named=True))
    else:
        ticks = list(source)
    ticks.sort(key=lambda t: (t.timestamp, t.trade_id if facts_of(t.venue).sequenced else 0))
    return ticks


async def _feed(ticks: list[Tick], pipeline: TickPipeline, speed: float | None,
                progress: bool) -> int:
    """Process every tick, paced when ``speed`` is set; returns how many were refused.

    Unpaced, control returns to the event loop after every chunk, so async
    consumers (a recorder, the engine) keep up and nothing else starves.
    """
    process = pipeline.process
    refused = 0
    t0_exchange = ticks[0].timestamp
    t0_wall = time.monotonic()
    with tqdm(total=len(ticks), unit="tick", disable=not progress, mininterval=0.5,
              desc="replay") as bar:
        for begin in range(0, len(ticks), _CHUNK):
            chunk = ticks[begin:begin + _CHUNK]
            for tick in chunk:
                if speed is not None:
                    wait = t0_wall + (tick.timestamp - t0_exchange) / 1e9 / speed \
                        - time.monotonic()
                    if wait > _MIN_SLEEP_S:
                        # The clock of the replayed session now: complete quiet bars on time.
                        pipeline.advance(tick.timestamp - int(wait * speed * 1e9))
                        await asyncio.sleep(wait)
                if not process(tick):
                    refused += 1
            bar.update(len(chunk))
            if speed is None:
                await asyncio.sleep(0)
    return refused
