"""``bot-stream record`` writes a store; ``bot-stream replay`` rebuilds the exchange's bars."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.data.cli.main import main
from bot.data.store import Recorder, TradeStore
from tests.helpers import btc_minute_kline, btc_minute_trades

REPO = Path(__file__).resolve().parents[2]


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
    assert bar["open_time_ns"] == int(open_ms) * 1000  # the kline's time is in microseconds
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
        float(o), float(h), float(lo), float(c))
    assert bar["trade_count"] == int(count)
    assert bar["volume"] == pytest.approx(float(volume), rel=1e-9)
    assert bar["quote_volume"] == pytest.approx(float(quote), rel=1e-9)
    assert bar["buy_volume"] == pytest.approx(float(taker_buy), rel=1e-9)
    assert bar["buy_quote_volume"] == pytest.approx(float(taker_buy_quote), rel=1e-9)


def test_replay_json_writes_bars_as_live_json_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ISO UTC times beside the ns, sums without binary noise, flags by name."""
    store_of_the_official_minute(tmp_path)
    assert main(["replay", str(tmp_path), "--timeframes", "1m", "--json", "--no-progress"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    bar = json.loads(line)
    volume, taker_buy = btc_minute_kline()[5], btc_minute_kline()[9]
    assert (bar["open_time"], bar["close_time"]) == ("2025-01-01T00:00:00Z",
                                                     "2025-01-01T00:00:59.999999999Z")
    assert (bar["open_time_ns"], bar["close_time_ns"]) == (1735689600 * 10**9,
                                                           1735689660 * 10**9 - 1)
    assert bar["flags"] == ["PARTIAL"], "the store ends at its last trade, inside the minute"
    # Binance's kline prints the exact decimal sums; the line reads the same.
    assert f'"volume":{float(volume)!r}' in line and f'"buy_volume":{float(taker_buy)!r}' in line
    assert bar["vwap"] == pytest.approx(float(btc_minute_kline()[7]) / float(volume), rel=1e-11)


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
    (tmp_path / "empty").mkdir()
    assert main(["replay", str(tmp_path / "empty"), "--no-progress"]) == 2
    assert "holds no recorded trades" in capsys.readouterr().err


def test_replay_of_a_directory_that_does_not_exist_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped path is named as missing, not as a store without trades."""
    assert main(["replay", str(tmp_path / "market-dta"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (f"bot-stream replay: configuration error: store='{tmp_path / 'market-dta'}' "
                   "is invalid: no such directory\n")
    (tmp_path / "bars.png").write_bytes(b"\x89PNG")
    assert main(["replay", str(tmp_path / "bars.png"), "--no-progress"]) == 2
    assert "no such directory (a file: give the store's directory)" in capsys.readouterr().err


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


@pytest.mark.parametrize("damage", [b"", b"PAR1 this is not parquet \x00\x01" * 10])
def test_replay_goes_on_past_a_damaged_file_names_it_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: bytes) -> None:
    store_of_the_official_minute(tmp_path)
    (part,) = tmp_path.rglob("part-0.parquet")
    bad = part.with_name("part-1.parquet")
    bad.write_bytes(damage)
    assert main(["replay", str(tmp_path), "--timeframes", "1m", "--json", "--no-progress"]) == 1
    captured = capsys.readouterr()
    (bar,) = [json.loads(line) for line in captured.out.splitlines()]
    assert bar["trade_count"] == int(btc_minute_kline()[8])
    assert "Traceback" not in captured.err
    assert "1 damaged part file(s) skipped" in captured.err
    assert bad.exists()  # replay only reads


def test_record_refuses_a_store_another_recorder_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def hold_and_record() -> int:
        holder = Recorder(tmp_path)
        await holder.start()
        try:
            return await asyncio.to_thread(main, [
                "record", "BTC/USDT", "--sim", "--duration", "30", "--out", str(tmp_path)])
        finally:
            await holder.stop()

    assert asyncio.run(hold_and_record()) == 1
    err = capsys.readouterr().err
    assert f"store {tmp_path} is already being written by another recorder in this process" \
        in err
    assert "simulator:" not in err  # refused before any connection


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_record_writes_everything_and_exits_0_on_a_signal(tmp_path: Path,
                                                          sig: signal.Signals) -> None:
    """The flush interval is an hour: whatever is stored was written by the flush at exit."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bot.data", "record", "BTC/USDT", "--sim", "--sim-speed", "10",
         "--sim-history", "120", "--flush-interval", "3600", "--out", str(tmp_path)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stderr is not None
        for line in child.stderr:
            if line.startswith("recording"):
                break
        time.sleep(1.0)  # trades arrive, none is written yet
    finally:
        child.send_signal(sig)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    match = re.search(r"recorded ([\d,]+) ticks", out)
    assert match, out
    written = int(match.group(1).replace(",", ""))
    assert written > 0
    assert len(TradeStore(tmp_path).ticks("binance", "BTC/USDT")) == written
    assert not list(tmp_path.rglob(".part-*.tmp"))

    async def lock_is_free() -> None:
        recorder = Recorder(tmp_path)
        await recorder.start()
        await recorder.stop()

    asyncio.run(lock_is_free())


def test_record_into_a_path_that_is_a_file_streams_reports_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("important unrelated data\n")
    assert main(["record", "BTC/USDT", "--sim", "--sim-speed", "60", "--duration", "2",
                 "--flush-interval", "0.2", "--out", str(path)]) == 1
    out = capsys.readouterr().out
    assert "recorded 0 ticks" in out
    assert f"store problem: cannot create directory {path}: File exists" in out
    assert path.read_text() == "important unrelated data\n"


def _partial(flags: list[str]) -> bool:
    """A JSON bar's flags (their names) carry PARTIAL."""
    return "PARTIAL" in flags


def test_replay_of_a_recording_cut_mid_minute_ends_with_partial_bars_and_no_more(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder(tmp_path)
    for tick in btc_minute_trades()[:1500]:  # the recording stopped 1,500 trades in
        recorder.record_tick(tick)
    asyncio.run(recorder.flush())
    assert main(["replay", str(tmp_path), "--timeframes", "1m", "5m", "--json",
                 "--no-progress"]) == 0
    bars = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [b["timeframe"] for b in bars] == ["1m", "5m"]  # no empty minute after the data
    assert all(_partial(b["flags"]) and b["trade_count"] == 1500 for b in bars)


@pytest.mark.parametrize("start", ["2025-01-01T00:00:30", "2025-01-01T01:00:30+01:00",
                                   "Jan 1 2025 00:00:30"])
def test_replay_time_flags_read_times_as_the_store_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], start: str) -> None:
    """``--start`` is a store time bound: ISO with or without an offset (naive is UTC), or any
    text pandas reads."""
    store_of_the_official_minute(tmp_path)
    assert main(["replay", str(tmp_path), "--timeframes", "1m", "--json", "--no-progress",
                 "--start", start]) == 0
    (bar,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    half = 1_735_689_630 * 10**9
    assert bar["trade_count"] == sum(1 for t in btc_minute_trades() if t.timestamp >= half)


def test_replay_time_flag_that_is_no_time_exits_2_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_of_the_official_minute(tmp_path)
    assert main(["replay", str(tmp_path), "--end", "yesterday-ish", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--end='yesterday-ish' is invalid" in err
