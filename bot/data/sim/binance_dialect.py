"""What differs between the venues the simulator serves with Binance's protocol.

Binance spot and Binance USDⓈ-M speak the same WebSocket and REST protocol on
different paths, with different request weights, limits, payloads and symbol
descriptions. One :class:`BinanceDialect` per venue says which; the stream and
REST servers (:mod:`bot.data.sim.binance_ws`, :mod:`bot.data.sim.binance_rest`)
take one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.data.sim.binance_frames import (
    agg_trade_event,
    rest_agg_trade,
    rest_trade,
    spot_symbol_info,
    trade_event,
)
from bot.data.sim.market import Instrument
from bot.data.sim.trades import AggTrade, SimTrade

SPOT_WEIGHTS = {"exchangeInfo": 20, "klines": 2, "trades": 25, "historicalTrades": 25,
                "aggTrades": 4, "ping": 1, "time": 1}
ALL_CHANNELS = frozenset({"trade", "aggTrade", "bookTicker", "ticker"})


@dataclass(frozen=True)
class BinanceDialect:
    """How one venue speaks Binance's protocol.

    ``venue``: the market feed's venue of the symbols; ``ws_root``: the path under the
    simulator's address that stands for the venue's stream host; ``routes``: the
    paths under it (before ``/stream`` and ``/ws``) and the channels each delivers
    (a stream of another channel is accepted there and never delivered, as the
    venue does); ``rest_api``: the REST path prefix; ``weights``: request weight by
    endpoint; ``weight_limit``: request weight a minute; ``trade_event`` /
    ``agg_trade_event``: the ``@trade`` and ``@aggTrade`` payloads; ``rest_trade`` /
    ``rest_agg_trade``: the rows of ``trades`` and ``historicalTrades``, and of
    ``aggTrades``; ``symbol_info``: an ``exchangeInfo`` symbol; ``keyed``: endpoints
    refused without an ``X-MBX-APIKEY`` header; ``market_trades_only``: ``trades`` and
    ``historicalTrades`` leave out the records that are not market trades;
    ``order_limits``: the ``rateLimits`` of ``exchangeInfo`` after the request weight;
    ``info_head`` / ``info_tail``: its venue's own top-level fields before ``rateLimits``
    and after ``exchangeFilters``.
    """

    venue: str
    ws_root: str
    routes: Mapping[str, frozenset[str]]
    rest_api: str
    weights: Mapping[str, int]
    weight_limit: int
    trade_event: Callable[[SimTrade, int], dict[str, Any]]
    agg_trade_event: Callable[[AggTrade, str, int], dict[str, Any]]
    rest_trade: Callable[[SimTrade, int], dict[str, Any]]
    rest_agg_trade: Callable[[AggTrade, int], dict[str, Any]]
    symbol_info: Callable[[Instrument], dict[str, Any]]
    keyed: frozenset[str] = frozenset()
    market_trades_only: bool = False
    order_limits: tuple[Mapping[str, Any], ...] = ()
    info_head: Mapping[str, Any] = field(default_factory=dict)
    info_tail: Mapping[str, Any] = field(default_factory=dict)

    def exchange_info(self, server_time: int, weight_limit: int,
                      symbols: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``exchangeInfo`` answer, its fields in the venue's order."""
        return {
            "timezone": "UTC",
            "serverTime": server_time,
            **self.info_head,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": weight_limit},
                *self.order_limits,
            ],
            "exchangeFilters": [],
            **self.info_tail,
            "symbols": symbols,
        }


def rate_limit(kind: str, interval: str, num: int, limit: int) -> dict[str, Any]:
    """One entry of ``exchangeInfo``'s ``rateLimits``."""
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


SPOT = BinanceDialect("binance", "", {"": ALL_CHANNELS}, "/api/v3", SPOT_WEIGHTS, 6000,
                      trade_event, agg_trade_event, rest_trade, rest_agg_trade, spot_symbol_info,
                      order_limits=(rate_limit("ORDERS", "SECOND", 10, 100),
                                    rate_limit("ORDERS", "DAY", 1, 200000),
                                    rate_limit("RAW_REQUESTS", "MINUTE", 5, 61000)),
                      info_tail={"sors": []})
