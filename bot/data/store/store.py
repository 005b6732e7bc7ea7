"""``TradeStore``: read what the recorder wrote, as DataFrames, records or SQL.

Readers see only committed ``part-<n>.parquet`` files, so reading while the
recorder writes (or after it crashed) is safe. Rows are returned in exchange
order, ``(timestamp, trade_id)`` for ticks and ``open_time`` for bars, with
duplicates (the same trade recorded twice across a restart, say) removed.

A damaged part file (empty, truncated, not Parquet) does not stop a read: it is
skipped, named in a WARNING and listed by :meth:`TradeStore.unreadable_files`,
and the read goes on with the other files (see :mod:`bot.data.store.unreadable`).
Reading costs nothing more while every file is whole: files are tried one by
one only after a read of several failed.

SQL runs in DuckDB over the Parquet tree with Hive partitioning, through two
views, ``ticks`` and ``bars``, whose columns are the files' plus ``date``. For
example, hourly VWAP and trade count per symbol::

    store.sql('''
        SELECT symbol,
               time_bucket(INTERVAL 1 HOUR, make_timestamp(timestamp // 1000)) AS hour,
               sum(price * volume) / sum(volume) AS vwap,
               count(*) AS trades
        FROM ticks
        WHERE venue = 'binance' AND date >= '2025-01-01'
        GROUP BY ALL ORDER BY ALL
    ''')
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal, overload
from urllib.parse import unquote

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bot.data.frames import TimeBound, bar_frame, tick_frame, time_bound_ns
from bot.data.models import Bar, Tick
from bot.data.store.layout import (
    BAR_SCHEMA,
    BARS,
    PART_GLOB,
    TICK_SCHEMA,
    TICKS,
    date_partitions,
    exchange_order,
    part_files,
    rows_to_bars,
    rows_to_ticks,
    series_dir,
    utc_date,
)
from bot.data.store.unreadable import UnreadableFiles


class TradeStore:
    """Read-only view of a recorder's root directory."""

    def __init__(self, root: str | Path, *, move_unreadable: bool = False) -> None:
        """``move_unreadable`` moves damaged files to ``<root>/quarantine/`` (the writer's
        choice, see :mod:`bot.data.store.unreadable`); otherwise they are only skipped."""
        self.root = Path(root)
        self._unreadable = UnreadableFiles(self.root)
        self.move_unreadable = move_unreadable

    @property
    def move_unreadable(self) -> bool:
        return self._unreadable.move

    @move_unreadable.setter
    def move_unreadable(self, value: bool) -> None:
        self._unreadable.move = value

    def unreadable_files(self) -> list[dict[str, str | None]]:
        """The damaged files reads have met: ``path``, ``error`` and ``moved_to`` (or None)."""
        return self._unreadable.to_list()

    # -- DataFrames ----------------------------------------------------------------
    @overload
    def ticks(self, venue: str, symbol: str, start: TimeBound = ..., end: TimeBound = ...,
              *, as_polars: Literal[False] = ...) -> pd.DataFrame: ...
    @overload
    def ticks(self, venue: str, symbol: str, start: TimeBound = ..., end: TimeBound = ...,
              *, as_polars: Literal[True]) -> pl.DataFrame: ...
    def ticks(self, venue: str, symbol: str, start: TimeBound = None, end: TimeBound = None,
              *, as_polars: bool = False) -> pd.DataFrame | pl.DataFrame:
        """Ticks of one series with ``start <= timestamp < end``, in exchange order.

        ``start`` and ``end`` are times as pandas reads them (:data:`TimeBound`:
        ``"2025-01-01"``, a datetime, naive taken as UTC, nanoseconds as an int).
        pandas: indexed by UTC exchange time with the columns of
        :data:`~bot.data.frames.TICK_COLUMNS`; polars: the files' columns
        (:data:`~bot.data.store.layout.TICK_SCHEMA`, times in ns).
        """
        frame = self._read(TICKS, venue, symbol, "timestamp", start, end, TICK_SCHEMA)
        frame = (frame.unique("trade_id", keep="first", maintain_order=True)
                 .sort(*exchange_order(venue), maintain_order=True))
        return frame if as_polars else tick_frame(_columns(frame))

    @overload
    def bars(self, venue: str, symbol: str, timeframe: str, start: TimeBound = ...,
             end: TimeBound = ..., *, as_polars: Literal[False] = ...) -> pd.DataFrame: ...
    @overload
    def bars(self, venue: str, symbol: str, timeframe: str, start: TimeBound = ...,
             end: TimeBound = ..., *, as_polars: Literal[True]) -> pl.DataFrame: ...
    def bars(self, venue: str, symbol: str, timeframe: str, start: TimeBound = None,
             end: TimeBound = None, *, as_polars: bool = False) -> pd.DataFrame | pl.DataFrame:
        """Recorded bars of one series and timeframe with ``start <= open_time < end``.

        pandas: the shape of :meth:`StreamManager.get_bar_dataframe` (indexed by UTC
        open time, :data:`~bot.data.frames.BAR_COLUMNS`); polars: the files' columns
        (:data:`~bot.data.store.layout.BAR_SCHEMA`, times in ns).
        """
        frame = self._read(BARS, venue, symbol, "open_time", start, end, BAR_SCHEMA)
        frame = (frame.filter(pl.col("timeframe") == timeframe)
                 .unique("open_time", keep="last", maintain_order=True)
                 .sort("open_time"))
        return frame if as_polars else bar_frame(_columns(frame))

    # -- records -------------------------------------------------------------------
    def tick_records(self, venue: str, symbol: str, start: TimeBound = None,
                     end: TimeBound = None) -> list[Tick]:
        """Like :meth:`ticks`, as :class:`Tick` records (what replay feeds the pipeline)."""
        frame = self.ticks(venue, symbol, start, end, as_polars=True)
        return rows_to_ticks(frame.iter_rows(named=True))

    def bar_records(self, venue: str, symbol: str, timeframe: str, start: TimeBound = None,
                    end: TimeBound = None) -> list[Bar]:
        """Like :meth:`bars`, as :class:`Bar` records."""
        frame = self.bars(venue, symbol, timeframe, start, end, as_polars=True)
        return rows_to_bars(frame.iter_rows(named=True))

    def last_trade(self, venue: str, symbol: str) -> Tick | None:
        """The latest recorded trade of a series, by (exchange time, trade id), or None.

        Reads only the newest non-empty date partition: after a restart the
        manager warms up from the store and backfills from this trade on.
        """
        for _day, directory in reversed(date_partitions(series_dir(self.root, TICKS, venue,
                                                                   symbol))):
            files = part_files(directory)
            if not files:
                continue
            frame = self._load(files, TICK_SCHEMA, None)
            if frame.height:
                last = frame.sort(*exchange_order(venue), maintain_order=True).tail(1)
                return rows_to_ticks(last.iter_rows(named=True))[0]
        return None

    def series(self, kind: str = TICKS) -> list[tuple[str, str]]:
        """Every recorded ``(venue, symbol)`` of ``kind`` (``"ticks"`` or ``"bars"``)."""
        found = set()
        for directory in self.root.glob(f"kind={kind}/venue=*/symbol=*"):
            if any(directory.glob(f"date=*/{PART_GLOB}")):
                venue = directory.parent.name.removeprefix("venue=")
                symbol = directory.name.removeprefix("symbol=")
                found.add((unquote(venue), unquote(symbol)))
        return sorted(found)

    # -- SQL -----------------------------------------------------------------------
    @overload
    def sql(self, query: str, *, as_polars: Literal[False] = ...) -> pd.DataFrame: ...
    @overload
    def sql(self, query: str, *, as_polars: Literal[True]) -> pl.DataFrame: ...
    def sql(self, query: str, *, as_polars: bool = False) -> pd.DataFrame | pl.DataFrame:
        """Run ``query`` in DuckDB over views ``ticks`` and ``bars`` (see the module doc).

        When DuckDB fails for a reason other than the query's own, the part
        files are checked (footers first, then, if they are whole, every page),
        the damaged ones reported, and the query runs once more without them.
        """
        try:
            return self._run_sql(query, as_polars)
        except _QUERY_ERRORS:
            raise
        except duckdb.Error:
            if not self._find_damaged_files():
                raise  # every file is whole: the error is the query's
            return self._run_sql(query, as_polars)

    def _run_sql(self, query: str, as_polars: bool) -> pd.DataFrame | pl.DataFrame:
        with self._connect() as con:
            result = con.sql(query)
            return result.pl() if as_polars else result.df()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB with the two views (new files are seen on each call).

        The views read the tree by glob, or, while a damaged file known to this
        store is still in the tree, the list of the other files.
        """
        con = duckdb.connect()
        for kind, schema in ((TICKS, TICK_SCHEMA), (BARS, BAR_SCHEMA)):
            pattern = f"kind={kind}/*/*/*/{PART_GLOB}"
            source = None
            if self._unreadable.any_skipped:
                files = self._unreadable.usable(sorted(self.root.glob(pattern)))
                if files:
                    source = "[" + ", ".join(f"'{_sql_string(str(f))}'" for f in files) + "]"
            elif any(self.root.glob(pattern)):
                source = f"'{_sql_string(str(self.root / pattern))}'"
            if source is not None:
                con.execute(
                    f"CREATE VIEW {kind} AS SELECT * EXCLUDE (kind) FROM read_parquet("
                    f"{source}, hive_partitioning = true, union_by_name = true)")
            else:
                empty = schema.empty_table().append_column("date", pa.array([], pa.date32()))
                con.register(f"_{kind}_empty", empty)
                con.execute(f"CREATE VIEW {kind} AS SELECT * FROM _{kind}_empty")
        return con

    # -- reading files ----------------------------------------------------------------
    def _read(self, kind: str, venue: str, symbol: str, time_column: str, start: TimeBound,
              end: TimeBound, schema: pa.Schema) -> pl.DataFrame:
        lo, hi = time_bound_ns(start, "start"), time_bound_ns(end, "end")
        first_day = utc_date(lo) if lo is not None else date.min
        last_day = utc_date(hi) if hi is not None else date.max
        files = [f for day, directory in date_partitions(series_dir(self.root, kind, venue,
                                                                    symbol))
                 if first_day <= day <= last_day for f in part_files(directory)]
        condition = None
        if lo is not None:
            condition = ds.field(time_column) >= lo
        if hi is not None:
            upper = ds.field(time_column) < hi
            condition = upper if condition is None else condition & upper
        return self._load(files, schema, condition)

    def _load(self, files: list[Path], schema: pa.Schema,
              condition: ds.Expression | None) -> pl.DataFrame:
        """The rows of ``files`` matching ``condition``; damaged files are skipped and reported."""
        files = self._unreadable.usable(files)
        try:
            table = _scan(files, schema, condition)
        except _READ_ERRORS:  # a damaged (or vanished) file among them: one by one
            tables = []
            for path in files:
                try:
                    tables.append(_scan([path], schema, condition))
                except FileNotFoundError:  # removed meanwhile (retention, a writer moving it)
                    continue
                except _READ_ERRORS as exc:
                    self._unreadable.report(path, exc)
            table = pa.concat_tables(tables) if tables else schema.empty_table()
        return pl.from_arrow(table)  # type: ignore[return-value]

    def _find_damaged_files(self) -> bool:
        """Check every part file, footers first and pages only if the footers are whole;
        True when a damaged one was found (and reported)."""
        for read_pages in (False, True):
            found = [self._check_files(kind, read_pages) for kind in (TICKS, BARS)]
            if any(found):
                return True
        return False

    def _check_files(self, kind: str, read_pages: bool) -> bool:
        found = False
        for path in self._unreadable.usable(sorted(self.root.glob(
                f"kind={kind}/*/*/*/{PART_GLOB}"))):
            try:
                if read_pages:
                    for _batch in pq.ParquetFile(path).iter_batches():
                        pass
                else:
                    pq.read_metadata(path)
            except FileNotFoundError:
                continue
            except _READ_ERRORS as exc:
                self._unreadable.report(path, exc)
                found = True
        return found


# What reading a damaged Parquet file raises (pyarrow's errors; OSError for I/O).
_READ_ERRORS = (pa.ArrowException, OSError)
# DuckDB's errors that are the query's own, never a file's.
_QUERY_ERRORS = (duckdb.ParserException, duckdb.SyntaxException, duckdb.BinderException,
                 duckdb.CatalogException, duckdb.ConversionException,
                 duckdb.TypeMismatchException, duckdb.OutOfRangeException)


def _scan(files: list[Path], schema: pa.Schema, condition: ds.Expression | None) -> pa.Table:
    if not files:
        return schema.empty_table()
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table(
        filter=condition)


def _columns(frame: pl.DataFrame) -> dict[str, object]:
    """A polars frame's columns as NumPy arrays (list columns as arrays of lists)."""
    return {name: frame[name].to_numpy() if frame[name].dtype != pl.List
            else frame[name].to_list() for name in frame.columns}


def _sql_string(text: str) -> str:
    return text.replace("'", "''")
