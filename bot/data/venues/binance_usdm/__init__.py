"""Binance USDⓈ-M perpetual futures: session, REST client and description.

Symbols use ccxt's unified notation for linear perpetuals: ``"BTC/USDT:USDT"``
(base / quote : settlement currency, quote and settlement the same) is the
venue's ``BTCUSDT``. The protocol is Binance's, so the session and the REST
client are the spot ones with USDⓈ-M's endpoints, paths, limits and weights:
``session`` (trade stream on ``fstream.binance.com/market``), ``rest``
(``fapi.binance.com/fapi/v1``) and ``spec`` (the
:class:`~bot.data.venues.spec.VenueSpec` the registry lists, with the gate rule
that refuses trades USDⓈ-M's klines do not count).
"""
