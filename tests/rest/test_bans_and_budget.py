"""RateLimiter: a ban is remembered until it ends, whoever asks; a budget caps every minute."""

from __future__ import annotations

import asyncio

import pytest

from bot.data.rest.limits import (
    RateLimiter,
    Reply,
    RequestBudget,
    RestBanned,
    RestBudgetExhausted,
)
from bot.data.venues.binance.rest import BINANCE_BUDGET
from tests.rest.conftest import ManualClock


class Venue:
    """A REST endpoint answering the queued replies (then 200), counting what it was sent."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent = 0

    async def send(self) -> Reply:
        self.sent += 1
        return self.replies.pop(0) if self.replies else Reply(200, {}, b"[]")


def banned(status: int = 418, retry_after: int = 3600) -> Reply:
    return Reply(status, {"Retry-After": str(retry_after)}, b'{"code":-1003,"msg":"banned"}')


async def test_a_long_ban_fails_every_request_at_once_until_it_ends(clock: ManualClock) -> None:
    limiter = clock.limiter()
    venue = Venue(banned())
    with pytest.raises(RestBanned) as err:
        await limiter.run(venue.send, venue="binance")
    assert abs(err.value.until_ns - (clock.now_ns + 3600 * 10**9)) < 10**6
    assert "bans requests until" in str(err.value)
    for _ in range(3):
        with pytest.raises(RestBanned):
            await limiter.run(venue.send, venue="binance")
    assert venue.sent == 1 and clock.slept == [], "nothing sent and nobody waits during the ban"
    assert limiter.usage()["banned_until_ns"] == err.value.until_ns
    clock.now_ns += 3600 * 10**9
    assert (await limiter.run(venue.send)).ok and venue.sent == 2
    assert limiter.usage()["banned_until_ns"] is None


async def test_a_429_with_retry_after_is_a_ban_too(clock: ManualClock) -> None:
    limiter = clock.limiter()
    venue = Venue(banned(429, 120))
    with pytest.raises(RestBanned) as err:
        await limiter.run(venue.send, venue="binance")
    assert err.value.status == 429


async def test_a_wait_cancelled_by_a_timeout_does_not_forget_the_ban(clock: ManualClock) -> None:
    asked: list[float] = []

    async def endless_sleep(seconds: float) -> None:
        asked.append(seconds)
        await asyncio.Event().wait()

    limiter = RateLimiter(sleep=endless_sleep, clock=clock.seconds, max_ban_wait=100)
    venue = Venue(banned(429, 50))
    first = asyncio.create_task(limiter.run(venue.send))
    await asyncio.sleep(0.01)
    first.cancel()  # a gap fill's timeout
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(limiter.run(venue.send))
    await asyncio.sleep(0.01)
    assert venue.sent == 1, "the second request waits out what is left of the ban"
    assert asked == [50.0, 50.0]
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_the_budget_spreads_requests_over_the_minute(clock: ManualClock) -> None:
    limiter = clock.limiter(budget=RequestBudget(requests_per_minute=2, weight_per_minute=100))
    venue = Venue()
    for _ in range(4):
        await limiter.run(venue.send, endpoint="klines")
    assert venue.sent == 4 and clock.slept == [60.0], "two now, two a minute later"


async def test_the_budget_counts_weight_too(clock: ManualClock) -> None:
    limiter = clock.limiter(budget=RequestBudget(requests_per_minute=100, weight_per_minute=50))
    venue = Venue()
    await limiter.run(venue.send, weight=25)
    await limiter.run(venue.send, weight=25)
    await limiter.run(venue.send, weight=25)
    assert clock.slept == [60.0]


async def test_a_runaway_gets_an_error_instead_of_more_requests(clock: ManualClock) -> None:
    async def no_time_passes(seconds: float) -> None:
        clock.slept.append(seconds)

    limiter = RateLimiter(sleep=no_time_passes, clock=clock.seconds,
                          budget=RequestBudget(requests_per_minute=1, weight_per_minute=100))
    venue = Venue()
    await limiter.run(venue.send, venue="binance")
    await limiter.run(venue.send, venue="binance")  # booked a minute ahead
    with pytest.raises(RestBudgetExhausted) as err:
        await limiter.run(venue.send, venue="binance")
    assert venue.sent == 2 and err.value.retry_at_ns > clock.now_ns
    assert "request budget" in str(err.value)


async def test_usage_counts_requests_and_weight_by_endpoint(clock: ManualClock) -> None:
    limiter = clock.limiter(budget=BINANCE_BUDGET)
    venue = Venue(Reply(503, {}, b""))
    await limiter.run(venue.send, weight=25, endpoint="historicalTrades")
    await limiter.run(venue.send, weight=2, endpoint="klines")
    usage = limiter.usage()
    assert usage["requests"] == {"historicalTrades": 2, "klines": 1}, "a retry is a request"
    assert usage["weight"] == {"historicalTrades": 50, "klines": 2}
    assert usage["budget"] == {"requests_per_minute": 1200, "weight_per_minute": 3000}


def test_the_budgets_stay_well_under_the_venues_limits() -> None:
    from bot.data.venues.alpaca.rest import AlpacaRest
    from bot.data.venues.binance.rest import BinanceRest

    assert BinanceRest.budget is not None and BinanceRest.budget.weight_per_minute <= 6000 // 2
    assert AlpacaRest.budget is not None and AlpacaRest.budget.requests_per_minute < 200
