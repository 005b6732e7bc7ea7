"""Vectorized bar aggregation of a whole tick table: the streaming aggregator's bars, fast.

``aggregate_ticks`` gives exactly the bars :class:`~bot.data.aggregation.BarAggregator`
completes when fed the same ticks in exchange order and then finished where the
data ends (:meth:`~bot.data.aggregation.BarAggregator.finish`, as
:func:`~bot.data.store.replay` does): same OHLC, trade counts, first/last trade
ids and flags, and the same sums up to float rounding (the order of addition may
differ).

How. Ticks sorted by ``(timestamp, trade_id)`` make every bar a contiguous run
of rows, so a bar is a *segment reduction*: the run boundaries are where the
bar's open time changes, and ``np.maximum.reduceat`` / ``np.add.reduceat`` fold
each run in one pass, with open and close the run's first and last rows. As in
the streaming aggregator, only bars of the base length (the timeframes'
greatest common divisor) are built from ticks; longer bars fold those, which is
exact and costs nothing next to the tick pass. Recorded ticks are normally
already in order with increasing trade ids; that is checked in two cheap passes,
and only otherwise are duplicates dropped (the first occurrence kept, as the
stream keeps the first delivery) and the table sorted.

What the stream's rules become here: ticks with a non-positive or non-finite
price or quantity are dropped; the first bar of each timeframe is the one
holding the first trade, and bars opening before ``coverage_start`` (the first
trade's time unless given) are PARTIAL; with ``emit_empty`` every interval
without trades is an EMPTY bar with O=H=L=C=previous close and no volume.
Where the data ends (``until``, by default just after the last trade), replay's
rule holds: bars ending by then are complete; the bar of each timeframe that end
cuts is flagged PARTIAL (the trades after it are unknown), and made only when
something of it was seen (a trade, or with ``emit_empty`` a whole base interval);
no bar opens at or after it. Per-field trade eligibility
(stock sale conditions, the ``updates`` column) is not modelled: such ticks are
refused with a ValueError rather than aggregated differently from the stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from bot.data.frames import bar_frame
from bot.data.models import UPDATES_ALL, BarFlag
from bot.data.store.layout import BAR_SCHEMA, exchange_order
from bot.data.timeframes import NS_PER_SECOND, TIMEFRAME_SECONDS, base_length_ns

Column = npt.NDArray[Any]
REQUIRED_COLUMNS = ("timestamp", "trade_id", "price", "volume", "side")


@dataclass
class _Bars:
    """Column arrays of the bars holding at least one trade, by open time."""

    open_time: Column
    open: Column
    high: Column
    low: Column
    close: Column
    volume: Column
    quote_volume: Column
    buy_volume: Column
    sell_volume: Column
    buy_quote_volume: Column
    trade_count: Column
    first_trade_id: Column
    last_trade_id: Column


@overload
def aggregate_ticks(ticks: pl.DataFrame, timeframes: Iterable[str], *, venue: str | None = ...,
                    symbol: str | None = ..., emit_empty: bool = ...,
                    coverage_start: int | None = ..., until: int | None = ...,
                    ) -> dict[str, pl.DataFrame]: ...
@overload
def aggregate_ticks(ticks: pd.DataFrame, timeframes: Iterable[str], *, venue: str | None = ...,
                    symbol: str | None = ..., emit_empty: bool = ...,
                    coverage_start: int | None = ..., until: int | None = ...,
                    ) -> dict[str, pd.DataFrame]: ...
def aggregate_ticks(ticks: pl.DataFrame | pd.DataFrame, timeframes: Iterable[str], *,
                    venue: str | None = None, symbol: str | None = None,
                    emit_empty: bool = True, coverage_start: int | None = None,
                    until: int | None = None,
                    ) -> dict[str, pl.DataFrame] | dict[str, pd.DataFrame]:
    """Completed bars of one series for each timeframe, as DataFrames of Bar fields.

    ``ticks`` needs columns ``timestamp`` (ns; in pandas also the UTC index
    :meth:`TradeStore.ticks` gives), ``trade_id``, ``price``, ``volume`` and
    ``side`` (``"buy"``/``"sell"``, any other value is an unknown side);
    ``venue`` and ``symbol`` columns, when present, must hold one series.
    ``until`` (ns, exclusive) is where the data ends, as in replay: by default
    just after the last trade; trades at or after it are left out. Bars ending
    by then are complete, the one it cuts in each timeframe is flagged PARTIAL,
    and none is made after it, so a recording stopped mid-minute never passes
    its last minute off as whole nor gains an empty bar after it. The result is
    polars (Bar fields) for a polars input and pandas for a pandas one, shaped
    as :meth:`StreamManager.get_bar_dataframe`.
    """
    as_pandas = isinstance(ticks, pd.DataFrame)
    frame = ticks_from_pandas(ticks) if isinstance(ticks, pd.DataFrame) else ticks
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"tick frame lacks column(s) {missing}; needs {list(REQUIRED_COLUMNS)}")
    venue = _single_value(frame, "venue", venue)
    symbol = _single_value(frame, "symbol", symbol)
    if "updates" in frame.columns and not (frame["updates"] == UPDATES_ALL).all():
        raise ValueError("ticks with restricted 'updates' (sale conditions) are not supported "
                         "by bulk aggregation; feed them to BarAggregator instead")
    order = sorted(set(timeframes), key=TIMEFRAME_SECONDS.__getitem__)
    base = base_length_ns(order)
    ts, ids, price, qty, buy, sell = _clean_arrays(frame, exchange_order(venue))
    if until is not None and len(ts) and ts[-1] >= until:
        before = ts < until
        ts, ids, price, qty, buy, sell = (c[before] for c in (ts, ids, price, qty, buy, sell))
    out: dict[str, pl.DataFrame] = {}
    if len(ts) == 0:
        out = {tf: pl.from_arrow(BAR_SCHEMA.empty_table()) for tf in order}  # type: ignore[misc]
        return {tf: bar_frame(f.to_dict()) for tf, f in out.items()} if as_pandas else out
    base_bars = _from_ticks(ts, ids, price, qty, buy, sell, base)
    end = int(ts[-1]) + 1 if until is None else until
    # An interval cut by the end is made once a whole base interval of it was seen.
    seen_from = int(base_bars.open_time[0]) + base if emit_empty else end + 1
    coverage = int(ts[0]) if coverage_start is None else coverage_start
    for tf in order:
        length = TIMEFRAME_SECONDS[tf] * NS_PER_SECOND
        bars = base_bars if length == base else _fold(base_bars, length)
        out[tf] = _to_frame(bars, venue, symbol, tf, length, emit_empty, coverage, end,
                            seen_from, base)
    return {tf: bar_frame(f.to_dict()) for tf, f in out.items()} if as_pandas else out


def ticks_from_pandas(ticks: pd.DataFrame) -> pl.DataFrame:
    """A pandas tick frame as polars, times back as ns: what :meth:`TradeStore.ticks`
    returns (indexed by UTC ``timestamp``) or a frame with a ``timestamp`` column."""
    if "timestamp" not in ticks.columns and ticks.index.name == "timestamp":
        ticks = ticks.reset_index()
    frame = pl.from_pandas(ticks)
    times = [c for c in ("timestamp", "receive_timestamp")
             if c in frame.columns and frame[c].dtype.is_temporal()]
    return frame.with_columns(pl.col(c).dt.epoch("ns") for c in times)


def _single_value(frame: pl.DataFrame, column: str, given: str | None) -> str:
    """The one value of ``column`` (or ``given``); ValueError when the frame holds several."""
    if column not in frame.columns or frame.height == 0:
        return given or ""
    values = frame[column]
    first, low, high = values[0], values.min(), values.max()
    if low != high:
        raise ValueError(f"aggregate_ticks takes one series; column {column!r} holds "
                         f"{low!r} .. {high!r} (split with DataFrame.partition_by)")
    if given is not None and given != first:
        raise ValueError(f"{column}={given!r} but the frame holds {first!r}")
    return str(first)


def _clean_arrays(frame: pl.DataFrame, order: tuple[str, ...],
                  ) -> tuple[Column, Column, Column, Column, Column, Column]:
    """Valid, deduplicated ticks in the venue's exchange order, as NumPy columns."""
    price = frame["price"].to_numpy()
    qty = frame["volume"].to_numpy()
    valid = (price > 0.0) & (qty > 0.0) & (price < np.inf) & (qty < np.inf)
    if not valid.all():
        frame = frame.filter(pl.Series(valid))
    ts = frame["timestamp"].to_numpy()
    ids = frame["trade_id"].to_numpy()
    in_order = bool(len(order) == 2 and np.all(ts[1:] >= ts[:-1])
                    and np.all(ids[1:] > ids[:-1]))
    if not in_order:  # duplicates, disorder or ids without order: the general path
        frame = (frame.filter(pl.col("trade_id").is_first_distinct())
                 .sort(*order, maintain_order=True))
        ts = frame["timestamp"].to_numpy()
        ids = frame["trade_id"].to_numpy()
    sides = frame.select(buy=pl.col("side") == "buy", sell=pl.col("side") == "sell")
    return (ts.astype(np.int64, copy=False), ids.astype(np.int64, copy=False),
            frame["price"].to_numpy(), frame["volume"].to_numpy(),
            sides["buy"].to_numpy(), sides["sell"].to_numpy())


def _segments(keys: Column) -> tuple[Column, Column]:
    """Start and end (exclusive) row of each run of equal ``keys`` (sorted input)."""
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.append(change, len(keys)).astype(np.int64)
    return starts, ends


def _from_ticks(ts: Column, ids: Column, price: Column, qty: Column, buy: Column,
                sell: Column, length: int) -> _Bars:
    """Bars of ``length`` from sorted ticks: one segment reduction per field."""
    keys = ts - ts % length
    starts, ends = _segments(keys)
    quote = price * qty
    return _Bars(
        open_time=keys[starts],
        open=price[starts],
        high=np.maximum.reduceat(price, starts),
        low=np.minimum.reduceat(price, starts),
        close=price[ends - 1],
        volume=np.add.reduceat(qty, starts),
        quote_volume=np.add.reduceat(quote, starts),
        buy_volume=np.add.reduceat(np.where(buy, qty, 0.0), starts),
        sell_volume=np.add.reduceat(np.where(sell, qty, 0.0), starts),
        buy_quote_volume=np.add.reduceat(np.where(buy, quote, 0.0), starts),
        trade_count=ends - starts,
        first_trade_id=ids[starts],
        last_trade_id=ids[ends - 1],
    )


def _fold(bars: _Bars, length: int) -> _Bars:
    """Longer bars from shorter contiguous ones (exact for every field)."""
    keys = bars.open_time - bars.open_time % length
    starts, ends = _segments(keys)
    return _Bars(
        open_time=keys[starts],
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends - 1],
        volume=np.add.reduceat(bars.volume, starts),
        quote_volume=np.add.reduceat(bars.quote_volume, starts),
        buy_volume=np.add.reduceat(bars.buy_volume, starts),
        sell_volume=np.add.reduceat(bars.sell_volume, starts),
        buy_quote_volume=np.add.reduceat(bars.buy_quote_volume, starts),
        trade_count=np.add.reduceat(bars.trade_count, starts),
        first_trade_id=bars.first_trade_id[starts],
        last_trade_id=bars.last_trade_id[ends - 1],
    )


def _with_empty_bars(bars: _Bars, length: int, until: int) -> _Bars:
    """Every interval from the first bar to ``until``, quiet ones as empty bars.

    An empty bar shows the previous close as O=H=L=C, no volume, and trade ids
    -1, as the streaming aggregator builds it.
    """
    first = int(bars.open_time[0])
    n = max(0, (until - first) // length)
    slot = (bars.open_time - first) // length
    keep = slot < n
    slot = slot[keep]
    # Index of the latest traded bar at or before each interval, for the carried close.
    latest = np.full(n, -1, dtype=np.int64)
    latest[slot] = np.flatnonzero(keep)
    latest = np.maximum.accumulate(latest)
    carried = bars.close[latest]

    def price(values: Column) -> Column:
        out = carried.copy()
        out[slot] = values[keep]
        return out

    def amount(values: Column, empty: float) -> Column:
        out = np.full(n, empty, dtype=values.dtype)
        out[slot] = values[keep]
        return out

    return _Bars(
        open_time=first + np.arange(n, dtype=np.int64) * length,
        open=price(bars.open), high=price(bars.high), low=price(bars.low),
        close=price(bars.close),
        volume=amount(bars.volume, 0.0),
        quote_volume=amount(bars.quote_volume, 0.0),
        buy_volume=amount(bars.buy_volume, 0.0),
        sell_volume=amount(bars.sell_volume, 0.0),
        buy_quote_volume=amount(bars.buy_quote_volume, 0.0),
        trade_count=amount(bars.trade_count, 0),
        first_trade_id=amount(bars.first_trade_id, -1),
        last_trade_id=amount(bars.last_trade_id, -1),
    )


def _cut_bar(bars: _Bars, length: int, end: int, emit_empty: bool, seen_from: int,
             base: int) -> _Bars:
    """The bar the data's end cuts (open before ``end``, ending after it), or no rows.

    The one holding trades when there is one; else, with ``emit_empty``, an
    empty one carrying the previous close when a whole base interval of it
    ended by ``end`` after the first bar (``seen_from``); else none.
    """
    last = len(bars.open_time) - 1
    if int(bars.open_time[last]) + length > end:
        return _Bars(**{name: values[last:] for name, values in vars(bars).items()})
    cut = end - end % length
    if not emit_empty or cut == end or max(cut + base, seen_from) > end:
        return _Bars(**{name: values[:0] for name, values in vars(bars).items()})
    empty = {name: np.array([-1 if "trade_id" in name else 0], dtype=values.dtype)
             for name, values in vars(bars).items()}
    close = bars.close[last:]
    return _Bars(**{**empty, "open_time": np.array([cut], dtype=np.int64), "open": close,
                    "high": close, "low": close, "close": close})


def _to_frame(bars: _Bars, venue: str, symbol: str, timeframe: str, length: int,
              emit_empty: bool, coverage_start: int, end: int, seen_from: int,
              base: int) -> pl.DataFrame:
    """The bars of one timeframe up to the data's ``end`` as a frame in ``BAR_SCHEMA``:
    those ending by then, and the one it cuts flagged PARTIAL."""
    cut = _cut_bar(bars, length, end, emit_empty, seen_from, base)
    if emit_empty:
        bars = _with_empty_bars(bars, length, end)
    else:
        done = bars.open_time + length <= end
        bars = _Bars(**{name: values[done] for name, values in vars(bars).items()})
    cut_rows = len(cut.open_time)
    bars = _Bars(**{name: np.concatenate((values, getattr(cut, name)))
                    for name, values in vars(bars).items()})
    is_cut = np.arange(len(bars.open_time)) >= len(bars.open_time) - cut_rows
    flags = (np.where(bars.trade_count == 0, int(BarFlag.EMPTY), 0)
             | np.where((bars.open_time < coverage_start) | is_cut, int(BarFlag.PARTIAL), 0))
    n = len(bars.open_time)
    columns = {
        "venue": pl.Series([venue] * n, dtype=pl.String),
        "symbol": pl.Series([symbol] * n, dtype=pl.String),
        "timeframe": pl.Series([timeframe] * n, dtype=pl.String),
        "open_time": bars.open_time,
        "close_time": bars.open_time + (length - 1),
        **{name: values for name, values in vars(bars).items() if name != "open_time"},
        "flags": flags.astype(np.int32),
    }
    return pl.DataFrame(columns).select(BAR_SCHEMA.names)
