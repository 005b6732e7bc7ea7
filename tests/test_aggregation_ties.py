"""Trades at the same instant: Binance orders them by trade id, Alpaca by arrival.

Binance ids are one sequence per symbol, so they order trades of one
millisecond. Alpaca ids are per exchange (the tick's id carries the exchange
code in its top byte), so for stocks only the feed's order says which trade was
first: Alpaca's own bars open with the first and close with the last to arrive.
The aggregator takes each symbol's policy from its venue's facts, as the
pipeline gives it.
"""

from __future__ import annotations

from bot.data.aggregation import BarAggregator
from bot.data.models import Side, Tick
from bot.data.venues.alpaca.session import stock_trade_id
from bot.data.venues.registry import facts_of

T0 = 1_700_000_040_000_000_000  # a minute boundary
NEXT_MINUTE = T0 + 60 * 10**9


def _tick(venue: str, price: float, trade_id: int, ts: int = T0 + 5 * 10**9) -> Tick:
    return Tick(venue, "AAPL" if venue == "alpaca" else "BTC/USDT", price, 1.0, Side.UNKNOWN,
                trade_id, ts, ts)


def _aggregator(venue: str) -> BarAggregator:
    """An aggregator with the symbol's policy from its venue's facts (as the pipeline does)."""
    agg = BarAggregator(["1m"])
    facts = facts_of(venue)
    agg.configure_symbol(venue, _tick(venue, 1.0, 1).symbol, emit_empty=facts.empty_bars,
                         sequenced=facts.sequenced)
    return agg


def _bar(ticks: list[Tick]) -> tuple[float, float]:
    agg = _aggregator(ticks[0].venue)
    for tick in ticks:
        agg.add(tick)
    bar = agg.advance(NEXT_MINUTE + 10 * 10**9)[0]
    return bar.open, bar.close


def test_stock_trades_at_one_instant_open_and_close_in_arrival_order() -> None:
    first = _tick("alpaca", 187.17, stock_trade_id("Z", 5))  # highest exchange code first
    last = _tick("alpaca", 187.18, stock_trade_id("K", 9))
    assert _bar([first, last]) == (187.17, 187.18)
    assert _bar([last, first]) == (187.18, 187.17)


def test_binance_trades_at_one_instant_open_and_close_in_id_order() -> None:
    low, high = _tick("binance", 100.0, 10), _tick("binance", 101.0, 11)
    assert _bar([low, high]) == (100.0, 101.0)
    assert _bar([high, low]) == (100.0, 101.0)


def test_stock_bars_skip_intervals_without_trades() -> None:
    agg = _aggregator("alpaca")
    bars = list(agg.add(_tick("alpaca", 10.0, stock_trade_id("K", 1))) or ())
    bars += agg.add(_tick("alpaca", 11.0, stock_trade_id("K", 2), ts=T0 + 3 * 60 * 10**9)) or ()
    bars += agg.advance(T0 + 10 * 60 * 10**9)
    assert [b.open_time for b in bars] == [T0, T0 + 3 * 60 * 10**9]
