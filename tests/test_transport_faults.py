"""Hostile frames and connection faults from independent fake exchanges never stop a stream.

Binance is played by ``tests.support.fakex`` (a scripted fake written outside the
project); Alpaca by a few lines of aiohttp below speaking its documented handshake.
Whatever a frame makes the decoder raise (invalid JSON, a frame nested deep enough
to exhaust the recursion limit, wrong types, binary garbage) is a counted parse
error, in the read loop and in the handshake, and the connection streams on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from bot.data import StreamManager, StreamManagerConfig
from bot.data.config import StreamManagerConfig as Config
from bot.data.models import Tick
from bot.data.transport import Connection, ConnectionState
from bot.data.venues.alpaca.session import AlpacaCredentials, AlpacaSession
from bot.data.venues.alpaca.spec import ALPACA
from tests.streaming import wait_for
from tests.support.fakex import FakeBinance, trade_frame

NESTED_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000  # ~600 KB: RecursionError in msgspec
NESTED_ARRAY = "[" * 200_000 + "]" * 200_000
BEFORE, AFTER = 20, 40  # BTC trades sent before and after the hostile frames


def _eth(now: int, **data: Any) -> str:
    return json.dumps({"stream": "ethusdt@trade", "data": {"e": "trade", "E": now, "s": "ETHUSDT",
                                                           **data}})


# mode -> (hostile frames, parse errors they must count)
ATTACKS: dict[str, tuple[Callable[[int], list[str | bytes]], int]] = {
    "nested": (lambda now: [NESTED_ARRAY, NESTED_OBJECT], 2),
    "nonjson": (lambda now: ["hello{{{", "", "null", "[]", "{}", '{"stream":1}',
                             '{"stream":"x@trade","data":5}'], 7),
    "huge10": (lambda now: ['{"stream":"ethusdt@trade","data":{"pad":"' + "A" * 10_000_000
                            + '"}}'] * 3, 3),
    "missing": (lambda now: [_eth(now, t=5000, q="1", T=now, m=False)], 1),
    "wrongtypes": (lambda now: [_eth(now, t="abc", p=[1], q={}, T="x", m="yes")], 1),
    "binary": (lambda now: [b"\x00\xff\xfe" * 1000,
                            trade_frame("ETHUSDT", 5000, "10", "1", now).encode()], 1),
    "numprice": (lambda now: [_eth(now, t=5000, p=10.5, q=1, T=now, m=False)], 0),
    "unsub": (lambda now: [trade_frame("XRPUSDT", 1, "1", "1", now)] * 100, 0),
    "hugeid": (lambda now: [trade_frame("ETHUSDT", 2**70, "10", "1", now)], 0),
    "bigT": (lambda now: [trade_frame("ETHUSDT", 5000, "10", "1", 2**62)], 0),
}


@asynccontextmanager
async def _fake_binance(monkeypatch: pytest.MonkeyPatch,
                        hostile: Callable[[int], list[str | bytes]]) -> AsyncIterator[FakeBinance]:
    """fakex streaming BTC trades, with the hostile frames in the middle of the first session."""
    fx = FakeBinance()
    await fx.start()
    for key, value in fx.env().items():
        monkeypatch.setenv(key, value)
    next_id = [1000]

    async def script(ws: web.WebSocketResponse, request: web.Request) -> None:
        first = fx.ws_connections == 1
        for n in range(BEFORE + AFTER):
            now = int(time.time() * 1000)
            if first and n == BEFORE:
                for frame in hostile(now):
                    await (ws.send_bytes(frame) if isinstance(frame, bytes) else
                           ws.send_str(frame))
            next_id[0] += 1
            fx.add_trade("BTCUSDT", next_id[0], "100", "1", now)
            await ws.send_str(trade_frame("BTCUSDT", next_id[0], "100", "1", now))
            await asyncio.sleep(0.01)
        await asyncio.sleep(3600)

    fx.script = script
    try:
        yield fx
    finally:
        await fx.stop()


def _manager(**kwargs: Any) -> StreamManager:
    # fakex serves no exchangeInfo: these managers stream without the symbol check.
    manager = StreamManager(StreamManagerConfig(warm_up=False, reconnect_delay=0.05,
                                                max_reconnect_delay=0.2, check_symbols=False,
                                                **kwargs))
    manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
    return manager


def _last_btc_id(manager: StreamManager) -> int | None:
    ticks = manager.get_ticks("BTC/USDT", 1)
    return ticks[-1].trade_id if ticks else None


@pytest.mark.parametrize("mode", sorted(ATTACKS))
async def test_hostile_frames_are_counted_parse_errors_and_the_stream_goes_on(
        monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    hostile, parse_errors = ATTACKS[mode]
    async with _fake_binance(monkeypatch, hostile):
        manager = _manager()
        await manager.start()
        try:
            await wait_for(lambda: _last_btc_id(manager) == 1000 + BEFORE + AFTER, timeout=20)
            counters = manager.get_metrics()["counters"]
            conn = manager._connections[0]
            alive = conn._task is not None and not conn._task.done()
            state = conn.state
        finally:
            await manager.stop()
    assert counters["parse_errors"] == parse_errors
    assert counters["reconnects"] == 0
    assert alive and state is ConnectionState.CONNECTED
    assert "XRP/USDT" not in manager.symbols


async def test_a_frame_above_the_size_limit_reconnects_and_the_gap_is_filled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with _fake_binance(monkeypatch, lambda now: ["A" * 20_000_000]) as fx:
        manager = _manager()
        await manager.start()
        try:
            await wait_for(lambda: fx.ws_connections >= 2, timeout=20)
            await wait_for(lambda: (_last_btc_id(manager) or 0) > 1000 + BEFORE + 5, timeout=20)
            ids = [t.trade_id for t in manager.get_ticks("BTC/USDT", 1000)]
            counters = manager.get_metrics()["counters"]
        finally:
            await manager.stop()
    assert counters["reconnects"] >= 1
    assert ids == list(range(1001, ids[-1] + 1)), "no trade lost across the reconnect"


async def test_an_on_tick_bug_is_logged_with_traceback_counted_and_streaming_goes_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async with _fake_binance(monkeypatch, lambda now: []):
        manager = _manager()
        real = manager._recovery.on_tick
        calls = [0]

        def buggy(tick: Tick) -> None:
            calls[0] += 1
            if calls[0] == 5:
                raise ZeroDivisionError("downstream bug")
            real(tick)

        monkeypatch.setattr(manager._recovery, "on_tick", buggy)
        with caplog.at_level(logging.ERROR, "bot.data.transport"):
            await manager.start()
            try:
                await wait_for(lambda: _last_btc_id(manager) == 1000 + BEFORE + AFTER,
                               timeout=20)
                counters = manager.get_metrics()["counters"]
            finally:
                await manager.stop()
    assert counters["callback_errors"] == 1 and counters["reconnects"] == 0
    [record] = [r for r in caplog.records if "downstream bug" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


async def test_a_session_loop_that_raises_is_restarted_counted_and_named_in_health(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.data.venues.binance.spec import BinanceSpot

    made = [0]
    real_session = BinanceSpot.session

    def flaky_session(*args: Any, **kwargs: Any) -> Any:
        made[0] += 1
        if made[0] == 1:
            raise RuntimeError("injected session fault")
        return real_session(*args, **kwargs)

    monkeypatch.setattr(BinanceSpot, "session", flaky_session)
    async with _fake_binance(monkeypatch, lambda now: []):
        manager = _manager()
        starting = asyncio.ensure_future(manager.start())
        try:
            await wait_for(lambda: manager.supervisor.failures == 1, timeout=10)
            state_while_down = manager._connections[0].state
            during = manager.get_health()
            await asyncio.wait_for(starting, 10)
            await wait_for(lambda: _last_btc_id(manager) is not None, timeout=10)
            metrics = manager.get_metrics()
            after = manager.get_health()
        finally:
            await manager.stop()
    assert state_while_down is ConnectionState.RECONNECTING
    assert metrics["counters"]["task_failures"] == 1
    assert metrics["tasks"]["binance-0"]["restarts"] == 1
    for report in (during, after):
        assert report["status"] != "healthy"
        assert any("binance-0" in r and "injected session fault" in r for r in report["reasons"])


async def test_a_connection_whose_task_is_gone_is_failed_and_health_unhealthy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with _fake_binance(monkeypatch, lambda now: []):
        manager = _manager()
        await manager.start()
        try:
            await wait_for(lambda: _last_btc_id(manager) is not None, timeout=10)
            conn = manager._connections[0]
            assert conn._task is not None
            conn._task.cancel()  # killed from outside, not by stop()
            await wait_for(lambda: conn.state is not ConnectionState.CONNECTED, timeout=5)
            health = manager.get_health()
        finally:
            await manager.stop()
    assert conn.state is ConnectionState.STOPPED
    assert health["status"] == "unhealthy"
    assert any("binance-0" in r and "task" in r for r in health["reasons"])


async def test_the_clock_loop_is_restarted_after_a_failure_and_health_names_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    manager = StreamManager(StreamManagerConfig(warm_up=False))
    real = manager.pipeline.advance
    calls = [0]

    def advance(now: int, proven: Any = None) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("clock fault")
        real(now, proven)

    monkeypatch.setattr(manager.pipeline, "advance", advance)
    await manager.start()
    try:
        await wait_for(lambda: calls[0] >= 3, timeout=10)
        tasks = manager.get_metrics()["tasks"]
        health = manager.get_health()
    finally:
        await manager.stop()
    assert tasks["stream-clock"]["failures"] == 1 and tasks["stream-clock"]["restarts"] == 1
    assert health["status"] == "degraded"
    assert any("stream-clock" in r and "clock fault" in r for r in health["reasons"])


async def test_a_runtime_subscription_that_fails_is_reported_not_silent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    manager = StreamManager(StreamManagerConfig(warm_up=False))
    await manager.start()
    try:
        def broken() -> None:
            raise OSError("no route")

        monkeypatch.setattr(manager, "_open_history_sources", broken)
        manager.add_crypto_symbols(["BTC/USDT"])
        await wait_for(lambda: manager.supervisor.failures == 1, timeout=5)
        health = manager.get_health()
    finally:
        await manager.stop()
    assert any("sync_symbols" in r and "no route" in r for r in health["reasons"])


# -- Alpaca: the same rule in the handshake and the read loop -------------------------
ALPACA_TRADE = ('[{"T":"t","S":"AAPL","i":%d,"x":"V","p":100.5,"s":1,'
                '"t":"2026-01-05T15:00:00.%09dZ","c":["@"],"z":"C"}]')


@asynccontextmanager
async def _fake_alpaca(send: Callable[[web.WebSocketResponse], Awaitable[None]]
                       ) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(NESTED_OBJECT)  # before the greeting: a handshake parse error
        await ws.send_str('[{"T":"success","msg":"connected"}]')
        await ws.receive()  # auth
        await ws.send_str('[{"T":"success","msg":"authenticated"}]')
        await ws.receive()  # subscribe
        await ws.send_str('[{"T":"subscription","trades":["AAPL"]}]')
        await send(ws)
        await asyncio.sleep(3600)
        return ws

    app = web.Application()
    app.add_routes([web.get("/v2/iex", handler)])
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_alpaca_nested_frames_in_handshake_and_stream_are_parse_errors() -> None:
    async def send(ws: web.WebSocketResponse) -> None:
        for i in range(1, 21):
            if i == 10:
                await ws.send_str(NESTED_OBJECT)
                await ws.send_str("[" + NESTED_OBJECT + "]")
            await ws.send_str(ALPACA_TRADE % (i, i))

    ticks: list[Tick] = []
    async with _fake_alpaca(send) as url:
        config = Config(alpaca_ws_url=url, connect_timeout=5)
        creds = AlpacaCredentials("PKFAKEALPACA01", "fake-alpaca-secret-01")
        conn = Connection.for_venue(
            "alpaca-iex", lambda syms: AlpacaSession(config, creds, syms), ["AAPL"], config,
            ALPACA.facts, on_tick=ticks.append, on_event=lambda c, e: None,
            on_state=lambda c: None)
        conn.start()
        try:
            await conn.wait_ready(5)
            await wait_for(lambda: len(ticks) == 20, timeout=10)
            state = conn.state
        finally:
            await conn.stop()
    assert state is ConnectionState.CONNECTED
    assert conn.stats.malformed == 3 and conn.stats.reconnects == 0


# -- connection-level faults: bounded waits, backoff, FAILED, silent sockets ----------
@asynccontextmanager
async def _fake_endpoint(mode: str, monkeypatch: pytest.MonkeyPatch
                         ) -> AsyncIterator[list[float]]:
    """A Binance endpoint that never answers the handshake, closes with 1008, or only pings."""
    attempts: list[float] = []
    if mode == "nohandshake":
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            attempts.append(time.monotonic())
            await reader.read()  # until the client gives up

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cleanup: Callable[[], Awaitable[None]] = server.wait_closed
    else:
        async def ws_handler(request: web.Request) -> web.WebSocketResponse:
            attempts.append(time.monotonic())
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            if mode == "close1008":
                await ws.close(code=1008, message=b"Too many requests")
            else:
                with contextlib.suppress(ConnectionError):
                    while not ws.closed:
                        await ws.ping(b"x")
                        await asyncio.sleep(0.2)
            return ws

        app = web.Application()
        app.add_routes([web.get("/stream", ws_handler)])
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        cleanup = runner.cleanup
    monkeypatch.setenv("BINANCE_WS_URL", f"ws://127.0.0.1:{port}")
    monkeypatch.setenv("BINANCE_REST_URL", f"http://127.0.0.1:{port}")
    try:
        yield attempts
    finally:
        if mode == "nohandshake":
            server.close()
        await cleanup()


def _short_manager(**kwargs: Any) -> StreamManager:
    manager = StreamManager(StreamManagerConfig(
        warm_up=False, backfill=False, connect_timeout=0.5, reconnect_delay=0.05,
        max_reconnect_delay=0.2, check_symbols=False, **kwargs))
    manager.add_crypto_symbols(["BTC/USDT"])
    return manager


async def test_a_server_that_never_answers_the_handshake_makes_start_raise_in_bounded_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with _fake_endpoint("nohandshake", monkeypatch) as attempts:
        manager = _short_manager()
        with pytest.raises(TimeoutError, match="binance-0: not connected"):
            await asyncio.wait_for(manager.start(), 30)
        assert not manager.is_running
    assert len(attempts) >= 1


async def test_a_server_closing_with_1008_is_retried_with_backoff_then_failed_and_unhealthy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with _fake_endpoint("close1008", monkeypatch) as attempts:
        manager = _short_manager(reconnect_attempts=3)
        await manager.start()  # the handshake itself succeeds
        try:
            conn = manager._connections[0]
            await wait_for(lambda: conn.state is ConnectionState.FAILED, timeout=20)
            health = manager.get_health()
        finally:
            await manager.stop()
    assert len(attempts) == 4  # the first attempt and reconnect_attempts more
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(attempts))  # backed off
    assert health["status"] == "unhealthy"
    assert any("binance-0" in r and "1008" in r for r in health["reasons"])


async def test_a_socket_that_only_pings_is_recycled_as_silent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with _fake_endpoint("pingsonly", monkeypatch) as attempts:
        manager = _short_manager(silence_timeout_seconds=1)
        await manager.start()
        try:
            conn = manager._connections[0]
            await wait_for(lambda: conn.stats.silent_recycles >= 2, timeout=10)
            counters = manager.get_metrics()["counters"]
        finally:
            await manager.stop()
    assert counters["silent_recycles"] >= 2 and len(attempts) >= 2


async def test_a_connection_cut_again_and_again_but_streaming_trades_between_cuts_never_gives_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``reconnect_attempts`` counts attempts in a row on which the venue sent nothing: a
    flaky link that still carries the market keeps being reconnected (a server that closes
    every connection at once still fails, above)."""
    from bot.data.sim import ExchangeSimulator
    from tests.streaming import fast_config, point_at

    async with ExchangeSimulator(["BTC/USDT"], speed=20.0) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(reconnect_attempts=2, warm_up=False))
        manager.add_crypto_symbols(["BTC/USDT"])
        ticks: list[Tick] = []
        manager.on_tick(lambda e: ticks.append(e.data))
        async with manager:
            sim.drop_after(25)  # every connection is cut after 25 frames
            await wait_for(lambda: manager.get_metrics()["counters"]["reconnects"] >= 8, 30)
            conn = manager._connections[0]
            assert conn.state is not ConnectionState.FAILED
            seen = len(ticks)
            await wait_for(lambda: len(ticks) > seen + 50, 20)
            assert conn.state is not ConnectionState.FAILED


async def test_a_connection_to_a_closed_market_cut_again_and_again_never_gives_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At night no stock trades; a link that drops every connection after the venue's
    replies (connected, authenticated, subscribed) still hears from the venue, so it keeps
    reconnecting and streams when the market opens (it used to fail for good by morning)."""
    from bot.data.sim import ExchangeSimulator
    from tests.streaming import fast_config, point_at

    night = 1_796_094_000 * 10**9  # 2026-12-01 03:00 UTC: 22:00 in New York, closed
    async with ExchangeSimulator([], ["AAPL"], start_time_ns=night) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(reconnect_attempts=2, warm_up=False))
        manager.add_stock_symbols(["AAPL"])
        async with manager:
            sim.drop_after(3)  # cut once the replies are sent: no trade ever comes
            await wait_for(lambda: manager.get_metrics()["counters"]["reconnects"] >= 6, 30)
            conn = manager._connections[0]
            assert conn.state is not ConnectionState.FAILED
            assert not manager.get_ticks("AAPL")
