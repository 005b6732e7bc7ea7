"""A venue's Retry-After of any size or sign leaves a clear ban and working reports."""

from __future__ import annotations

import pytest

from bot.data.rest.limits import RateLimiter, Reply, RestBanned
from tests.rest.conftest import ManualClock


def _ban(retry_after: str) -> Reply:
    return Reply(418, {"Retry-After": retry_after}, b'{"code":-1003,"msg":"banned"}')


async def _send_once(limiter: RateLimiter, reply: Reply) -> BaseException | Reply:
    replies = [reply]

    async def send() -> Reply:
        return replies.pop(0) if replies else Reply(200, {}, b"[]")

    try:
        return await limiter.run(send, venue="binance", endpoint="klines")
    except Exception as exc:  # what the caller sees is the point of these tests
        return exc


async def test_a_retry_after_of_a_billion_seconds_is_a_ban_with_its_date(
        clock: ManualClock) -> None:
    limiter = clock.limiter()
    raised = await _send_once(limiter, _ban("1000000000"))
    assert isinstance(raised, RestBanned) and "bans requests until" in str(raised)
    assert limiter.usage()["banned_until_ns"] == raised.until_ns


async def test_a_retry_after_beyond_the_calendar_is_still_a_ban_error(
        clock: ManualClock) -> None:
    limiter = clock.limiter()
    raised = await _send_once(limiter, _ban("1e12"))
    assert isinstance(raised, RestBanned), f"{type(raised).__name__}: {raised}"


async def test_usage_still_reports_after_a_retry_after_of_1e300(clock: ManualClock) -> None:
    limiter = clock.limiter()
    await _send_once(limiter, _ban("1e300"))
    usage = limiter.usage()
    assert usage["banned_until_ns"] is not None
    # Taken as Binance's longest ban, three days.
    assert abs(usage["banned_until_ns"] - clock() - 3 * 86_400 * 10**9) < 10**6


@pytest.mark.parametrize("retry_after", ["-5", "nan", "inf", "soon", ""])
async def test_a_negative_or_nonsense_retry_after_is_no_ban(
        clock: ManualClock, retry_after: str) -> None:
    limiter = clock.limiter()
    reply = await _send_once(limiter, _ban(retry_after))
    assert isinstance(reply, Reply) and reply.ok, "the request is retried with backoff"
    assert limiter.usage()["banned_until_ns"] is None
