"""Configuration from a TOML file, the environment and flags: precedence and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.data.cli.config import load_config, parse_assignments
from bot.data.cli.main import main
from bot.data.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stream.toml"
    path.write_text(text)
    return path


def test_toml_fields_map_onto_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, 'supported_timeframes = ["1m", "1s"]\ndefault_timeframe = "1s"\n'
                           "bar_close_grace_ms = 500\nemit_empty_bars = false\n"
                           "reconnect_delay = 2\nbinance_ticker_channel = \"bookTicker\"\n")
    config = load_config(path, environ={})
    assert config.supported_timeframes == ["1s", "1m"]
    assert config.default_timeframe == "1s"
    assert config.bar_close_grace_ms == 500
    assert config.emit_empty_bars is False
    assert config.reconnect_delay == 2.0 and isinstance(config.reconnect_delay, float)
    assert config.binance_ticker_channel == "bookTicker"


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bar_close_grace_ms = 100\nreorder_window_ms = 100\n"
                           "tick_buffer_size = 100\n")
    env = {"BOT_STREAM_REORDER_WINDOW_MS": "200", "BOT_STREAM_TICK_BUFFER_SIZE": "200"}
    config = load_config(path, environ=env, flags={"tick_buffer_size": "300"})
    assert (config.bar_close_grace_ms, config.reorder_window_ms, config.tick_buffer_size) == (
        100, 200, 300)


def test_timeframes_flag_alone_makes_its_first_timeframe_the_default() -> None:
    config = load_config(flags={"supported_timeframes": ["5m", "1s"]}, environ={})
    assert config.default_timeframe == "5m"
    assert config.supported_timeframes == ["1s", "5m"]


def test_unknown_key_in_the_file_is_an_error_suggesting_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "bar_close_grace = 500\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert err.value.field == "bar_close_grace"
    assert "unknown setting" in str(err.value)
    assert "did you mean 'bar_close_grace_ms'" in str(err.value)


def test_wrong_type_in_the_file_names_the_field_and_the_type(tmp_path: Path) -> None:
    path = write(tmp_path, 'emit_empty_bars = "yes"\n')
    with pytest.raises(ConfigError, match=r"emit_empty_bars='yes' is invalid: must be true or "
                                          r"false"):
        load_config(path, environ={})
    path = write(tmp_path, "tick_buffer_size = 1.5\n")
    with pytest.raises(ConfigError, match=r"tick_buffer_size=1.5 is invalid: must be an "
                                          r"integer"):
        load_config(path, environ={})


def test_value_out_of_range_names_the_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, 'supported_timeframes = ["1m", "2m"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert err.value.field == "supported_timeframes" and err.value.value == "2m"
    assert "1s, 1m, 3m, 5m" in str(err.value)
    path = write(tmp_path, 'alpaca_feed = "pro"\n')
    with pytest.raises(ConfigError, match=r"alpaca_feed='pro' is invalid: allowed: 'iex', 'sip'"):
        load_config(path, environ={})


def test_invalid_toml_and_missing_file_say_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "bar_close_grace_ms = \n"), environ={})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_environment_values_are_parsed_and_unknown_variables_warned(
        capsys: pytest.CaptureFixture[str]) -> None:
    env = {"BOT_STREAM_EMIT_EMPTY_BARS": "no", "BOT_STREAM_BINANCE_TICKER_CHANNEL": "none",
           "BOT_STREAM_SUPPORTED_TIMEFRAMES": "1m,5m", "BOT_STREAM_GRACE": "1"}
    config = load_config(environ=env)
    assert config.emit_empty_bars is False
    assert config.binance_ticker_channel is None
    assert config.supported_timeframes == ["1m", "5m"]
    assert "BOT_STREAM_GRACE is not a stream setting" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"reconnect_attempts='many' is invalid: must be an "
                                          r"integer"):
        load_config(environ={"BOT_STREAM_RECONNECT_ATTEMPTS": "many"})


def test_set_needs_field_equals_value() -> None:
    assert parse_assignments(["a=1", " b = x=y "]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError, match="must be FIELD=VALUE"):
        parse_assignments(["bar_close_grace_ms"])


@pytest.mark.parametrize("command", ["live", "record", "dashboard"])
def test_command_with_bad_config_exits_2_naming_the_field_before_connecting(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "reconnect_delay = -1\n")
    extra = ["--out", str(tmp_path)] if command == "record" else []
    assert main([command, "BTC/USDT", "--config", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert f"bot-stream {command}: configuration error: reconnect_delay=-1.0 is invalid" in err


def test_unknown_set_field_exits_2_listing_known_settings(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", "BTC/USDT", "--set", "grace_ms=5"]) == 2
    err = capsys.readouterr().err
    assert "grace_ms='5' is invalid: unknown setting (from flag)" in err
    assert "known settings: default_timeframe, supported_timeframes" in err


# -- the command line as a user runs it: one line on stderr, exit status 2 ---------------

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*argv: str, env: dict[str, str] | None = None,
            cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m bot.data ARGV`` in a fresh interpreter, with this tree first on the path."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_STREAM_")}
    full_env.update(env or {}, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bot.data", *argv], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=60)


@pytest.mark.parametrize(("argv", "env", "toml", "expected"), [
    pytest.param(["live", "BTCUSDT"], {}, None, "symbols='BTCUSDT' is invalid: must look like "
                 "'BASE/QUOTE'", id="pair-without-slash"),
    pytest.param(["live", "--sim", "BTC USDT"], {}, None, "symbols='BTC USDT' is invalid",
                 id="space-in-pair"),
    pytest.param(["record", "--out", "store", "BTC/USDT&x=1"], {}, None,
                 "symbols='BTC/USDT&x=1' is invalid", id="url-special-character"),
    pytest.param(["live", "--sim", "--stocks", "AA PL"], {}, None,
                 "--stocks='AA PL' is invalid: this Alpaca stream takes stock tickers",
                 id="space-in-ticker"),
    pytest.param(["dashboard", "--sim", "--stocks", "*"], {}, None, "--stocks='*' is invalid",
                 id="wildcard-ticker"),
    pytest.param(["live", "--set", "tick_buffer_size=1000000000000000000000000000000"], {},
                 None, "tick_buffer_size=1000000000000000000000000000000 is invalid: must be "
                 "an integer from 1 to 1,000,000", id="huge-buffer-flag"),
    pytest.param(["live", "--set", "binance_max_streams_per_connection=5.5"], {}, None,
                 "binance_max_streams_per_connection='5.5' is invalid: must be an integer",
                 id="fraction-of-streams-flag"),
    pytest.param(["live"], {"BOT_STREAM_HEALTH_CHECK_INTERVAL": "1e-9"}, None,
                 "health_check_interval=1e-09 is invalid: must be a number from 0.05",
                 id="tiny-interval-env"),
    pytest.param(["live"], {"BOT_STREAM_RECONNECT_DELAY": "nan"}, None,
                 "reconnect_delay=nan is invalid", id="nan-env"),
    pytest.param(["live", "--config", "stream.toml"], {}, "store_flush_interval = inf\n",
                 "store_flush_interval=inf is invalid", id="inf-in-file"),
    pytest.param(["live", "--config", "stream.toml"], {}, "reconnect_delay = " + "9" * 400,
                 "reconnect_delay=999", id="integer-beyond-float-in-file"),
    pytest.param(["live", "--config", "stream.toml"], {}, 'binance_ws_url = "ws://"\n',
                 "binance_ws_url='ws://' is invalid", id="url-without-host-in-file"),
    pytest.param(["live", "--config", "stream.toml"], {}, 'store_path = ""\n'
                 'binance_ws_url = "wss://h/"\nsupported_timeframes = []\n',
                 "supported_timeframes=[] is invalid", id="empty-timeframes-in-file"),
])
def test_bad_setting_or_symbol_is_one_line_on_stderr_and_exit_status_2(
        argv: list[str], env: dict[str, str], toml: str | None, expected: str,
        tmp_path: Path) -> None:
    if toml is not None:
        (tmp_path / "stream.toml").write_text(toml)
    result = run_cli(*argv, env=env, cwd=tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"bot-stream {argv[0]}: configuration error: ")
    assert expected in lines[0]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == ([tmp_path / "stream.toml"] if toml else [])


@pytest.mark.parametrize(("argv", "expected"), [
    (["live", "--sim", "--status-port", "99999"],
     "argument --status-port: '99999' is not a port number 0-65535"),
    (["record", "--sim", "--out", "store", "--status-port", "-1"],
     "argument --status-port: '-1' is not a port number 0-65535"),
    (["live", "--sim", "--sim-history", "nan"],
     "argument --sim-history: 'nan' is not a finite number >= 0"),
    (["live", "--sim", "--sim-speed", "inf"],
     "argument --sim-speed: 'inf' is not a finite number > 0"),
    (["dashboard", "--sim", "--duration", "1e999"],
     "argument --duration: '1e999' is not a finite number > 0"),
    (["live", "--stocks"], "argument --stocks: expected at least one argument"),
    (["dashboard", "--sim", "--port", "99999"],
     "argument --port: '99999' is not a port number 0-65535"),
])
def test_bad_flag_is_one_line_on_stderr_and_exit_status_2(argv: list[str], expected: str,
                                                          tmp_path: Path) -> None:
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"bot-stream {argv[0]}: error: {expected} "
                             f"(see bot-stream {argv[0]} --help)\n")
    assert list(tmp_path.iterdir()) == []
