"""Replay tells the truth about a recording's ends, checked on real trades.

A live session is played with a Recorder attached and stopped where a real one
would stop: inside an interval (no bar of it completed) or after its clock
passed a bar's end (that bar completed and recorded). Replaying the store must
give every whole bar equal to the exchange's (the official Binance kline; the
third-party XRP/ETH candles, which these trades rebuild exactly), the bar the
recording's end cut flagged PARTIAL, and no bar after the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bot.data.config import StreamManagerConfig
from bot.data.models import Bar, BarFlag, Tick
from bot.data.pipeline import TickPipeline
from bot.data.store import Recorder, TradeStore, replay
from tests.helpers import XRPETH_DIR, btc_minute_kline, btc_minute_trades, xrpeth_trades

MINUTE = 60 * 10**9
TIMEFRAMES = ["1m", "5m", "15m"]


async def _record_session(ticks: Sequence[Tick], root: Path, *, clock_at: int,
                          complete_from: int | None = None) -> list[Bar]:
    """A live session over ``ticks`` whose clock stood at ``clock_at`` when it stopped."""
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=TIMEFRAMES))
    if complete_from is not None:  # as after a warm-up backfill from the interval's open
        pipeline.aggregator.configure_symbol(ticks[0].venue, ticks[0].symbol,
                                             complete_from=complete_from)
    recorder = Recorder(root)
    recorder.attach(pipeline.bus)
    live: list[Bar] = []
    pipeline.bus.on_bar_complete(live.append)
    await recorder.start()
    for tick in ticks:
        pipeline.process(tick)
    pipeline.advance(clock_at)
    await recorder.stop()
    return live


async def _replayed(root: Path) -> list[Bar]:
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=TIMEFRAMES))
    bars: list[Bar] = []
    pipeline.bus.on_bar_complete(bars.append)
    await replay(TradeStore(root), pipeline, progress=False)
    return bars


def _of(bars: list[Bar], timeframe: str) -> list[Bar]:
    return [b for b in bars if b.timeframe == timeframe]


async def test_a_recording_stopped_after_the_minute_replays_the_official_kline_and_no_more(
        tmp_path: Path) -> None:
    ticks = btc_minute_trades()
    minute = ticks[0].timestamp - ticks[0].timestamp % MINUTE
    grace = TickPipeline(StreamManagerConfig()).aggregator.grace_ns
    live = await _record_session(ticks, tmp_path, clock_at=minute + MINUTE + grace,
                                 complete_from=minute)
    bars = await _replayed(tmp_path)
    (open_us, o, h, low, c, volume, close_us, quote, count, buy_base, buy_quote,
     _ignore) = btc_minute_kline()
    (one,) = _of(bars, "1m")  # no empty bar invented for the minutes nobody recorded
    assert one == _of(live, "1m")[0]
    assert (one.open_time, one.close_time) == (int(open_us) * 1000, int(close_us) * 1000 + 999)
    assert (one.open, one.high, one.low, one.close) == (float(o), float(h), float(low), float(c))
    assert one.trade_count == int(count) and one.flags == BarFlag.NONE
    for got, want in ((one.volume, volume), (one.quote_volume, quote),
                      (one.buy_volume, buy_base), (one.buy_quote_volume, buy_quote)):
        assert math.isclose(got, float(want), rel_tol=1e-9)
    # The 5m and 15m bars were cut by the recording's end at 00:01: PARTIAL, with that minute.
    for timeframe in ("5m", "15m"):
        (cut,) = _of(bars, timeframe)
        assert cut.flags == BarFlag.PARTIAL and cut.trade_count == int(count)
        assert cut.open_time == minute and cut.close == one.close


async def test_a_recording_stopped_mid_minute_replays_that_minute_as_partial(
        tmp_path: Path) -> None:
    ticks = btc_minute_trades()[:1000]
    await _record_session(ticks, tmp_path, clock_at=ticks[-1].timestamp)
    bars = await _replayed(tmp_path)
    assert [b.timeframe for b in bars] == TIMEFRAMES
    for bar in bars:
        assert bar.flags & BarFlag.PARTIAL and not bar.flags & BarFlag.EMPTY
        assert bar.trade_count == 1000 and bar.last_trade_id == ticks[-1].trade_id


async def test_xrpeth_cut_mid_interval_gives_the_candles_then_one_partial_bar(
        tmp_path: Path) -> None:
    trades = xrpeth_trades()
    # Stop the session inside a minute: after the 9,000th trade.
    ticks = trades[:9000]
    last = ticks[-1].timestamp
    assert last % MINUTE and trades[9000].timestamp - trades[9000].timestamp % MINUTE == \
        last - last % MINUTE  # the next trade falls in the same minute: the cut is inside it
    live = await _record_session(ticks, tmp_path, clock_at=last)
    bars = await _replayed(tmp_path)
    minutes = _of(bars, "1m")
    whole = [b for b in minutes if b.is_complete_data]
    # Every whole bar is the one the live session completed.
    assert whole == [b for b in _of(live, "1m") if b.is_complete_data]
    # ... and equals the independent candles (third-party, rebuilt from the same trades).
    candles = pd.read_feather(XRPETH_DIR / "XRP_ETH-1m.feather")
    by_open = {pd.Timestamp(row.date).value: row for row in candles.itertuples()}
    traded = [b for b in whole if not b.flags & BarFlag.EMPTY]
    assert len(traded) == sum(1 for t in by_open if minutes[0].open_time < t < last - last
                              % MINUTE)
    for bar in traded:
        row = by_open[bar.open_time]
        assert (bar.open, bar.high, bar.low, bar.close) == (row.open, row.high, row.low,
                                                            row.close)
        assert math.isclose(bar.volume, row.volume, rel_tol=1e-9)
    for bar in whole:
        if bar.flags & BarFlag.EMPTY:
            assert bar.open_time not in by_open and bar.volume == 0
    # The ends: the first minute began before the first trade, the last one was cut.
    assert minutes[0].flags & BarFlag.PARTIAL and minutes[0].open_time < ticks[0].timestamp
    cut = minutes[-1]
    assert cut.flags == BarFlag.PARTIAL and cut.open_time == last - last % MINUTE
    assert cut.last_trade_id == ticks[-1].trade_id
    assert minutes[1:-1] == whole
    for timeframe in ("5m", "15m"):  # the longer bars holding the end are cut too, and last
        series = _of(bars, timeframe)
        assert series[-1].flags & BarFlag.PARTIAL and series[-1].close_time >= last
        assert all(b.close_time < last for b in series[:-1])
    assert max(b.close_time for b in bars) < last - last % (15 * MINUTE) + 15 * MINUTE
    # Every trade replayed is in exactly one 1m bar.
    assert sum(b.trade_count for b in minutes) == len(ticks)


async def test_time_bounds_inside_a_whole_recorded_minute_cut_it(tmp_path: Path) -> None:
    ticks = btc_minute_trades()
    minute = ticks[0].timestamp - ticks[0].timestamp % MINUTE
    grace = TickPipeline(StreamManagerConfig()).aggregator.grace_ns
    await _record_session(ticks, tmp_path, clock_at=minute + MINUTE + grace,
                          complete_from=minute)
    start, end = minute + 20 * 10**9, minute + 40 * 10**9
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]))
    bars: list[Bar] = []
    pipeline.bus.on_bar_complete(bars.append)
    await replay(TradeStore(tmp_path), pipeline, progress=False, start=start, end=end)
    (bar,) = bars
    assert bar.flags == BarFlag.PARTIAL  # the bounds cut the recorded whole minute
    assert bar.trade_count == sum(1 for t in ticks if start <= t.timestamp < end)
