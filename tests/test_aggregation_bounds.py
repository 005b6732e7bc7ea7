"""No tick can make the aggregator emit an unbounded run of empty bars."""

from __future__ import annotations

from collections import Counter

from bot.data.aggregation import MAX_EMPTY_RUN, BarAggregator
from bot.data.models import BarFlag, Side, Tick
from bot.data.timeframes import NS_PER_SECOND

MINUTE = 60 * NS_PER_SECOND
NOW = 1_764_547_200 * NS_PER_SECOND  # 2025-12-01 00:00 UTC, a multiple of 15 minutes


def tick(trade_id: int, ts: int, price: float = 100.0) -> Tick:
    return Tick("binance", "BTC/USDT", price, 1.0, Side.BUY, trade_id, ts, ts)


def test_a_century_between_two_trades_emits_at_most_the_bound_per_timeframe() -> None:
    agg = BarAggregator(["1m", "5m", "15m"])
    assert agg.add(tick(1, 1_000_000_000)) == ()  # 1970, as one bad frame could say
    bars = agg.add(tick(2, NOW + 30 * NS_PER_SECOND))
    assert bars is not None
    per_timeframe = Counter(b.timeframe for b in bars)
    bound = MAX_EMPTY_RUN + 15  # the run, plus one longest interval of 1m bars
    assert 0 < per_timeframe["1m"] <= bound
    assert per_timeframe["5m"] <= bound // 5 + 1 and per_timeframe["15m"] <= bound // 15 + 1
    skipped = agg.counters.empty_skipped
    assert skipped > 50 * 365 * 24 * 60, "the century was skipped, not built"
    # What was emitted is still consistent: the 1970 bar with its trade, then empty bars up to
    # the bar being built now; no bar twice, all in order.
    first = next(b for b in bars if b.timeframe == "1m")
    assert first.trade_count == 1 and first.open_time == 0
    minutes = [b for b in bars if b.timeframe == "1m"]
    assert all(b.flags & BarFlag.EMPTY for b in minutes[1:])
    opens = [b.open_time for b in minutes]
    assert opens == sorted(set(opens)) and opens[-1] == NOW - MINUTE
    fifteens = [b for b in bars if b.timeframe == "15m"]
    assert all(b.close_time + 1 - b.open_time == 15 * MINUTE for b in fifteens)
    current = agg.current_bar("BTC/USDT", "1m")
    assert current is not None and current.open_time == NOW and current.trade_count == 1


def test_the_clock_cannot_emit_an_unbounded_run_either() -> None:
    agg = BarAggregator(["1m"], grace_ns=0)
    agg.add(tick(1, NOW))
    bars = agg.advance(NOW + 100 * 365 * 24 * 60 * MINUTE)
    assert len(bars) <= MAX_EMPTY_RUN + 1


def test_a_quiet_day_is_emitted_bar_by_bar_as_the_venue_does() -> None:
    agg = BarAggregator(["1m", "5m"])
    agg.add(tick(1, NOW))
    bars = agg.add(tick(2, NOW + 24 * 60 * MINUTE))
    assert bars is not None
    assert sum(b.timeframe == "1m" for b in bars) == 24 * 60
    assert sum(b.timeframe == "5m" for b in bars) == 24 * 12
    assert agg.counters.empty_skipped == 0
