"""Trades downloaded from Binance's public data files, as the tick table the store uses.

Binance publishes every spot trade per day and month (``data.binance.vision``)
as zipped CSV without a header, in two layouts:

- trades: ``id, price, qty, quote_qty, time, is_buyer_maker, is_best_match``
- aggTrades: ``agg_id, price, qty, first_id, last_id, time, is_buyer_maker,
  is_best_match``

``time`` is in milliseconds, or in microseconds in spot files from 2025-01-01
on; the unit is read from the magnitude (a millisecond time below 10^14 is
before the year 5138, a microsecond one above it after 1973).
``is_buyer_maker`` true means the taker sold. The table this module returns
has the store's tick columns, so :func:`bot.data.store.replay` and
:class:`bot.data.Backtest` take it as they take a recording.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from bot.data.extras import require
from bot.data.models import UPDATES_ALL, Side

try:
    import polars as pl

    from bot.data.store.layout import TICK_SCHEMA
except ImportError:
    require("store", "Reading Binance's public trade files")
    raise

_LAYOUTS = {
    7: ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    8: ("id", "price", "qty", "first_id", "last_id", "time", "is_buyer_maker", "is_best_match"),
}
_MICROSECOND_FROM = 10**14  # a larger time is in microseconds (see the module docstring)


def read_binance_trades(path: str | Path, symbol: str, *, venue: str = "binance",
                        ) -> pl.DataFrame:
    """The trades of one Binance public data file (``.zip`` or ``.csv``) as a tick table.

    ``symbol`` is the unified name (``"BTC/USDT"``); the file does not say it.
    An aggTrades file gives one tick per aggregate trade, id the aggregate id.
    Raises ValueError naming the file when its layout is neither of the two.
    """
    source = Path(path)
    frame = _read_csv(source)
    layout = _LAYOUTS.get(frame.width)
    if layout is None:
        raise ValueError(f"{source}: {frame.width} columns; a Binance trades file has 7 "
                         f"({', '.join(_LAYOUTS[7])}) and an aggTrades file 8 "
                         f"({', '.join(_LAYOUTS[8])})")
    frame = frame.rename(dict(zip(frame.columns, layout, strict=True)))
    if frame.height and not frame["id"][0].isdigit():  # a header row (newer files have one)
        frame = frame.slice(1)
    time = pl.col("time").cast(pl.Int64)
    timestamp = (pl.when(time >= _MICROSECOND_FROM).then(time * 1_000)
                 .otherwise(time * 1_000_000))
    seller = pl.col("is_buyer_maker").str.to_lowercase() == "true"
    ticks = frame.select(
        venue=pl.lit(venue), symbol=pl.lit(symbol), timestamp=timestamp,
        trade_id=pl.col("id").cast(pl.Int64), price=pl.col("price").cast(pl.Float64),
        volume=pl.col("qty").cast(pl.Float64),
        side=pl.when(seller).then(pl.lit(Side.SELL.value)).otherwise(pl.lit(Side.BUY.value)),
        receive_timestamp=timestamp, conditions=pl.lit([], dtype=pl.List(pl.String)),
        exchange=pl.lit(""), updates=pl.lit(UPDATES_ALL, dtype=pl.Int8))
    return ticks.select(TICK_SCHEMA.names)


def _read_csv(source: Path) -> pl.DataFrame:
    """The rows of ``source`` as text, or of the one CSV inside it when it is a zip file."""
    if source.suffix.lower() != ".zip":
        return pl.read_csv(source, has_header=False, infer_schema_length=0)
    with zipfile.ZipFile(source) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(names) != 1:
            raise ValueError(f"{source}: holds {len(names)} CSV files, expected one")
        data = archive.read(names[0])
    return pl.read_csv(io.BytesIO(data), has_header=False, infer_schema_length=0)
