"""``Recorder``: an event-bus consumer that writes ticks and completed bars to Parquet.

The bus handlers only append to in-memory buffers (a deque append, so the hot
path pays next to nothing). A background task flushes the buffers every
``flush_interval`` seconds, sooner once ``flush_rows`` rows are waiting, and at
:meth:`Recorder.stop`. Each flush writes one new file per partition touched,
atomically (see :mod:`bot.data.store.files`), so a crash loses at most what
arrived since the last flush and never leaves a corrupt file.

Why the write runs in a thread (``asyncio.to_thread``): a flush of 100,000 ticks
spends ~100 ms building columns and compressing, and ``fsync`` can take far
longer on a busy disk. Compression and I/O release the GIL, and the column
building yields it every switch interval (5 ms), so the event loop keeps
reading sockets and completing bars while the file is written. Swapping the
buffers before the write means the thread and the loop never share a list.

When the disk refuses (full, read-only, path not a directory), the error is a
:class:`~bot.data.store.files.StoreError` naming the path and the cause; it is
counted, logged (rate-limited) and shown by :meth:`Recorder.health`. Rows not
written go back to the buffer and are retried at the next flush; the buffer is
bounded by ``max_buffered_rows`` per kind, beyond which the oldest rows are
dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bot.data.events import EventBus, StreamEvent
from bot.data.models import Bar, Tick
from bot.data.store.files import (
    StoreError,
    next_part_number,
    remove_partitions_before,
    remove_temp_files,
    write_parquet_atomic,
)
from bot.data.store.layout import (
    BARS,
    TICKS,
    bars_to_table,
    partition_dir,
    ticks_to_table,
    utc_date,
)
from bot.data.throttle import LogThrottle

logger = logging.getLogger(__name__)

_NS_PER_DAY = 86_400 * 10**9
_RETENTION_PERIOD_NS = 3600 * 10**9  # retention runs at start, then hourly


@dataclass
class RecorderCounters:
    """What the recorder did and failed to do, for the manager's metrics."""

    flushes: int = 0
    files_written: int = 0
    ticks_written: int = 0
    bars_written: int = 0
    write_errors: int = 0
    dropped_ticks: int = 0
    dropped_bars: int = 0
    partitions_deleted: int = 0


@dataclass
class _FlushResult:
    files: int = 0
    ticks: int = 0
    bars: int = 0
    unwritten_ticks: list[Tick] = field(default_factory=list)
    unwritten_bars: list[Bar] = field(default_factory=list)
    error: StoreError | None = None


class Recorder:
    """Buffers ticks and completed bars from an :class:`EventBus` and writes them as Parquet.

    Use :meth:`attach` to subscribe to a bus, ``await start()`` to run the
    periodic flush, and ``await stop()`` to write what is left. One recorder
    per root directory.
    """

    def __init__(self, root: str | Path, *, flush_interval: float = 5.0,
                 flush_rows: int = 100_000, max_buffered_rows: int = 2_000_000,
                 retention_days: int | None = None, compression: str = "zstd",
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        if flush_interval <= 0:
            raise ValueError(f"flush_interval={flush_interval!r} must be > 0 seconds")
        if flush_rows < 1 or max_buffered_rows < flush_rows:
            raise ValueError(f"need 1 <= flush_rows ({flush_rows}) <= max_buffered_rows "
                             f"({max_buffered_rows})")
        if retention_days is not None and retention_days < 1:
            raise ValueError(f"retention_days={retention_days!r} must be >= 1 or None")
        self.root = Path(root)
        self.flush_interval = flush_interval
        self.flush_rows = flush_rows
        self.max_buffered_rows = max_buffered_rows
        self.retention_days = retention_days
        self.compression = compression
        self.counters = RecorderCounters()
        self._clock_ns = clock_ns
        self._ticks: deque[Tick] = deque(maxlen=max_buffered_rows)
        self._bars: deque[Bar] = deque(maxlen=max_buffered_rows)
        self._next_part: dict[Path, int] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_error: StoreError | None = None
        self._last_flush_ns: int | None = None
        self._last_retention_ns: int | None = None
        self._throttle = LogThrottle(logger)
        self._stored_up_to: dict[str, tuple[int, int]] = {}

    # -- input ---------------------------------------------------------------------
    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Subscribe to ``bus``'s ticks and completed bars; returns a function that detaches."""
        off_tick = bus.on_tick(self._on_tick_event)
        off_bar = bus.on_bar_complete(self.record_bar)

        def detach() -> None:
            off_tick()
            off_bar()
        return detach

    def _on_tick_event(self, event: StreamEvent) -> None:
        self.record_tick(event.data)

    def resume_after(self, trade: Tick) -> None:
        """Skip ticks of ``trade``'s symbol up to it, by (exchange time, id): already stored.

        After a restart the manager replays the stored trades of the current
        interval through the pipeline; they are not written twice.
        """
        self._stored_up_to[trade.symbol] = (trade.timestamp, trade.trade_id)

    def record_tick(self, tick: Tick) -> None:
        """Buffer one tick (the oldest buffered tick is dropped and counted when full)."""
        if self._stored_up_to:
            floor = self._stored_up_to.get(tick.symbol)
            if floor is not None and (tick.timestamp, tick.trade_id) <= floor:
                return
        buf = self._ticks
        if len(buf) == self.max_buffered_rows:
            self.counters.dropped_ticks += 1
        buf.append(tick)
        if len(buf) + len(self._bars) >= self.flush_rows:
            self._wake.set()

    def record_bar(self, bar: Bar) -> None:
        """Buffer one completed bar (the oldest is dropped and counted when full)."""
        buf = self._bars
        if len(buf) == self.max_buffered_rows:
            self.counters.dropped_bars += 1
        buf.append(bar)
        if len(buf) + len(self._ticks) >= self.flush_rows:
            self._wake.set()

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Clear a crashed run's temporary files, apply retention, start the flush task."""
        if self._task is not None:
            return
        if self.root.is_dir():
            await asyncio.to_thread(remove_temp_files, self.root)
        await self.apply_retention()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder-flush")

    async def stop(self) -> None:
        """Let the flush task finish its write and end, then write what is buffered.

        The task is asked to stop rather than cancelled, so a write in progress
        completes and is accounted for. Failures are counted, not raised.
        """
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            self._wake.set()
            await task
            self._stopping.clear()
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            await self.flush()
            if self._last_error is not None:
                # A failing disk is retried once an interval, not on every row trigger.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.flush_interval)
            now = self._clock_ns()
            if (self._last_retention_ns is None
                    or now - self._last_retention_ns >= _RETENTION_PERIOD_NS):
                await self.apply_retention()

    # -- writing -------------------------------------------------------------------
    async def flush(self) -> int:
        """Write every buffered row now; returns how many rows were written.

        On failure the unwritten rows return to the front of the buffer, the
        error is counted and logged, and :meth:`health` reports it; it is not
        raised, so a full disk never stops the stream.
        """
        async with self._lock:
            ticks, self._ticks = list(self._ticks), deque(maxlen=self.max_buffered_rows)
            bars, self._bars = list(self._bars), deque(maxlen=self.max_buffered_rows)
            if not ticks and not bars:
                return 0
            write = asyncio.ensure_future(asyncio.to_thread(self._write, ticks, bars))
            try:
                result = await asyncio.shield(write)
            except asyncio.CancelledError:
                # The thread cannot be stopped: keep the lock and finish the books before
                # leaving, or a later flush could reuse the part number being written.
                self._account(await write)
                raise
            self._account(result)
            return result.ticks + result.bars

    def _account(self, result: _FlushResult) -> None:
        """Count a finished write; requeue what it could not write ahead of newer rows."""
        c = self.counters
        c.flushes += 1
        c.files_written += result.files
        c.ticks_written += result.ticks
        c.bars_written += result.bars
        self._last_flush_ns = self._clock_ns()
        if result.error is None:
            self._last_error = None
            return
        self._failed(result.error)
        self._ticks, dropped_ticks = _requeue(result.unwritten_ticks, self._ticks)
        self._bars, dropped_bars = _requeue(result.unwritten_bars, self._bars)
        c.dropped_ticks += dropped_ticks
        c.dropped_bars += dropped_bars

    def _write(self, ticks: list[Tick], bars: list[Bar]) -> _FlushResult:
        """Write one file per partition (runs in a worker thread).

        After the first failure the remaining partitions are not tried: the
        cause (full disk, bad root) almost always applies to all of them.
        """
        result = _FlushResult()
        for directory, rows in _group(self.root, TICKS, ticks, lambda t: t.timestamp):
            if result.error is None:
                result.error = self._write_partition(directory, ticks_to_table, rows)
            if result.error is None:
                result.files += 1
                result.ticks += len(rows)
            else:
                result.unwritten_ticks.extend(rows)
        for directory, rows in _group(self.root, BARS, bars, lambda b: b.open_time):
            if result.error is None:
                result.error = self._write_partition(directory, bars_to_table, rows)
            if result.error is None:
                result.files += 1
                result.bars += len(rows)
            else:
                result.unwritten_bars.extend(rows)
        return result

    def _write_partition(self, directory: Path, to_table: Callable[[Any], pa.Table],
                         rows: list[Any]) -> StoreError | None:
        """Write ``rows`` as the partition's next part file; the error instead of raising it."""
        number = self._next_part.get(directory)
        try:
            if number is None:
                number = next_part_number(directory) if directory.is_dir() else 0
            write_parquet_atomic(to_table(rows), directory / f"part-{number}.parquet",
                                 self.compression)
        except StoreError as exc:
            return exc
        except OSError as exc:  # listing the partition failed
            return StoreError("list", directory, exc)
        self._next_part[directory] = number + 1
        return None

    def _failed(self, exc: StoreError) -> None:
        self._last_error = exc
        self.counters.write_errors += 1
        self._throttle.log(f"write:{exc.path}", logging.ERROR,
                           "recorder: %s; %d ticks and %d bars kept in memory for a retry",
                           exc, len(self._ticks), len(self._bars))

    # -- retention -----------------------------------------------------------------
    async def apply_retention(self) -> list[Path]:
        """Delete date partitions older than ``retention_days`` (UTC days before today)."""
        now = self._clock_ns()
        self._last_retention_ns = now
        if self.retention_days is None or not self.root.is_dir():
            return []
        cutoff: date = utc_date(now) - timedelta(days=self.retention_days)
        try:
            removed = await asyncio.to_thread(remove_partitions_before, self.root, cutoff)
        except OSError as exc:
            self._failed(StoreError("delete old partitions under", self.root, exc))
            return []
        self.counters.partitions_deleted += len(removed)
        return removed

    # -- state -----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Plain dict for the HEALTH event: ``ok`` is False while the last write failed."""
        err = self._last_error
        return {
            "ok": err is None,
            "root": str(self.root),
            "buffered_ticks": len(self._ticks),
            "buffered_bars": len(self._bars),
            "last_flush_ns": self._last_flush_ns,
            "last_error": None if err is None else str(err),
            "last_error_path": None if err is None else str(err.path),
            **vars(self.counters),
        }


def _group(root: Path, kind: str, rows: Sequence[Any],
           time_of: Callable[[Any], int]) -> list[tuple[Path, list[Any]]]:
    """Rows split by partition (venue, symbol, UTC day), each in arrival order."""
    groups: dict[tuple[str, str, int], list[Any]] = {}
    for row in rows:
        key = (row.venue, row.symbol, time_of(row) // _NS_PER_DAY)
        bucket = groups.get(key)
        if bucket is None:
            bucket = groups[key] = []
        bucket.append(row)
    return [(partition_dir(root, kind, venue, symbol, utc_date(day * _NS_PER_DAY)), bucket)
            for (venue, symbol, day), bucket in groups.items()]


def _requeue(unwritten: list[Any], arrived: deque[Any]) -> tuple[deque[Any], int]:
    """The unwritten rows followed by those that arrived meanwhile, within the bound.

    Returns the new buffer and how many of the oldest rows the bound forced out.
    """
    cap = arrived.maxlen
    assert cap is not None
    dropped = max(0, len(unwritten) + len(arrived) - cap)
    buffer = deque(unwritten, maxlen=cap)
    buffer.extend(arrived)
    return buffer, dropped
