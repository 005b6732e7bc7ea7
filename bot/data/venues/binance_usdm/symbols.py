"""USDⓈ-M perpetual symbols: ccxt's ``BASE/QUOTE:SETTLE`` to Binance's ``BASEQUOTE``."""

from __future__ import annotations

import os
import re

from bot.data.config import SymbolForm, Url

VENUE_BINANCE_USDM = "binanceusdm"  # ccxt's id of the venue
WS_URL_DEFAULT = "wss://fstream.binance.com"
REST_URL_DEFAULT = "https://fapi.binance.com"
WS_URL_VARIABLE = "BINANCE_FUTURES_WS_URL"
REST_URL_VARIABLE = "BINANCE_FUTURES_REST_URL"

# A linear perpetual in ccxt's unified notation, the whole rule in one pattern (checked when
# a symbol is added): Binance's symbol rule ^[A-Z0-9-_.]{1,20}$ bounds base and quote
# together (the lookahead: at most 21 characters before the colon), and the settlement
# currency is the quote (the back-reference; USDT, USDC).
USDM_PERPETUAL = SymbolForm(
    re.compile(r"(?=[^:]{3,21}:)([A-Za-z0-9]{1,19})/([A-Za-z0-9]{1,19}):(?i:\2)"),
    "a USDⓈ-M perpetual looks like 'BASE/QUOTE:SETTLE' with SETTLE equal to QUOTE, e.g. "
    "'BTC/USDT:USDT': letters A-Z and digits, base and quote at most 20 in all",
    max_length=41)


def to_raw_symbol(symbol: str, field: str = "symbol") -> str:
    """``"BTC/USDT:USDT"`` -> ``"BTCUSDT"``; a ConfigError naming the symbol if it is not a
    USDⓈ-M perpetual."""
    base, _, quote = USDM_PERPETUAL.normalise(symbol, field).partition(":")[0].partition("/")
    return base + quote


def endpoint(variable: str, default: str, schemes: tuple[str, ...]) -> str:
    """The base URL from the environment variable when set (the simulator, a proxy), else
    the venue's published one; a ConfigError naming the variable if it is not a URL."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    return Url(schemes).check(variable, value).rstrip("/")
