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

A row the store cannot hold (a trade id or time beyond int64, a NaN where an
integer belongs) is refused alone, counted and named in :meth:`Recorder.health`;
the rest of its batch is written (:mod:`bot.data.store.rows`). Nothing a flush
meets stops the flush task: an unexpected error is logged and reported like a
failed write, its rows kept for the next flush. Should the task end all the
same, health says so, and :meth:`Recorder.stop` still writes what is buffered;
``stop()`` and ``health()`` never raise.

One writer per root: :meth:`Recorder.start` takes the store's writer lock
(:mod:`bot.data.store.lock`) and holds it until :meth:`Recorder.stop`; a second
recorder on the same root, in this process or another, fails at once with
:class:`~bot.data.store.lock.StoreLocked`. A recorder used without ``start()``
takes the lock for each flush only. Part files are never overwritten in any case.
The recorder's :attr:`Recorder.store` reads its root and, while the lock is
held, moves damaged part files it meets to ``<root>/quarantine/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
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
    write_part,
)
from bot.data.store.layout import part_number, utc_date
from bot.data.store.lock import StoreLocked, WriterLock
from bot.data.store.rows import BAR_ROWS, TICK_ROWS, RefusedRow, RowKind, by_partition, to_table
from bot.data.store.store import TradeStore
from bot.data.throttle import LogThrottle

logger = logging.getLogger(__name__)

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
    unwritable_ticks: int = 0
    unwritable_bars: int = 0
    partitions_deleted: int = 0
    flush_task_errors: int = 0


@dataclass
class _FlushResult:
    files: int = 0
    ticks: int = 0
    bars: int = 0
    unwritten_ticks: list[Tick] = field(default_factory=list)
    unwritten_bars: list[Bar] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)
    error: Exception | None = None  # a StoreError, or a fault that is not the disk's
    error_path: Path | None = None


class Recorder:
    """Buffers ticks and completed bars from an :class:`EventBus` and writes them as Parquet.

    Use :meth:`attach` to subscribe to a bus, ``await start()`` to take the
    store's writer lock and run the periodic flush, and ``await stop()`` to
    write what is left and give the lock up. One recorder per root directory.
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
        self.store = TradeStore(self.root)
        """Reads this recorder's root; moves damaged files aside while the lock is held."""
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
        self._task_failure: str | None = None
        self._writer_lock = WriterLock(self.root)
        self._keep_lock = False  # between start() and stop(); otherwise taken per flush
        self._last_error: str | None = None
        self._last_error_path: Path | None = None
        self._last_refused: RefusedRow | None = None
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
        """Take the writer lock, clear a crashed run's temporary files, apply retention,
        start the flush task.

        Raises :class:`~bot.data.store.lock.StoreLocked` when another writer
        holds the store. A root that cannot be used (a file, a read-only file
        system) does not raise: it is reported like a failed write, and every
        flush tries again.
        """
        if self._task is not None:
            return
        self._keep_lock = True
        try:
            await asyncio.to_thread(self._take_lock)
        except StoreLocked:
            self._keep_lock = False
            raise
        except StoreError as exc:
            self._failed(exc, exc.path)
        await self.apply_retention()
        self._task_failure = None
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recorder-flush")
        self._task.add_done_callback(self._flush_task_ended)

    async def stop(self) -> None:
        """Let the flush task finish its write and end, write what is buffered, release the lock.

        The task is asked to stop rather than cancelled, so a write in progress
        completes and is accounted for. Nothing the store does makes it raise:
        failures are counted and shown by :meth:`health`.
        """
        task, self._task = self._task, None
        try:
            if task is not None:
                self._stopping.set()
                self._wake.set()
                await asyncio.wait([task])  # however it ended; an unexpected end was reported
                self._stopping.clear()
            await self.flush()
        finally:
            if self._keep_lock:
                self._keep_lock = False
                self.store.move_unreadable = False
                self._writer_lock.release()

    def _take_lock(self) -> None:
        """Hold the writer lock (in a worker thread); from start(), also clear a crashed
        writer's temporary files and let the store move damaged files aside."""
        if self._writer_lock.held:
            return
        self._writer_lock.acquire()
        if self._keep_lock:
            self.store.move_unreadable = True
            with contextlib.suppress(OSError):  # a leftover that stays is never read anyway
                remove_temp_files(self.root)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                await self.flush()
                now = self._clock_ns()
                if (self._last_retention_ns is None
                        or now - self._last_retention_ns >= _RETENTION_PERIOD_NS):
                    await self.apply_retention()
            except Exception as exc:  # one round's fault: reported, the next round goes on
                self.counters.flush_task_errors += 1
                self._failed(exc, self.root)
            if self._last_error is not None:
                # A failing disk is retried once an interval, not on every row trigger.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.flush_interval)

    def _flush_task_ended(self, task: asyncio.Task[None]) -> None:
        """The flush task ended; unless stop() ended it, health says so from now on."""
        if task is not self._task:
            return
        cause = "it was cancelled" if task.cancelled() else repr(task.exception())
        self._task_failure = (f"the flush task of {self.root} ended unexpectedly ({cause}); "
                              "rows are buffered but not written until stop()")
        logger.error("recorder: %s", self._task_failure)

    # -- writing -------------------------------------------------------------------
    async def flush(self) -> int:
        """Write every buffered row now; returns how many rows were written.

        On failure the unwritten rows return to the front of the buffer, the
        error is counted and logged, and :meth:`health` reports it; it is not
        raised, so a full disk never stops the stream. Rows the store cannot
        hold are left out, counted and reported.
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
        for refused in result.refused:
            self._refused(refused)
        if result.error is None:
            self._last_error = None
            return
        self._ticks, dropped_ticks = _requeue(result.unwritten_ticks, self._ticks)
        self._bars, dropped_bars = _requeue(result.unwritten_bars, self._bars)
        c.dropped_ticks += dropped_ticks
        c.dropped_bars += dropped_bars
        self._failed(result.error, result.error_path or self.root)

    def _write(self, ticks: list[Tick], bars: list[Bar]) -> _FlushResult:
        """Write one file per partition (runs in a worker thread); never raises.

        After the first failure the remaining partitions are not tried: the
        cause (full disk, bad root) almost always applies to all of them.
        """
        result = _FlushResult()
        try:
            self._take_lock()
        except Exception as exc:  # locked by another writer, root unusable: nothing written
            result.error = exc
            result.error_path = exc.path if isinstance(exc, StoreError) else self.root
            result.unwritten_ticks, result.unwritten_bars = ticks, bars
            return result
        try:
            result.ticks = self._write_kind(TICK_ROWS, ticks, result, result.unwritten_ticks)
            result.bars = self._write_kind(BAR_ROWS, bars, result, result.unwritten_bars)
        finally:
            if not self._keep_lock:
                self._writer_lock.release()
        return result

    def _write_kind(self, kind: RowKind, rows: list[Any], result: _FlushResult,
                    unwritten: list[Any]) -> int:
        """Write ``rows`` of one kind, a file per partition; returns how many were written.

        Rows the store cannot hold go to ``result.refused``; rows of partitions
        not written (after a failure) to ``unwritten``.
        """
        groups, refused = by_partition(self.root, kind, rows)
        result.refused.extend(refused)
        written = 0
        for directory, part in groups:
            if result.error is not None:
                unwritten.extend(part)
                continue
            bad: list[RefusedRow] = []
            try:
                table, bad = to_table(kind, part)
                if table is not None:
                    self._write_partition(directory, table)
                    result.files += 1
                    written += table.num_rows
            except Exception as exc:  # the disk's, or a fault nobody foresaw: rows kept
                result.error = exc
                result.error_path = exc.path if isinstance(exc, StoreError) else directory
                left_out = {id(r.row) for r in bad}
                unwritten.extend(row for row in part if id(row) not in left_out)
            result.refused.extend(bad)
        return written

    def _write_partition(self, directory: Path, table: pa.Table) -> None:
        """Write ``table`` as the partition's next part file; raises StoreError."""
        number = self._next_part.get(directory)
        if number is None:
            try:
                number = next_part_number(directory) if directory.is_dir() else 0
            except OSError as exc:
                raise StoreError("list", directory, exc) from exc
        path = write_part(table, directory, number, self.compression)
        self._next_part[directory] = (part_number(path) or number) + 1

    def _failed(self, exc: Exception, path: Path) -> None:
        """Record a failed write (or round of the flush task): health shows it until a
        write succeeds."""
        known = isinstance(exc, StoreError)
        self._last_error = str(exc) if known else \
            f"cannot write {path}: {type(exc).__name__}: {exc}"
        self._last_error_path = path
        self.counters.write_errors += 1
        self._throttle.log(f"write:{path}", logging.ERROR,
                           "recorder: %s; %d ticks and %d bars kept in memory for a retry",
                           self._last_error, len(self._ticks), len(self._bars),
                           exc_info=None if known else exc)

    def _refused(self, refused: RefusedRow) -> None:
        """Count a row the store cannot hold; the WARNING names the row and the field."""
        if refused.kind == TICK_ROWS.name:
            self.counters.unwritable_ticks += 1
        else:
            self.counters.unwritable_bars += 1
        self._last_refused = refused
        self._throttle.log(f"refused:{refused.kind}", logging.WARNING,
                           "recorder: a row of %s cannot be stored and is left out: %s (%s)",
                           refused.kind, refused.reason, refused.to_dict()["row"])

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
            self._failed(StoreError("delete old partitions under", self.root, exc), self.root)
            return []
        self.counters.partitions_deleted += len(removed)
        return removed

    # -- state -----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Plain dict for the HEALTH event (see the README's store section); never raises.

        ``ok`` is False while the last write failed or after the flush task
        ended unexpectedly; ``problems`` says why, a sentence each. Rows left
        out (``unwritable_*``, ``last_unwritable``) and damaged files met
        (``unreadable_files``) are listed but do not make it False: the store
        goes on with the rest.
        """
        problems = [p for p in (self._last_error, self._task_failure) if p is not None]
        task = self._task
        state = "failed" if self._task_failure is not None else \
            "running" if task is not None and not task.done() else "stopped"
        return {
            "ok": not problems,
            "problems": problems,
            "root": str(self.root),
            "flush_task": state,
            "buffered_ticks": len(self._ticks),
            "buffered_bars": len(self._bars),
            "last_flush_ns": self._last_flush_ns,
            "last_error": self._last_error,
            "last_error_path": None if self._last_error is None else str(self._last_error_path),
            "last_unwritable": None if self._last_refused is None else
            self._last_refused.to_dict(),
            "unreadable_files": self.store.unreadable_files(),
            **vars(self.counters),
        }


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
