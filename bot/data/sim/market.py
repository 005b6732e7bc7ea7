"""A seeded market: random-walk prices and bursty trade arrivals per symbol.

Prices follow a geometric random walk on the symbol's tick grid. Taker orders
arrive as a Poisson process whose rate switches between a calm and a busy
regime (a two-state Markov chain), so the stream has the bursts and lulls a
client must survive. Each taker order fills one or more trades at one instant,
walking the book in the taker's direction, which also gives Binance aggregate
trades their real shape. The same seed gives the same market.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass

from bot.data.sim.trades import SimTrade, format_e8, to_e8

STOCK_EXCHANGES = ("V", "P", "Q", "K", "Z", "N", "D", "X")


@dataclass(frozen=True)
class Instrument:
    """Trading rules and behaviour of one simulated symbol.

    ``symbol`` is the venue's spelling; ``tick_e8`` and ``lot_e8`` are the price
    tick and quantity step in 1e-8 units; ``volatility`` is per square-root
    second; rates are taker orders per second.
    """

    symbol: str
    price: str
    tick: str
    lot: str
    typical_lots: int
    volatility: float = 2e-4
    calm_rate: float = 2.0
    busy_rate: float = 20.0
    calm_seconds: float = 60.0
    busy_seconds: float = 15.0
    is_stock: bool = False
    base: str = ""
    quote: str = ""

    @property
    def tick_e8(self) -> int:
        return to_e8(self.tick)

    @property
    def lot_e8(self) -> int:
        return to_e8(self.lot)

    def tick_str(self) -> str:
        return format_e8(self.tick_e8)

    def lot_str(self) -> str:
        return format_e8(self.lot_e8)


_CRYPTO = {
    "BTC": ("60000", "0.01", "0.00001", 50),
    "ETH": ("3000", "0.01", "0.0001", 100),
    "SOL": ("150", "0.01", "0.001", 500),
    "BNB": ("600", "0.01", "0.001", 200),
    "XRP": ("0.5", "0.0001", "1", 200),
    "DOGE": ("0.15", "0.00001", "1", 1000),
    "ADA": ("0.45", "0.0001", "0.1", 2000),
}
#: The Binance pairs ``bot-stream --sim`` lists: every base above against USDT.
CATALOGUE_PAIRS = tuple(f"{base}/USDT" for base in _CRYPTO)
#: The USDⓈ-M perpetuals ``bot-stream --sim`` lists: the same bases, settled in USDT.
CATALOGUE_PERPETUALS = tuple(f"{pair}:USDT" for pair in CATALOGUE_PAIRS)
_STOCKS = {"AAPL": "190", "TSLA": "250", "GOOGL": "140", "MSFT": "420", "NVDA": "120",
           "AMZN": "180", "SPY": "520", "FAKEPACA": "100"}
#: The stocks ``bot-stream --sim`` lists (its Alpaca assets).
CATALOGUE_STOCKS = tuple(_STOCKS)


def crypto_instrument(base: str, quote: str, symbol: str) -> Instrument:
    """Rules for the pair ``base``/``quote`` named ``symbol`` on its venue (defaults if unknown)."""
    price, tick, lot, lots = _CRYPTO.get(base.upper(), ("100", "0.01", "0.001", 100))
    return Instrument(symbol, price, tick, lot, lots, base=base.upper(), quote=quote.upper())


def stock_instrument(symbol: str) -> Instrument:
    """Rules for a US stock: cent ticks, whole shares, slower than crypto."""
    return Instrument(symbol, _STOCKS.get(symbol, "100"), "0.01", "1", 100, volatility=1e-4,
                      calm_rate=1.0, busy_rate=8.0, is_stock=True)


class TradeGenerator:
    """Generates one symbol's trades in market time, batch by batch (one per taker order)."""

    def __init__(self, instrument: Instrument, seed: int, start_ns: int, first_id: int) -> None:
        self.instrument = instrument
        self._rng = random.Random(seed * 1_000_003 + zlib.crc32(instrument.symbol.encode()))
        self._tick = instrument.tick_e8
        self._lot = instrument.lot_e8
        self._log_mid = math.log(to_e8(instrument.price))
        self._busy = False
        self._regime_ends = start_ns + self._holding_ns()
        self._now = start_ns
        self._next_event = start_ns + self._gap_ns()
        self.next_id = first_id

    def _holding_ns(self) -> int:
        mean = self.instrument.busy_seconds if self._busy else self.instrument.calm_seconds
        return int(self._rng.expovariate(1.0 / mean) * 1e9) + 1

    def _gap_ns(self) -> int:
        rate = self.instrument.busy_rate if self._busy else self.instrument.calm_rate
        return int(self._rng.expovariate(rate) * 1e9) + 1

    def next_time_ns(self) -> int:
        return self._next_event

    def take_until(self, until_ns: int) -> list[list[SimTrade]]:
        """All taker orders executed up to ``until_ns``, each as its batch of fills."""
        batches: list[list[SimTrade]] = []
        while self._next_event <= until_ns:
            now = self._next_event
            while self._regime_ends <= now:
                self._busy = not self._busy
                self._regime_ends += self._holding_ns()
            self._walk(now)
            batches.append(self._taker_order(now))
            self._next_event = now + self._gap_ns()
        return batches

    def _walk(self, now: int) -> None:
        dt = (now - self._now) / 1e9
        self._now = now
        self._log_mid += self.instrument.volatility * math.sqrt(dt) * self._rng.gauss(0.0, 1.0)

    def _taker_order(self, now: int) -> list[SimTrade]:
        rng = self._rng
        taker_sells = rng.random() < 0.5
        mid_ticks = max(math.exp(self._log_mid) / self._tick, 2.0)
        # The taker buys at the ask (a tick above the bid) or sells at the bid.
        level = math.floor(mid_ticks) + (0 if taker_sells else 1)
        fills = 1 + min(int(rng.expovariate(0.8)), 6)
        event_ns = now + rng.randrange(1_000_000, 5_000_000)
        stock = self.instrument.is_stock
        batch = []
        for _ in range(fills):
            lots = max(1, int(rng.lognormvariate(0.0, 1.2) * self.instrument.typical_lots / 3))
            if stock and rng.random() < 0.3:
                lots = (lots // 100 + 1) * 100
            odd_lot = stock and lots < 100
            batch.append(SimTrade(
                self.instrument.symbol, self.next_id, level * self._tick, lots * self._lot, now,
                taker_sells, event_ns,
                exchange=rng.choice(STOCK_EXCHANGES) if stock else "",
                conditions=(("@", "I") if odd_lot else ("@",)) if stock else (),
                tape="C" if stock else ""))
            self.next_id += 1
            if rng.random() < 0.3:
                level += -1 if taker_sells else 1
            level = max(level, 1)
        self._log_mid = math.log(level * self._tick)
        return batch

