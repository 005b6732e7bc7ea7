"""Buffered rows to Arrow tables, one per partition, refusing the rows that cannot be written.

Whatever is published on the bus reaches the recorder: a trade id of 2**63, a
time beyond int64 nanoseconds, a NaN where an integer belongs, a value of the
wrong type. One such row must cost neither the rest of its flush nor the flush
task. So a row whose partition (the UTC date of its time) cannot be named is
refused alone, and each partition's rows are converted in one go (the fast
path); only when that fails are they split in halves until each failing row is
alone: k bad rows among n cost O(k log n) conversions, and the good rows of
the batch are written. A refused row comes back with the field and value at
fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from bot.data.store.layout import (
    BAR_SCHEMA,
    BARS,
    TICK_SCHEMA,
    TICKS,
    bar_columns,
    partition_dir,
    tick_columns,
    utc_date,
)

_NS_PER_DAY = 86_400 * 10**9
_REPR_CHARS = 300


@dataclass(frozen=True)
class RowKind:
    """What a kind of row becomes on disk."""

    name: str  # the kind= partition, "ticks" or "bars"
    schema: pa.Schema
    columns: Callable[[Sequence[Any]], dict[str, list[Any]]]
    time_field: str  # its UTC date names the row's date= partition


TICK_ROWS = RowKind(TICKS, TICK_SCHEMA, tick_columns, "timestamp")
BAR_ROWS = RowKind(BARS, BAR_SCHEMA, bar_columns, "open_time")


@dataclass(frozen=True)
class RefusedRow:
    """A row the store cannot hold, and why."""

    kind: str
    row: Any
    reason: str

    def to_dict(self) -> dict[str, str]:
        text = repr(self.row)
        if len(text) > _REPR_CHARS:
            text = text[:_REPR_CHARS] + "..."
        return {"kind": self.kind, "row": text, "reason": self.reason}


def by_partition(root: Path, kind: RowKind, rows: Sequence[Any],
                 ) -> tuple[list[tuple[Path, list[Any]]], list[RefusedRow]]:
    """Rows split by partition (venue, symbol, UTC day), each in arrival order, and the
    rows no partition can hold."""
    groups: dict[tuple[Any, Any, Any], list[Any]] = {}
    refused: list[RefusedRow] = []
    for row in rows:
        try:
            key = (row.venue, row.symbol, getattr(row, kind.time_field) // _NS_PER_DAY)
            bucket = groups.get(key)
        except Exception as exc:  # any object published on the bus: refuse it alone
            refused.append(RefusedRow(kind.name, row, _text(exc)))
            continue
        if bucket is None:
            bucket = groups[key] = []
        bucket.append(row)
    out: list[tuple[Path, list[Any]]] = []
    for (venue, symbol, day), bucket in groups.items():
        try:
            directory = partition_dir(root, kind.name, venue, symbol, utc_date(day * _NS_PER_DAY))
        except Exception as exc:  # a time with no calendar date, a venue that is no text
            value = getattr(bucket[0], kind.time_field)
            refused.extend(RefusedRow(kind.name, row, f"no partition for venue={venue!r} "
                                      f"symbol={symbol!r} {kind.time_field}={value!r} "
                                      f"({_text(exc)})") for row in bucket)
            continue
        out.append((directory, bucket))
    return out, refused


def to_table(kind: RowKind, rows: Sequence[Any]) -> tuple[pa.Table | None, list[RefusedRow]]:
    """The rows that fit ``kind.schema`` as one table (None when none does), in order,
    and the refused ones."""
    try:
        return pa.table(kind.columns(rows), schema=kind.schema), []
    except Exception as exc:  # a value that does not fit: find the rows at fault
        if len(rows) == 1:
            return None, [RefusedRow(kind.name, rows[0], _fault(kind, rows[0], exc))]
    half = len(rows) // 2
    left, refused_left = to_table(kind, rows[:half])
    right, refused_right = to_table(kind, rows[half:])
    tables = [t for t in (left, right) if t is not None]
    return (pa.concat_tables(tables) if tables else None), refused_left + refused_right


def _fault(kind: RowKind, row: Any, error: Exception) -> str:
    """The first field of ``row`` that does not fit its column, with its value."""
    try:
        columns = kind.columns([row])
    except Exception as exc:  # not even the shape of the kind (a missing attribute)
        return _text(exc)
    for field in kind.schema:
        value = columns[field.name][0]
        try:
            pa.array([value], type=field.type)
        except Exception as exc:
            return f"{field.name}={value!r} does not fit {field.type} ({_text(exc)})"
    return _text(error)


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
