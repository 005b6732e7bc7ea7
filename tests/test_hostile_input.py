"""Hostile input from outside the known fault list: what one odd frame, answer or call does.

Each test feeds the project something a faulty or hostile exchange, network or
caller can produce and checks that nothing freezes, floods, dies silently or
loses what was already received.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from bot.data import StreamManager
from bot.data.config import StreamManagerConfig
from bot.data.models import Bar, Side, Tick
from bot.data.nats.codec import Watermark, tick_codec, watermark_codec
from bot.data.nats.remote import RemoteStreamManager
from bot.data.nats.subjects import RECORD_HEADER, WATERMARK
from bot.data.pipeline import TickPipeline
from bot.data.timeframes import NS_PER_SECOND
from bot.data.venues.alpaca.rest import AlpacaRest
from bot.data.venues.alpaca.session import AlpacaCredentials
from tests.streaming import wait_for
from tests.support.fakex import FakeBinance, trade_frame

YEAR_NS = 365 * 24 * 3600 * NS_PER_SECOND


def _trade(trade_id: int, ts: int, received: int) -> Tick:
    return Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY, trade_id, ts, received)


def test_two_consecutive_trades_a_year_ahead_do_not_kill_the_symbol() -> None:
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]))
    now = time.time_ns()
    for i in range(10):
        pipeline.process(_trade(1000 + i, now + i * NS_PER_SECOND, now + i * NS_PER_SECOND))
    received = now + 10 * NS_PER_SECOND
    pipeline.process(_trade(1010, received + YEAR_NS, received))
    pipeline.process(_trade(1011, received + YEAR_NS + 1_000_000, received + 1_000_000))
    accepted_before = pipeline.ticks_accepted

    later = [_trade(1012 + i, now + (11 + i) * NS_PER_SECOND, now + (11 + i) * NS_PER_SECOND)
             for i in range(100)]
    passed = sum(pipeline.process(t) for t in later)

    assert passed >= 99, f"only {passed} of 100 later trades at the venue's time reached TICK"
    assert pipeline.ticks_accepted - accepted_before >= 99


# -- REST klines: the warm-up's bar history ------------------------------------------------
def _kline(open_ms: int, price: str = "100", volume: str = "1") -> list[object]:
    return [open_ms, price, price, price, price, volume, open_ms + 59_999, "100", 5, "0.5",
            "50", "0"]


def _klines_answer(kind: str, end_ms: int) -> list[list[object]]:
    opens = [end_ms - 60_000 * i for i in range(10)][::-1]
    if kind == "nan":
        return [_kline(o, price="NaN") for o in opens]
    if kind == "negative":
        return [_kline(o, price="-5", volume="-1") for o in opens]
    if kind == "repeated":
        return [_kline(opens[-1])] * 10
    return [_kline(o) for o in reversed(opens)]  # "unordered": newest first


@pytest.mark.parametrize("kind", ["nan", "negative", "repeated", "unordered"])
async def test_warm_up_history_holds_only_plausible_bars_in_time_order(
        fx: FakeBinance, kind: str) -> None:
    async def klines(request: web.Request, name: str) -> web.Response | None:
        if name != "klines":
            return None
        return web.json_response(_klines_answer(kind, int(request.query["endTime"])))

    fx.rest_hook = klines
    manager = StreamManager(StreamManagerConfig(supported_timeframes=["1m"],
                                                warm_up_timeout_seconds=5,
                                                check_symbols=False))  # no listing served
    manager.add_crypto_symbols(["BTC/USDT"])
    await manager.start()
    try:
        bars = manager.get_bars("BTC/USDT", "1m", 100)
    finally:
        await manager.stop()
    assert fx.rest_counts["klines"] >= 1
    assert all(b.low > 0 and b.close > 0 and b.volume >= 0 for b in bars), [
        (b.open_time, b.close, b.volume) for b in bars]
    opens = [b.open_time for b in bars]
    assert opens == sorted(set(opens)), "open times strictly increasing"


# -- NATS: a watermark from a publisher whose clock ran away -------------------------------
def test_a_watermark_a_year_ahead_does_not_kill_a_remote_symbol() -> None:
    remote = RemoteStreamManager(StreamManagerConfig(supported_timeframes=["1m"]))
    remote.add_crypto_symbols(["BTC/USDT"])
    source = remote.source
    source._accepted = frozenset(remote.symbols)  # what start() subscribes to
    ticks, watermarks = tick_codec(), watermark_codec()
    now = time.time_ns()
    completed: list[Bar] = []
    remote.on_bar_complete(completed.append)

    def deliver(payload: bytes, headers: dict[str, str] | None = None) -> None:
        source._on_message(SimpleNamespace(subject="md.tick", data=payload,  # type: ignore[arg-type]
                                           headers=headers))

    for i in range(5):
        deliver(ticks.encode(_trade(1000 + i, now + i * NS_PER_SECOND, now + i * NS_PER_SECOND)))
    deliver(watermarks.encode(Watermark("binance", "BTC/USDT", now + YEAR_NS)),
            {RECORD_HEADER: WATERMARK})
    before = remote.pipeline.ticks_accepted
    for i in range(50):
        at = now + (10 + i) * NS_PER_SECOND
        deliver(ticks.encode(_trade(2000 + i, at, at)))
    assert remote.pipeline.ticks_accepted - before == 50
    assert all(b.close_time < now + 120 * NS_PER_SECOND for b in completed), \
        "the watermark completed bars a year ahead"
    state = source.state()
    assert (state["watermarks_refused"], state["watermarks"]) == (1, 0)


# -- frames for symbols never subscribed ---------------------------------------------------
async def test_trades_of_symbols_never_subscribed_leave_nothing_behind(
        fx: FakeBinance) -> None:
    frames = 5000

    async def script(ws: Any, _request: Any) -> None:
        now = int(time.time() * 1000)
        for i in range(frames):
            await ws.send_str(trade_frame(f"X{i}USDT", i + 1, "1", "1", now))
        while True:
            await asyncio.sleep(1)

    fx.script = script
    # The scripted exchange serves no listing.
    manager = StreamManager(StreamManagerConfig(warm_up=False, check_symbols=False))
    manager.add_crypto_symbols(["BTC/USDT"])
    await manager.start()
    try:
        await wait_for(lambda: manager.get_metrics()["counters"]["frames"] >= frames, 20)
        remembered = set(manager._heard)
        metrics = manager.get_metrics()
        ticks = metrics["counters"]["ticks"]
        measured = metrics["latency"]["exchange_to_receive"]["count"]
    finally:
        await manager.stop()
    assert ticks == 0
    assert measured == 0, "trades of symbols never subscribed are not measured either"
    assert remembered <= {"BTC/USDT"}, f"{len(remembered)} symbols never subscribed remembered"


# -- Alpaca REST: a page token that never changes ------------------------------------------
async def test_an_alpaca_page_token_that_repeats_ends_the_paging() -> None:
    requests = 0

    async def bars(_request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        return web.json_response({"bars": [], "symbol": "AAPL", "next_page_token": "same"})

    app = web.Application()
    app.add_routes([web.get("/v2/stocks/{symbol}/bars", bars)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rest = AlpacaRest(StreamManagerConfig(alpaca_rest_url=f"http://127.0.0.1:{runner.addresses[0][1]}"),
                      AlpacaCredentials("PKHOSTILETOKEN01", "hostile-token-secret"))
    try:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(rest.bars("AAPL", "1m", limit=10), 3)
    finally:
        await rest.close()
        await runner.cleanup()
    assert requests <= 2, f"{requests} requests for one repeating page token"


# -- many symbols on one connection: the length of the combined-stream URL -----------------
async def test_six_hundred_symbols_on_one_connection_connect_to_a_server_with_an_8k_url_limit(
        fx: FakeBinance) -> None:
    manager = StreamManager(StreamManagerConfig(warm_up=False, connect_timeout=5,
                                                check_symbols=False))  # no listing served
    manager.add_crypto_symbols([f"X{i}/USDT" for i in range(600)])
    try:
        await asyncio.wait_for(manager.start(), 10)
        states = [c.state.value for c in manager._connections]
    finally:
        await manager.stop()
    assert states == ["connected"]
    assert fx.ws_connections == 1


# -- warm-up of many symbols: what the request budget is spent on --------------------------
async def test_a_warm_up_asks_the_venue_clock_a_few_times_not_once_per_symbol(
        fx: FakeBinance) -> None:
    manager = StreamManager(StreamManagerConfig(supported_timeframes=["1m"],
                                                warm_up_timeout_seconds=10,
                                                check_symbols=False))  # no listing served
    manager.add_crypto_symbols([f"X{i}/USDT" for i in range(100)])
    await manager.start()
    await manager.stop()
    assert fx.rest_counts["klines"] == 100, "every symbol's history was asked for"
    assert fx.rest_counts["time"] <= 5
