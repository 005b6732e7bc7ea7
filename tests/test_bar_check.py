"""BarCheck: a venue's bars (warm-up history) are kept only when a trade could have built them."""

from __future__ import annotations

import logging
import math

import msgspec
import pytest

from bot.data.bar_check import BarCheck, BarRefusal
from bot.data.models import Bar
from bot.data.timeframes import NS_PER_SECOND

MINUTE = 60 * NS_PER_SECOND
T0 = 1_764_547_200 * NS_PER_SECOND  # 2025-12-01 00:00 UTC


def bar(i: int = 0, **fields: object) -> Bar:
    b = Bar("binance", "BTC/USDT", "1m", T0 + i * MINUTE, T0 + (i + 1) * MINUTE - 1,
            100.0, 101.0, 99.0, 100.5, 2.0, 200.0, 1.5, 0.5, 150.0, 7, -1, -1)
    return msgspec.structs.replace(b, **fields) if fields else b


@pytest.mark.parametrize(("fields", "reason"), [
    ({"open": math.nan}, BarRefusal.PRICE), ({"high": math.inf}, BarRefusal.PRICE),
    ({"low": 0.0}, BarRefusal.PRICE), ({"close": -5.0}, BarRefusal.PRICE),
    ({"open": 102.0}, BarRefusal.RANGE), ({"close": 98.0}, BarRefusal.RANGE),
    ({"low": 101.5}, BarRefusal.RANGE),
    ({"volume": -1.0}, BarRefusal.VOLUME), ({"sell_volume": -0.1}, BarRefusal.VOLUME),
    ({"quote_volume": math.nan}, BarRefusal.VOLUME),
    ({"buy_quote_volume": math.inf}, BarRefusal.VOLUME),
    ({"open_time": T0 + 1}, BarRefusal.OPEN_TIME),
    ({"close_time": T0 + 2 * MINUTE - 1}, BarRefusal.OPEN_TIME),
])
def test_a_bar_no_trade_could_build_is_refused_by_reason_and_its_neighbours_kept(
        fields: dict[str, object], reason: BarRefusal) -> None:
    check = BarCheck()
    bad = bar(0, **fields)
    assert check.plausible([bad, bar(1)], MINUTE) == [bar(1)]
    assert check.refused == {reason: 1}


def test_an_empty_interval_at_the_previous_close_passes() -> None:
    empty = bar(0, open=100.0, high=100.0, low=100.0, close=100.0, volume=0.0,
                quote_volume=0.0, buy_volume=0.0, sell_volume=0.0, buy_quote_volume=0.0,
                trade_count=0)
    assert BarCheck().plausible([empty], MINUTE) == [empty]


def test_bars_come_oldest_first_each_once() -> None:
    check = BarCheck()
    assert check.plausible([bar(0), bar(0), bar(2), bar(1), bar(3)], MINUTE) == [
        bar(0), bar(2), bar(3)]
    assert check.refused == {BarRefusal.OPEN_TIME: 2}


def test_bars_must_open_after_the_history_already_kept() -> None:
    assert BarCheck().plausible([bar(0), bar(1)], MINUTE, after_ns=T0) == [bar(1)]


def test_a_refused_bar_is_logged_with_a_sample(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.data.bar_check"):
        BarCheck().plausible([bar(0, close=math.nan)], MINUTE)
    assert "refused a binance 1m bar of BTC/USDT (price)" in caplog.text
    assert "close=nan" in caplog.text


def test_a_day_opens_on_an_hour_not_only_at_utc_midnight() -> None:
    day = 24 * 60 * MINUTE
    new_york = T0 + 5 * 60 * MINUTE  # Alpaca's daily bars open at midnight New York time
    bars = [bar(0, timeframe="1d", open_time=new_york, close_time=new_york + day - 1),
            bar(0, timeframe="1d", open_time=new_york + day + 1,
                close_time=new_york + 2 * day)]
    check = BarCheck()
    assert check.plausible(bars, day) == bars[:1]
    assert check.refused == {BarRefusal.OPEN_TIME: 1}
