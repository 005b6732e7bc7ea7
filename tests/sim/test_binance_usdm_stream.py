"""USDⓈ-M end to end: a real day's trades replayed by the simulator, streamed by a
StreamManager through random connection drops, give Binance's official USDⓈ-M klines."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from bot.data.models import Bar
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.helpers import DATA
from tests.streaming import fast_config, point_at, wait_for

DAY = DATA / "binance" / "usdm_BTCUSDT_2020-02-22"
SYMBOL = "BTC/USDT:USDT"
MINUTE_NS = 60 * 10**9
FIRST_MINUTE_NS = 1582329660 * 10**9  # 00:01, the first minute the recording has whole
MINUTES = 8


def _replay_file(tmp_path: Path) -> Path:
    """The recording's trades of the minutes replayed, as an official Binance trades CSV."""
    end_ms = (FIRST_MINUTE_NS + MINUTES * MINUTE_NS) // 10**6
    path = tmp_path / "BTCUSDT-trades.csv"
    with gzip.open(DAY / "tardis_trades_full-day.repaired.csv.gz", "rt") as fh, \
            path.open("w", newline="") as out:
        writer = csv.writer(out)
        for row in csv.DictReader(fh):
            time_ms = int(row["timestamp"]) // 1000
            if time_ms * 10**6 < FIRST_MINUTE_NS:
                continue
            if time_ms >= end_ms:
                break
            writer.writerow([row["id"], row["price"], row["amount"], "0", time_ms,
                             "true" if row["side"] == "sell" else "false", "true"])
    return path


def _official() -> dict[int, list[str]]:
    with (DAY / "BTCUSDT-1m-2020-02_rows_2020-02-22.csv").open() as fh:
        return {int(row[0]) * 10**6: row for row in csv.reader(fh)}


async def test_usdm_bars_streamed_through_drops_equal_the_official_klines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replay = _replay_file(tmp_path)
    async with ExchangeSimulator([], futures_symbols=[SYMBOL], replay={SYMBOL: replay},
                                 speed=60.0, start_time_ns=FIRST_MINUTE_NS) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(supported_timeframes=["1m"], bar_history_size=5),
                                clock=sim.now_ns)
        manager.add_crypto_symbols([SYMBOL])
        bars: list[Bar] = []
        manager.on_bar_complete(bars.append)
        await manager.start()
        sim.drop_randomly(0.02)
        end = FIRST_MINUTE_NS + MINUTES * MINUTE_NS
        await wait_for(lambda: any(b.open_time == end - MINUTE_NS for b in bars), 60)
        metrics = manager.get_metrics()
        health = manager.get_health()
        await manager.stop()

    official = _official()
    # The clock runs on past the replay until the manager stops (seconds under load, a minute
    # a second at 60x): the minutes after it are bars too, with no trade in them.
    streamed = [b for b in bars if FIRST_MINUTE_NS <= b.open_time < end]
    assert [b.open_time for b in streamed] == [
        FIRST_MINUTE_NS + i * MINUTE_NS for i in range(MINUTES)], "each minute once, in order"
    assert all(b.trade_count == 0 and b.volume == 0 for b in bars if b.open_time >= end)
    for bar in streamed:
        row = official[bar.open_time]
        assert bar.venue == "binanceusdm" and bar.symbol == SYMBOL
        assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (
            float(row[1]), float(row[2]), float(row[3]), float(row[4]), int(row[8]))
        for got, want in ((bar.volume, row[5]), (bar.quote_volume, row[7]),
                          (bar.buy_volume, row[9]), (bar.buy_quote_volume, row[10])):
            assert got == pytest.approx(float(want), rel=1e-9, abs=1e-9)
        assert bar.is_complete_data, bar
    assert metrics["counters"]["reconnects"] >= 1, "the connection was dropped and came back"
    assert [c["name"] for c in health["connections"]] == ["binanceusdm-0"]
    assert set(metrics["rest"]) == {"binanceusdm"}


async def test_usdm_gap_across_refused_records_is_filled_to_the_simulators_klines(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Lost frames that hold NA records (price 0) and market trades are filled without an API
    key; the bars around them are the venue's klines and no gap is left."""
    async with ExchangeSimulator([], futures_symbols=[SYMBOL], seed=7, speed=30.0,
                                 history_seconds=120) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(supported_timeframes=["1m"], bar_history_size=5),
                                clock=sim.now_ns)
        manager.add_crypto_symbols([SYMBOL])
        bars: list[Bar] = []
        manager.on_bar_complete(bars.append)
        await manager.start()
        await wait_for(lambda: bars, 30)
        faulted_from = bars[-1].close_time + 1
        sim.refuse_trades(SYMBOL, 3)
        sim.lose_trade_frames(SYMBOL, 10)
        await wait_for(lambda: sum(b.open_time >= faulted_from for b in bars) >= 2, 30)
        counters = manager.get_metrics()["counters"]
        await manager.stop()
        klines = {k.open_time_ns: k for k in sim.klines(SYMBOL, "1m")}
        refused = [t for t in sim.trades("binanceusdm", SYMBOL) if not t.is_market]

    assert len(refused) == 3
    assert counters["gaps_found"] >= 1 and counters["gaps_unfilled"] == 0, counters
    for bar in (b for b in bars if b.open_time >= faulted_from):
        kline = klines[bar.open_time]
        assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (
            float(kline.open_e8) / 1e8, float(kline.high_e8) / 1e8, float(kline.low_e8) / 1e8,
            float(kline.close_e8) / 1e8, kline.count)
        assert bar.volume == pytest.approx(kline.volume_e8 / 1e8, rel=1e-9)
        assert bar.is_complete_data, bar
