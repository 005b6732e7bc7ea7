"""A backtest end to end on 12,477 real XRP/ETH trades recorded into a store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.data import Backtest
from bot.data.models import SignalDirection
from bot.data.store import TradeStore
from tests.helpers import xrpeth_trades
from tests.store.support import record_live


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TradeStore:
    import asyncio

    root = tmp_path_factory.mktemp("xrpeth")
    asyncio.run(record_live(xrpeth_trades(), root))
    return TradeStore(root)


def test_a_backtest_over_recorded_real_trades_fills_at_real_trades(store: TradeStore) -> None:
    trades = xrpeth_trades()
    backtest = Backtest(store, ["XRP/ETH"], "1m", signal_threshold=0.55, fee_bps=7.5,
                        quantity=10.0, initial_cash=1.0)
    result = backtest.run()
    assert result.ticks == len(trades)
    assert len(result.trades) >= 10
    # Every fill is at the price of the first trade after its signal (no slippage set).
    by_time: dict[int, list[float]] = {}
    for t in trades:
        by_time.setdefault(t.timestamp, []).append(t.price)
    for fill in result.trades:
        assert fill.timestamp >= fill.signal_timestamp
        assert fill.price in by_time[fill.timestamp]
        assert not any(fill.signal_timestamp < t < fill.timestamp for t in by_time)
        assert fill.fee == pytest.approx(fill.price * fill.quantity * 7.5e-4)
    # Long only by default, one order of 10 at a time: buys and sells alternate.
    sides = [f.side for f in result.trades]
    assert sides[::2] == [SignalDirection.BUY] * len(sides[::2])
    assert sides[1::2] == [SignalDirection.SELL] * len(sides[1::2])
    # The account, recomputed here from the fills and the last trade's price.
    cash = 1.0 + sum((-f.price if f.side is SignalDirection.BUY else f.price) * f.quantity
                     - f.fee for f in result.trades)
    held = sum(f.quantity if f.side is SignalDirection.BUY else -f.quantity
               for f in result.trades)
    assert math.isclose(result.final_equity, cash + held * trades[-1].price, rel_tol=1e-12)
    assert result.total_pnl == pytest.approx(result.realised_pnl - result.fees
                                             + result.unrealised_pnl, abs=1e-12)
    assert 0.0 < result.time_in_market < 1.0
    assert result.max_drawdown >= 0.0
    peak = result.equity.cummax()
    assert result.max_drawdown == pytest.approx(float((peak - result.equity).max()))
    # Each whole 1m bar was offered to the engine; the end of the recording cut none here
    # (the live session ran past it), and the first bar began before the first trade.
    assert result.engine_metrics["bars_seen"] == result.bars
    assert result.engine_metrics["skipped"]["partial"] == 1


def test_the_equity_curve_is_saved_as_a_png(store: TradeStore, tmp_path: Path) -> None:
    result = Backtest(store, timeframe="1m", signal_threshold=0.55, quantity=10.0,
                      initial_cash=1.0).run()
    path = result.plot(tmp_path / "equity.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_missing_matplotlib_is_named_with_the_extra(store: TradeStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = Backtest(store, timeframe="1m").run()
    with pytest.raises(ImportError, match=r"bot-stream\[backtest\]"):
        result.plot(tmp_path / "equity.png")


def test_symbols_are_matched_in_any_case_and_traded_as_recorded(store: TradeStore) -> None:
    result = Backtest(store, ["xrp/eth"], "1m", signal_threshold=0.55, quantity=10.0,
                      initial_cash=1.0).run()
    assert result.trades and {f.symbol for f in result.trades} == {"XRP/ETH"}
