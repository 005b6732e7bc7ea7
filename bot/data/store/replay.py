"""Replay recorded ticks through a :class:`TickPipeline`, as fast as possible or paced.

Replay feeds the very ``TickPipeline.process`` the live stream uses, so the bars
(and every event downstream: predictions, signals) are those the live session
built from the same trades. Ticks go in exchange order, ``(timestamp,
trade_id)``.

Where the data ends. A recording stops when its session stopped, often inside
an interval, and replay says so rather than guessing what came after. Each
series' data ends at the latest of: just after its last recorded trade, and the
end of the last bar the live session completed and recorded (a bar completes
only once its time is up, so the session saw every trade up to its end; bars
PARTIAL themselves are not counted). A ``end`` bound or an explicit ``until``
cuts it earlier. Bars ending by then complete as they did live; the bars the
end cuts are completed flagged PARTIAL; none is made after it
(:meth:`TickPipeline.finish`). A bar whose interval held the session's end
therefore never passes for a whole one, and no empty bar is invented for time
nobody recorded.

With ``speed`` set, replay keeps exchange time and wall time in the ratio
``speed`` (2.0 = twice real time), sleeping between ticks and advancing the
pipeline's clock meanwhile, so quiet intervals complete their bars on time as
they did live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import polars as pl
from tqdm import tqdm

from bot.data.errors import ConfigError
from bot.data.frames import time_bound_ns
from bot.data.models import BarFlag, Tick
from bot.data.pipeline import TickPipeline
from bot.data.store.bulk import ticks_from_pandas
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
                 end: TimeBound = None, until: int | None = None,
                 settle: Callable[[], Awaitable[None]] | None = None) -> ReplayResult:
    """Feed recorded ticks through ``pipeline`` and close the bars where the data ends.

    ``source`` is a :class:`TradeStore` (``series`` picks ``(venue, symbol)``
    pairs, all recorded ones by default), Tick records, or a tick DataFrame as
    the store returns it; ``start <= timestamp < end`` bound the trades.
    ``speed=None`` replays as fast as possible; a number paces replay at that
    multiple of real time. ``progress`` shows a progress bar on stderr. ``until`` (ns) is
    where every series' data ends when the caller knows better than the
    source (a downloaded day: its end); by default it is found as the module
    docstring says, and for ticks without a store it is just after each
    symbol's last trade. ``settle``, when given, is awaited after each trade
    that completed bars (and after the last bars), so async consumers finish
    with them before the next trade: a backtest's async predictor.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed={speed!r} must be > 0 (or None for as fast as possible)")
    start_ns, end_ns = time_bound_ns(start, "start"), time_bound_ns(end, "end")
    ticks = _load(source, series, start_ns, end_ns)
    if not isinstance(source, TradeStore):  # the store applied the bounds as it read
        ticks = _within(ticks, start_ns, end_ns)
    started = time.perf_counter()
    bars_before = pipeline.bars_completed
    refused = 0
    if ticks:
        recorded = (_recorded_coverage(source, ticks, pipeline.config.supported_timeframes,
                                       start_ns, end_ns)
                    if isinstance(source, TradeStore) and until is None else {})
        for (venue, symbol), (complete_from, _) in recorded.items():
            if complete_from is not None:
                pipeline.aggregator.configure_symbol(venue, symbol, complete_from=complete_from)
        refused = await _feed(ticks, pipeline, speed, progress, settle)
        for (venue, symbol), data_end in _data_ends(ticks, until, end_ns).items():
            recorded_end = recorded.get((venue, symbol), (None, None))[1]
            pipeline.finish(symbol, data_end if recorded_end is None
                            else max(data_end, recorded_end))
        if settle is not None:
            await settle()
    return ReplayResult(len(ticks), refused, pipeline.bars_completed - bars_before,
                        time.perf_counter() - started)


def select_series(store: TradeStore, symbols: Sequence[str] | None,
                  ) -> list[tuple[str, str]]:
    """The recorded ``(venue, symbol)`` pairs of ``symbols`` (any case; all when None).

    Raises ConfigError when the store's directory does not exist (a mistyped path), when
    the store holds no trades, or naming the symbols it does not hold beside those it does.
    """
    if not store.root.is_dir():
        raise ConfigError("store", str(store.root), "no such directory"
                          + (" (a file: give the store's directory)"
                             if store.root.exists() else ""))
    recorded = store.series()
    if not recorded:
        raise ConfigError("store", str(store.root), "holds no recorded trades")
    if not symbols:
        return recorded
    wanted = {s.upper() for s in symbols}
    chosen = [(venue, symbol) for venue, symbol in recorded if symbol.upper() in wanted]
    missing = wanted - {symbol.upper() for _, symbol in chosen}
    if missing:
        raise ConfigError("symbols", sorted(missing), "not recorded in this store; recorded: "
                          + ", ".join(symbol for _, symbol in recorded))
    return chosen


def _data_ends(ticks: list[Tick], until: int | None,
               end: int | None) -> dict[tuple[str, str], int]:
    """Where each series' trades are known to end: ``until``, or just after its last
    trade (within the ``end`` bound)."""
    ends: dict[tuple[str, str], int] = {}
    for tick in ticks:  # in time order: the last one wins
        ends[(tick.venue, tick.symbol)] = tick.timestamp + 1
    if until is not None:
        return dict.fromkeys(ends, until)
    return {key: min(at, end) if end is not None else at for key, at in ends.items()}


def _recorded_coverage(store: TradeStore, ticks: list[Tick], timeframes: Sequence[str],
                       start: int | None, end: int | None,
                       ) -> dict[tuple[str, str], tuple[int | None, int | None]]:
    """What the live session's recorded whole bars (not PARTIAL, of the replayed
    timeframes) say of each series' replayed span: ``(complete_from, end)``.

    A whole bar holding the first replayed trade means the session had every
    trade from the bar's open (after a warm-up, say); the end of the last whole
    bar, that it saw every trade up to there. Both stay inside the ``start`` and
    ``end`` bounds; None where no recorded bar tells.
    """
    first: dict[tuple[str, str], int] = {}
    for tick in ticks:
        first.setdefault((tick.venue, tick.symbol), tick.timestamp)
    reach = max(timeframe_ns(tf) for tf in timeframes)  # a bar holding a trade opens within
    out: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    for (venue, symbol), first_at in first.items():
        opens: list[int] = []
        ends: list[int] = []
        for timeframe in timeframes:
            whole = store.bars(venue, symbol, timeframe, first_at - reach, end,
                               as_polars=True).filter(
                (pl.col("flags") & int(BarFlag.PARTIAL)) == 0)
            if whole.height:
                holding = whole.filter((pl.col("open_time") <= first_at)
                                       & (pl.col("close_time") >= first_at))
                opens.extend(holding["open_time"].to_list())
                ends.append(int(whole.select(pl.col("close_time").max()).item()) + 1)
        complete_from = min(opens) if opens else None
        if complete_from is not None and start is not None:
            complete_from = max(complete_from, start)
        recorded_end = max(ends) if ends else None
        if recorded_end is not None and end is not None:
            recorded_end = min(recorded_end, end)
        out[(venue, symbol)] = (complete_from, recorded_end)
    return out


def _within(ticks: list[Tick], start: int | None, end: int | None) -> list[Tick]:
    """The ticks with ``start <= timestamp < end`` (either bound may be None)."""
    if start is None and end is None:
        return ticks
    return [t for t in ticks if (start is None or t.timestamp >= start)
            and (end is None or t.timestamp < end)]


def _load(source: TradeStore | Iterable[Tick] | pd.DataFrame | pl.DataFrame,
          series: Sequence[tuple[str, str]] | None, start: TimeBound,
          end: TimeBound) -> list[Tick]:
    """The ticks to replay, in exchange order."""
    if isinstance(source, TradeStore):
        pairs = series if series is not None else source.series()
        ticks = [t for venue, symbol in pairs
                 for t in source.tick_records(venue, symbol, start, end)]
    elif isinstance(source, pd.DataFrame | pl.DataFrame):
        frame = ticks_from_pandas(source) if isinstance(source, pd.DataFrame) else source
        ticks = rows_to_ticks(frame.iter_rows(named=True))
    else:
        ticks = list(source)
    ticks.sort(key=lambda t: (t.timestamp, t.trade_id if facts_of(t.venue).sequenced else 0))
    return ticks


async def _feed(ticks: list[Tick], pipeline: TickPipeline, speed: float | None,
                progress: bool, settle: Callable[[], Awaitable[None]] | None) -> int:
    """Process every tick, paced when ``speed`` is set; returns how many were refused.

    Unpaced, control returns to the event loop after every chunk, so async
    consumers (a recorder, the engine) keep up and nothing else starves.
    """
    process = pipeline.process
    refused = 0
    completed = pipeline.bars_completed
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
                if settle is not None and pipeline.bars_completed != completed:
                    completed = pipeline.bars_completed
                    await settle()
            bar.update(len(chunk))
            if speed is None:
                await asyncio.sleep(0)
    return refused
