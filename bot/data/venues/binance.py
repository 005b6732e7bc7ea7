"""Binance spot combined-stream codec (sans-I/O).

Frames arrive wrapped as ``{"stream": "btcusdt@trade", "data": {...}}``. The hot
path decodes a trade frame straight into a typed struct with msgspec (prices
and quantities arrive as decimal strings and are parsed by msgspec's C code),
then builds one :class:`~bot.data.models.Tick`.

Side: Binance's ``m`` is "buyer is the maker", so ``m: true`` means the taker
sold. Kline taker-buy volume is the sum of quantities with ``m: false``.
"""

from __future__ import annotations

import msgspec

from bot.data.models import Side, Tick

VENUE_BINANCE = "binance"
_BUY = Side.BUY
_SELL = Side.SELL


class _Trade(msgspec.Struct, gc=False):
    e: str
    s: str
    t: int
    p: float
    q: float
    T: int
    m: bool


class _TradeFrame(msgspec.Struct, gc=False):
    stream: str
    data: _Trade


def to_raw_symbol(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"BTCUSDT"`` (Binance's form)."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise ValueError(f"crypto symbol {symbol!r} must look like 'BASE/QUOTE', e.g. 'BTC/USDT'")
    return (base + quote).upper()


class BinanceCodec:
    """Decodes Binance spot trade frames into ticks for a known set of symbols.

    ``time_unit_ns`` is how many nanoseconds one unit of the frame's timestamps
    is: 1_000_000 for the default milliseconds, 1_000 when the connection asked
    for ``timeUnit=MICROSECOND``.
    """

    def __init__(self, venue: str = VENUE_BINANCE, time_unit_ns: int = 1_000_000) -> None:
        self.venue = venue
        self.time_unit_ns = time_unit_ns
        self._unified: dict[str, str] = {}
        self._trade_decoder = msgspec.json.Decoder(_TradeFrame, strict=False)

    def add_symbol(self, symbol: str) -> str:
        """Register a unified symbol; returns its raw Binance name."""
        raw = to_raw_symbol(symbol)
        self._unified[raw] = symbol.upper()
        return raw

    def unified(self, raw: str) -> str:
        """Unified name of a raw symbol; unregistered ones are returned unchanged."""
        return self._unified.get(raw, raw)

    def decode_trade(self, frame: bytes | str, receive_ns: int) -> Tick | None:
        """Decode a ``@trade`` frame; None when the frame is not a trade."""
        try:
            msg = self._trade_decoder.decode(frame)
        except msgspec.ValidationError:
            return None
        d = msg.data
        if d.e != "trade":
            return None
        return Tick(self.venue, self._unified.get(d.s) or d.s, d.p, d.q,
                    _SELL if d.m else _BUY, d.t, d.T * self.time_unit_ns, receive_ns)
