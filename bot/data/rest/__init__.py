"""REST clients for the venues' market-data history: gap backfill and warm-up.

:class:`BinanceRest` (trades by id, aggregate trades, klines) and
:class:`AlpacaRest` (stock trades and bars) turn REST answers into the same
:class:`~bot.data.models.Tick` the stream codecs make and into
:class:`~bot.data.models.Bar`. Both go through a :class:`RateLimiter` and raise
:class:`RestError` when the venue refuses a request.
"""

from __future__ import annotations

from bot.data.rest.alpaca import AlpacaRest
from bot.data.rest.binance import BinanceRest
from bot.data.rest.limits import RateLimiter, RestError

__all__ = ["AlpacaRest", "BinanceRest", "RateLimiter", "RestError"]
