"""Health rules as plain calls: when a symbol is stale, when a stall degrades health,
and when a stale symbol may be resubscribed."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.data.health import (
    DEGRADED,
    HEALTHY,
    ConnectionFacts,
    Expectations,
    HealthReport,
    LoopFacts,
    SymbolFacts,
    assess,
)
from bot.data.loop_monitor import LoopMonitor
from bot.data.metrics import slowest
from bot.data.resubscribe import ResubscribePolicy

S = 1_000_000_000
T0 = 1_800_000_000 * S
STALE_AFTER_S = 30.0
UP = ConnectionFacts("binance-0", "binance", "connected", T0, T0, 0, 1, None)


def _judge(now: int, last_tick: int | None, expected_since: int | None,
           loop: LoopFacts | None = None) -> dict[str, object]:
    symbol = SymbolFacts("ETH/USDT", "binance", True, last_tick, 0, expected_since)
    return assess(now, [UP], [symbol], STALE_AFTER_S, loop).to_dict()


def test_a_symbol_without_a_trade_is_not_stale_five_seconds_after_it_became_expected() -> None:
    report = _judge(T0 + 5 * S, None, T0)
    assert report["status"] == HEALTHY and report["stale_symbols"] == []


def test_a_symbol_without_a_trade_is_stale_once_the_threshold_passed_since_it_was_expected(
        ) -> None:
    report = _judge(T0 + 31 * S, None, T0)
    assert report["status"] == DEGRADED and report["stale_symbols"] == ["ETH/USDT"]
    assert "no trade for 30s: ETH/USDT" in report["reasons"]


def test_staleness_counts_from_the_later_of_the_last_trade_and_the_expectation() -> None:
    assert _judge(T0 + 40 * S, T0 + 20 * S, T0)["stale_symbols"] == []
    assert _judge(T0 + 40 * S, T0 - 100 * S, T0 + 20 * S)["stale_symbols"] == []
    assert _judge(T0 + 51 * S, T0 + 20 * S, T0)["stale_symbols"] == ["ETH/USDT"]


def test_a_symbol_not_expected_to_trade_is_never_stale() -> None:
    report = _judge(T0 + 3600 * S, T0 - 3600 * S, None)
    assert report["stale_symbols"] == [] and report["status"] == HEALTHY


def test_expectation_starts_when_first_seen_connected_and_not_held() -> None:
    expect = Expectations()
    assert expect.observe("X", T0, connected=True, held=True, stale=False) is None
    assert expect.observe("X", T0 + S, connected=False, held=False, stale=False) is None
    assert expect.observe("X", T0 + 2 * S, connected=True, held=False, stale=False) == T0 + 2 * S
    assert expect.observe("X", T0 + 9 * S, connected=True, held=False, stale=False) == T0 + 2 * S


def test_a_hold_clears_the_expectation_of_a_fresh_symbol_but_not_of_a_stale_one() -> None:
    expect = Expectations()
    expect.observe("FRESH", T0, connected=True, held=False, stale=False)
    expect.observe("SILENT", T0, connected=True, held=False, stale=False)
    assert expect.observe("FRESH", T0 + S, connected=True, held=True, stale=False) is None
    assert expect.observe("SILENT", T0 + S, connected=True, held=True, stale=True) == T0


def test_a_connection_down_clears_even_a_stale_symbols_expectation() -> None:
    expect = Expectations()
    expect.observe("X", T0, connected=True, held=False, stale=False)
    assert expect.observe("X", T0 + S, connected=False, held=False, stale=True) is None
    assert expect.observe("X", T0 + 5 * S, connected=True, held=False, stale=True) == T0 + 5 * S


def test_a_loop_stalled_beyond_the_threshold_degrades_health_naming_the_slowest_handler() -> None:
    stalled = _judge(T0 + S, T0, T0, LoopFacts(12.5, 1.0, "tick:slow_handler", 50.2))
    fine = _judge(T0 + S, T0, T0, LoopFacts(0.3, 1.0, "tick:slow_handler", 50.2))
    assert stalled["status"] == DEGRADED
    assert stalled["reasons"] == ["event loop stalled for 12.5s (over 1s); slowest handler: "
                                  "tick:slow_handler (longest call 50.2 ms)"]
    assert stalled["event_loop"]["stalled"] is True
    assert fine["status"] == HEALTHY and fine["event_loop"]["stalled"] is False


def test_slowest_names_the_handler_with_the_longest_recent_call_of_at_least_1ms() -> None:
    ms = 1_000_000
    assert slowest({"tick:a": [10_000] * 5, "tick:b": [10_000, 1500 * ms, 10_000],
                    "bar_complete:c": [50 * ms] * 5}) == ("tick:b", 1500.0)
    assert slowest({"tick:a": [10_000, 20_000]}) == (None, None)


def test_loop_monitor_keeps_the_largest_lag_of_its_window_and_forgets_older_ones() -> None:
    now = [100.0]
    monitor = LoopMonitor(interval_s=0.1, window_s=30.0, clock=lambda: now[0])
    monitor.record(100.0, 0.001)
    monitor.record(101.0, 12.0)
    monitor.record(102.0, 0.002)
    now[0] = 120.0
    assert monitor.max_lag_s() == 12.0
    now[0] = 140.0
    monitor.record(140.0, 0.001)
    assert monitor.max_lag_s() == 0.0


async def test_loop_monitor_sees_a_blocked_loop() -> None:
    monitor = LoopMonitor(interval_s=0.01)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # a synchronous call blocking the loop
    await asyncio.sleep(0.05)
    task.cancel()
    assert monitor.max_lag_s() >= 0.25
    assert max(monitor.lags_ns) >= 250_000_000


def test_first_resubscription_is_due_at_once_then_waits_a_cooldown_that_doubles() -> None:
    policy = ResubscribePolicy(first_cooldown_s=30.0, max_cooldown_s=100.0)
    assert policy.due(["X"], T0, {}) == ["X"]
    assert policy.due(["X"], T0 + 29 * S, {}) == []
    assert policy.due(["X"], T0 + 30 * S, {}) == ["X"]
    assert policy.due(["X"], T0 + 89 * S, {}) == [], "second cooldown is 60 s"
    assert policy.due(["X"], T0 + 90 * S, {}) == ["X"]
    assert policy.due(["X"], T0 + 189 * S, {}) == [], "capped at 100 s"
    assert policy.due(["X"], T0 + 190 * S, {}) == ["X"]


def test_a_trade_after_a_resubscription_makes_the_next_silence_start_afresh() -> None:
    policy = ResubscribePolicy(first_cooldown_s=30.0)
    policy.due(["X"], T0, {})
    policy.due(["X"], T0 + 30 * S, {})
    assert policy.due(["X"], T0 + 40 * S, {"X": T0 + 35 * S}) == ["X"]
    assert policy.due(["X"], T0 + 50 * S, {"X": T0 + 35 * S}) == []


# -- one report: every contributor adds reasons, the status only worsens ---------------
def test_a_report_keeps_the_worst_status_any_contributor_found() -> None:
    report = HealthReport(T0)
    report.fail("connection binance-0 failed: refused")
    report.degrade("store: disk full")
    report.worsen(HEALTHY, "all good here")
    assert report.status == "unhealthy"
    assert report.reasons == ["connection binance-0 failed: refused", "store: disk full",
                              "all good here"]


def test_a_report_status_cannot_be_set_by_a_contributor() -> None:
    report = HealthReport(T0)
    report.degrade("a stale symbol")
    with pytest.raises(AttributeError):
        report.status = "healthy"  # type: ignore[misc]
    assert report.to_dict()["status"] == "degraded"


def test_contributed_sections_and_reasons_reach_the_report_dict() -> None:
    report = assess(T0, [UP], [], STALE_AFTER_S)
    report.sections["publisher"] = {"ok": False}
    report.degrade("publisher: records dropped")
    out = report.to_dict()
    assert out["status"] == "degraded" and out["publisher"] == {"ok": False}
    assert out["reasons"] == ["publisher: records dropped"]
