"""Symbols are checked against the venue's listing before anything streams.

Binance's ``exchangeInfo`` (served by the simulator exactly as Binance does for the
symbols it lists) decides: a symbol it does not list, or lists without status
``TRADING``, fails ``start()`` and ``add_crypto_symbols()`` with an error naming it
and the closest listed ones; the listing is asked once per venue per process while
fresh, with its documented weight counted in the REST budget.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from bot.data.errors import ConfigError, StartTimeout, StreamError
from bot.data.events import EventType
from bot.data.listing import LISTINGS, Listing, ListingCache, UnlistedSymbolError
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.streaming import fast_config, point_at, wait_for

EXCHANGE_INFO = "/api/v3/exchangeInfo"


def _listing(**status: str) -> Listing:
    return Listing("binance", {k.replace("_", "/"): v for k, v in status.items()}, "TRADING")


def _exchange_info_requests(sim: ExchangeSimulator) -> int:
    return sim.counters.rest_by_endpoint.get(EXCHANGE_INFO, 0)


# -- the listing's verdicts --------------------------------------------------------------

def test_an_unlisted_symbol_is_named_with_the_closest_listed_one() -> None:
    listing = _listing(BTC_USDT="TRADING", ETH_USDT="TRADING", BTC_EUR="TRADING")
    assert listing.problems(["BTC/USDT", "ETH/USDT"]) == {}
    reasons = listing.problems(["BTC/USDTT"])
    assert reasons == {"BTC/USDTT": "binance does not list it; did you mean 'BTC/USDT'?"}


def test_a_listed_symbol_that_does_not_trade_is_refused_with_its_status() -> None:
    listing = _listing(BTC_USDT="TRADING", LUNA_USDT="BREAK")
    assert listing.problems(["LUNA/USDT"]) == {
        "LUNA/USDT": "binance lists it with status BREAK, not TRADING"}


def test_no_suggestion_when_nothing_listed_is_alike() -> None:
    assert _listing(BTC_USDT="TRADING").problems(["ZZZ/QQQ"]) == {
        "ZZZ/QQQ": "binance does not list it"}


def test_the_error_names_every_refused_symbol_and_is_a_config_error() -> None:
    error = UnlistedSymbolError("crypto_symbols", {"A/B": "binance does not list it",
                                                   "C/D": "binance does not list it"})
    assert isinstance(error, ValueError) and error.symbols == ["A/B", "C/D"]
    assert "'A/B': binance does not list it; 'C/D': binance does not list it" in str(error)


def test_a_cached_listing_is_fresh_for_its_ttl_only() -> None:
    now = [0.0]
    cache = ListingCache(ttl_s=600.0, monotonic=lambda: now[0])
    cache.put("https://x", _listing(BTC_USDT="TRADING"))
    now[0] = 599.0
    assert cache.get("binance", "https://x") is not None
    assert cache.get("binance", "https://other") is None
    now[0] = 600.0
    assert cache.get("binance", "https://x") is None


# -- the simulator lists what it lists -------------------------------------------------

async def test_simulator_refuses_exchange_info_for_a_symbol_it_does_not_list() -> None:
    async with ExchangeSimulator(["BTC/USDT"]) as sim, aiohttp.ClientSession() as http:
        for params in ({"symbol": "BTCUSDTT"}, {"symbols": '["BTCUSDT","NOPEUSDT"]'}):
            async with http.get(sim.binance_rest_url + EXCHANGE_INFO, params=params) as r:
                assert r.status == 400
                assert await r.json() == {"code": -1121, "msg": "Invalid symbol."}
        async with http.get(sim.binance_rest_url + EXCHANGE_INFO) as r:
            body = await r.json()
    assert [(s["symbol"], s["status"], s["baseAsset"], s["quoteAsset"])
            for s in body["symbols"]] == [("BTCUSDT", "TRADING", "BTC", "USDT")]


# -- the manager -------------------------------------------------------------------------

async def test_start_fails_naming_an_unlisted_symbol_before_anything_streams(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"]) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["ETH/USDT", "BTC/USDTT"])
        with pytest.raises(UnlistedSymbolError) as err:
            await manager.start()
        assert str(err.value) == ("crypto_symbols='BTC/USDTT' is invalid: binance does not "
                                  "list it; did you mean 'BTC/USDT'?")
        assert not manager.is_running
        assert sim.counters.connections_accepted == 0, "nothing streamed"
        assert set(sim.counters.rest_by_endpoint) == {EXCHANGE_INFO}, "no warm-up either"


async def test_a_pair_split_in_the_wrong_place_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``BTCU/SDT`` is Binance's ``BTCUSDT`` too, but not the pair it lists."""
    async with ExchangeSimulator(["BTC/USDT"]) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTCU/SDT"])
        with pytest.raises(UnlistedSymbolError, match="did you mean 'BTC/USDT'"):
            await manager.start()


async def test_the_listing_is_asked_once_per_venue_and_counted_in_the_rest_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"]) as sim:
        point_at(sim, monkeypatch)
        first = StreamManager(fast_config(warm_up=False, backfill=False))
        first.add_crypto_symbols(["BTC/USDT"])
        second = StreamManager(fast_config(warm_up=False))
        second.add_crypto_symbols(["ETH/USDT"])
        async with first, second:
            assert first.get_ticks("BTC/USDT") is not None
        assert _exchange_info_requests(sim) == 1
        assert not first._listing_rests, "its client is closed at stop"


async def test_the_listing_request_weighs_20_in_the_history_clients_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"]) as sim:
        point_at(sim, monkeypatch)
        async with StreamManager(fast_config(backfill=False)) as manager:
            manager.add_crypto_symbols(["BTC/USDT"])
            await wait_for(lambda: manager.get_ticks("BTC/USDT"))
            usage = manager.get_metrics()["rest"]["binance"]
    assert usage["requests"]["exchangeInfo"] == 1
    assert usage["weight"]["exchangeInfo"] == 20


async def test_check_symbols_off_asks_nothing_and_streams_what_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"]) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(warm_up=False, backfill=False,
                                            check_symbols=False))
        manager.add_crypto_symbols(["BTC/USDT"])
        async with manager:
            await wait_for(lambda: manager.get_ticks("BTC/USDT"))
        assert _exchange_info_requests(sim) == 0


async def test_an_unlisted_symbol_added_at_runtime_raises_at_once_while_the_listing_is_fresh(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"]) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(warm_up=False, backfill=False))
        manager.add_crypto_symbols(["BTC/USDT"])
        async with manager:
            with pytest.raises(UnlistedSymbolError, match="did you mean 'ETH/USDT'"):
                manager.add_crypto_symbols(["ETH/USDT", "ETH/USDC"])
            assert manager.symbols == ["BTC/USDT"], "none of the list was taken"
            manager.add_crypto_symbols(["ETH/USDT"])
            await wait_for(lambda: manager.get_ticks("ETH/USDT"))
        assert _exchange_info_requests(sim) == 1


async def test_an_unlisted_symbol_added_after_the_listing_expired_is_reported_not_subscribed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], speed=10) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(warm_up=False, backfill=False))
        manager.add_crypto_symbols(["BTC/USDT"])
        health: list[dict[str, Any]] = []
        manager.on(EventType.HEALTH, lambda e: health.append(e.data))
        async with manager:
            LISTINGS.clear()  # the listing expired
            manager.add_crypto_symbols(["ETH/USDT", "ETH/USDTX"])
            await wait_for(lambda: manager.get_ticks("ETH/USDT") and health)
            report = manager.get_health()
            assert manager.symbols == ["BTC/USDT", "ETH/USDT"]
            manager.remove_symbols(iter(["ETH/USDTX"]))
            after_removal = manager.get_health()
        refused = {"ETH/USDTX": "binance does not list it; did you mean 'ETH/USDT'?"}
        assert health[0]["refused_symbols"] == refused
        assert report["refused_symbols"] == refused
        assert "ETH/USDTX not subscribed: binance does not list it; did you mean 'ETH/USDT'?" \
            in report["reasons"]
        assert report["status"] != "healthy"
        assert after_removal["refused_symbols"] == {}, "no longer wanted: no longer reported"


async def test_start_timeout_bounds_a_start_up_that_cannot_reach_the_venue(
        monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int) -> None:
    """Nothing listens: the listing's retries would take 31 s; start(timeout=2) stops at 2 s
    and names the host and the cause in one line."""
    monkeypatch.setenv("BINANCE_REST_URL", f"http://127.0.0.1:{unused_tcp_port}")
    monkeypatch.setenv("BINANCE_WS_URL", f"ws://127.0.0.1:{unused_tcp_port}")
    manager = StreamManager(fast_config(warm_up=False, backfill=False))
    manager.add_crypto_symbols(["BTC/USDT"])
    with pytest.raises(StartTimeout) as err:
        await asyncio.wait_for(manager.start(timeout=2.0), 10)
    assert str(err.value) == (f"not streaming within 2 s: binance REST: cannot reach "
                              f"127.0.0.1:{unused_tcp_port}: connection refused")
    assert isinstance(err.value, StreamError) and isinstance(err.value, TimeoutError)
    assert not manager.is_running


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "5", True])
async def test_a_start_timeout_that_is_not_a_positive_number_is_refused(timeout: Any) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        await StreamManager().start(timeout=timeout)


async def test_a_listing_another_manager_fetched_does_not_set_this_managers_venue_clock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached listing's clock reading was taken on the clock of the manager that asked:
    a manager on another clock (here a day ahead) checks its symbols with it but takes the
    venue's clock from its own evidence, so the venue's trades still stream to it."""
    day = 86_400 * 10**9
    async with ExchangeSimulator(["BTC/USDT"]) as sim:
        point_at(sim, monkeypatch)
        first = StreamManager(fast_config(warm_up=False, backfill=False))
        first.add_crypto_symbols(["BTC/USDT"])
        async with first:
            await wait_for(lambda: first.get_ticks("BTC/USDT"))
        ahead = StreamManager(fast_config(warm_up=False, backfill=False),
                              clock=lambda: time.time_ns() + day)
        ahead.add_crypto_symbols(["BTC/USDT"])
        async with ahead:
            await wait_for(lambda: ahead.get_ticks("BTC/USDT"), timeout=10)
            venue_now = ahead.pipeline.gate.venue_time_ns("binance", time.time_ns() + day)
        assert _exchange_info_requests(sim) == 1, "the second manager used the cached listing"
        assert abs(venue_now - time.time_ns()) < 60 * 10**9, "the venue's clock is its own"


async def test_a_rest_host_that_never_answers_fails_the_start_at_the_listing_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that accepts connections and never answers: start() (no timeout of its own)
    fails at the listing's deadline naming the venue, instead of waiting out every retry
    of every 30 s request (about 3 minutes)."""
    from aiohttp import web

    from bot.data import listing as listing_module

    async def never(_request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/{tail:.*}", never)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    monkeypatch.setattr(listing_module, "LISTING_DEADLINE_S", 1.0)
    monkeypatch.setenv("BINANCE_REST_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("BINANCE_WS_URL", f"ws://127.0.0.1:{port}")
    manager = StreamManager(fast_config(warm_up=False, backfill=False))
    manager.add_crypto_symbols(["BTC/USDT"])
    try:
        started = time.monotonic()
        with pytest.raises(StreamError, match="cannot check symbols against binance: binance "
                           "REST did not answer its listing within 1 s"):
            await asyncio.wait_for(manager.start(), 20)
        assert time.monotonic() - started < 5
        assert not manager.is_running
    finally:
        await runner.cleanup()
