"""TickGate: every tick checked once; refused ones counted by reason; the venue's clock judged."""

from __future__ import annotations

import math

import msgspec
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.gate import MAX_INT64, Refusal, TickGate, valid_trade_id
from bot.data.models import Side, Tick
from bot.data.pipeline import TickPipeline, past_window_ns
from bot.data.timeframes import NS_PER_SECOND

NOW = 1_764_547_200 * NS_PER_SECOND  # 2025-12-01 00:00 UTC
MINUTE = 60 * NS_PER_SECOND
HOUR = 60 * MINUTE


def tick(trade_id: int = 1, *, price: float = 100.0, qty: float = 1.0, ts: int = NOW,
         received: int = NOW, venue: str = "binance", symbol: str = "BTC/USDT") -> Tick:
    return Tick(venue, symbol, price, qty, Side.BUY, trade_id, ts, received)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gate(**kwargs: object) -> TickGate:
    return TickGate(past_window_ns=6 * HOUR, future_window_ns=MINUTE, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("price", 0.0, Refusal.PRICE), ("price", -1.0, Refusal.PRICE),
    ("price", math.nan, Refusal.PRICE), ("price", math.inf, Refusal.PRICE),
    ("volume", 0.0, Refusal.QUANTITY), ("volume", -1.0, Refusal.QUANTITY),
    ("volume", math.nan, Refusal.QUANTITY), ("volume", float("1e309"), Refusal.QUANTITY),
    ("trade_id", -1, Refusal.TRADE_ID), ("trade_id", 1 << 63, Refusal.TRADE_ID),
    ("trade_id", True, Refusal.TRADE_ID), ("trade_id", 5.0, Refusal.TRADE_ID),
    ("timestamp", -1, Refusal.TIMESTAMP), ("timestamp", 1 << 63, Refusal.TIMESTAMP),
    ("timestamp", float(NOW), Refusal.TIMESTAMP),
])
def test_a_tick_with_an_impossible_value_is_refused_and_counted_by_reason(
        field: str, value: object, reason: Refusal) -> None:
    g = gate()
    bad = msgspec.structs.replace(tick(), **{field: value})
    assert g.passing(bad) == ()
    assert g.refused == {reason: 1} and g.refused_total == 1
    assert g.passing(tick(2)) == (tick(2),), "the next good tick passes"


def test_valid_trade_ids_are_ints_within_int64() -> None:
    assert valid_trade_id(0) and valid_trade_id(MAX_INT64)
    assert not valid_trade_id(-1) and not valid_trade_id(MAX_INT64 + 1)
    assert not valid_trade_id(False) and not valid_trade_id(3.0)


def test_a_venue_rule_refuses_with_its_own_reason_and_other_venues_are_untouched() -> None:
    def no_zero_id(t: Tick) -> str | None:
        return "not_a_market_trade" if t.trade_id % 2 == 0 else None

    g = gate(venue_rules={"binance_futures": no_zero_id})
    assert g.passing(tick(2, venue="binance_futures")) == ()
    assert g.passing(tick(3, venue="binance_futures")) == (tick(3, venue="binance_futures"),)
    assert g.passing(tick(2)) == (tick(2),)
    assert g.refused == {"not_a_market_trade": 1}


@pytest.mark.parametrize("ts", [0, 1_000_000_000, NOW - 7 * HOUR, NOW + 2 * MINUTE,
                                NOW + 7 * 24 * HOUR, NOW + 100 * 365 * 24 * HOUR])
def test_one_tick_far_from_the_venue_clock_is_held_then_refused_by_the_next(ts: int) -> None:
    g = gate()
    assert g.passing(tick(1)) == (tick(1),)
    odd = tick(2, ts=ts, received=NOW + 1)
    assert g.passing(odd) == (), "held as a suspect"
    after = tick(3, ts=NOW + 2, received=NOW + 2)
    assert g.passing(after) == (after,)
    assert g.refused == {Refusal.TIME_OUT_OF_RANGE: 1}


def test_a_venue_clock_that_jumped_is_followed_when_the_next_tick_agrees() -> None:
    # A simulator at 300x after a silence of 12 s: trades stamped an hour ahead of the machine.
    g = gate()
    assert g.passing(tick(1)) == (tick(1),)
    ahead = NOW + HOUR
    first = tick(2, ts=ahead, received=NOW + 12 * NS_PER_SECOND)
    second = tick(3, ts=ahead + 30 * NS_PER_SECOND, received=NOW + 12 * NS_PER_SECOND + 10**8)
    assert g.passing(first) == ()
    assert g.passing(second) == (first, second), "both pass, in order"
    third = tick(4, ts=ahead + 40 * NS_PER_SECOND, received=NOW + 13 * NS_PER_SECOND)
    assert g.passing(third) == (third,), "the clock follows the venue now"
    assert g.refused == {}


def test_a_venue_clock_running_300_times_faster_loses_no_trade() -> None:
    # The simulator at 300x with a trade every 0.5 s of local time: each is 150 s ahead.
    g = gate()
    passed = []
    for i in range(50):
        passed += g.passing(tick(i + 1, ts=NOW + i * 150 * NS_PER_SECOND,
                                 received=NOW + i * NS_PER_SECOND // 2))
    assert [t.trade_id for t in passed] == list(range(1, 50)), "the last one waits for a next"
    assert g.refused == {}


def test_two_agreeing_ticks_further_ahead_than_the_venue_clock_could_run_are_refused() -> None:
    # A venue heard a second ago cannot be a day ahead now, even at MAX_CLOCK_RATE.
    g = gate()
    g.passing(tick(1))
    first = tick(2, ts=NOW + 24 * HOUR, received=NOW + NS_PER_SECOND)
    second = tick(3, ts=NOW + 24 * HOUR + 1, received=NOW + NS_PER_SECOND + 1)
    assert g.passing(first) == () and g.passing(second) == ()
    real = tick(4, ts=NOW + 2 * NS_PER_SECOND, received=NOW + 2 * NS_PER_SECOND)
    assert g.passing(real) == (real,), "the venue's clock did not move"
    assert g.refused == {Refusal.TIME_OUT_OF_RANGE: 2}


def test_the_newest_trade_built_tells_when_the_venue_clock_was_last_seen() -> None:
    # Known from its first tick an hour ago, but the pipeline built a trade a second ago.
    g = gate(newest_trade=lambda venue: NOW + HOUR - NS_PER_SECOND)
    g.passing(tick(1))
    first = tick(2, ts=NOW + 30 * 24 * HOUR, received=NOW + HOUR)
    second = tick(3, ts=NOW + 30 * 24 * HOUR + 1, received=NOW + HOUR + 1)
    assert g.passing(first) == () and g.passing(second) == ()
    assert gate().passing(tick(1)) and gate().refused == {}
    unaware = gate()
    unaware.passing(tick(1))
    assert unaware.passing(first) == ()
    assert unaware.passing(second) == (first, second), "an hour at 1000x covers 30 days"


def test_a_flood_of_far_off_pairs_looks_the_newest_trade_up_once_a_second() -> None:
    mono = FakeMonotonic()
    lookups: list[str] = []

    def newest(venue: str) -> int:
        lookups.append(venue)
        return NOW

    g = gate(monotonic=mono, newest_trade=newest)
    g.passing(tick(1))
    for i in range(100):
        at = NOW + i * 1000
        g.passing(tick(2 * i + 2, ts=NOW + 24 * HOUR + i, received=at))
        g.passing(tick(2 * i + 3, ts=NOW + 24 * HOUR + i + 1, received=at + 1))
    assert lookups == ["binance"]
    mono.now = 1.0
    g.passing(tick(500, ts=NOW + 24 * HOUR, received=NOW + 10**6))
    g.passing(tick(501, ts=NOW + 24 * HOUR + 1, received=NOW + 10**6 + 1))
    assert lookups == ["binance", "binance"]


def test_a_jump_beyond_the_rate_is_followed_once_it_persists() -> None:
    # A venue restarted on a clock a day ahead: every trade of it looks a day ahead.
    mono = FakeMonotonic()
    g = gate(monotonic=mono, persist_s=10.0)
    g.passing(tick(1))
    passed: list[Tick] = []
    for i in range(30):  # a trade every second of local time
        mono.now = float(i)
        passed += g.passing(tick(i + 2, ts=NOW + 24 * HOUR + (i + 1) * NS_PER_SECOND,
                                 received=NOW + (i + 1) * NS_PER_SECOND))
    assert passed and passed[0].trade_id >= 10, "refused while it had not persisted"
    assert [t.trade_id for t in passed] == list(range(passed[0].trade_id, 32))


def test_a_local_clock_stepped_back_is_followed_at_once() -> None:
    # Known at NOW; the machine's clock then reads an hour earlier: the trades look ahead.
    g = gate()
    g.passing(tick(1))
    back = NOW - HOUR
    first = tick(2, ts=NOW + NS_PER_SECOND, received=back + NS_PER_SECOND)
    second = tick(3, ts=NOW + 2 * NS_PER_SECOND, received=back + 2 * NS_PER_SECOND)
    assert g.passing(first) == ()
    assert g.passing(second) == (first, second)


def test_a_tick_at_the_old_clock_ends_a_persisting_jump() -> None:
    mono = FakeMonotonic()
    g = gate(monotonic=mono, persist_s=10.0)
    g.passing(tick(1))
    for i in range(30):  # hostile trades a day ahead, each pair followed by a real one
        mono.now = float(i)
        at = NOW + (i + 1) * NS_PER_SECOND
        g.passing(tick(3 * i + 2, ts=NOW + 24 * HOUR + i, received=at))
        g.passing(tick(3 * i + 3, ts=NOW + 24 * HOUR + i + 1, received=at + 1))
        real = tick(3 * i + 4, ts=at + 2, received=at + 2)
        assert g.passing(real) == (real,)
    assert g.refused == {Refusal.TIME_OUT_OF_RANGE: 60}


def test_a_known_venue_clock_is_not_moved_back_by_two_agreeing_ticks() -> None:
    g = gate()
    g.passing(tick(1))
    first = tick(2, ts=NOW - 30 * 24 * HOUR, received=NOW + 1)
    second = tick(3, ts=NOW - 30 * 24 * HOUR + 1, received=NOW + 2)
    assert g.passing(first) == () and g.passing(second) == ()
    real = tick(4, ts=NOW + 3, received=NOW + 3)
    assert g.passing(real) == (real,)


def test_a_second_bad_tick_far_beyond_the_first_does_not_confirm_it() -> None:
    g = gate()
    g.passing(tick(1))
    assert g.passing(tick(2, ts=NOW + HOUR, received=NOW + 1)) == ()
    assert g.passing(tick(3, ts=NOW + 100 * 365 * 24 * HOUR, received=NOW + 2)) == ()
    assert g.refused == {Refusal.TIME_OUT_OF_RANGE: 1}, "the first refused, the second held"


def test_a_clock_ahead_of_the_machine_from_the_first_tick_passes_from_the_second() -> None:
    g = gate()
    first = tick(1, ts=NOW + 10 * MINUTE)
    second = tick(2, ts=NOW + 10 * MINUTE + 1)
    assert g.passing(first) == ()
    assert g.passing(second) == (first, second)


def test_accepted_ticks_move_the_venue_clock_forward() -> None:
    # A fast simulator: each tick a little ahead, the estimate follows, nothing is held.
    g = gate()
    for i in range(100):
        t = tick(i + 1, ts=NOW + i * 50 * NS_PER_SECOND, received=NOW + i * 10**8)
        assert g.passing(t) == (t,)


def test_old_trades_within_the_past_window_pass_as_rest_fills_deliver_them() -> None:
    g = gate()
    g.passing(tick(1))
    old = tick(2, ts=NOW - 5 * HOUR, received=NOW + 1)
    assert g.passing(old) == (old,)


def test_an_undecided_suspect_is_refused_by_expire_after_its_timeout() -> None:
    mono = FakeMonotonic()
    g = gate(monotonic=mono, suspect_timeout_s=3.0)
    g.passing(tick(1))
    assert g.passing(tick(2, ts=0)) == ()
    mono.now = 2.9
    assert g.expire() == []
    mono.now = 3.0
    assert [t.trade_id for t in g.expire()] == [2]
    assert g.refused == {Refusal.TIME_OUT_OF_RANGE: 1}


def test_venues_have_separate_clocks() -> None:
    g = gate()
    g.passing(tick(1))
    ahead = tick(1, ts=NOW + HOUR, venue="alpaca", symbol="AAPL")
    assert g.passing(ahead) == ()
    assert g.passing(tick(2)) == (tick(2),), "binance's tick does not decide alpaca's suspect"
    later = tick(2, ts=NOW + HOUR + 1, venue="alpaca", symbol="AAPL")
    assert g.passing(later) == (ahead, later)


def test_the_pipeline_builds_no_bar_from_a_refused_tick() -> None:
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]))
    assert not pipeline.process(tick(1, price=0.0))
    assert pipeline.aggregator.symbols == [] and pipeline.ticks_accepted == 0
    assert pipeline.process(tick(2))
    assert pipeline.gate.refused == {Refusal.PRICE: 1}


def test_the_past_window_covers_a_store_resume_and_the_longest_warm_up() -> None:
    config = StreamManagerConfig(supported_timeframes=["1m", "1d"],
                                 store_resume_max_gap_seconds=12 * 3600.0)
    assert past_window_ns(config) >= 12 * HOUR + 2 * 24 * HOUR


# -- the venue's clock measures latency --------------------------------------------------

def test_delay_is_measured_on_the_venues_clock_anchored_by_its_own_time() -> None:
    """A venue 5 minutes ahead of this machine: a trade 40 ms old on its clock reads 40 ms,
    not -5 minutes."""
    g = gate()
    ahead = 5 * MINUTE
    g.observe_venue_clock("binance", NOW + ahead, NOW)
    late = tick(ts=NOW + ahead - 40_000_000, received=NOW)
    assert g.venue_delay_ns(late) == 40_000_000
    assert g.admit(late), "the anchor also places the venue's clock for the window"


def test_delay_is_never_negative_when_the_venue_clock_runs_ahead_of_the_estimate() -> None:
    g = gate()
    g.observe_venue_clock("binance", NOW, NOW)
    assert g.venue_delay_ns(tick(ts=NOW + 30 * NS_PER_SECOND, received=NOW)) == 0


def test_a_later_venue_time_only_moves_the_clock_forward() -> None:
    g = gate()
    g.observe_venue_clock("binance", NOW + MINUTE, NOW)
    g.observe_venue_clock("binance", NOW, NOW)  # an older answer arriving late
    assert g.venue_delay_ns(tick(ts=NOW + MINUTE - 1000, received=NOW)) == 1000


def test_without_the_venues_time_delay_is_judged_on_the_local_clock() -> None:
    assert gate().venue_delay_ns(tick(ts=NOW - 25_000_000, received=NOW)) == 25_000_000
