"""Symbols added and removed while the manager streams: the open connections are untouched.

Checked against the simulator's side: which connections it accepted, which streams a
session carries (the point where an unsubscription is acknowledged), and its trade log.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from bot.data.errors import UnknownSeriesError
from bot.data.models import Tick
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from bot.data.transport import Connection
from bot.data.venues.alpaca.session import split_stock_trade_id
from tests.streaming import (
    assert_stock_trades_match,
    assert_trades_match,
    fast_config,
    point_at,
    wait_for,
)


def _record(manager: StreamManager) -> dict[str, list[Tick]]:
    ticks: dict[str, list[Tick]] = defaultdict(list)
    manager.on_tick(lambda e: ticks[e.data.symbol].append(e.data))
    return ticks


def _assert_open_connections_untouched(manager: StreamManager, before: list[Connection],
                                       sim: ExchangeSimulator, accepted: int) -> None:
    assert len(manager._connections) == len(before)
    assert all(now is then for now, then in zip(manager._connections, before, strict=True))
    assert all(c.stats.reconnects == 0 for c in manager._connections)
    assert sim.counters.connections_accepted == accepted, "no connection was opened or reopened"


def _last_trade_id(sim: ExchangeSimulator, venue: str, symbol: str) -> int:
    return sim.trades(venue, symbol)[-1].trade_id


async def test_crypto_symbol_added_at_runtime_streams_on_the_open_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT", "XRP/USDT"], seed=21,
                                 speed=20.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
        ticks = _record(manager)
        await manager.start()
        try:
            await wait_for(lambda: {"BTC/USDT", "ETH/USDT"} <= ticks.keys())
            before, accepted = list(manager._connections), sim.counters.connections_accepted
            manager.add_crypto_symbols(["XRP/USDT"])
            await wait_for(lambda: len(ticks["XRP/USDT"]) >= 20)
            _assert_open_connections_untouched(manager, before, sim, accepted)
        finally:
            await manager.stop()
        assert_trades_match(ticks["XRP/USDT"], sim.trades("binance", "XRP/USDT"))
    assert manager.symbols == ["BTC/USDT", "ETH/USDT", "XRP/USDT"]


async def test_removed_crypto_symbol_gets_no_tick_after_the_exchange_acknowledged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=22, speed=20.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
        ticks = _record(manager)
        await manager.start()
        try:
            await wait_for(lambda: len(ticks["ETH/USDT"]) >= 5)
            before, accepted = list(manager._connections), sim.counters.connections_accepted
            manager.remove_symbols(["ETH/USDT"])
            await wait_for(lambda: all("ethusdt@trade" not in s.streams
                                        for s in sim.binance_streams.sessions))
            acknowledged_at = _last_trade_id(sim, "binance", "ETH/USDT")
            btc_then = len(ticks["BTC/USDT"])
            await wait_for(lambda: len(ticks["BTC/USDT"]) >= btc_then + 30
                            and _last_trade_id(sim, "binance", "ETH/USDT") > acknowledged_at + 30)
            _assert_open_connections_untouched(manager, before, sim, accepted)
            with pytest.raises(UnknownSeriesError, match="'ETH/USDT' is not subscribed"):
                manager.get_ticks("ETH/USDT")
        finally:
            await manager.stop()
        assert_trades_match(ticks["BTC/USDT"], sim.trades("binance", "BTC/USDT"))
    assert max(t.trade_id for t in ticks["ETH/USDT"]) <= acknowledged_at
    assert manager.symbols == ["BTC/USDT"]


async def test_stock_symbols_change_at_runtime_on_the_single_alpaca_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator([], ["AAPL", "TSLA", "MSFT"], seed=23, speed=20.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_stock_symbols(["AAPL", "TSLA"])
        ticks = _record(manager)
        await manager.start()
        try:
            await wait_for(lambda: {"AAPL", "TSLA"} <= ticks.keys())
            before = list(manager._connections)
            assert len(before) == 1 and sim.counters.connections_accepted == 1

            manager.add_stock_symbols(["MSFT"])
            await wait_for(lambda: len(ticks["MSFT"]) >= 20)
            _assert_open_connections_untouched(manager, before, sim, 1)

            manager.remove_symbols(["TSLA"])
            await wait_for(lambda: all("TSLA" not in s.subscriptions["trades"]
                                        for s in sim.alpaca_streams.sessions))
            acknowledged_at = _last_trade_id(sim, "alpaca", "TSLA")
            others_then = len(ticks["AAPL"]) + len(ticks["MSFT"])
            await wait_for(lambda: len(ticks["AAPL"]) + len(ticks["MSFT"]) >= others_then + 30
                            and _last_trade_id(sim, "alpaca", "TSLA") > acknowledged_at + 30)
            _assert_open_connections_untouched(manager, before, sim, 1)
        finally:
            await manager.stop()
        for symbol in ("AAPL", "MSFT"):
            assert_stock_trades_match(ticks[symbol], sim.trades("alpaca", symbol))
    assert max(split_stock_trade_id(t.trade_id)[1] for t in ticks["TSLA"]) <= acknowledged_at
    assert manager.symbols == ["AAPL", "MSFT"]
