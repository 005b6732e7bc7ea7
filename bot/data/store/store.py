"""``TradeStore``: read what the recorder wrote, as DataFrames, records or SQL.

Readers see only committed ``part-<n>.parquet`` files, so reading while the
recorder writes (or after it crashed) is safe. Rows are returned in exchange
order, ``(timestamp, trade_id)`` for ticks and ``open_time`` for bars, with
duplicates (the same trade recorded twice across a restart, say) removed.

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

from datetime import date, datetime
from pathlib import Path
from typing import Literal, overload
from urllib.parse import unquote

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

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

TimeBound = int | datetime | None
"""Nanoseconds since the epoch, or a datetime (naive ones are taken as UTC)."""


class TradeStore:
    """Read-only view of a recorder's root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

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

        Columns are :data:`~bot.data.store.layout.TICK_SCHEMA`'s (times in ns).
        """
        frame = self._read(TICKS, venue, symbol, "timestamp", start, end, TICK_SCHEMA)
        frame = (frame.unique("trade_id", keep="first", maintain_order=True)
                 .sort(*exchange_order(venue), maintain_order=True))
        return frame if as_polars else frame.to_pandas()

    @overload
    def bars(self, venue: str, symbol: str, timeframe: str, start: TimeBound = ...,
             end: TimeBound = ..., *, as_polars: Literal[False] = ...) -> pd.DataFrame: ...
    @overload
    def bars(self, venue: str, symbol: str, timeframe: str, start: TimeBound = ...,
             end: TimeBound = ..., *, as_polars: Literal[True]) -> pl.DataFrame: ...
    def bars(self, venue: str, symbol: str, timeframe: str, start: TimeBound = None,
             end: TimeBound = None, *, as_polars: bool = False) -> pd.DataFrame | pl.DataFrame:
        """Recorded bars of one series and timeframe with ``start <= open_time < end``."""
        frame = self._read(BARS, venue, symbol, "open_time", start, end, BAR_SCHEMA)
        frame = (frame.filter(pl.col("timeframe") == timeframe)
                 .unique("open_time", keep="last", maintain_order=True)
                 .sort("open_time"))
        return frame if as_polars else frame.to_pandas()

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
            frame = _load(files, TICK_SCHEMA, None)
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
        """Run ``query`` in DuckDB over views ``ticks`` and ``bars`` (see the module doc)."""
        with self._connect() as con:
            result = con.sql(query)
            return result.pl() if as_polars else result.df()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB with the two views (new files are seen on each call)."""
        con = duckdb.connect()
        for kind, schema in ((TICKS, TICK_SCHEMA), (BARS, BAR_SCHEMA)):
            if any(self.root.glob(f"kind={kind}/*/*/*/{PART_GLOB}")):
                pattern = str(self.root / f"kind={kind}" / "*" / "*" / "*" / PART_GLOB)
                con.execute(
                    f"CREATE VIEW {kind} AS SELECT * EXCLUDE (kind) FROM read_parquet("
                    f"'{_sql_string(pattern)}', hive_partitioning = true, union_by_name = true)")
            else:
                empty = schema.empty_table().append_column("date", pa.array([], pa.date32()))
                con.register(f"_{kind}_empty", empty)
                con.execute(f"CREATE VIEW {kind} AS SELECT * FROM _{kind}_empty")
        return con

    # -- reading files ----------------------------------------------------------------
    def _read(self, kind: str, venue: str, symbol: str, time_column: str, start: TimeBound,
              end: TimeBound, schema: pa.Schema) -> pl.DataFrame:
        lo, hi = _to_ns(start), _to_ns(end)
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
        return _load(files, schema, condition)


def _load(files: list[Path], schema: pa.Schema, condition: ds.Expression | None) -> pl.DataFrame:
    if not files:
        return pl.from_arrow(schema.empty_table())  # type: ignore[return-value]
    table = ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table(
        filter=condition)
    return pl.from_arrow(table)  # type: ignore[return-value]


def _to_ns(value: TimeBound) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(pd.Timestamp(value).tz_localize("UTC").value if value.tzinfo is None
               else pd.Timestamp(value).value)


def _sql_string(text: str) -> str:
    return text.replace("'", "''")
