"""Alpaca US stocks described for the rest of the stream."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bot.data.config import StreamManagerConfig
from bot.data.venues.alpaca.session import (
    STOCK_TICKER,
    VENUE_ALPACA,
    AlpacaCredentials,
    AlpacaSession,
)
from bot.data.venues.spec import VenueFacts, VenueSpec

if TYPE_CHECKING:
    from bot.data.listing import Listing
    from bot.data.venues.alpaca.rest import AlpacaRest

ALPACA_FACTS = VenueFacts(
    sequenced=False,  # stock trade ids are per exchange, not one sequence per symbol
    empty_bars=False,  # Alpaca's bars skip minutes without trades
    sides_inferred=True,  # stock trades carry no taker side: the tick rule gives it
    max_streams_per_connection=None,  # one connection per feed carries every symbol
    authenticated=True,
)


class AlpacaStocks(VenueSpec):
    """Alpaca's stock market data stream (feed ``alpaca_feed``), one connection for all symbols."""

    name = VENUE_ALPACA
    asset_class = "stock"
    symbol_form = STOCK_TICKER
    facts = ALPACA_FACTS

    def connection_name(self, config: StreamManagerConfig, index: int) -> str:
        return f"{self.name}-{config.alpaca_feed}"

    def credentials(self) -> AlpacaCredentials:
        return AlpacaCredentials.from_env()

    def market_open(self, now_ns: int) -> bool:
        from bot.data.venues.alpaca.calendar import nyse_open

        return nyse_open(now_ns)

    def listing_url(self, config: StreamManagerConfig) -> str | None:
        return config.alpaca_trading_url

    async def listing(self, rest: AlpacaRest) -> Listing:
        """Alpaca's assets: every US equity it lists, with its status."""
        return await rest.listing()

    def session(self, config: StreamManagerConfig, credentials: Any,
                symbols: Iterable[str]) -> AlpacaSession:
        return AlpacaSession(config, credentials, symbols)

    def rest(self, config: StreamManagerConfig, credentials: Any, clock: Callable[[], int],
             limiter: Any = None) -> Any:
        from bot.data.rest.limits import RateLimiter
        from bot.data.venues.alpaca.rest import AlpacaRest

        return AlpacaRest(config, credentials, limiter=limiter if limiter is not None else
                          RateLimiter.following(clock, AlpacaRest.budget), clock=clock)

    def history(self, config: StreamManagerConfig, rest: Any) -> Any:
        from bot.data.venues.alpaca.history import AlpacaTradeHistory

        return AlpacaTradeHistory(rest, self.facts)


ALPACA = AlpacaStocks()
