"""Configuration from a TOML file, the environment and flags: precedence and clear errors."""

from __future__ import annotations

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
