"""``bot-stream ingest`` arguments: what they become, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.data.nats.sharding import Shard
from bot.data.nats.worker import main, parse_args


def test_help_exits_zero_and_explains_sharding(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--shard i/N" in out and "md.health.<worker-id>" in out and "--status-port" in out


def test_arguments_become_settings(tmp_path: Path) -> None:
    universe = tmp_path / "universe.txt"
    universe.write_text("# majors\nETH/USDT\n\nSOL/USDT  # high beta\n")
    settings = parse_args([
        "--symbols", "BTC/USDT", "--symbols-file", str(universe), "--shard", "1/3",
        "--worker-id", "ingest-1a", "--nats", "nats://a:4222,nats://b:4222",
        "--duplicate-window", "5m", "--tick-retention", "12h", "--health-interval", "2",
        "--timeframes", "1m", "5m", "--batch-ms", "20"])
    assert settings.universe == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert settings.shard == Shard(1, 3)
    assert settings.servers == ["nats://a:4222", "nats://b:4222"]
    assert (settings.duplicate_window_s, settings.tick_retention_s) == (300.0, 43_200.0)
    assert settings.health_interval_s == 2.0
    assert settings.crypto_symbols() == Shard(1, 3).select(settings.universe)
    assert settings.manager_config().supported_timeframes == ["1m", "5m"]
    assert settings.manager_config().nats_batch_ms == 20


@pytest.mark.parametrize(("argv", "message"), [
    ([], "give the universe"),
    (["--symbols", "BTC/USDT", "--shard", "2/2"], "0 <= index < count"),
    (["--symbols", "BTC/USDT", "--duplicate-window", "soon"], "invalid duration 'soon'"),
    (["--symbols", "BTC/USDT", "--worker-id", "a.b"], "cannot be a subject token"),
    (["--symbols", "BTC/USDT", "--no-ticks", "--no-bars"], "nothing to publish"),
    (["--symbols", "BTCUSDT"], "must look like 'BASE/QUOTE'"),
    (["--symbols", "BTC/USDT", "--timeframes", "7m"], "supported_timeframes='7m'"),
    (["--symbols-file", "/nonexistent/universe.txt"], "readable file"),
    (["--symbols", "BTC/USDT", "--batch-ms", "30"], "nats_batch_ms=30 is invalid"),
    (["--symbols", "BTC/USDT", "--nats", "http://a:4222"], "'http://a:4222' is not a NATS URL"),
])
def test_bad_arguments_exit_2_naming_the_problem(argv: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unreachable_nats_exits_1_naming_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--symbols", "BTC/USDT", "--nats", "nats://127.0.0.1:9",
                 "--connect-timeout", "0.3", "--log-level", "ERROR"]) == 1
    err = capsys.readouterr().err
    assert "could not connect to NATS at nats://127.0.0.1:9 within 0.3s (last error: " in err
