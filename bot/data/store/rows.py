"""Buffered rows to Arrow tables, one per partition, refusing the rows that cannot be written.

Whatever is published on the bus reaches the recorder: a trade id of 2**63, a
time beyond int64 nanoseconds, a NaN where an integer belongs, a value of the
wrong type. One such row must cost neither the rest of its flush nor the flush
task. So a row whose partition (the UTC date of its time) cannot be named is
refused alone, and each partition's rows are converted in one go (the fast
path); only when that fails is each column searched for the values that do not
fit, by halving it in Arrow's C conversion, and the rows holding them are left
out: the good rows of the batch are written, and a refused row comes back with
the field and value at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
    refused: list[RefusedRow] = []
    try:
        columns = kind.columns(rows)
    except Exception:  # an object without the kind's fields (a side that is no Side, ...)
        rows, refused = _shaped(kind, rows)
        if not rows:
            return None, refused
        columns = kind.columns(rows)
    try:
        return pa.table(columns, schema=kind.schema), refused
    except Exception:  # a value that does not fit its column: find each one, column by column
        pass
    arrays: list[pa.Array] = []
    unfit: dict[int, str] = {}
    for column in kind.schema:
        values = columns[column.name]
        try:
            arrays.append(pa.array(values, type=column.type))
            continue
        except Exception:
            bad = _unfit(values, column.type, 0)
        for index, why in bad.items():
            unfit.setdefault(index, f"{column.name}={values[index]!r} does not fit "
                                    f"{column.type} ({why})")
        patched = list(values)
        for index in bad:  # a null in its place, filtered out below with its row
            patched[index] = None
        arrays.append(pa.array(patched, type=column.type))
    refused += [RefusedRow(kind.name, rows[i], reason) for i, reason in sorted(unfit.items())]
    keep = np.ones(len(rows), dtype=bool)
    keep[list(unfit)] = False
    if not keep.any():
        return None, refused
    return pa.Table.from_arrays(arrays, schema=kind.schema).filter(pa.array(keep)), refused


def _shaped(kind: RowKind, rows: Sequence[Any]) -> tuple[list[Any], list[RefusedRow]]:
    """The rows whose columns can be built, and the others refused."""
    shaped, refused = [], []
    for row in rows:
        try:
            kind.columns([row])
        except Exception as exc:
            refused.append(RefusedRow(kind.name, row, _text(exc)))
        else:
            shaped.append(row)
    return shaped, refused


def _unfit(values: list[Any], type_: pa.DataType, offset: int) -> dict[int, str]:
    """Index (plus ``offset``) and error of each value that does not convert to ``type_``.

    Halves the list until each failing value is alone: k bad values among n cost
    O(k log n) conversions, each in Arrow's C code.
    """
    try:
        pa.array(values, type=type_)
    except Exception as exc:
        if len(values) == 1:
            return {offset: _text(exc)}
        half = len(values) // 2
        return {**_unfit(values[:half], type_, offset),
                **_unfit(values[half:], type_, offset + half)}
    return {}


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
