"""RateLimiter: Retry-After honoured exactly, weight kept under the limit, 5xx backoff, no storm."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.rest import AlpacaRest, BinanceRest, RateLimiter, RestError
from bot.data.sim import ExchangeSimulator
from tests.rest.conftest import CREDENTIALS, NOW_NS, ManualClock, config_for, local_server

SYMBOL = "BTC/USDT"


def first_id(sim: ExchangeSimulator) -> int:
    return sim.trades("binance", SYMBOL)[0].trade_id


@pytest.mark.parametrize(("status", "retry_after"), [(429, 7), (418, 120)])
async def test_a_rate_limit_answer_waits_exactly_retry_after_then_succeeds(
        binance_sim: ExchangeSimulator, clock: ManualClock, status: int,
        retry_after: int) -> None:
    limiter = clock.limiter(max_ban_wait=retry_after)  # allowed to wait that long
    binance_sim.fail_rest(1, status, retry_after=retry_after)
    async with BinanceRest(config_for(binance_sim), limiter=limiter) as rest:
        ticks = await rest.historical_trades(SYMBOL, first_id(binance_sim), limit=10)
    assert len(ticks) == 10
    assert clock.slept == limiter.waits == [float(retry_after)]
    assert (binance_sim.counters.rest_requests, binance_sim.counters.rest_rejected) == (2, 1)


async def test_alpaca_rate_limit_waits_retry_after_too(alpaca_sim: ExchangeSimulator,
                                                       clock: ManualClock) -> None:
    alpaca_sim.fail_rest(1, 429, retry_after=3, venue="alpaca")
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS,
                          limiter=clock.limiter()) as rest:
        ticks = await rest.trades("AAPL", NOW_NS - 60 * 10**9, NOW_NS)
    assert ticks and clock.slept == [3.0]
    assert (alpaca_sim.counters.rest_requests, alpaca_sim.counters.rest_rejected) == (2, 1)


async def test_while_a_retry_after_runs_no_other_request_is_sent(
        binance_sim: ExchangeSimulator) -> None:
    asked: list[float] = []
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        await release.wait()

    binance_sim.fail_rest(1, 429, retry_after=5)
    async with BinanceRest(config_for(binance_sim), limiter=RateLimiter(sleep=sleep)) as rest:
        first = asyncio.create_task(rest.historical_trades(SYMBOL, first_id(binance_sim), 5))
        while not asked:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(rest.historical_trades(SYMBOL, first_id(binance_sim), 5))
        await asyncio.sleep(0.2)
        assert binance_sim.counters.rest_requests == 1, "the second request waits its turn"
        release.set()
        assert len(await first) == len(await second) == 5
    assert asked == [5.0] and binance_sim.counters.rest_requests == 3


async def test_a_lasting_rate_limit_gives_up_after_max_retries_without_a_storm(
        binance_sim: ExchangeSimulator, clock: ManualClock) -> None:
    binance_sim.fail_rest(50, 429, retry_after=2)
    async with BinanceRest(config_for(binance_sim),
                           limiter=clock.limiter(max_retries=3)) as rest:
        with pytest.raises(RestError) as err:
            await rest.historical_trades(SYMBOL, first_id(binance_sim))
    assert (err.value.status, err.value.code) == (429, -1003)
    assert "request weight" in err.value.text
    assert binance_sim.counters.rest_requests == 4, "the first request and 3 retries"
    assert clock.slept == [2.0, 2.0, 2.0]


async def test_the_minute_weight_is_never_exceeded_the_limiter_waits_for_the_next_minute(
        clock: ManualClock) -> None:
    # historicalTrades weighs 25: two fit under 60, a third must wait for the next minute.
    async with ExchangeSimulator(symbols=[SYMBOL], seed=3, clock=clock, start_time_ns=NOW_NS,
                                 history_seconds=60, rest_weight_limit=60) as sim:
        limiter = clock.limiter(weight_limit=60)
        async with BinanceRest(config_for(sim), limiter=limiter) as rest:
            for _ in range(2):
                await rest.historical_trades(SYMBOL, first_id(sim), limit=1)
            assert rest.used_weight == 50 and clock.slept == []
            await rest.historical_trades(SYMBOL, first_id(sim), limit=1)
            assert rest.used_weight == 25, "counted in the new minute"
        assert sim.counters.rest_rejected == 0, "no request was sent over the limit"
    seconds_into_minute = NOW_NS / 1e9 % 60
    assert clock.slept == [pytest.approx(60 - seconds_into_minute + 1.0)]


# -- a small server that fails on demand ----------------------------------------------
@dataclass
class Flaky:
    url: str
    statuses: list[int]  # answers still to give, then 200
    served: list[int]  # answers given


@pytest.fixture
async def flaky() -> AsyncIterator[Flaky]:
    """``/api/v3/aggTrades`` answering the queued statuses with a Binance error, then ``[]``."""
    server = Flaky("", [], [])

    async def agg_trades(_request: web.Request) -> web.Response:
        status = server.statuses.pop(0) if server.statuses else 200
        server.served.append(status)
        if status != 200:
            return web.json_response({"code": -1001, "msg": "Internal error."}, status=status)
        return web.json_response([])

    async with local_server([web.get("/api/v3/aggTrades", agg_trades)]) as url:
        server.url = url
        yield server


async def test_server_errors_are_retried_with_exponential_backoff(
        flaky: Flaky, clock: ManualClock) -> None:
    flaky.statuses.extend([503, 500, 502])
    async with BinanceRest(StreamManagerConfig(binance_rest_url=flaky.url),
                           limiter=clock.limiter()) as rest:
        assert await rest.first_trade_id_at(SYMBOL, 0) is None
    assert flaky.served == [503, 500, 502, 200]
    assert clock.slept == [1.0, 2.0, 4.0]


async def test_server_errors_give_up_after_max_retries_with_the_venue_message(
        flaky: Flaky, clock: ManualClock) -> None:
    flaky.statuses.extend([503] * 10)
    async with BinanceRest(StreamManagerConfig(binance_rest_url=flaky.url),
                           limiter=clock.limiter(max_retries=2)) as rest:
        with pytest.raises(RestError) as err:
            await rest.first_trade_id_at(SYMBOL, 0)
    assert (err.value.status, err.value.code, err.value.text) == (503, -1001, "Internal error.")
    assert flaky.served == [503, 503, 503], "the first request and 2 retries"
    assert clock.slept == [1.0, 2.0]


async def test_a_client_error_other_than_a_rate_limit_is_not_retried(
        flaky: Flaky, clock: ManualClock) -> None:
    flaky.statuses.append(403)
    async with BinanceRest(StreamManagerConfig(binance_rest_url=flaky.url),
                           limiter=clock.limiter()) as rest:
        with pytest.raises(RestError) as err:
            await rest.first_trade_id_at(SYMBOL, 0)
    assert err.value.status == 403 and flaky.served == [403] and clock.slept == []


async def test_no_answer_at_all_raises_status_zero_after_the_retries(clock: ManualClock) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = StreamManagerConfig(binance_rest_url=f"http://127.0.0.1:{port}")
    async with BinanceRest(config, limiter=clock.limiter(max_retries=2)) as rest:
        with pytest.raises(RestError) as err:
            await rest.first_trade_id_at(SYMBOL, 0)
    assert (err.value.venue, err.value.status, err.value.code) == ("binance", 0, None)
    assert clock.slept == [1.0, 2.0]


@pytest.mark.parametrize(("kwargs", "field"), [({"weight_limit": 0}, "weight_limit"),
                                               ({"max_retries": -1}, "max_retries"),
                                               ({"max_retries": 1.5}, "max_retries")])
def test_bad_limiter_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        RateLimiter(**kwargs)  # type: ignore[arg-type]
