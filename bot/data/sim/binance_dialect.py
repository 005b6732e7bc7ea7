"""What differs between the venues the simulator serves with Binance's protocol.

Binance spot and Binance USDⓈ-M speak the same WebSocket and REST protocol on
different paths, with different request weights and trade payloads. One
:class:`BinanceDialect` per venue says which; the stream and REST servers
(:mod:`bot.data.sim.binance_ws`, :mod:`bot.data.sim.binance_rest`) take one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.data.sim.binance_frames import trade_event
from bot.data.sim.trades import SimTrade

SPOT_WEIGHTS = {"exchangeInfo": 20, "klines": 2, "trades": 25, "historicalTrades": 25,
                "aggTrades": 4, "ping": 1, "time": 1}


@dataclass(frozen=True)
class BinanceDialect:
    """``venue``: the market feed's venue of the symbols; ``stream_prefix``: the path before
    ``/stream`` and ``/ws``; ``rest_api``: the REST path prefix; ``weights``: request weight
    by endpoint; ``trade_event``: a ``@trade`` payload of a trade; ``contract_type``: the
    ``exchangeInfo`` contract type of every symbol (futures; None on spot)."""

    venue: str
    stream_prefix: str
    rest_api: str
    weights: Mapping[str, int]
    trade_event: Callable[[SimTrade, int], dict[str, Any]]
    contract_type: str | None = None


SPOT = BinanceDialect("binance", "", "/api/v3", SPOT_WEIGHTS, trade_event)
