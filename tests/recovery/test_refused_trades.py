"""Refused trades and REST discipline in GapRecovery, on real trades against the reference.

A trade the gate refuses is not a gap (the venue's klines do not count such
trades either): it moves the sequence cursor, never causes a fetch, and the
bars equal the reference over the other trades. Each span is fetched once.
"""

from __future__ import annotations

import asyncio

import msgspec

from bot.data.gate import Refusal
from bot.data.models import BarFlag, Tick
from bot.data.recovery import GapRecovery, GapReport, TradePosition
from tests.helpers import xrpeth_trades
from tests.recovery.test_gap_recovery import (
    FAR_FUTURE,
    FakeHistory,
    _assert_equal_to_reference,
    _bars,
    _feed,
    _pipeline,
)


def _zero_price(trade: Tick) -> Tick:
    return msgspec.structs.replace(trade, price=0.0)


async def test_a_refused_live_trade_moves_the_cursor_and_fetches_nothing() -> None:
    trades = xrpeth_trades()[:2000]
    live = [_zero_price(t) if i in (500, 1200) else t for i, t in enumerate(trades)]
    history = FakeHistory(trades)
    pipeline = _pipeline()
    recovery = GapRecovery(pipeline, {"binance": history})
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert history.calls == [], "a refused trade is no gap"
    assert recovery.counters.gaps_found == 0
    assert pipeline.gate.refused == {Refusal.PRICE: 2}
    kept = [t for i, t in enumerate(trades) if i not in (500, 1200)]
    _assert_equal_to_reference(pipeline, kept)
    assert not any(b.flags & BarFlag.GAP for b in _bars(pipeline, "1m"))


async def test_a_refused_trade_inside_a_fill_is_no_gap_and_is_not_fetched_again() -> None:
    trades = xrpeth_trades()[:3000]
    refused_id = trades[1100].trade_id
    history_rows = [_zero_price(t) if t.trade_id == refused_id else t for t in trades]
    live = trades[:1000] + trades[1500:]
    history = FakeHistory(history_rows)
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": history}, on_gap=reports.append)
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert len(history.calls) == 1 and reports == []
    assert recovery.counters.gaps_unfilled == 0
    _assert_equal_to_reference(pipeline, [t for t in trades if t.trade_id != refused_id])


async def test_a_refused_trade_ending_a_fill_is_no_gap_either() -> None:
    trades = xrpeth_trades()[:3000]
    refused_id = trades[1499].trade_id  # the last trade the fill brings
    history_rows = [_zero_price(t) if t.trade_id == refused_id else t for t in trades]
    history = FakeHistory(history_rows)
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": history}, on_gap=reports.append)
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, trades[:1000] + trades[1500:])
    pipeline.advance(FAR_FUTURE)

    assert len(history.calls) == 1 and reports == []
    _assert_equal_to_reference(pipeline, [t for t in trades if t.trade_id != refused_id])


async def test_a_refused_trade_after_a_jump_does_not_hide_the_gap_before_it() -> None:
    trades = xrpeth_trades()[:2000]
    # 1000..1009 lost on the stream, 1010 arrives with price 0, the rest is fine.
    live = [*trades[:1000], _zero_price(trades[1010]), *trades[1011:]]
    history = FakeHistory(trades)
    pipeline = _pipeline()
    recovery = GapRecovery(pipeline, {"binance": history})
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert len(history.calls) == 1
    _assert_equal_to_reference(pipeline, trades)  # the fill brought 1000..1010 whole


async def test_a_fill_that_brings_nothing_is_reported_once_and_never_repeated() -> None:
    trades = xrpeth_trades()[:3000]
    live = trades[:1000] + trades[1500:]

    class Empty(FakeHistory):
        async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                        now_ns: int) -> list[Tick]:
            self.calls.append((after, until))
            return []

    history = Empty(trades)
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": history}, on_gap=reports.append)
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert len(history.calls) == 1 and len(reports) == 1
    assert reports[0].missing_ids == (trades[1000].trade_id, trades[1499].trade_id)
    _assert_equal_to_reference(pipeline, live)


async def test_a_buffer_past_its_bound_ends_the_fill_and_reports_the_span() -> None:
    trades = xrpeth_trades()[:3000]
    live = trades[:1000] + trades[1500:]
    history = FakeHistory(trades)
    history.gate = asyncio.Event()  # REST never answers
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": history}, on_gap=reports.append,
                           max_buffered=100)
    recovery.track("binance", "XRP/ETH")

    await _feed(recovery, live)
    pipeline.advance(FAR_FUTURE)

    assert len(reports) == 1 and "live ticks" in reports[0].cause
    assert reports[0].missing_ids == (trades[1000].trade_id, trades[1499].trade_id)
    assert recovery.filling_symbols() == []
    assert pipeline.ticks_accepted == len(live), "every buffered tick went through"
    _assert_equal_to_reference(pipeline, live)


async def test_a_warm_up_fill_past_its_deadline_reports_the_span_and_lets_the_stream_pass(
        ) -> None:
    trades = xrpeth_trades()[:500]
    history = FakeHistory(trades)
    history.gate = asyncio.Event()  # REST never answers
    pipeline = _pipeline()
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": history}, on_gap=reports.append)
    recovery.track("binance", "XRP/ETH", since_ns=trades[0].timestamp)
    recovery.begin("XRP/ETH", timeout=0.05)
    for t in trades[100:]:
        recovery.on_tick(t)
    assert pipeline.ticks_accepted == 0, "held while the warm-up fill runs"
    await asyncio.sleep(0.2)

    assert len(reports) == 1 and "warm-up did not finish" in reports[0].cause
    assert pipeline.ticks_accepted == 400 and recovery.filling_symbols() == []
