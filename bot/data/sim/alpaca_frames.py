"""Alpaca market-data messages and REST objects exactly as documented.

Stream data points are JSON objects with short keys (``T`` the type); the
server sends them in arrays. Times are RFC-3339 strings with nanosecond
precision. Stock trades carry exchange, conditions and tape; crypto trades
(v1beta3) carry the taker side ``tks`` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.data.sim.trades import E8, SimTrade

NS = 1_000_000_000


def rfc3339(time_ns: int, nanos: bool = True) -> str:
    """``2021-02-22T15:51:44.208123456Z`` (or whole seconds when ``nanos`` is false)."""
    seconds, fraction = divmod(time_ns, NS)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{fraction:09d}Z" if nanos else f"{text}Z"


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch of an RFC-3339 time or a ``YYYY-MM-DD`` date."""
    text = text.strip()
    if len(text) == 10:
        text += "T00:00:00Z"
    fraction_ns = 0
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        fraction_ns = int((digits + "000000000")[:9])
        text = head + rest
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return int(moment.timestamp()) * NS + fraction_ns


def price_number(price_e8: int) -> float:
    return price_e8 / E8


def stock_size(t: SimTrade) -> int:
    return t.qty_e8 // E8


def stream_trade(t: SimTrade, crypto: bool) -> dict[str, Any]:
    if crypto:
        return {"T": "t", "S": t.symbol, "p": price_number(t.price_e8), "s": t.qty_e8 / E8,
                "t": rfc3339(t.time_ns), "i": t.trade_id, "tks": "S" if t.buyer_is_maker else "B"}
    return {"T": "t", "S": t.symbol, "i": t.trade_id, "x": t.exchange,
            "p": price_number(t.price_e8), "s": stock_size(t), "t": rfc3339(t.time_ns),
            "c": list(t.conditions), "z": t.tape}


def rest_trade(t: SimTrade) -> dict[str, Any]:
    return {"t": rfc3339(t.time_ns), "x": t.exchange, "p": price_number(t.price_e8),
            "s": stock_size(t), "c": list(t.conditions), "i": t.trade_id, "z": t.tape}
