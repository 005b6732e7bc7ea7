"""Polite REST shared by the venues' clients: rate limits, bans, retries, typed errors.

The venue clients live in their venue packages (``bot.data.venues.<name>.rest``);
:class:`BinanceRest` and :class:`AlpacaRest` are also importable from here, as
before. They turn REST answers into the same :class:`~bot.data.models.Tick` the
stream codecs make and into :class:`~bot.data.models.Bar`, go through a
:class:`RateLimiter` and raise :class:`RestError` when the venue refuses a request.
"""

from __future__ import annotations

from typing import Any

from bot.data.rest.limits import RateLimiter, RestError

__all__ = ["AlpacaRest", "BinanceRest", "RateLimiter", "RestError"]


def __getattr__(name: str) -> Any:
    """The venue clients, imported on first use (their modules import this package)."""
    if name == "BinanceRest":
        from bot.data.venues.binance.rest import BinanceRest

        return BinanceRest
    if name == "AlpacaRest":
        from bot.data.venues.alpaca.rest import AlpacaRest

        return AlpacaRest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
