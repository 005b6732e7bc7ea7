"""Every ``StreamManagerConfig`` field is type- and range-checked at construction.

The tables below are written out by hand (not derived from the config's own rules):
for each field, values a user might pass by mistake, each of which must fail at once
with a ``ConfigError`` naming the field, the value and what is allowed, and values
at the edges that must be accepted. A hypothesis test then draws whole configs of
good and bad values: construction either refuses with a ``ConfigError`` or gives a
config that builds a working manager.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.models import Side, Tick
from bot.data.stream_manager import StreamManager
from bot.data.transport import Backoff
from bot.data.venues.binance.session import BinanceSession

INF, NAN = math.inf, math.nan
HUGE = 10**30
# Wrong for any number field: wrong types, non-finite values, absurd sizes.
NOT_A_NUMBER = ["5", None, True, False, [1], NAN, INF, -INF, HUGE, -HUGE]
NOT_AN_INTEGER = [*NOT_A_NUMBER, 5.5, 5.0]
NOT_A_FLAG = ["no", "yes", 0, 1, None]

BAD_VALUES: dict[str, list[Any]] = {
    "default_timeframe": ["2m", "1M", "", None, ["1m"], 1, "1h"],  # 1h: not supported
    "supported_timeframes": [[], "1m", None, 5, [["1m"]], ["1m", "1M"], ["1m", None],
                             {"1m": 1}],
    "reconnect_delay": [*NOT_A_NUMBER, 0, -1, 0.001, 1e-9, 3601],
    "max_reconnect_delay": [*NOT_A_NUMBER, 0, -1, 0.001, 3601, 0.5],  # 0.5 < reconnect_delay
    "reconnect_attempts": [*NOT_AN_INTEGER, 0, -1, 1001],
    "tick_buffer_size": [*NOT_AN_INTEGER, 0, -5, 1_000_001],
    "bar_history_size": [*NOT_AN_INTEGER, 0, -5, 100_001, 10**12],
    "health_check_interval": [*NOT_A_NUMBER, 0, -1, 1e-9, 0.01, 3601],
    "stale_threshold_seconds": [*NOT_A_NUMBER, 0, -1, 1e-9, 0.5, 86_401],
    "bar_close_grace_ms": [*NOT_AN_INTEGER, -1, 3_600_001],
    "reorder_window_ms": [*NOT_AN_INTEGER, -1, 60_001],
    "emit_empty_bars": NOT_A_FLAG,
    "async_handler_backlog": [*NOT_AN_INTEGER, 0, -1, 1_000_001],
    "binance_venue": ["kraken", "Binance", "", None, 1],
    "binance_trade_channel": ["depth", "TRADE", "", None, ["trade"]],
    "binance_ticker_channel": ["depth", "", "BookTicker", 1, ["ticker"]],
    "binance_ws_url": ["http://x", "ws://", "ws:///path", "ws://host:99999", "wss://h ost",
                       "ws://host/?a=1", "ws://host/#f", "ws://host\n", 5, b"ws://host"],
    "binance_rest_url": ["ws://x", "https://", "https://host?x", "ftp://host", 5],
    "binance_max_streams_per_connection": [*NOT_AN_INTEGER, 0, -1, 1025],
    "alpaca_feed": ["SIP", "pro", "", None],
    "alpaca_ws_url": ["https://x", "wss://", "wss://h\x00st", 1.5],
    "alpaca_rest_url": ["wss://x", "http://", "http://host:0x50", []],
    "backfill": NOT_A_FLAG,
    "warm_up": NOT_A_FLAG,
    "check_symbols": NOT_A_FLAG,
    "backfill_timeout_seconds": [*NOT_A_NUMBER, 0, -1, 0.01, 3601],
    "warm_up_timeout_seconds": [*NOT_A_NUMBER, 0, -1, 0.01, 3601],
    "store_path": ["", "   ", "a\x00b", 5, b"/tmp/x", ["/tmp"]],
    "store_flush_interval": [*NOT_A_NUMBER, 0, -1, 1e-9, 0.01, 3601],
    "store_retention_days": ["5", True, 5.5, 0, -1, 36_501, NAN, INF, HUGE],
    "store_resume_max_gap_seconds": [*NOT_A_NUMBER, 0, -1, 0.5, 7 * 86_400 + 1],
    "connect_timeout": [*NOT_A_NUMBER, 0, -1, 0.01, 601],
    "silence_timeout_seconds": [*NOT_A_NUMBER, 0, -1, 0.01, 86_401],
    "liveness_probe_timeout_seconds": [*NOT_A_NUMBER, 0, -1, 0.01, 601],
    "stable_connection_seconds": [*NOT_A_NUMBER, 0, -1, 0.01, 86_401],
    "nats_batch_ms": [*NOT_AN_INTEGER, -1, 1001, 3, 30, 999, 2000],  # 3, 30: do not divide 1000
}

# Values at the edges of what is allowed (and the types that stand for the field's).
GOOD_VALUES: dict[str, list[Any]] = {
    "reconnect_delay": [0.01, 1, 3600.0],
    "max_reconnect_delay": [1, 3600],
    "reconnect_attempts": [1, 1000],
    "tick_buffer_size": [1, 1_000_000],
    "bar_history_size": [1, 100_000],
    "health_check_interval": [0.05, 3600],
    "stale_threshold_seconds": [1, 86_400],
    "bar_close_grace_ms": [0, 3_600_000],
    "reorder_window_ms": [0, 60_000],
    "async_handler_backlog": [1, 1_000_000],
    "binance_max_streams_per_connection": [1, 5, 1024],
    "backfill_timeout_seconds": [0.1, 3600],
    "warm_up_timeout_seconds": [0.1, 3600],
    "store_flush_interval": [0.05, 3600],
    "store_retention_days": [None, 1, 36_500],
    "store_resume_max_gap_seconds": [1, 7 * 86_400],
    "connect_timeout": [0.1, 600],
    "silence_timeout_seconds": [0.1, 86_400],
    "liveness_probe_timeout_seconds": [0.1, 600],
    "stable_connection_seconds": [0.1, 86_400],
    "nats_batch_ms": [0, 1, 8, 125, 1000],
    "binance_ws_url": ["ws://127.0.0.1:9000", "wss://proxy.example/binance"],
    "alpaca_rest_url": ["http://[::1]:8080", "https://data.example/v"],
    "store_path": ["store", Path("store")],
    "supported_timeframes": [["1m"], ("1s", "1d"), ["5m", "1m", "1m"]],
}


INTEGER_FIELDS = {"reconnect_attempts", "tick_buffer_size", "bar_history_size",
                  "bar_close_grace_ms", "reorder_window_ms", "async_handler_backlog",
                  "binance_max_streams_per_connection", "store_retention_days",
                  "nats_batch_ms"}


def _cases(table: dict[str, list[Any]]) -> list[Any]:
    return [pytest.param(name, value, id=f"{name}={value!r}"[:80])
            for name, values in table.items() for value in values]


def test_every_field_has_a_rule_and_bad_values_in_this_table() -> None:
    from bot.data.config import FIELD_RULES

    fields = {f.name for f in dataclasses.fields(StreamManagerConfig)}
    assert set(FIELD_RULES) == fields
    assert set(BAD_VALUES) == fields


@pytest.mark.parametrize(("name", "value"), _cases(BAD_VALUES))
def test_bad_value_fails_at_construction_naming_field_value_and_what_is_allowed(
        name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        StreamManagerConfig(**{name: value})
    assert err.value.field == name
    message = str(err.value)
    assert message.startswith(f"{name}=") and " is invalid: " in message
    assert err.value.allowed and "\n" not in message


@pytest.mark.parametrize(("name", "value"), _cases(GOOD_VALUES))
def test_values_at_the_edges_are_accepted_with_the_fields_type(name: str, value: Any) -> None:
    extra: dict[str, Any] = {}
    if name == "reconnect_delay":
        extra["max_reconnect_delay"] = 3600.0
    if name == "supported_timeframes":
        extra["default_timeframe"] = value[0]
    config = StreamManagerConfig(**{name: value}, **extra)
    kept = getattr(config, name)
    if isinstance(value, int | float):
        assert kept == value
        assert type(kept) is (int if name in INTEGER_FIELDS else float)


def test_numbers_of_float_fields_are_kept_as_floats_and_integers_as_ints() -> None:
    config = StreamManagerConfig(reconnect_delay=2, max_reconnect_delay=5, connect_timeout=3)
    assert (config.reconnect_delay, config.max_reconnect_delay) == (2.0, 5.0)
    assert all(isinstance(v, float) for v in (config.reconnect_delay, config.connect_timeout))


def test_numpy_scalars_count_as_numbers() -> None:
    np = pytest.importorskip("numpy")
    config = StreamManagerConfig(tick_buffer_size=np.int64(500), reconnect_delay=np.float64(2))
    assert config.tick_buffer_size == 500 and type(config.tick_buffer_size) is int
    assert config.reconnect_delay == 2.0 and type(config.reconnect_delay) is float


def test_error_messages_say_the_range_and_unit() -> None:
    with pytest.raises(ConfigError, match=r"tick_buffer_size=10{30} is invalid: must be an "
                                          r"integer from 1 to 1,000,000 ticks per symbol"):
        StreamManagerConfig(tick_buffer_size=HUGE)
    with pytest.raises(ConfigError, match=r"health_check_interval=1e-09 is invalid: must be a "
                                          r"number from 0.05 to 3,600 seconds"):
        StreamManagerConfig(health_check_interval=1e-9)
    with pytest.raises(ConfigError, match=r"store_retention_days=0 is invalid: .* or None"):
        StreamManagerConfig(store_retention_days=0)


def test_a_value_too_large_to_print_still_gives_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tick_buffer_size=<int too large to show>"):
        StreamManagerConfig(tick_buffer_size=10**5000)
    with pytest.raises(ConfigError) as err:
        StreamManagerConfig(store_path=5 * 10**300)
    assert len(str(err.value)) < 400


# The settings of the runtime repro, each of which used to fail deep inside start()
# (TypeError, OverflowError, a connection that gives up) or spin a CPU core.
@pytest.mark.parametrize(("settings_", "field"), [
    pytest.param({"binance_max_streams_per_connection": 5.5},
                 "binance_max_streams_per_connection", id="streams5.5"),
    pytest.param({"bar_history_size": 10**12}, "bar_history_size", id="histhuge"),
    pytest.param({"tick_buffer_size": 10**30}, "tick_buffer_size", id="tickbufhuge"),
    pytest.param({"store_path": ""}, "store_path", id="storeempty"),
    pytest.param({"binance_ws_url": "ws://"}, "binance_ws_url", id="wsurl"),
    pytest.param({"store_path": "/tmp/x", "store_flush_interval": 1e-9},
                 "store_flush_interval", id="flush_tiny"),
    pytest.param({"health_check_interval": 1e-9}, "health_check_interval", id="health_tiny"),
])
def test_runtime_repro_settings_fail_at_construction(settings_: dict[str, Any],
                                                     field: str) -> None:
    with pytest.raises(ConfigError) as err:
        StreamManagerConfig(reconnect_attempts=2, reconnect_delay=0.2, max_reconnect_delay=0.5,
                            connect_timeout=3, **settings_)
    assert err.value.field == field


def test_ticker_channel_needs_two_streams_per_connection() -> None:
    with pytest.raises(ConfigError, match=r"binance_max_streams_per_connection=1 .*>= 2"):
        StreamManagerConfig(binance_ticker_channel="bookTicker",
                            binance_max_streams_per_connection=1)
    assert StreamManagerConfig(binance_max_streams_per_connection=1)


def test_bad_url_from_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_WS_URL", "ws://")
    with pytest.raises(ConfigError, match=r"binance_ws_url='ws://' is invalid: .* \(set by "
                                          r"the environment variable BINANCE_WS_URL\)"):
        StreamManagerConfig()
    with pytest.raises(ConfigError) as err:
        StreamManagerConfig(binance_ws_url="ws://x", tick_buffer_size=0)
    assert "environment" not in str(err.value)


def test_replace_checks_again() -> None:
    with pytest.raises(ConfigError, match="reconnect_attempts"):
        dataclasses.replace(StreamManagerConfig(), reconnect_attempts=1.5)


# -- any accepted config builds a working manager ----------------------------------------

def _bad() -> st.SearchStrategy[Any]:
    return st.sampled_from([None, True, "5", -1, 0, 5.5, 1e-9, math.inf, math.nan, 10**30,
                            [], ["1m"], "", "ws://"])


def _good(name: str) -> st.SearchStrategy[Any]:
    """Values inside the documented range, drawn independently of the config's rules."""
    seconds = {"reconnect_delay": (0.01, 3600), "max_reconnect_delay": (0.01, 3600),
               "health_check_interval": (0.05, 3600), "stale_threshold_seconds": (1, 86_400),
               "backfill_timeout_seconds": (0.1, 3600), "warm_up_timeout_seconds": (0.1, 3600),
               "store_flush_interval": (0.05, 3600),
               "store_resume_max_gap_seconds": (1, 604_800), "connect_timeout": (0.1, 600),
               "silence_timeout_seconds": (0.1, 86_400),
               "liveness_probe_timeout_seconds": (0.1, 600),
               "stable_connection_seconds": (0.1, 86_400)}
    counts = {"reconnect_attempts": (1, 1000), "tick_buffer_size": (1, 1_000_000),
              "bar_history_size": (1, 100_000), "bar_close_grace_ms": (0, 3_600_000),
              "reorder_window_ms": (0, 60_000), "async_handler_backlog": (1, 1_000_000),
              "binance_max_streams_per_connection": (1, 1024),
              "store_retention_days": (1, 36_500)}
    if name in seconds:
        low, high = seconds[name]
        return st.floats(low, high) | st.integers(math.ceil(low), int(high))
    if name in counts:
        return st.integers(*counts[name])
    choices: dict[str, list[Any]] = {
        "default_timeframe": ["1s", "1m", "5m", "1h"],
        "supported_timeframes": [["1m"], ["1s", "1m", "1h"], ["1m", "5m", "15m"]],
        "emit_empty_bars": [True, False], "backfill": [True, False], "warm_up": [True, False],
        "check_symbols": [True, False],
        "binance_venue": ["binance", "binanceus"],
        "binance_trade_channel": ["trade", "aggTrade"],
        "binance_ticker_channel": [None, "bookTicker", "ticker"],
        "binance_ws_url": ["ws://127.0.0.1:9"], "binance_rest_url": ["http://127.0.0.1:9"],
        "alpaca_feed": ["iex", "sip", "delayed_sip", "test"],
        "alpaca_ws_url": ["ws://127.0.0.1:9"], "alpaca_rest_url": ["http://127.0.0.1:9"],
        "store_path": [None],
        "nats_batch_ms": [0, 1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 200, 250, 500, 1000],
    }
    return st.sampled_from(choices[name])


@st.composite
def _settings(draw: st.DrawFn) -> dict[str, Any]:
    out = {}
    for name in BAD_VALUES:
        if draw(st.booleans()):
            out[name] = draw(_good(name) | _bad() if draw(st.integers(0, 9)) == 0
                             else _good(name))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_settings())
def test_any_accepted_config_builds_a_working_manager(kwargs: dict[str, Any]) -> None:
    try:
        config = StreamManagerConfig(**kwargs)
    except ConfigError as err:  # the only way a config may be refused
        assert err.field in BAD_VALUES
        return
    now = time.time_ns()
    manager = StreamManager(config, clock=lambda: now)
    manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
    tick = Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY, 1, now - 10**9, now)
    manager.pipeline.process(tick)
    manager.pipeline.advance(now + 120 * 10**9)
    assert manager.get_health()["status"] in ("healthy", "degraded", "unhealthy")
    session = BinanceSession(config, ["BTC/USDT"])
    assert session.url().startswith(config.binance_ws_url or "")
    backoff = Backoff(config.reconnect_delay, config.max_reconnect_delay)
    assert config.reconnect_delay <= backoff.delay(config.reconnect_attempts) \
        <= config.max_reconnect_delay
