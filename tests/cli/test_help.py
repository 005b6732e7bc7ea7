"""Every subcommand explains itself; ``python -m bot.data`` is the same command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.data.cli import delegate
from bot.data.cli.main import main
from tests.cli.terminal import ROOT

EXPECTED = {
    "live": ["--sim", "--json", "--events", "--status-port", "--timeframes", "--config", "--set",
             "examples:"],
    "dashboard": ["--sim", "--port", "--engine", "--timeframes", "examples:"],
    "record": ["--out", "--sim", "--status-port", "examples:"],
    "replay": ["DIR", "--speed", "--bars", "--json", "--start", "examples:"],
    "health": ["--url", "--json", "Exit status: 0 healthy, 1 degraded"],
}


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_subcommand_help_names_its_options(command: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: bot-stream {command}")
    for option in EXPECTED[command]:
        assert option in out, f"{command} --help mentions {option}"


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in [*EXPECTED, "sim", "ingest"]:
        assert f"\n    {command} " in out


def test_sim_help_is_the_simulators_own(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sim", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--symbols" in out and "--speed" in out and "--port" in out


def test_ingest_without_the_worker_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(delegate, "INGEST_MODULE", "bot.data.no_such_worker")
    assert main(["ingest", "--help"]) == 1
    assert "the ingest worker (bot.data.no_such_worker) is not part of this installation" in (
        capsys.readouterr().err)


def test_ingest_hands_its_arguments_to_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class Worker:
        @staticmethod
        def main(argv: list[str]) -> int:
            seen.append(argv)
            return 7

    monkeypatch.setitem(sys.modules, "bot.data.fake_worker", Worker)
    monkeypatch.setattr(delegate, "INGEST_MODULE", "bot.data.fake_worker")
    assert main(["ingest", "--nats", "nats://x", "BTC/USDT"]) == 7
    assert seen == [["--nats", "nats://x", "BTC/USDT"]]


def test_python_m_bot_data_is_bot_stream() -> None:
    result = subprocess.run([sys.executable, "-m", "bot.data", "--help"], capture_output=True,
                            text=True, cwd=ROOT, timeout=60, check=True)
    assert result.stdout.startswith("usage: bot-stream")
    assert "dashboard" in result.stdout
