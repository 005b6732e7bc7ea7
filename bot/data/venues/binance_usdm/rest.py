"""USDⓈ-M REST market data: ``fapi.binance.com/fapi/v1``, Binance's API with its own weights.

Endpoints and request weights (USDⓈ-M REST documentation): ``historicalTrades``
20, ``aggTrades`` 20, ``trades`` 5, ``klines`` by rows asked (under 100: 1, under 500: 2, up
to 1000: 5, more: 10), ``time`` 1, ``exchangeInfo`` 1; at most 1000 rows per
request. The IP limit is 2400 weight a minute; the client keeps to half.

``historicalTrades`` needs an API key on USDⓈ-M (MARKET_DATA): the client sends
none, so the ``@trade`` history comes from the public ``trades`` and ``aggTrades``
(:mod:`bot.data.venues.binance_usdm.history`), whose records give each
aggregate's first and last trade id.
"""

from __future__ import annotations

import msgspec

from bot.data.config import StreamManagerConfig
from bot.data.models import Side, Tick
from bot.data.rest.limits import RequestBudget, decode
from bot.data.timeframes import NS_PER_MS
from bot.data.venues.binance.rest import MAX_LIMIT, BinanceRest
from bot.data.venues.binance_usdm.symbols import (
    REST_URL_DEFAULT,
    REST_URL_VARIABLE,
    VENUE_BINANCE_USDM,
    endpoint,
    to_raw_symbol,
)

USDM_WEIGHTS = {"historicalTrades": 20, "aggTrades": 20, "trades": 5, "klines": 5, "time": 1,
                "exchangeInfo": 1}
USDM_BUDGET = RequestBudget(requests_per_minute=600, weight_per_minute=1200)


class UsdmAggTrade(msgspec.Struct, gc=False):
    """An ``aggTrades`` row: aggregate id ``a``, the market trades ``f`` to ``l`` of one taker
    order at price ``p``, quantity ``q`` in all, time ``T`` (ms), ``m`` buyer is maker."""

    a: int
    p: float
    q: float
    f: int
    l: int  # noqa: E741 (Binance's field name)
    T: int
    m: bool


class UsdmTrade(msgspec.Struct, gc=False):
    """A ``trades`` row; prices and quantities arrive as decimal strings."""

    id: int
    price: float
    qty: float
    time: int
    isBuyerMaker: bool  # Binance's field name


# strict=False: decimal strings decode into floats, as the stream codec reads them.
_TRADE_ROWS = msgspec.json.Decoder(list[UsdmTrade], strict=False)
_AGG_TRADE_ROWS = msgspec.json.Decoder(list[UsdmAggTrade], strict=False)


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

    PAGE = MAX_LIMIT  # rows per aggTrades page

    async def agg_trade_rows(self, symbol: str, *, start_ms: int | None = None,
                             from_id: int | None = None) -> list[UsdmAggTrade]:
        """One page of aggregate trades with their trade ids, from ``start_ms`` or from
        aggregate id ``from_id``, oldest first."""
        params = {"symbol": self.raw_symbol(symbol), "limit": str(self.PAGE)}
        if start_ms is not None:
            params["startTime"] = str(start_ms)
        if from_id is not None:
            params["fromId"] = str(from_id)
        body = await self._get(f"{self.API}/aggTrades", params, weight=self.WEIGHTS["aggTrades"])
        return decode(_AGG_TRADE_ROWS, body, "aggTrades")

    async def recent_trades(self, symbol: str) -> list[Tick]:
        """The venue's last 1000 trades (public ``trades``, no key), oldest first."""
        body = await self._get(f"{self.API}/trades", {"symbol": self.raw_symbol(symbol),
                                                      "limit": str(self.PAGE)},
                               weight=self.WEIGHTS["trades"])
        rows = decode(_TRADE_ROWS, body, "trades")
        receive_ns, unified = self._clock(), symbol.upper()
        return [Tick(self.venue, unified, r.price, r.qty,
                     Side.SELL if r.isBuyerMaker else Side.BUY, r.id, r.time * NS_PER_MS,
                     receive_ns) for r in rows]

    def receive_time_ns(self) -> int:
        """Now on the clock the manager stamps its live ticks with."""
        return self._clock()

    def klines_weight(self, limit: int) -> int:
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
