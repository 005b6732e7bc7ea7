"""A separately written, vectorized bar reference (pandas group-by), for property tests.

It shares no code with bot.data.aggregation: bars are computed from the whole
tick table at once, the way one would in a notebook.
"""

from __future__ import annotations

import pandas as pd

from bot.data.models import Side, Tick
from bot.data.timeframes import TIMEFRAME_SECONDS


def reference_bars(ticks: list[Tick], timeframe: str) -> pd.DataFrame:
    """Bars with trades only, indexed by (symbol, open_time), from deduplicated ticks."""
    df = pd.DataFrame({
        "symbol": [t.symbol for t in ticks],
        "ts": [t.timestamp for t in ticks],
        "id": [t.trade_id for t in ticks],
        "price": [t.price for t in ticks],
        "qty": [t.volume for t in ticks],
        "buy": [t.side is Side.BUY for t in ticks],
        "sell": [t.side is Side.SELL for t in ticks],
    }).drop_duplicates(["symbol", "id"]).sort_values(["symbol", "ts", "id"])
    length = TIMEFRAME_SECONDS[timeframe] * 10**9
    df["open_time"] = df["ts"] - df["ts"] % length
    df["quote"] = df["price"] * df["qty"]
    df["buy_qty"] = df["qty"].where(df["buy"], 0.0)
    df["sell_qty"] = df["qty"].where(df["sell"], 0.0)
    df["buy_quote"] = df["quote"].where(df["buy"], 0.0)
    grouped = df.groupby(["symbol", "open_time"])
    return pd.DataFrame({
        "open": grouped["price"].first(),
        "high": grouped["price"].max(),
        "low": grouped["price"].min(),
        "close": grouped["price"].last(),
        "volume": grouped["qty"].sum(),
        "quote_volume": grouped["quote"].sum(),
        "buy_volume": grouped["buy_qty"].sum(),
        "sell_volume": grouped["sell_qty"].sum(),
        "buy_quote_volume": grouped["buy_quote"].sum(),
        "trade_count": grouped["price"].size(),
        "first_trade_id": grouped["id"].first(),
        "last_trade_id": grouped["id"].last(),
    })
