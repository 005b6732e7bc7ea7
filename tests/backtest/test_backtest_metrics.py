"""Backtest figures on a scripted market, against a computation by hand.

One trade at second 1 and one at second 30 of each minute. The predictor reads
the bar's close: 102 -> BUY, 106 -> SELL, 103 -> BUY. A signal is decided when
the first trade of the next minute completes the bar, and filled at the next
trade, the one at second 30. Fee 10 bps.

    minute  trades (s1, s30)  bar close  signal  fill at s30 of the next minute
    0       100, 100          100        -       (first bar: PARTIAL, skipped)
    1       100, 101          101        -
    2       101, 102          102        BUY  -> buy 1 at 104 (minute 3), fee 0.104
    3       103, 104          104        -
    4       105, 106          106        SELL -> sell 1 at 108 (minute 5), fee 0.108, +4
    5       107, 108          108        -
    6       107, 103          103        BUY  -> buy 1 at 100 (minute 7), fee 0.100
    7       102, 100          100        -
    8       98, 99            (cut by the end of the data: PARTIAL, no signal)

cash = 10000 - 104.104 + 107.892 - 100.100 = 9903.688; one unit held, last trade 99:
equity 10002.688, total PnL 2.688 = realised 4 - fees 0.312 + unrealised (99 - 100).
Equity at each bar end, marked at the bar's close (fills before the end counted):
10000 (start), 10000, 10000, 10000, 9999.896, 10001.896, 10003.788, 10003.788,
10003.688, then 10002.688 at the last trade: max drawdown 10003.788 - 10002.688 = 1.1.
In the market from 3:30 to 5:30 and from 7:30 to the last trade 8:30: 180 s of the
509 s from the first trade (0:01) to the last.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.data import Backtest
from bot.data.engine import PaperExecutor
from bot.data.errors import ConfigError
from bot.data.events import EventType
from bot.data.models import Side, SignalDirection, Tick
from tests.engine.support import collect

T0 = 1_735_689_600 * 10**9
SECOND = 10**9
PRICES = [(100, 100), (100, 101), (101, 102), (103, 104), (105, 106), (107, 108), (107, 103),
          (102, 100), (98, 99)]
DECISIONS = {102.0: 0.9, 106.0: 0.1, 103.0: 0.9}


def scripted_ticks(symbol: str = "BTC/USDT") -> list[Tick]:
    ticks = []
    for minute, pair in enumerate(PRICES):
        for second, price in zip((1, 30), pair, strict=True):
            at = T0 + (minute * 60 + second) * SECOND
            ticks.append(Tick("binance", symbol, float(price), 1.0, Side.BUY,
                              len(ticks) + 1, at, at))
    return ticks


def last_close(bars: np.ndarray) -> dict[str, float]:
    return {"close": float(bars["close"][-1])}


def by_close(features: dict[str, float]) -> float:
    return DECISIONS.get(features["close"], 0.5)


def scripted_backtest(**options: object) -> Backtest:
    return Backtest(scripted_ticks(), timeframe="1m", predictor=by_close, features=last_close,
                    min_history=2, **options)  # type: ignore[arg-type]


def test_three_scripted_trades_give_the_hand_computed_figures() -> None:
    result = scripted_backtest().run()
    assert [(f.side, f.price, f.fee, f.realised_pnl) for f in result.trades] == [
        (SignalDirection.BUY, 104.0, pytest.approx(0.104), 0.0),
        (SignalDirection.SELL, 108.0, pytest.approx(0.108), 4.0),
        (SignalDirection.BUY, 100.0, pytest.approx(0.1), 0.0)]
    assert [f.timestamp for f in result.trades] == [T0 + s * SECOND for s in (210, 330, 450)]
    assert result.fee_bps == 10.0
    assert result.fees == pytest.approx(0.312)
    assert result.realised_pnl == pytest.approx(4.0)
    assert result.unrealised_pnl == pytest.approx(-1.0)
    assert result.final_equity == pytest.approx(10002.688)
    assert result.total_pnl == pytest.approx(2.688)
    assert result.positions == {"BTC/USDT": 1.0}
    assert result.equity.to_numpy() == pytest.approx(
        [10000, 10000, 10000, 10000, 9999.896, 10001.896, 10003.788, 10003.788, 10003.688,
         10002.688])
    assert list(result.equity.index) == [pd.Timestamp(T0 + s * SECOND, tz="UTC") for s in
                                         (1, 60, 120, 180, 240, 300, 360, 420, 480, 510)]
    assert result.max_drawdown == pytest.approx(1.1)
    assert result.max_drawdown_pct == pytest.approx(1.1 / 10003.788)
    assert result.time_in_market == pytest.approx(180 / 509)
    assert result.average_position == {"BTC/USDT": pytest.approx(180 / 509)}
    assert result.signals == 3 and result.ticks == len(PRICES) * 2
    skipped = result.engine_metrics["skipped"]
    assert skipped["partial"] == 2  # the first bar and the one the data's end cut


def test_an_async_predictor_decides_on_every_bar_as_a_sync_one_does() -> None:
    async def slow_by_close(features: dict[str, float]) -> float:
        await asyncio.sleep(0.01)  # slower than replay feeds the bars
        return by_close(features)

    backtest = Backtest(scripted_ticks(), predictor=slow_by_close, features=last_close,
                        min_history=2)
    predictions = collect(backtest.bus, EventType.PREDICTION)
    result = backtest.run()
    assert len(predictions) == 7  # every whole bar after the first, none superseded
    assert result.engine_metrics["skipped"].get("superseded", 0) == 0
    assert [(f.side, f.price) for f in result.trades] == [
        (SignalDirection.BUY, 104.0), (SignalDirection.SELL, 108.0), (SignalDirection.BUY, 100.0)]
    assert result.total_pnl == pytest.approx(2.688)


def test_the_figures_agree_with_the_paper_executors_own_books() -> None:
    executor = PaperExecutor(fee_bps=25.0, slippage_bps=5.0)
    result = scripted_backtest(executor=executor).run()
    assert result.fee_bps == 25.0
    assert math.isclose(result.final_equity, executor.equity, rel_tol=1e-12)
    assert math.isclose(result.realised_pnl, executor.realised_pnl, rel_tol=1e-12)
    assert math.isclose(result.fees, executor.fees_paid, rel_tol=1e-12)
    assert math.isclose(result.unrealised_pnl, executor.unrealised_pnl(), abs_tol=1e-9)
    buy = result.trades[0]
    assert buy.price == pytest.approx(104 * 1.0005) and buy.fee == pytest.approx(buy.price * 0.0025)


def test_trades_frame_lists_every_fill_by_time() -> None:
    frame = scripted_backtest().run().trades_frame()
    assert list(frame["side"]) == ["buy", "sell", "buy"]
    assert list(frame["price"]) == [104.0, 108.0, 100.0]
    assert frame.index[0] == pd.Timestamp(T0 + 210 * SECOND, tz="UTC")
    assert list(frame.columns) == ["symbol", "side", "quantity", "price", "fee",
                                   "realised_pnl", "signal_time"]


def test_no_signal_means_flat_equity_and_no_exposure() -> None:
    result = Backtest(scripted_ticks(), predictor=lambda f: 0.5, features=last_close,
                      min_history=2).run()
    assert result.trades == [] and result.total_pnl == 0.0 and result.max_drawdown == 0.0
    assert result.time_in_market == 0.0


def test_only_the_chosen_symbols_are_traded() -> None:
    ticks = sorted(scripted_ticks("BTC/USDT") + scripted_ticks("ETH/USDT"),
                   key=lambda t: t.timestamp)
    ticks = [Tick(t.venue, t.symbol, t.price, t.volume, t.side, i, t.timestamp,
                  t.receive_timestamp) for i, t in enumerate(ticks)]
    result = Backtest(ticks, ["ETH/USDT"], predictor=by_close, features=last_close,
                      min_history=2).run()
    assert {f.symbol for f in result.trades} == {"ETH/USDT"}
    assert result.total_pnl == pytest.approx(2.688)


def test_settings_that_cannot_work_fail_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"min_history=5 .*>= 21"):
        Backtest(scripted_ticks(), min_history=5)
    with pytest.raises(ConfigError, match="timeframe"):
        Backtest(scripted_ticks(), timeframe="7m")
    with pytest.raises(ConfigError, match="fee_bps"):
        Backtest(scripted_ticks(), fee_bps=-1)
    with pytest.raises(ConfigError, match="executor"):
        Backtest(scripted_ticks(), executor=print)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="holds no recorded trades"):
        Backtest(tmp_path)


def test_a_backtest_runs_once() -> None:
    backtest = scripted_backtest()
    backtest.run()
    with pytest.raises(RuntimeError, match="runs once"):
        backtest.run()


async def test_run_inside_an_event_loop_points_to_run_async() -> None:
    backtest = scripted_backtest()
    with pytest.raises(RuntimeError, match=r"await backtest\.run_async"):
        backtest.run()
    assert (await backtest.run_async()).total_pnl == pytest.approx(2.688)


def test_a_backtest_without_trades_says_so() -> None:
    with pytest.raises(ConfigError, match="holds no trade to replay"):
        Backtest([]).run()
    with pytest.raises(ConfigError, match="no trade of the chosen symbols lies between"):
        Backtest(scripted_ticks(), start=T0 + 3600 * SECOND).run()
