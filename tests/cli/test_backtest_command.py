"""``bot-stream backtest``: the Backtest of a recorded store from the command line."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from bot.data import Backtest
from bot.data.cli.main import main
from tests.helpers import BTC_TRADES_CSV, btc_minute_trades, xrpeth_trades
from tests.store.support import record_live

OPTIONS = ["--threshold", "0.55", "--quantity", "10", "--cash", "1", "--fee-bps", "7.5"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xrpeth")
    asyncio.run(record_live(xrpeth_trades(), root))
    return root


def test_json_figures_are_the_python_backtests(store: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(store), "XRP/ETH", *OPTIONS, "--json", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = Backtest(store, ["XRP/ETH"], "1m", signal_threshold=0.55, quantity=10.0,
                        initial_cash=1.0, fee_bps=7.5).run().summary()
    assert printed == json.loads(json.dumps(expected))
    assert printed["trades"] > 10 and printed["fee_bps"] == 7.5


def test_tables_fills_and_the_equity_png(store: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "equity.png"
    assert main(["backtest", str(store), *OPTIONS, "--trades", "--plot", str(png),
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    for figure in ("total PnL", "max drawdown", "time in market", "fees", "Fills"):
        assert figure in captured.out
    assert f"equity curve saved to {png}" in captured.err
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("argv", "message"), [
    (["--min-history", "5"], "min_history=5 is invalid: must be >= 21"),
    (["--predictor", "no_such_module_here:predict"], "cannot import 'no_such_module_here'"),
    (["--predictor", "json"], "must be MODULE:NAME"),
    (["--predictor", "json:no_such_name"], "has no attribute 'no_such_name'"),
    (["ETH/USDT"], "not recorded in this store; recorded: XRP/ETH"),
])
def test_bad_settings_are_one_line_and_exit_2(store: Path, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    assert main(["backtest", str(store), *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_downloaded_trades_file_is_backtested_as_its_named_symbol(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(BTC_TRADES_CSV), "BTC/USDT", "--timeframe", "1s",
                 "--min-history", "21", "--json", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ticks"] == len(btc_minute_trades())
    assert printed["start"].startswith("2025-01-01T00:00:00.010866")
    assert main(["backtest", str(BTC_TRADES_CSV), "--no-progress"]) == 2
    assert "name the one symbol of" in capsys.readouterr().err


def test_a_backtest_without_signals_says_which_bars_were_not_predicted_on_and_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A quarter of an hour recorded: too short a history for the default features, said
    with the setting that decides it, rather than an unexplained 0 signals."""
    asyncio.run(record_live(btc_minute_trades(), tmp_path))
    assert main(["backtest", str(tmp_path), "--no-progress", "--json"]) == 0
    bars = json.loads(capsys.readouterr().out)["bars"]
    assert main(["backtest", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "bars not predicted on" in line)
    found = re.search(r"(partial (\d+), )?insufficient history (\d+) \(min_history 30\)", row)
    assert found, row
    assert int(found[2] or 0) + int(found[3]) == bars < 30
    assert f"/ {bars} / 0 " in out, "no signal"
