"""The dashboard's WebSocket feed, read by a plain client: history, live bars, signals."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import msgspec
import pytest

from bot.data.dashboard import DashboardServer
from bot.data.dashboard.feed import DashboardFeed
from bot.data.engine import StreamingTradingEngine
from bot.data.engine.paper import PaperExecutor
from bot.data.events import EventType
from bot.data.models import Prediction, Signal, SignalDirection
from tests.dashboard.support import SYMBOLS, e8, kline_ohlc_e8, streaming, wait_for


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.receive_str(timeout=10))
    return message


async def test_page_feed_sends_history_then_the_exchanges_bars_as_they_complete() -> None:
    async with streaming() as (sim, manager), DashboardServer(manager) as server, \
            aiohttp.ClientSession() as http, http.ws_connect(f"{server.url}/ws") as ws:
        hello = await receive(ws)
        assert hello == {"type": "hello", "symbols": SYMBOLS, "timeframes": ["1m", "5m"],
                         "default_timeframe": "1m"}
        history = [await receive(ws) for _ in range(len(SYMBOLS) * 2)]
        assert {(m["type"], m["symbol"], m["timeframe"]) for m in history} == {
            ("history", s, tf) for s in SYMBOLS for tf in ("1m", "5m")}
        assert (await receive(ws))["type"] == "status"
        completed: list[dict[str, Any]] = []
        current_seen = 0
        async with asyncio.timeout(30):
            while sum(1 for c in completed if c["symbol"] == "BTC/USDT" and not c["flags"]) < 3:
                message = await receive(ws)
                if message["type"] == "update":
                    completed.extend(message["bars"])
                    current_seen += len(message["current"])
        truth = {s: kline_ohlc_e8(sim, s, "1m") for s in SYMBOLS}
    assert current_seen > 0, "bars being built are sent too"
    checked = 0
    for candle in completed:
        if candle["timeframe"] == "1m" and not candle["flags"]:
            assert e8(candle["open"], candle["high"], candle["low"], candle["close"]) == \
                truth[candle["symbol"]][candle["time"]]
            assert candle["buy_volume"] + candle["sell_volume"] == \
                pytest.approx(candle["volume"], rel=1e-9)
            checked += 1
    assert checked >= 3


async def test_signals_reach_open_pages_and_later_ones_in_their_history() -> None:
    async with streaming() as (_sim, manager), DashboardServer(manager) as server, \
            aiohttp.ClientSession() as http:
        await wait_for(lambda: len(manager.get_bars("BTC/USDT", "1m")) > 0, 20, "a bar")
        bar = manager.get_bars("BTC/USDT", "1m")[-1]
        async with http.ws_connect(f"{server.url}/ws") as first:
            for _ in range(1 + len(SYMBOLS) * 2 + 1):  # hello, history, status
                await receive(first)
            prediction = Prediction("BTC/USDT", "1m", bar.open_time, 0.83, "test", 0)
            manager.bus.emit(EventType.SIGNAL, Signal("BTC/USDT", SignalDirection.BUY, 0.83, bar,
                                                      prediction, bar.close_time))
            async with asyncio.timeout(20):
                while True:
                    message = await receive(first)
                    if message["type"] == "update" and message["signals"]:
                        break
        assert message["signals"] == [{"symbol": "BTC/USDT", "timeframe": "1m",
                                       "time": bar.open_time // 10**9, "direction": "buy",
                                       "confidence": 0.83, "probability_up": 0.83,
                                       "model": "test", "price": bar.close,
                                       "timestamp": bar.close_time}]
        async with http.ws_connect(f"{server.url}/ws") as second:
            messages = [await receive(second) for _ in range(1 + len(SYMBOLS) * 2)]
        history = next(m for m in messages if m.get("symbol") == "BTC/USDT"
                       and m.get("timeframe") == "1m")
        assert history["signals"] == message["signals"]


async def test_status_counts_trades_per_minute_from_the_stream_not_the_tick_buffer() -> None:
    buffer = 100
    async with streaming(tick_buffer_size=buffer) as (_sim, manager):
        feed = DashboardFeed(manager)
        seen: list[int] = []
        manager.on(EventType.TICK, lambda e: seen.append(1) if e.data.symbol == "BTC/USDT"
                   else None)
        detach = feed.attach()
        start = time.monotonic()
        await asyncio.sleep(2.0)
        status = feed.status()
        elapsed = time.monotonic() - start
        detach()
    counted = len(seen) / elapsed * 60  # counted independently over the same span
    shown = status["trades_per_minute"]["BTC/USDT"]
    assert shown > 10 * buffer, "not capped by the tick buffer"
    assert shown == pytest.approx(counted, rel=0.1)
    assert all(s["ticks_last_minute"] <= buffer for s in status["health"]["symbols"])


async def test_status_shows_the_engines_paper_position_marked_at_the_last_trade() -> None:
    async with streaming() as (_sim, manager):
        account = PaperExecutor(manager.bus)
        engine = StreamingTradingEngine(manager, executor=account)
        feed = DashboardFeed(manager, engine=engine, account=account)
        await wait_for(lambda: len(manager.get_bars("BTC/USDT", "1m")) > 0, 20, "a bar")
        bar = manager.get_bars("BTC/USDT", "1m")[-1]
        prediction = Prediction("BTC/USDT", "1m", bar.open_time, 0.9, "test", 0)
        account.execute(Signal("BTC/USDT", SignalDirection.BUY, 0.9, bar, prediction,
                               bar.close_time))
        await wait_for(lambda: bool(account.trades), 20, "the order filled")
        status = json.loads(msgspec.json.encode(feed.status()))  # as the page receives it
        account.close()
    fill = account.trades[0]
    position = status["account"]["positions"]["BTC/USDT"]
    assert position["quantity"] == 1.0 and position["average_price"] == fill.price
    assert position["mark"] == account.mark("BTC/USDT")
    assert position["unrealised_pnl"] == pytest.approx(
        (position["mark"] - fill.price) * position["quantity"])
    assert status["account"]["fees_paid"] == pytest.approx(fill.price * 0.001)
    assert status["engine"]["predictor"] == "momentum"
    assert DashboardFeed(manager).status()["account"] is None
