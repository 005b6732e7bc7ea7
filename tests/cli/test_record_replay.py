"""``bot-stream record`` writes a store; ``bot-stream replay`` rebuilds the exchange's bars."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from bot.data.cli.main import main
from bot.data.store import Recorder, TradeStore
from tests.helpers import btc_minute_kline, btc_minute_trades


def store_of_the_official_minute(root: Path) -> None:
    """Every BTCUSDT trade of 2025-01-01 00:00 (the official file), written as a recorder would."""
    recorder = Recorder(root)
    for tick in btc_minute_trades():
        recorder.record_tick(tick)
    asyncio.run(recorder.flush())


def test_replay_json_bar_equals_the_official_kline(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store_of_the_official_minute(tmp_path)
    assert main(["replay", str(tmp_path), "--timeframes", "1m", "--json", "--no-progress"]) == 0
    bars = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (open_ms, o, h, lo, c, volume, _close_ms, quote, count, taker_buy, taker_buy_quote,
     _ignore) = btc_minute_kline()
    assert len(bars) == 1
    bar = bars[0]
    assert bar["open_time"] == int(open_ms) * 1000  # the kline's time is in microseconds
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
        float(o), float(h), float(lo), float(c))
    assert bar["trade_count"] == int(count)
    assert bar["volume"] == pytest.approx(float(volume), rel=1e-9)
    assert bar["quote_volume"] == pytest.approx(float(quote), rel=1e-9)
    assert bar["buy_volume"] == pytest.approx(float(taker_buy), rel=1e-9)
    assert bar["buy_quote_volume"] == pytest.approx(float(taker_buy_quote), rel=1e-9)


def test_replay_summary_counts_ticks_and_bars(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    store_of_the_official_minute(tmp_path)
    assert main(["replay", str(tmp_path), "BTC/USDT", "--timeframes", "1m", "--no-progress"]) == 0
    out = capsys.readouterr().out
    trades = len(btc_minute_trades())
    assert f"{trades:,} ticks (0 refused) -> 1 bars" in out
    _open_ms, o, h, lo, c, *_rest = btc_minute_kline()
    row = next(line for line in out.splitlines() if "BTC/USDT" in line)
    for value in (o, h, lo, c):
        assert f"{float(value):.8g}" in row


def test_replay_of_a_symbol_not_recorded_names_what_is(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store_of_the_official_minute(tmp_path)
    assert main(["replay", str(tmp_path), "ETH/USDT", "--no-progress"]) == 2
    assert "not recorded in this store; recorded: BTC/USDT" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "empty"), "--no-progress"]) == 2
    assert "holds no recorded trades" in capsys.readouterr().err


def test_record_from_the_simulator_writes_what_it_reports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "BTC/USDT", "--sim", "--sim-speed", "60", "--timeframes", "1m",
                 "--duration", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    match = re.search(r"recorded ([\d,]+) ticks and ([\d,]+) bars", out)
    assert match, out
    ticks, bars = (int(g.replace(",", "")) for g in match.groups())
    store = TradeStore(tmp_path)
    assert ticks > 0 and bars > 0
    assert len(store.ticks("binance", "BTC/USDT")) == ticks
    assert len(store.bars("binance", "BTC/USDT", "1m")) == bars
