"""USDⓈ-M REST market data: ``fapi.binance.com/fapi/v1``, Binance's API with its own weights.

Endpoints and request weights (USDⓈ-M REST documentation): ``historicalTrades``
20, ``aggTrades`` 20, ``klines`` by rows asked (under 100: 1, under 500: 2, up
to 1000: 5, more: 10), ``time`` 1, ``exchangeInfo`` 1; at most 1000 rows per
request. The IP limit is 2400 weight a minute; the client keeps to half.
"""

from __future__ import annotations

from bot.data.config import StreamManagerConfig
from bot.data.rest.limits import RequestBudget
from bot.data.venues.binance.rest import BinanceRest
from bot.data.venues.binance_usdm.symbols import (
    REST_URL_DEFAULT,
    REST_URL_VARIABLE,
    VENUE_BINANCE_USDM,
    endpoint,
    to_raw_symbol,
)

USDM_WEIGHTS = {"historicalTrades": 20, "aggTrades": 20, "klines": 5, "time": 1,
                "exchangeInfo": 1}
USDM_BUDGET = RequestBudget(requests_per_minute=600, weight_per_minute=1200)


class BinanceUsdmRest(BinanceRest):
    """USDⓈ-M market data over REST; symbols are unified (``"BTC/USDT:USDT"``)."""

    budget = USDM_BUDGET
    API = "/fapi/v1"
    WEIGHTS = USDM_WEIGHTS

    @classmethod
    def endpoint(cls, config: StreamManagerConfig) -> tuple[str, str]:
        return VENUE_BINANCE_USDM, endpoint(REST_URL_VARIABLE, REST_URL_DEFAULT,
                                            ("http", "https"))

    def raw_symbol(self, symbol: str) -> str:
        return to_raw_symbol(symbol)

    def unified_symbol(self, base: str, quote: str, contract_type: str) -> str | None:
        """Perpetuals only (``"BTC/USDT:USDT"``, settled in the quote); delivery contracts
        are not streamed."""
        if contract_type != "PERPETUAL":
            return None
        return f"{base}/{quote}:{quote}".upper()

    def klines_weight(self, limit: int) -> int:
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
