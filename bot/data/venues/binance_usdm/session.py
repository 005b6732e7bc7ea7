"""The USDⓈ-M combined-stream session: Binance's protocol on USDⓈ-M's routed path.

``fstream.binance.com`` routes market streams by path: ``/public`` carries
high-frequency book data (``@bookTicker``, ``@depth``), ``/market`` regular
market data (``@aggTrade``, ``@trade``, ``@markPrice``, klines). A stream asked
for on the wrong path is accepted and silently never delivered, so this
session asks for its trade streams on ``/market/stream`` and carries no ticker
channel (book tickers live on the other path).

Trades: ``binance_trade_channel`` as for spot. ``@trade`` (the default) gives
one tick per trade, id ``t``, as USDⓈ-M's klines count them; its records carry
a type ``X``: ``MARKET`` for order-book trades, others (``INSURANCE_FUND``,
``ADL``, ``NA`` with price and quantity 0) are kept as the tick's condition, and
the venue's gate rule refuses them. ``@aggTrade`` gives one tick per aggregate
of market trades (id ``a``); its gaps are filled from the public ``aggTrades``.

Limits: USDⓈ-M's WebSocket documentation allows 10 incoming messages a second
and 1024 streams per connection, and a connection lives 24 hours; this session
carries at most 200 streams, a cap of its own (fewer symbols lost and
re-subscribed with one connection).
"""

from __future__ import annotations

from bot.data.config import StreamManagerConfig
from bot.data.venues.binance.session import BinanceSession
from bot.data.venues.binance_usdm.symbols import (
    VENUE_BINANCE_USDM,
    WS_URL_DEFAULT,
    WS_URL_VARIABLE,
    endpoint,
    to_raw_symbol,
)

MAX_STREAMS_PER_CONNECTION = 200
# At most 10 incoming messages a second, pings and pongs included: requests go out at
# most 4 a second.
CONTROL_INTERVAL_S = 0.25
MARKET_PATH = "/market"


class BinanceUsdmSession(BinanceSession):
    """One USDⓈ-M combined-stream connection on the ``/market`` path."""

    STREAM_PATH = MARKET_PATH + "/stream"
    MAX_STREAMS = MAX_STREAMS_PER_CONNECTION

    @classmethod
    def endpoint(cls, config: StreamManagerConfig) -> tuple[str, str]:
        return VENUE_BINANCE_USDM, endpoint(WS_URL_VARIABLE, WS_URL_DEFAULT, ("ws", "wss"))

    @classmethod
    def ticker_channel_of(cls, config: StreamManagerConfig) -> str | None:
        return None

    def raw_symbol(self, symbol: str) -> str:
        return to_raw_symbol(symbol)
