"""StreamManagerConfig: the seed's defaults, and errors that name the field and what is allowed."""

from __future__ import annotations

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.timeframes import align, base_length_ns, timeframe_ns


def test_defaults_are_the_seeds() -> None:
    c = StreamManagerConfig()
    assert (c.default_timeframe, c.supported_timeframes) == ("1m", ["1m", "5m", "15m"])
    assert (c.reconnect_delay, c.max_reconnect_delay, c.reconnect_attempts) == (1.0, 60.0, 10)
    assert (c.tick_buffer_size, c.bar_history_size) == (10000, 500)
    assert (c.health_check_interval, c.stale_threshold_seconds) == (10.0, 30.0)
    assert c.binance_ws_url == "wss://stream.binance.com:9443"


def test_unknown_timeframe_error_names_the_value_and_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        StreamManagerConfig(supported_timeframes=["1m", "7m"])
    assert "7m" in str(err.value) and "1s, 1m, 3m, 5m, 15m" in str(err.value)


def test_default_timeframe_must_be_supported() -> None:
    with pytest.raises(ConfigError, match=r"default_timeframe='5m'.*supported_timeframes"):
        StreamManagerConfig(default_timeframe="5m", supported_timeframes=["1m"])


@pytest.mark.parametrize(("field", "value"), [
    ("tick_buffer_size", 0), ("bar_history_size", -5), ("reconnect_attempts", 1.5),
    ("reconnect_delay", 0), ("health_check_interval", -1.0), ("bar_close_grace_ms", -1),
    ("alpaca_feed", "nasdaq"), ("binance_trade_channel", "depth"),
    ("binance_ws_url", "http://example"),
])
def test_invalid_values_fail_at_construction_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        StreamManagerConfig(**{field: value})  # type: ignore[arg-type]
    assert err.value.field == field and f"{field}=" in str(err.value)


def test_max_delay_below_initial_delay_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_reconnect_delay"):
        StreamManagerConfig(reconnect_delay=5.0, max_reconnect_delay=1.0)


def test_base_urls_come_from_the_environment_when_not_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_WS_URL", "ws://127.0.0.1:9")
    monkeypatch.setenv("ALPACA_REST_URL", "http://127.0.0.1:9")
    c = StreamManagerConfig()
    assert c.binance_ws_url == "ws://127.0.0.1:9" and c.alpaca_rest_url == "http://127.0.0.1:9"
    assert StreamManagerConfig(binance_ws_url="ws://h:1").binance_ws_url == "ws://h:1"


def test_alpacas_trading_url_defaults_to_the_live_host_and_comes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert StreamManagerConfig().alpaca_trading_url == "https://api.alpaca.markets"
    monkeypatch.setenv("ALPACA_TRADING_URL", "https://paper-api.alpaca.markets")
    assert StreamManagerConfig().alpaca_trading_url == "https://paper-api.alpaca.markets"
    monkeypatch.setenv("ALPACA_TRADING_URL", "wss://x")
    with pytest.raises(ConfigError, match="set by the environment variable ALPACA_TRADING_URL"):
        StreamManagerConfig()


def test_binanceus_venue_uses_its_own_endpoints() -> None:
    c = StreamManagerConfig(binance_venue="binanceus")
    assert c.binance_ws_url == "wss://stream.binance.us:9443"
    assert c.binance_rest_url == "https://api.binance.us"


def test_bars_align_to_utc_epoch_multiples_like_klines() -> None:
    t = 1_735_689_659_999_999_000  # 2025-01-01 00:00:59.999999
    assert align(t, timeframe_ns("1m")) == 1_735_689_600 * 10**9
    assert align(t + 1000, timeframe_ns("1m")) == 1_735_689_660 * 10**9
    assert align(t, timeframe_ns("1d")) == 1_735_689_600 * 10**9
    assert base_length_ns(["3m", "5m"]) == timeframe_ns("1m")


def test_timeframe_outside_binance_set_is_rejected() -> None:
    with pytest.raises(ValueError, match="allowed: 1s, 1m"):
        timeframe_ns("1w")
