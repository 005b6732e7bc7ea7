"""Where records live on disk and what their Parquet files hold.

The tree is Hive-partitioned, so DuckDB, polars and pyarrow read it as one table::

    <root>/kind=ticks/venue=<venue>/symbol=<symbol>/date=YYYY-MM-DD/part-<n>.parquet
    <root>/kind=bars/venue=<venue>/symbol=<symbol>/date=YYYY-MM-DD/part-<n>.parquet

The symbol is percent-encoded (``BTC/USDT`` -> ``BTC%2FUSDT``): reversible for
any symbol, and the encoding Hive readers (DuckDB, pyarrow) decode. The date is
the UTC day of the exchange time (ticks) or of the bar's open time (bars); the
timeframe of a bar is a column. Every file also carries ``venue`` and ``symbol``
as columns, so a file copied elsewhere still says what it holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.venues.registry import facts_of

TICKS = "ticks"
BARS = "bars"
PART_GLOB = "part-*.parquet"
_PART_RE = re.compile(r"^part-(\d+)\.parquet$")
_NS_PER_DAY = 86_400 * 10**9

TICK_SCHEMA = pa.schema([
    ("venue", pa.string()),
    ("symbol", pa.string()),
    ("timestamp", pa.int64()),
    ("trade_id", pa.int64()),
    ("price", pa.float64()),
    ("volume", pa.float64()),
    ("side", pa.string()),
    ("receive_timestamp", pa.int64()),
    ("conditions", pa.list_(pa.string())),
    ("exchange", pa.string()),
    ("updates", pa.int8()),
])

BAR_SCHEMA = pa.schema([
    ("venue", pa.string()),
    ("symbol", pa.string()),
    ("timeframe", pa.string()),
    ("open_time", pa.int64()),
    ("close_time", pa.int64()),
    ("open", pa.float64()),
    ("high", pa.float64()),
    ("low", pa.float64()),
    ("close", pa.float64()),
    ("volume", pa.float64()),
    ("quote_volume", pa.float64()),
    ("buy_volume", pa.float64()),
    ("sell_volume", pa.float64()),
    ("buy_quote_volume", pa.float64()),
    ("trade_count", pa.int64()),
    ("first_trade_id", pa.int64()),
    ("last_trade_id", pa.int64()),
    ("flags", pa.int32()),
])


# -- paths ---------------------------------------------------------------------------
def exchange_order(venue: str) -> tuple[str, ...]:
    """Columns that order a venue's ticks as the exchange executed them.

    Sequenced venues (their facts say so) by time then trade id; others (ids
    per exchange) by time alone, sorted stably so the recorded arrival order
    decides between trades of one instant.
    """
    return ("timestamp", "trade_id") if facts_of(venue).sequenced else ("timestamp",)


def encode_symbol(symbol: str) -> str:
    """Path-safe, reversible form of a symbol (``BTC/USDT`` -> ``BTC%2FUSDT``)."""
    return quote(symbol, safe="")


def series_dir(root: Path, kind: str, venue: str, symbol: str) -> Path:
    """Directory holding every date partition of one venue's symbol."""
    return root / f"kind={kind}" / f"venue={encode_symbol(venue)}" / \
        f"symbol={encode_symbol(symbol)}"


def partition_dir(root: Path, kind: str, venue: str, symbol: str, day: date) -> Path:
    return series_dir(root, kind, venue, symbol) / f"date={day.isoformat()}"


def utc_date(timestamp_ns: int) -> date:
    """UTC calendar day of a nanosecond timestamp."""
    return datetime.fromtimestamp(timestamp_ns // _NS_PER_DAY * 86_400, tz=UTC).date()


def partition_date(path: Path) -> date | None:
    """The day of a ``date=YYYY-MM-DD`` directory, None for any other name."""
    name = path.name
    if not name.startswith("date="):
        return None
    try:
        return date.fromisoformat(name[5:])
    except ValueError:
        return None


def date_partitions(series: Path) -> list[tuple[date, Path]]:
    """The date partitions under a series directory, oldest first."""
    if not series.is_dir():
        return []
    found = [(day, p) for p in series.iterdir() if (day := partition_date(p)) is not None]
    return sorted(found)


def part_files(directory: Path) -> list[Path]:
    """Committed data files of a partition (temporary files of a write in progress excluded)."""
    return sorted(directory.glob(PART_GLOB), key=lambda p: part_number(p) or 0)


def part_number(path: Path) -> int | None:
    match = _PART_RE.match(path.name)
    return int(match.group(1)) if match else None


# -- records <-> Arrow -----------------------------------------------------------------
def tick_columns(ticks: Sequence[Tick]) -> dict[str, list[Any]]:
    """Column lists of ticks, named and ordered as :data:`TICK_SCHEMA`."""
    return {
        "venue": [t.venue for t in ticks],
        "symbol": [t.symbol for t in ticks],
        "timestamp": [t.timestamp for t in ticks],
        "trade_id": [t.trade_id for t in ticks],
        "price": [t.price for t in ticks],
        "volume": [t.volume for t in ticks],
        "side": [t.side.value for t in ticks],
        "receive_timestamp": [t.receive_timestamp for t in ticks],
        "conditions": [list(t.conditions) for t in ticks],
        "exchange": [t.exchange for t in ticks],
        "updates": [t.updates for t in ticks],
    }


def bar_columns(bars: Sequence[Bar]) -> dict[str, list[Any]]:
    """Column lists of bars, named and ordered as :data:`BAR_SCHEMA`."""
    columns: dict[str, list[Any]] = {name: [] for name in BAR_SCHEMA.names}
    for bar in bars:
        for name, column in columns.items():
            column.append(getattr(bar, name))
    columns["flags"] = [int(f) for f in columns["flags"]]
    return columns


def ticks_to_table(ticks: Sequence[Tick]) -> pa.Table:
    """Arrow table of ticks in :data:`TICK_SCHEMA`."""
    return pa.table(tick_columns(ticks), schema=TICK_SCHEMA)


def bars_to_table(bars: Sequence[Bar]) -> pa.Table:
    """Arrow table of bars in :data:`BAR_SCHEMA`."""
    return pa.table(bar_columns(bars), schema=BAR_SCHEMA)


def rows_to_ticks(rows: Iterable[dict[str, Any]]) -> list[Tick]:
    """Ticks from records with :data:`TICK_SCHEMA`'s fields (e.g. ``df.to_dicts()``)."""
    return [
        Tick(r["venue"], r["symbol"], r["price"], r["volume"], Side(r["side"]), r["trade_id"],
             r["timestamp"], r["receive_timestamp"], tuple(r["conditions"] or ()),
             r["exchange"], r["updates"])
        for r in rows
    ]


def rows_to_bars(rows: Iterable[dict[str, Any]]) -> list[Bar]:
    """Bars from records with :data:`BAR_SCHEMA`'s fields."""
    return [Bar(**{**r, "flags": BarFlag(r["flags"])}) for r in rows]
