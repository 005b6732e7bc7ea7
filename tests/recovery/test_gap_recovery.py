"""GapRecovery on real trades: gaps found by id or by reconnect, filled before bars complete.

The truth is the uninterrupted trade sequence (real Binance XRP/ETH trades,
consecutive ids), aggregated by the separately written pandas reference.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.pipeline import TickPipeline
from bot.data.recovery import GapRecovery, GapReport, TradePosition
from tests.helpers import xrpeth_trades
from tests.reference import reference_bars

TIMEFRAMES = ["1m", "5m", "15m"]
FIELDS = ["open", "high", "low", "close", "volume", "quote_volume", "buy_volume", "sell_volume",
          "buy_quote_volume", "trade_count", "first_trade_id", "last_trade_id"]
FAR_FUTURE = 1 << 62


class FakeHistory:
    """A venue's REST trade history over a fixed trade list (optionally failing or truncated)."""

    def __init__(self, trades: list[Tick], *, sequenced: bool = True,
                 oldest_id: int | None = None, fail: bool = False) -> None:
        self.trades = trades
        self.sequenced = sequenced
        self.tick_rule = False
        self.oldest_id = oldest_id
        self.fail = fail
        self.calls: list[tuple[TradePosition, Tick | None]] = []
        self.gate: asyncio.Event | None = None

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        self.calls.append((TradePosition(after.last_id, after.last_ts, after.last_price,
                                    after.since_ns), until))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("REST refused")
        if self.sequenced:
            lo = max(after.last_id + 1, self.oldest_id or 0)
            hi = until.trade_id - 1 if until is not None else 1 << 62
            return [t for t in self.trades if lo <= t.trade_id <= hi]
        end = until.timestamp if until is not None else now_ns
        return [t for t in self.trades if after.last_ts <= t.timestamp <= end]


def _pipeline() -> TickPipeline:
    return TickPipeline(StreamManagerConfig(supported_timeframes=TIMEFRAMES,
                                            emit_empty_bars=False, bar_history_size=5000))


def _bars(pipeline: TickPipeline, timeframe: str) -> list[Bar]:
    return pipeline.history("binance", "XRP/ETH", timeframe).bars(None)


def _assert_equal_to_reference(pipeline: TickPipeline, trades: list[Tick]) -> None:
    for timeframe in TIMEFRAMES:
        expected = reference_bars(trades, timeframe).loc["XRP/ETH"]
        got = _bars(pipeline, timeframe)
        assert [b.open_time for b in got] == list(expected.index), timeframe
        for bar, (_, row) in zip(got, expected.iterrows(), strict=True):
            for name in FIELDS:
                assert getattr(bar, name) == pytest.approx(row[name], rel=1e-12), (timeframe, name)


async def _feed(recovery: GapRecovery, ticks: list[Tick]) -> None:
    for tick in ticks:
        recovery.on_tick(tick)
        await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)


async def test_id_jumps_are_filled_so_bars_equal_the_uninterrupted_sequence() -> None:
    trades = xrpeth_trades()
    missing = {t.trade_id for t in trades[1000:1400] + trades[5000:5003] + trades[9000:9800]}
    live = [t for t in trades if t.trade_id not in missing]
    history = FakeHistory(trades)
    pipeline = _pipeline()
    seen: Counter[int] = Counter()
    pipeline.bus.on_tick(lambda e: seen.update([e.data.trade_id]))
    recovery = GapRecovery(pipeline, {"binance": history})
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert len(history.calls) == 3
    assert recovery.counters.gaps_found == 3 and recovery.counters.gaps_unfilled == 0
    assert recovery.counters.trades_backfilled == len(missing)
    assert sorted(seen) == [t.trade_id for t in trades] and max(seen.values()) == 1
    _assert_equal_to_reference(pipeline, trades)
    filled_times = {t.timestamp for t in trades if t.trade_id in missing}
    for bar in _bars(pipeline, "1m"):
        touched = any(bar.open_time <= ts <= bar.close_time for ts in filled_times)
        assert bool(bar.flags & BarFlag.BACKFILLED) == touched, bar.open_time
        assert not bar.flags & BarFlag.GAP


async def test_a_failed_fill_flags_the_span_as_gap_and_reports_the_missing_ids() -> None:
    trades = xrpeth_trades()[:3000]
    live = trades[:1000] + trades[1500:]
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": FakeHistory(trades, fail=True)},
                           on_gap=reports.append)
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert len(reports) == 1
    gap = reports[0]
    assert gap.missing_ids == (trades[1000].trade_id, trades[1499].trade_id)
    assert (gap.start_ns, gap.end_ns) == (trades[999].timestamp, trades[1500].timestamp)
    assert "REST refused" in gap.cause
    for bar in _bars(pipeline, "1m"):
        overlaps = bar.open_time <= gap.end_ns and bar.close_time >= gap.start_ns
        assert bool(bar.flags & BarFlag.GAP) == overlaps
        assert not bar.is_complete_data or not overlaps
    _assert_equal_to_reference(pipeline, live)  # nothing invented, nothing lost that arrived


async def test_trades_older_than_the_rest_history_leave_a_gap_only_where_they_are_missing() -> None:
    trades = xrpeth_trades()[:3000]
    live = trades[:1000] + trades[2000:]
    oldest = trades[1600].trade_id
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": FakeHistory(trades, oldest_id=oldest)},
                           on_gap=reports.append)
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert [r.missing_ids for r in reports] == [(trades[1000].trade_id, oldest - 1)]
    assert reports[0].end_ns == trades[1600].timestamp
    _assert_equal_to_reference(pipeline, trades[:1000] + trades[1600:])


async def test_bars_of_a_symbol_being_filled_wait_for_the_fill() -> None:
    trades = xrpeth_trades()[:2000]
    history = FakeHistory(trades)
    history.gate = asyncio.Event()
    pipeline = _pipeline()
    completed: list[Bar] = []
    pipeline.bus.on_bar_complete(completed.append)
    recovery = GapRecovery(pipeline, {"binance": history})
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, trades[:500] + trades[700:])
    before = len(completed)
    pipeline.advance(FAR_FUTURE)
    assert len(completed) == before, "no bar completes by the clock while a fill runs"
    assert recovery.filling_symbols() == ["XRP/ETH"]

    history.gate.set()
    await _feed(recovery, [])
    pipeline.advance(FAR_FUTURE)
    assert recovery.filling_symbols() == []
    _assert_equal_to_reference(pipeline, trades)


async def test_a_reconnect_fills_the_window_of_a_venue_without_sequence() -> None:
    trades = xrpeth_trades()[:3000]
    history = FakeHistory(trades, sequenced=False)
    pipeline = _pipeline()
    seen: Counter[int] = Counter()
    pipeline.bus.on_tick(lambda e: seen.update([e.data.trade_id]))
    recovery = GapRecovery(pipeline, {"binance": history}, clock=lambda: trades[1999].timestamp)
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, trades[:1000])
    recovery.disconnected(["XRP/ETH"])
    recovery.reconnected(["XRP/ETH"])
    await _feed(recovery, trades[1900:])  # the stream resumes with some overlap
    pipeline.advance(FAR_FUTURE)

    (after, until), = history.calls
    assert after.last_ts == trades[999].timestamp and after.last_price == trades[999].price
    assert until is None, "a window fill runs to now, not to a tick"
    assert max(seen.values()) == 1 and len(seen) == len(trades)
    _assert_equal_to_reference(pipeline, trades)


async def test_an_empty_warm_up_window_still_starts_the_tick_rule_from_its_context() -> None:
    """Stock sides: the trades just before the window decide the first live trade's side."""
    base = xrpeth_trades()[:3]
    t0 = base[0].timestamp

    def stock(i: int, price: float, side: Side) -> Tick:
        return Tick("binance", "XRP/ETH", price, 1.0, side, 100 + i, t0 + i * 10**9,
                    t0 + i * 10**9)

    context = [stock(0, 10.0, Side.SELL), stock(1, 11.0, Side.BUY)]  # before the window
    history = FakeHistory(context, sequenced=False)
    history.tick_rule = True
    pipeline = _pipeline()
    seen: list[Tick] = []
    pipeline.bus.on_tick(lambda e: seen.append(e.data))
    recovery = GapRecovery(pipeline, {"binance": history})
    since = t0 + 2 * 10**9
    recovery.track("binance", "XRP/ETH", since_ns=since)
    recovery.begin("XRP/ETH")
    # The stream's own classifier had no history: its first ticks say UNKNOWN.
    await _feed(recovery, [stock(3, 11.0, Side.UNKNOWN), stock(4, 10.5, Side.UNKNOWN)])

    assert [t.trade_id for t in seen] == [103, 104], "context trades are not passed on"
    assert [t.side for t in seen] == [Side.BUY, Side.SELL]


@pytest.mark.parametrize("fail", [True, False])
async def test_a_reconnect_fill_with_the_local_clock_behind_the_venue_reports_and_goes_on(
        fail: bool) -> None:
    """A fill after a reconnect reads up to now. The local clock is 5 s behind the time of
    the last trade (a slow machine clock): the gap it reports is still an ordered span,
    the fill ends, and the symbol's next live trades build bars (they used to wait behind
    a fill task that had died on a reversed span, for good)."""
    trades = xrpeth_trades()[:3000]
    pipeline = _pipeline()
    reports: list[GapReport] = []
    behind = trades[999].timestamp - 5_000_000_000
    recovery = GapRecovery(pipeline, {"binance": FakeHistory(trades, fail=fail)},
                           clock=lambda: behind, on_gap=reports.append)
    recovery.track("binance", "XRP/ETH")
    await _feed(recovery, trades[:1000])
    recovery.disconnected(["XRP/ETH"])
    recovery.reconnected(["XRP/ETH"])
    await _feed(recovery, [])
    assert recovery.filling_symbols() == []
    if fail:
        (gap,) = reports
        assert (gap.start_ns, gap.end_ns) == (behind, trades[999].timestamp)
    await _feed(recovery, trades[1500:])
    assert recovery.filling_symbols() == []
    assert pipeline.ticks_accepted == 3000 - (500 if fail else 0)


async def test_a_fill_that_fails_to_apply_is_reported_shown_and_does_not_hold_its_symbol(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong applying a fill (here the bar marking raises once), the span is
    a reported gap, the failure is the supervisor's (logged, counted, in health), and the
    symbol's live trades go on building bars."""
    trades = xrpeth_trades()[:3000]
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": FakeHistory(trades)}, on_gap=reports.append)
    recovery.track("binance", "XRP/ETH")
    mark = pipeline.aggregator.mark
    calls = [0]

    def mark_failing_once(*args: object) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a defect")
        mark(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline.aggregator, "mark", mark_failing_once)
    await _feed(recovery, trades[:1000] + trades[1500:2000])  # ids 1000-1499 missing
    await _feed(recovery, trades[2000:])
    assert recovery.filling_symbols() == []
    (gap,) = reports
    assert "the fill could not be applied (RuntimeError: a defect)" in gap.cause
    assert gap.missing_ids == (trades[1000].trade_id, trades[1499].trade_id)
    assert recovery.supervisor.failures == 1
    assert "task backfill-XRP/ETH failed (1x): RuntimeError: a defect" in \
        recovery.supervisor.reasons()[0]
    assert pipeline.ticks_accepted == 2500
