"""The legacy ``WebSocketStream``: deprecated, but its trades are the exchange's trades."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.data.errors import ConfigError, ExchangeError, MissingCredentialsError
from bot.data.models import Tick
from bot.data.sim import ExchangeSimulator
from bot.data.transport import ConnectionState
from bot.data.websocket_stream import WebSocketStream
from tests.streaming import (
    assert_stock_trades_match,
    assert_trades_match,
    fast_config,
    point_at,
    wait_for,
)

# Every test but the first constructs the deprecated class on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_constructing_it_warns_and_names_the_replacement() -> None:
    with pytest.warns(DeprecationWarning, match=r"use bot\.data\.StreamManager") as record:
        WebSocketStream("binance", ["BTC/USDT"], on_trade=print)
    assert record[0].filename == __file__, "the warning points at the caller"


@pytest.mark.parametrize("venue", ["binance", "binanceus"])
async def test_binance_trades_arrive_as_the_exchange_executed_them(
        venue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=41, speed=10.0) as sim:
        point_at(sim, monkeypatch)
        ticks: list[Tick] = []
        stream = WebSocketStream(venue, ["BTC/USDT", "eth/usdt"], on_trade=ticks.append,
                                 config=fast_config(binance_venue=venue))
        assert stream.state is ConnectionState.DISCONNECTED
        async with stream:
            assert stream.state is ConnectionState.CONNECTED
            await wait_for(lambda: {t.symbol for t in ticks} == {"BTC/USDT", "ETH/USDT"}
                            and len(ticks) >= 50)
        assert stream.state is ConnectionState.STOPPED
        for symbol in ("BTC/USDT", "ETH/USDT"):
            assert_trades_match([t for t in ticks if t.symbol == symbol],
                                 sim.trades("binance", symbol))
    assert {t.venue for t in ticks} == {venue}
    assert stream.symbols == ["BTC/USDT", "ETH/USDT"]


async def test_usdm_perpetual_trades_arrive_as_the_exchange_executed_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator([], futures_symbols=["BTC/USDT:USDT"], seed=45,
                                 speed=10.0) as sim:
        point_at(sim, monkeypatch)
        ticks: list[Tick] = []
        async with WebSocketStream("binanceusdm", ["btc/usdt:usdt"], on_trade=ticks.append,
                                   config=fast_config()):
            await wait_for(lambda: len(ticks) >= 50)
        assert_trades_match(ticks, sim.trades("binanceusdm", "BTC/USDT:USDT"))
    assert {(t.venue, t.symbol) for t in ticks} == {("binanceusdm", "BTC/USDT:USDT")}


async def test_alpaca_stock_trades_arrive_as_the_exchange_executed_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator([], ["AAPL"], seed=42, speed=10.0) as sim:
        point_at(sim, monkeypatch)
        ticks: list[Tick] = []

        async def on_trade(tick: Tick) -> None:  # a coroutine callback works too
            ticks.append(tick)

        async with WebSocketStream("alpaca", ["AAPL"], on_trade=on_trade,
                                   config=fast_config()):
            await wait_for(lambda: len(ticks) >= 30)
        assert_stock_trades_match(ticks, sim.trades("alpaca", "AAPL"))
    assert {(t.venue, t.symbol) for t in ticks} == {("alpaca", "AAPL")}


async def test_a_raising_callback_is_counted_and_the_stream_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Tick] = []

    def on_trade(tick: Tick) -> None:
        seen.append(tick)
        raise RuntimeError("bug in the callback")

    async with ExchangeSimulator(["BTC/USDT"], seed=43, speed=10.0) as sim:
        point_at(sim, monkeypatch)
        stream = WebSocketStream("binance", ["BTC/USDT"], on_trade=on_trade,
                                 config=fast_config())
        async with stream:
            await wait_for(lambda: len(seen) >= 50)
            assert stream.handler_errors == len(seen)
        assert_trades_match(seen, sim.trades("binance", "BTC/USDT"))
    assert stream.stats.reconnects == 0


async def test_a_lost_connection_is_reported_to_on_error_and_the_stream_reconnects(
        monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[BaseException] = []
    ticks: list[Tick] = []
    async with ExchangeSimulator(["BTC/USDT"], seed=44, speed=10.0) as sim:
        point_at(sim, monkeypatch)
        stream = WebSocketStream("binance", ["BTC/USDT"], on_trade=ticks.append,
                                 on_error=errors.append, config=fast_config())
        async with stream:
            await wait_for(lambda: len(ticks) >= 10)
            sim.drop_all()
            await wait_for(lambda: stream.stats.reconnects >= 1)
            after = len(ticks)
            await wait_for(lambda: len(ticks) >= after + 10)
            assert stream.state is ConnectionState.CONNECTED
    assert len(errors) == stream.stats.reconnects >= 1


async def test_refused_credentials_fail_start_and_reach_on_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[BaseException] = []
    async with ExchangeSimulator([], ["AAPL"], seed=45) as sim:
        point_at(sim, monkeypatch)
        sim.refuse_auth()
        stream = WebSocketStream("alpaca", ["AAPL"], on_trade=print, on_error=errors.append,
                                 config=fast_config())
        with pytest.raises(ExchangeError) as err:
            await stream.start()
        await asyncio.sleep(0.2)
    assert err.value.code == 402 and err.value.fatal
    assert errors == [err.value]
    assert sim.counters.connections_accepted == 1, "a fatal answer is not retried"


@pytest.mark.parametrize(("venue", "symbols", "kwargs", "error", "message"), [
    ("kraken", ["BTC/USDT"], {}, ConfigError,
     "venue='kraken' is invalid: allowed: 'binance', 'binanceus', 'alpaca'"),
    ("binance", "BTC/USDT", {}, ConfigError, "a list of symbols, e.g. ['BTC/USDT']"),
    ("binance", [], {}, ConfigError, "at least one symbol is needed"),
    ("binance", ["BTCUSDT"], {}, ValueError, "must look like 'BASE/QUOTE'"),
    ("alpaca", ["BTC/USD"], {}, ConfigError, "stock tickers without '/'"),
    ("binanceus", ["BTC/USDT"], {"config": "binance"}, ConfigError,
     "config.binance_venue is 'binance'"),
    ("binance", ["BTC/USDT"], {"on_error": "log"}, TypeError, "on_error must be callable"),
])
def test_bad_arguments_fail_at_construction_naming_what_is_allowed(
        venue: str, symbols: Any, kwargs: dict[str, Any], error: type[Exception],
        message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "key")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret")
    if kwargs.get("config"):
        kwargs["config"] = fast_config(binance_venue=kwargs["config"])
    with pytest.raises(error) as err:
        WebSocketStream(venue, symbols, on_trade=print, **kwargs)
    assert message in str(err.value)


def test_alpaca_without_credentials_names_the_variables_to_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredentialsError, match="ALPACA_API_KEY or APCA_API_KEY_ID"):
        WebSocketStream("alpaca", ["AAPL"], on_trade=print)
