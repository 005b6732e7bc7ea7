"""The simulator's Binance USDⓈ-M perpetuals: Binance's protocol with USDⓈ-M's paths.

Streams live under :data:`USDM_WS_ROOT` (the stand-in for ``fstream.binance.com``),
routed by path as the venue routes them: ``/market`` (``/market/stream``,
``/market/ws``) delivers trades, aggregate trades and tickers, ``/public`` book
tickers, and an unrouted connection only what ``/public`` does. A stream asked
for on the wrong path is accepted and never delivered. REST is under
``/fapi/v1`` with USDⓈ-M's request weights and its limit of 2400 a minute;
``historicalTrades`` needs an API key, and it and ``trades`` list market trades
only ("the insurance fund trades and ADL trades won't be returned"). A ``@trade``
payload carries the trade type ``X``: ``MARKET``, or ``NA`` for the records of
price and quantity 0 the faults make (:meth:`ExchangeSimulator.refuse_trades`),
as USDⓈ-M's stream sends them; neither it nor ``@aggTrade`` (nor an ``aggTrades``
row) has spot's ``M``, and trade rows have no ``isBestMatch``. Per connection: at
most 1024 streams and 10 incoming messages a second, a ping every 3 minutes,
closed when no pong comes back within 10.
"""

from __future__ import annotations

from typing import Any

from bot.data.sim.binance_dialect import BinanceDialect, rate_limit
from bot.data.sim.binance_frames import rest_agg_trade, rest_trade
from bot.data.sim.binance_ws import BinanceStreamSettings
from bot.data.sim.market import Instrument
from bot.data.sim.trades import AggTrade, SimTrade, format_e8

VENUE_USDM = "binanceusdm"
USDM_WS_ROOT = "/fstream"
USDM_WEIGHTS = {"exchangeInfo": 1, "klines": 5, "trades": 5, "historicalTrades": 20,
                "aggTrades": 20, "ping": 1, "time": 1}
USDM_WEIGHT_LIMIT = 2400  # the recorded exchangeInfo's REQUEST_WEIGHT a minute
MARKET_CHANNELS = frozenset({"trade", "aggTrade", "ticker"})
PUBLIC_CHANNELS = frozenset({"bookTicker"})
PERPETUAL_DELIVERY_MS = 4133404800000  # a perpetual's deliveryDate: 2100-12-25
ONBOARD_MS = 1569398400000  # BTCUSDT's onboardDate, 2019-09-25


def usdm_trade_event(t: SimTrade, unit: int) -> dict[str, Any]:
    """A USDⓈ-M ``@trade`` payload: Binance's trade with its type ``X`` and without ``M``."""
    return {"e": "trade", "E": t.event_time_ns // unit, "T": t.time_ns // unit, "s": t.symbol,
            "t": t.trade_id, "p": format_e8(t.price_e8), "q": format_e8(t.qty_e8),
            "X": "MARKET" if t.is_market else "NA", "m": t.buyer_is_maker}


def usdm_agg_trade_event(a: AggTrade, symbol: str, unit: int) -> dict[str, Any]:
    """A USDⓈ-M ``@aggTrade`` payload, the recorded fields (no ``M``)."""
    return {"e": "aggTrade", "E": a.event_time_ns // unit, "a": a.agg_id, "s": symbol,
            "p": format_e8(a.price_e8), "q": format_e8(a.qty_e8), "f": a.first_id,
            "l": a.last_id, "T": a.time_ns // unit, "m": a.buyer_is_maker}


def usdm_rest_trade(t: SimTrade, unit: int) -> dict[str, Any]:
    """A USDⓈ-M ``trades`` / ``historicalTrades`` row: spot's without ``isBestMatch``."""
    row = rest_trade(t, unit)
    del row["isBestMatch"]
    return row


def usdm_rest_agg_trade(a: AggTrade, unit: int) -> dict[str, Any]:
    """A USDⓈ-M ``aggTrades`` row: spot's without ``M``."""
    row = rest_agg_trade(a, unit)
    del row["M"]
    return row


def usdm_symbol_info(instrument: Instrument) -> dict[str, Any]:
    """A USDⓈ-M ``exchangeInfo`` symbol: a perpetual settled in its quote asset, with the
    recorded exchangeInfo's fields."""
    return {
        "symbol": instrument.symbol, "pair": instrument.symbol, "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS, "onboardDate": ONBOARD_MS, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": instrument.base, "quoteAsset": instrument.quote,
        "marginAsset": instrument.quote, "pricePrecision": 8, "quantityPrecision": 8,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": instrument.tick_str(),
             "maxPrice": "1000000", "tickSize": instrument.tick_str()},
            {"filterType": "LOT_SIZE", "minQty": instrument.lot_str(), "maxQty": "1000",
             "stepSize": instrument.lot_str()},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


USDM = BinanceDialect(
    VENUE_USDM, USDM_WS_ROOT,
    {"/market": MARKET_CHANNELS, "/public": PUBLIC_CHANNELS, "": PUBLIC_CHANNELS},
    "/fapi/v1", USDM_WEIGHTS, USDM_WEIGHT_LIMIT, usdm_trade_event, usdm_agg_trade_event,
    usdm_rest_trade, usdm_rest_agg_trade, usdm_symbol_info, keyed=frozenset({"historicalTrades"}),
    market_trades_only=True,
    # As the recorded /fapi/v1/exchangeInfo has them
    # (tests/data/binance/usdm_ws_capture_2021-04-17/fapi_v1_exchangeInfo_head.json).
    order_limits=(rate_limit("ORDERS", "MINUTE", 1, 1200), rate_limit("ORDERS", "SECOND", 10, 300)),
    info_head={"futuresType": "U_MARGINED"},
    info_tail={"assets": [
        {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-1000"},
        {"asset": "BNB", "marginAvailable": False, "autoAssetExchange": "0"},
        {"asset": "BUSD", "marginAvailable": True, "autoAssetExchange": "-1000"}]})


def usdm_stream_settings(spot: BinanceStreamSettings) -> BinanceStreamSettings:
    """USDⓈ-M's documented limits: 1024 streams and 10 incoming messages a second per
    connection, a ping every 3 minutes and 10 for the pong; the lifetime as spot's."""
    return BinanceStreamSettings(ping_interval=180.0, pong_timeout=600.0, max_streams=1024,
                                 max_incoming_per_second=10,
                                 connection_lifetime=spot.connection_lifetime)
