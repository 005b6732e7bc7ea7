"""The simulator's Binance USDⓈ-M perpetuals: Binance's protocol with USDⓈ-M's paths.

Streams are served on the routed ``/market`` path (``/market/stream``,
``/market/ws``), REST under ``/fapi/v1`` with USDⓈ-M's request weights. A
``@trade`` payload carries the trade type ``X``: ``MARKET``, or ``NA`` for the
records of price and quantity 0 the faults make (:meth:`ExchangeSimulator.refuse_trades`),
as USDⓈ-M's stream sends them; it has no ``M``. At most 200 streams and 10
incoming messages a second per connection.
"""

from __future__ import annotations

from typing import Any

from bot.data.sim.binance_dialect import BinanceDialect
from bot.data.sim.binance_ws import BinanceStreamSettings
from bot.data.sim.trades import SimTrade, format_e8

VENUE_USDM = "binanceusdm"
USDM_WEIGHTS = {"exchangeInfo": 1, "klines": 5, "trades": 5, "historicalTrades": 20,
                "aggTrades": 20, "ping": 1, "time": 1}


def usdm_trade_event(t: SimTrade, unit: int) -> dict[str, Any]:
    """A USDⓈ-M ``@trade`` payload: Binance's trade with its type ``X`` and without ``M``."""
    return {"e": "trade", "E": t.event_time_ns // unit, "T": t.time_ns // unit, "s": t.symbol,
            "t": t.trade_id, "p": format_e8(t.price_e8), "q": format_e8(t.qty_e8),
            "X": "MARKET" if t.is_market else "NA", "m": t.buyer_is_maker}


USDM = BinanceDialect(VENUE_USDM, "/market", "/fapi/v1", USDM_WEIGHTS, usdm_trade_event,
                     contract_type="PERPETUAL")


def usdm_stream_settings(spot: BinanceStreamSettings) -> BinanceStreamSettings:
    """USDⓈ-M's documented limits, keepalive as the spot settings'."""
    return BinanceStreamSettings(spot.ping_interval, spot.pong_timeout, max_streams=200,
                                 max_incoming_per_second=10,
                                 connection_lifetime=spot.connection_lifetime)
