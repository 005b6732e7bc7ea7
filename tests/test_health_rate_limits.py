"""Health names a symbol whose fill (or warm-up) a REST rate limit holds, and why."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.data import StreamManager
from bot.data.config import StreamManagerConfig
from bot.data.rest.limits import RateLimiter, Reply, RequestBudget
from tests.rest.conftest import ManualClock
from tests.support.fakex import FakeBinance


async def test_a_fill_held_by_a_429_makes_health_degraded_naming_the_symbol_and_why(
        fx: FakeBinance) -> None:
    refused = 0

    async def rate_limited(_request: web.Request, name: str) -> web.Response | None:
        nonlocal refused
        if name == "time" or refused >= 2:
            return None
        refused += 1
        return web.json_response({"code": -1003, "msg": "Too many requests"}, status=429,
                                 headers={"Retry-After": "2"})

    fx.rest_hook = rate_limited
    manager = StreamManager(StreamManagerConfig(supported_timeframes=["1m"],
                                                check_symbols=False))  # no listing served
    manager.add_crypto_symbols(["BTC/USDT"])
    starting = asyncio.create_task(manager.start())
    try:
        reasons: list[str] = []
        for _ in range(100):
            health = manager.get_health()
            reasons = [r for r in health["reasons"] if "rate limits" in r]
            if reasons:
                break
            await asyncio.sleep(0.05)
        assert health["status"] != "healthy"
        assert reasons == ["fill of BTC/USDT held by binance REST rate limits: HTTP 429: every "
                           "request waits 2 s"]
        await starting
        assert not [r for r in manager.get_health()["reasons"] if "rate limits" in r], \
            "the reason goes once the limit lets the requests through"
    finally:
        await manager.stop()


async def test_the_limiter_says_which_limit_holds_its_requests_while_it_does() -> None:
    clock = ManualClock()
    gate = asyncio.Event()

    async def sleep(_seconds: float) -> None:
        await gate.wait()

    limiter = RateLimiter(sleep=sleep, clock=clock.seconds,
                          budget=RequestBudget(requests_per_minute=1, weight_per_minute=10))

    async def send() -> Reply:
        return Reply(200, {}, b"[]")

    assert limiter.held_by() is None
    await limiter.run(send)
    second = asyncio.create_task(limiter.run(send))
    await asyncio.sleep(0.01)
    assert limiter.held_by() == "its request budget (1 requests, 10 weight a minute)"
    gate.set()
    await second
    assert limiter.held_by() is None
