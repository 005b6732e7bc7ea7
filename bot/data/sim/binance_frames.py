"""Binance payloads exactly as documented, built from the simulator's records.

Stream payloads (``trade``, ``aggTrade``, ``bookTicker``, ``24hrTicker``,
``serverShutdown``) and REST rows (trades, aggregate trades, klines). ``unit``
is the divisor from nanoseconds to the connection's time unit: 1_000_000 for
milliseconds (the default), 1_000 for ``timeUnit=MICROSECOND``.
"""

from __future__ import annotations

from typing import Any

from bot.data.sim.klines import Kline
from bot.data.sim.market import Instrument
from bot.data.sim.trades import AggTrade, SimTrade, TradeLog, format_e8, format_e16

MILLISECONDS = 1_000_000
MICROSECONDS = 1_000
DAY_NS = 86_400 * 1_000_000_000


def trade_event(t: SimTrade, unit: int) -> dict[str, Any]:
    return {"e": "trade", "E": t.event_time_ns // unit, "s": t.symbol, "t": t.trade_id,
            "p": format_e8(t.price_e8), "q": format_e8(t.qty_e8), "T": t.time_ns // unit,
            "m": t.buyer_is_maker, "M": True}


def agg_trade_event(a: AggTrade, symbol: str, unit: int) -> dict[str, Any]:
    return {"e": "aggTrade", "E": a.event_time_ns // unit, "s": symbol, "a": a.agg_id,
            "p": format_e8(a.price_e8), "q": format_e8(a.qty_e8), "f": a.first_id,
            "l": a.last_id, "T": a.time_ns // unit, "m": a.buyer_is_maker, "M": True}


def book_ticker_event(update_id: int, t: SimTrade, tick_e8: int) -> dict[str, Any]:
    """Top of book just after ``t``: the side it traded on, one tick from the other side."""
    bid, ask = ((t.price_e8, t.price_e8 + tick_e8) if t.buyer_is_maker
                else (max(t.price_e8 - tick_e8, tick_e8), t.price_e8))
    depth = t.qty_e8 * 3 + tick_e8
    return {"u": update_id, "s": t.symbol, "b": format_e8(bid), "B": format_e8(depth),
            "a": format_e8(ask), "A": format_e8(depth * 2)}


def ticker_event(log: TradeLog, symbol: str, now_ns: int, tick_e8: int,
                 unit: int) -> dict[str, Any] | None:
    """The rolling 24-hour statistics of ``symbol`` at ``now_ns``; None before any trade."""
    window = [t for t in log.between(now_ns - DAY_NS, now_ns) if t.is_market]
    if not window:
        return None
    before = log.last_before(window[0].time_ns)
    first, last = window[0], window[-1]
    open_e8 = first.price_e8
    volume = sum(t.qty_e8 for t in window)
    quote = sum(t.price_e8 * t.qty_e8 for t in window)
    change = last.price_e8 - open_e8
    book = book_ticker_event(0, last, tick_e8)
    return {
        "e": "24hrTicker", "E": now_ns // unit, "s": symbol,
        "p": format_e8(change), "P": f"{change * 100 / open_e8:.3f}",
        "w": format_e8(quote // volume if volume else 0),
        "x": format_e8(before.price_e8 if before else open_e8),
        "c": format_e8(last.price_e8), "Q": format_e8(last.qty_e8),
        "b": book["b"], "B": book["B"], "a": book["a"], "A": book["A"],
        "o": format_e8(open_e8), "h": format_e8(max(t.price_e8 for t in window)),
        "l": format_e8(min(t.price_e8 for t in window)), "v": format_e8(volume),
        "q": format_e16(quote), "O": (now_ns - DAY_NS) // unit, "C": now_ns // unit,
        "F": first.trade_id, "L": last.trade_id, "n": len(window),
    }


def server_shutdown_event(now_ns: int, unit: int) -> dict[str, Any]:
    return {"e": "serverShutdown", "E": now_ns // unit}


def rest_trade(t: SimTrade, unit: int) -> dict[str, Any]:
    return {"id": t.trade_id, "price": format_e8(t.price_e8), "qty": format_e8(t.qty_e8),
            "quoteQty": format_e16(t.price_e8 * t.qty_e8), "time": t.time_ns // unit,
            "isBuyerMaker": t.buyer_is_maker, "isBestMatch": True}


def rest_agg_trade(a: AggTrade, unit: int) -> dict[str, Any]:
    return {"a": a.agg_id, "p": format_e8(a.price_e8), "q": format_e8(a.qty_e8),
            "f": a.first_id, "l": a.last_id, "T": a.time_ns // unit, "m": a.buyer_is_maker,
            "M": True}


def kline_row(k: Kline, unit: int) -> list[Any]:
    return [k.open_time_ns // unit, format_e8(k.open_e8), format_e8(k.high_e8),
            format_e8(k.low_e8), format_e8(k.close_e8), format_e8(k.volume_e8),
            (k.close_time_ns + 1) // unit - 1, format_e16(k.quote_e16), k.count,
            format_e8(k.taker_buy_volume_e8), format_e16(k.taker_buy_quote_e16), "0"]


def spot_symbol_info(instrument: Instrument) -> dict[str, Any]:
    """A Binance spot ``exchangeInfo`` symbol."""
    return {
        "symbol": instrument.symbol, "status": "TRADING", "baseAsset": instrument.base,
        "baseAssetPrecision": 8, "quoteAsset": instrument.quote, "quotePrecision": 8,
        "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": instrument.tick_str(),
             "maxPrice": "1000000.00000000", "tickSize": instrument.tick_str()},
            {"filterType": "LOT_SIZE", "minQty": instrument.lot_str(),
             "maxQty": "9000.00000000", "stepSize": instrument.lot_str()},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }

