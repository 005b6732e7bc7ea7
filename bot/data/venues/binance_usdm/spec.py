"""Binance USDⓈ-M perpetual futures described for the rest of the stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.venues.binance.session import LIFETIME_S
from bot.data.venues.binance.spec import BinanceProtocol
from bot.data.venues.binance_usdm.session import (
    CONTROL_INTERVAL_S,
    MAX_STREAMS_PER_CONNECTION,
    BinanceUsdmSession,
)
from bot.data.venues.binance_usdm.symbols import USDM_PERPETUAL, VENUE_BINANCE_USDM
from bot.data.venues.spec import VenueFacts

if TYPE_CHECKING:
    from bot.data.venues.binance.rest import BinanceRest

USDM_FACTS = VenueFacts(
    sequenced=True,  # trade ids are consecutive per symbol, refused records included
    empty_bars=True,  # klines cover minutes without trades
    sides_inferred=False,  # `m` gives the taker side
    max_streams_per_connection=MAX_STREAMS_PER_CONNECTION,
    control_interval_s=CONTROL_INTERVAL_S,
    connection_lifetime_s=LIFETIME_S,
    authenticated=False,
)
NOT_MARKET = "not_market"


def market_trades_only(tick: Tick) -> str | None:
    """USDⓈ-M's klines count order-book (``MARKET``) trades only: any other type is refused."""
    return NOT_MARKET if tick.conditions else None


class BinanceUsdm(BinanceProtocol):
    """Binance USDⓈ-M perpetuals: ``add_crypto_symbols(["BTC/USDT:USDT"])``."""

    name = VENUE_BINANCE_USDM
    asset_class = "crypto"
    symbol_form = USDM_PERPETUAL
    facts = USDM_FACTS
    gate_rule = staticmethod(market_trades_only)
    session_class = BinanceUsdmSession

    def symbols_per_connection(self, config: StreamManagerConfig) -> int:
        return min(config.binance_max_streams_per_connection, MAX_STREAMS_PER_CONNECTION)

    def rest_class(self) -> type[BinanceRest]:
        from bot.data.venues.binance_usdm.rest import BinanceUsdmRest

        return BinanceUsdmRest

    def history(self, config: StreamManagerConfig, rest: Any) -> Any:
        """Trades rebuilt from the public ``aggTrades``: USDⓈ-M's ``historicalTrades`` needs
        an API key."""
        from bot.data.venues.binance_usdm.history import UsdmTradeHistory

        return UsdmTradeHistory(rest, self.facts, aggregate=self.aggregate_trades(config))


BINANCE_USDM = BinanceUsdm()
