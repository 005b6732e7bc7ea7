"""The tick rule classifies stock trades by price moves, per symbol."""

from __future__ import annotations

from bot.data.models import Side
from bot.data.venues.tickrule import TickRule


def test_first_trade_of_a_symbol_is_unknown() -> None:
    assert TickRule().classify("AAPL", 100.0) is Side.UNKNOWN


def test_uptick_is_a_buy_and_downtick_a_sell() -> None:
    rule = TickRule()
    rule.classify("AAPL", 100.0)
    assert rule.classify("AAPL", 100.5) is Side.BUY
    assert rule.classify("AAPL", 100.1) is Side.SELL


def test_zero_tick_keeps_the_previous_classification() -> None:
    rule = TickRule()
    sides = [rule.classify("AAPL", p) for p in (10.0, 10.0, 11.0, 11.0, 11.0, 9.0, 9.0)]
    assert sides == [Side.UNKNOWN, Side.UNKNOWN, Side.BUY, Side.BUY, Side.BUY, Side.SELL,
                     Side.SELL]


def test_symbols_are_classified_independently() -> None:
    rule = TickRule()
    rule.classify("AAPL", 100.0)
    assert rule.classify("TSLA", 50.0) is Side.UNKNOWN
    assert rule.classify("AAPL", 101.0) is Side.BUY


def test_forget_starts_a_symbol_over() -> None:
    rule = TickRule()
    rule.classify("AAPL", 100.0)
    rule.forget("AAPL")
    assert rule.classify("AAPL", 101.0) is Side.UNKNOWN
