"""Binance spot (and Binance.US) described for the rest of the stream."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bot.data.config import MAX_STREAMS_PER_BINANCE_CONNECTION, StreamManagerConfig
from bot.data.venues.binance.session import (
    BINANCE_PAIR,
    CONTROL_INTERVAL_S,
    LIFETIME_S,
    BinanceSession,
)
from bot.data.venues.spec import VenueFacts, VenueSpec

if TYPE_CHECKING:
    from bot.data.listing import Listing
    from bot.data.venues.binance.rest import BinanceRest

BINANCE_FACTS = VenueFacts(
    sequenced=True,  # trade ids (and aggTrade ids) are consecutive per symbol
    empty_bars=True,  # klines cover minutes without trades
    sides_inferred=False,  # `m` gives the taker side
    max_streams_per_connection=MAX_STREAMS_PER_BINANCE_CONNECTION,
    control_interval_s=CONTROL_INTERVAL_S,
    connection_lifetime_s=LIFETIME_S,
    authenticated=False,
)


class BinanceProtocol(VenueSpec):
    """A venue speaking Binance's protocol: its session class, REST client and trade history.

    Subclasses name the session class, the REST client (:meth:`rest_class`, imported on
    first use: it needs aiohttp) and whether the history is of aggregate trades.
    """

    session_class: type[BinanceSession] = BinanceSession

    def rest_class(self) -> type[BinanceRest]:
        from bot.data.venues.binance.rest import BinanceRest

        return BinanceRest

    def listing_url(self, config: StreamManagerConfig) -> str | None:
        return self.rest_class().endpoint(config)[1]

    async def listing(self, rest: BinanceRest) -> Listing:
        """``exchangeInfo``: every symbol the venue lists, with its status and clock."""
        return await rest.listing()

    def aggregate_trades(self, config: StreamManagerConfig) -> bool:
        """Whether the stream (and so the history) is of aggregate trades."""
        return self.session_class.trade_channel_of(config) == "aggTrade"

    def session(self, config: StreamManagerConfig, credentials: Any,
                symbols: Iterable[str]) -> BinanceSession:
        return self.session_class(config, symbols)

    def rest(self, config: StreamManagerConfig, credentials: Any, clock: Callable[[], int],
             limiter: Any = None) -> BinanceRest:
        from bot.data.rest.limits import RateLimiter

        client = self.rest_class()
        return client(config, limiter=limiter if limiter is not None else
                      RateLimiter.following(clock, client.budget), clock=clock)

    def history(self, config: StreamManagerConfig, rest: Any) -> Any:
        from bot.data.venues.binance.history import BinanceTradeHistory

        return BinanceTradeHistory(rest, self.facts, aggregate=self.aggregate_trades(config))


class BinanceSpot(BinanceProtocol):
    """Binance spot market data; ``name`` is ``binance`` or ``binanceus`` (same protocol).

    The one of the two a configuration streams is ``binance_venue``.
    """

    asset_class = "crypto"
    symbol_form = BINANCE_PAIR
    facts = BINANCE_FACTS

    def __init__(self, name: str) -> None:
        self.name = name

    def unselected_because(self, config: StreamManagerConfig) -> str | None:
        if config.binance_venue == self.name:
            return None
        return f"config.binance_venue is {config.binance_venue!r}"

    def select(self, config: StreamManagerConfig) -> StreamManagerConfig:
        return dataclasses.replace(config, binance_venue=self.name)

    def symbols_per_connection(self, config: StreamManagerConfig) -> int:
        streams_per_symbol = 2 if config.binance_ticker_channel else 1
        return max(1, config.binance_max_streams_per_connection // streams_per_symbol)


BINANCE = BinanceSpot("binance")
BINANCE_US = BinanceSpot("binanceus")
