"""Replaying recorded ticks through a fresh pipeline rebuilds the bars recorded live."""

from __future__ import annotations

import csv
import gzip
import itertools
import time
from pathlib import Path

import msgspec

from bot.data.config import StreamManagerConfig
from bot.data.models import Bar, Side, Tick
from bot.data.pipeline import TickPipeline
from bot.data.store import TradeStore, replay
from tests.helpers import DATA, btc_minute_trades, xrpeth_trades
from tests.store.support import TIMEFRAMES, record_live, until_for


def _pipeline() -> tuple[TickPipeline, list[Bar]]:
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=TIMEFRAMES))
    bars: list[Bar] = []
    pipeline.bus.on_bar_complete(bars.append)
    return pipeline, bars


async def test_replay_from_the_store_gives_the_bars_recorded_live(tmp_path: Path) -> None:
    await record_live(xrpeth_trades(), tmp_path)
    store = TradeStore(tmp_path)
    pipeline, replayed = _pipeline()
    result = await replay(store, pipeline, progress=False)
    assert result.ticks == 12_477 and result.refused == 0 and result.bars == len(replayed)
    for tf in TIMEFRAMES:
        assert [b for b in replayed if b.timeframe == tf] == store.bar_records(
            "binance", "XRP/ETH", tf)


async def test_replay_orders_ticks_by_exchange_time_then_trade_id(tmp_path: Path) -> None:
    ticks = btc_minute_trades()
    _recorder, live = await record_live(ticks, tmp_path)
    pipeline, replayed = _pipeline()
    # The live session ran to the end of the last 15m bar; a tick list says so with until.
    await replay(list(reversed(ticks)), pipeline, progress=False, until=until_for(ticks))
    assert replayed == live


async def test_replay_accepts_a_tick_frame_and_shows_progress(tmp_path: Path,
                                                               capsys: object) -> None:
    await record_live(btc_minute_trades(), tmp_path)
    frame = TradeStore(tmp_path).ticks("binance", "BTC/USDT")
    pipeline, replayed = _pipeline()
    result = await replay(frame, pipeline, progress=True)
    assert result.ticks == 2631 and replayed[0].trade_count == 2631
    assert "replay" in capsys.readouterr().err  # type: ignore[attr-defined]


async def test_paced_replay_runs_at_the_requested_multiple_of_real_time() -> None:
    ticks = btc_minute_trades()[:400]
    t0 = ticks[0].timestamp
    # Spread 400 trades over 2 s of exchange time; at 10x real time that is 0.2 s.
    spread = [msgspec.structs.replace(t, timestamp=t0 + i * 5_000_000)
              for i, t in enumerate(ticks)]
    pipeline, _bars = _pipeline()
    started = time.monotonic()
    result = await replay(spread, pipeline, speed=10.0, progress=False)
    elapsed = time.monotonic() - started
    assert result.ticks == 400
    assert 0.19 <= elapsed < 1.0


def _usdm_ticks(count: int) -> list[Tick]:
    """The first ``count`` trades of a real USDⓈ-M day, as the stream gives them."""
    path = DATA / "binance" / "usdm_BTCUSDT_2020-02-22" / "tardis_trades_full-day.repaired.csv.gz"
    with gzip.open(path, "rt") as fh:
        rows = itertools.islice(csv.DictReader(fh), count)
        return [Tick("binanceusdm", "BTC/USDT:USDT", float(r["price"]), float(r["amount"]),
                     Side.BUY if r["side"] == "buy" else Side.SELL, int(r["id"]),
                     int(r["timestamp"]) * 1000, int(r["local_timestamp"]) * 1000)
                for r in rows]


async def test_a_usdm_perpetual_recorded_live_replays_to_the_same_bars(tmp_path: Path) -> None:
    await record_live(_usdm_ticks(3000), tmp_path)
    store = TradeStore(tmp_path)
    assert ("binanceusdm", "BTC/USDT:USDT") in store.series()
    pipeline, replayed = _pipeline()
    result = await replay(store, pipeline, progress=False)
    assert result.ticks == 3000 and result.refused == 0
    for tf in TIMEFRAMES:
        recorded = store.bar_records("binanceusdm", "BTC/USDT:USDT", tf)
        assert recorded and [b for b in replayed if b.timeframe == tf] == recorded
