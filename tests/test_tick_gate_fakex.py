"""Bad trades and REST faults against an independent fake Binance that counts REST requests.

Each test is one of the shared reproduction scripts made fast: a refused trade
on the stream (price or quantity 0, NaN, a 1970 time), one bad timestamp, ids
repeating or going backwards, REST answering a ban, nonsense, or nothing at all.
The assertions are on the fake exchange's own request counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from bot.data import StreamManager, StreamManagerConfig
from bot.data.gate import Refusal
from bot.data.rest.limits import RestBanned
from bot.data.venues.binance.history import binance_request_bound
from tests.streaming import wait_for
from tests.support.fakex import FakeBinance, trade_frame

Script = Callable[[Any, Any], Awaitable[None]]


def stream(fx: FakeBinance, trades: list[tuple[int, str, str, int]], pause: float = 0.005
           ) -> None:
    """Log the trades on the fake's REST and send them as frames, then stay connected."""
    for tid, price, qty, t_ms in trades:
        fx.add_trade("BTCUSDT", tid, price, qty, t_ms)

    async def script(ws: Any, _request: Any) -> None:
        for tid, price, qty, t_ms in trades:
            await ws.send_str(trade_frame("BTCUSDT", tid, price, qty, t_ms))
            await asyncio.sleep(pause)
        while True:
            await asyncio.sleep(1)

    fx.script = script


def endless(fx: FakeBinance, *, jump_every: int = 0) -> None:
    """Trades at the machine's time, one every 5 ms; ids jump by 5 every ``jump_every``."""

    async def script(ws: Any, _request: Any) -> None:
        tid = 1000
        for n in range(10**9):
            tid += 6 if jump_every and n % jump_every == jump_every - 1 else 1
            now = int(time.time() * 1000)
            fx.add_trade("BTCUSDT", tid, "100", "1", now)
            await ws.send_str(trade_frame("BTCUSDT", tid, "100", "1", now))
            await asyncio.sleep(0.005)

    fx.script = script


def ban(status: int = 418, retry_after: int = 3600) -> Callable[..., Awaitable[web.Response]]:
    async def hook(_request: Any, _name: str) -> web.Response:
        return web.json_response({"code": -1003, "msg": "banned"}, status=status,
                                 headers={"Retry-After": str(retry_after)})
    return hook


def manager(**kwargs: Any) -> StreamManager:
    # fakex serves no exchangeInfo: these managers stream without the symbol check.
    m = StreamManager(StreamManagerConfig(check_symbols=False, **kwargs))
    m.add_crypto_symbols(["BTC/USDT"])
    return m


def rest_total(fx: FakeBinance) -> int:
    return sum(n for name, n in fx.rest_counts.items() if name != "429")


# -- refused trades --------------------------------------------------------------------
BAD = {"price": ("0.00000000", "1.0", Refusal.PRICE), "qty": ("100.5", "0.00000000",
                                                              Refusal.QUANTITY),
       "nan": ("NaN", "1.0", Refusal.PRICE), "negative": ("-1", "1.0", Refusal.PRICE)}


@pytest.mark.parametrize("warm", [False, True])
@pytest.mark.parametrize("kind", [*BAD, "late"])
async def test_a_refused_trade_on_the_stream_costs_no_rest_request_and_freezes_nothing(
        fx: FakeBinance, kind: str, warm: bool) -> None:
    fx.emulate_weight = True
    now = int(time.time() * 1000)
    trades = []
    for tid in range(100, 131):
        price, qty, t_ms = "100.5", "1.0", now
        if tid == 110:
            if kind == "late":
                t_ms = 1000  # 1970
            else:
                price, qty, _ = BAD[kind]
        trades.append((tid, price, qty, t_ms))
    stream(fx, trades)
    m = manager(warm_up=warm, supported_timeframes=["1m"])
    await m.start()
    await wait_for(lambda: m.get_metrics()["counters"]["ticks"] == 30, 10)
    await asyncio.sleep(0.3)  # room for a fetch loop, were there one
    metrics = m.get_metrics()
    health = m.get_health()
    await m.stop()

    reason = Refusal.TIME_OUT_OF_RANGE if kind == "late" else BAD[kind][2]
    assert metrics["rejected_by_reason"] == {reason: 1}
    assert metrics["counters"]["rejected_ticks"] == 1
    assert metrics["counters"]["gaps_found"] == 0 and health["backfilling"] == []
    assert fx.rest_counts["historicalTrades"] <= (1 if warm else 0)  # only the warm-up's page
    assert fx.rest_counts["429"] == 0
    assert rest_total(fx) <= binance_request_bound(
        symbols=1, timeframes=["1m"], bar_history_size=m.config.bar_history_size,
        warm_up=warm)
    bar = m.pipeline.aggregator.current_bar("BTC/USDT", "1m")
    assert bar is not None and bar.trade_count == 30 and bar.volume == 30.0


@pytest.mark.parametrize("kind", ["past", "zero", "future", "future_small"])
async def test_one_bad_timestamp_neither_builds_bars_nor_kills_the_symbol(
        fx: FakeBinance, kind: str) -> None:
    now = int(time.time() * 1000)
    bad = {"past": 1000, "zero": 0, "future": now + 100 * 365 * 86400_000,
           "future_small": now + 7 * 86400_000}[kind]
    stream(fx, [(tid, "100.5", "1", bad if tid == 110 else now) for tid in range(100, 131)])
    m = manager(warm_up=False)
    bars: list[object] = []
    m.on_bar_complete(bars.append)
    await m.start()
    await wait_for(lambda: m.get_metrics()["counters"]["ticks"] == 30, 10)
    metrics = m.get_metrics()
    await m.stop()

    assert metrics["rejected_by_reason"] == {Refusal.TIME_OUT_OF_RANGE: 1}
    assert metrics["counters"]["late_ticks"] == 0
    assert len(bars) <= 3, "at most the bars the stream's own minute completes"
    assert rest_total(fx) == 0


async def test_repeated_and_backward_ids_are_duplicates_or_new_trades_never_a_fetch(
        fx: FakeBinance) -> None:
    now = int(time.time() * 1000)
    ids = [*range(1001, 1051), 1020, 1020, 1050, 900, 901, 1, *range(1051, 1061)]
    stream(fx, [(tid, "100", "1", now) for tid in ids])
    m = manager(warm_up=False)
    await m.start()
    await wait_for(lambda: m.get_metrics()["counters"]["ticks"] == 63, 10)
    metrics = m.get_metrics()
    bar = m.get_current_bar("BTC/USDT")
    await m.stop()
    assert metrics["counters"]["duplicate_ticks"] == 3
    assert bar is not None and bar.trade_count == 63 and bar.first_trade_id == 1
    assert rest_total(fx) == 0


# -- REST bans and faults ----------------------------------------------------------------
async def test_a_ban_at_start_does_not_hold_start_and_the_stream_passes_with_a_gap(
        fx: FakeBinance) -> None:
    fx.rest_hook = ban()
    endless(fx)
    m = manager()  # defaults: warm_up and backfill on
    await asyncio.wait_for(m.start(), 10)
    await wait_for(lambda: m.get_metrics()["counters"]["ticks"] > 100, 10)
    health, metrics = m.get_health(), m.get_metrics()
    await m.stop()
    assert rest_total(fx) == 1, "the ban is remembered: one request, the one that was banned"
    assert any("bans requests until" in g["cause"] for g in health["gaps"])
    banned = metrics["rest"]["binance"]["banned_until_ns"]
    assert banned is not None and banned > time.time_ns() + 3000 * 10**9


async def test_a_rest_that_never_answers_holds_start_only_until_the_warm_up_deadline(
        fx: FakeBinance) -> None:
    async def hang(_request: Any, _name: str) -> None:
        await asyncio.sleep(3600)
    fx.rest_hook = hang
    endless(fx)
    m = manager(warm_up_timeout_seconds=1.0)
    await asyncio.wait_for(m.start(), 15)
    await wait_for(lambda: m.get_metrics()["counters"]["ticks"] > 100, 10)
    health = m.get_health()
    await m.stop()
    assert any("warm-up did not finish" in g["cause"] for g in health["gaps"])


async def test_a_fill_that_times_out_does_not_forget_the_ban(fx: FakeBinance) -> None:
    fx.rest_hook = ban()
    endless(fx, jump_every=60)  # a gap every 0.3 s
    m = manager(warm_up=False, backfill_timeout_seconds=0.5)
    await m.start()
    await wait_for(lambda: m.get_metrics()["counters"]["gaps_unfilled"] >= 5, 15)
    await m.stop()
    assert rest_total(fx) == 1


@pytest.mark.parametrize("mode", ["418long", "empty", "html", "500"])
async def test_a_faulty_rest_answer_costs_a_bounded_number_of_requests_and_is_reported(
        fx: FakeBinance, mode: str) -> None:
    async def hook(_request: Any, _name: str) -> web.Response:
        if mode == "418long":
            return web.json_response({"code": -1003, "msg": "banned"}, status=418,
                                     headers={"Retry-After": "3600"})
        if mode == "empty":
            return web.json_response([])
        if mode == "html":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        return web.Response(status=503, text="oops")
    fx.rest_hook = hook
    endless(fx, jump_every=40)
    m = manager(warm_up=False, backfill_timeout_seconds=2.0)
    await m.start()
    await wait_for(lambda: m.get_metrics()["counters"]["gaps_unfilled"] >= 1, 15)
    health = m.get_health()
    gaps_found = m.get_metrics()["counters"]["gaps_found"]
    await m.stop()
    # One request per gap (503s: the first and its retries within the fill's timeout; a
    # body that is no JSON: asked once more), never a second fill of the same span.
    per_gap = {"500": 1 + 5, "html": 2}.get(mode, 1)
    assert rest_total(fx) <= binance_request_bound(
        symbols=0, timeframes=["1m"], bar_history_size=1, warm_up=False,
        fills=[0] * gaps_found, retries=(per_gap - 1) * gaps_found)
    assert health["gaps"]


async def test_requests_and_weight_by_endpoint_match_what_the_exchange_counted(
        fx: FakeBinance) -> None:
    fx.emulate_weight = True
    endless(fx, jump_every=100)
    m = StreamManager(StreamManagerConfig(supported_timeframes=["1m", "5m"], check_symbols=False))
    m.add_crypto_symbols(["BTC/USDT"])
    await m.start()
    await wait_for(lambda: m.get_metrics()["counters"]["gaps_found"] >= 3, 15)
    await wait_for(lambda: not m.get_health()["backfilling"], 10)
    rest = m.get_metrics()["rest"]["binance"]
    gaps = m.get_metrics()["counters"]["gaps_found"]
    await m.stop()
    counted = {k: v for k, v in fx.rest_counts.items() if k != "429"}
    assert rest["requests"] == counted
    assert rest["weight"] == {k: v * FakeBinance.WEIGHTS[k] for k, v in counted.items()}
    assert rest["banned_until_ns"] is None
    assert sum(counted.values()) <= binance_request_bound(
        symbols=1, timeframes=["1m", "5m"], bar_history_size=m.config.bar_history_size,
        fills=[5] * gaps)


def test_a_ban_error_says_until_when() -> None:
    err = RestBanned("binance", 418, 1_796_000_000 * 10**9)
    assert "2026-" in str(err) and err.until_ns == 1_796_000_000 * 10**9
