"""Stock symbols are checked against Alpaca's assets before anything streams.

Alpaca lists its assets on its trading API (``GET /v2/assets``, not on the data
host): an Asset entity per symbol with ``status`` ``active`` or ``inactive`` and
``tradable`` (false for assets served as data only, which still stream). A ticker
it does not list, or lists as inactive, fails ``start()`` and
``add_stock_symbols()`` naming it and the closest listed ones. The documented
shapes are served here by a fake trading host, and by the simulator for the
stocks it lists.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.data.config import StreamManagerConfig
from bot.data.listing import UnlistedSymbolError
from bot.data.rest.limits import RestError
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from bot.data.venues.alpaca.rest import AlpacaRest
from bot.data.venues.alpaca.session import AlpacaCredentials
from tests.streaming import fast_config, point_at, wait_for

KEY, SECRET = "PKTESTLISTING01", "listing-secret-never-shown"
# The Asset entity as Alpaca's Trading API documents it (equity example).
AAPL = {"id": "904837e3-3b76-47ec-b432-046db621571b", "class": "us_equity",
        "exchange": "NASDAQ", "symbol": "AAPL", "name": "Apple Inc. Common Stock",
        "status": "active", "tradable": True, "marginable": True, "shortable": True,
        "easy_to_borrow": True, "fractionable": True, "maintenance_margin_requirement": 30,
        "attributes": ["ptp_no_exception"]}
DELISTED = {**AAPL, "id": "5d0de74f-827b-41a7-9f74-9c07c08fe55f", "symbol": "TWTR",
            "name": "Twitter, Inc.", "status": "inactive", "tradable": False}
DATA_ONLY = {**AAPL, "id": "b6d1aa75-5c9c-4353-a305-9e2caa1925ab", "symbol": "ARAV",
             "name": "Aravive, Inc.", "exchange": "OTC", "tradable": False}
NOT_AUTHORISED = {"code": 40110000, "message": "request is not authorized"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _trading_host(status: int = 200) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A trading API answering ``/v2/assets`` with the documented entities (or ``status``
    with Alpaca's refusal); yields its URL and the requests it saw."""
    seen: list[web.Request] = []

    async def assets(request: web.Request) -> web.Response:
        seen.append(request)
        if status != 200:
            return web.json_response(NOT_AUTHORISED, status=status)
        return web.json_response([AAPL, DELISTED, DATA_ONLY])

    app = web.Application()
    app.add_routes([web.get("/v2/assets", assets)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


def _rest(trading_url: str) -> AlpacaRest:
    config = StreamManagerConfig(alpaca_rest_url=f"http://127.0.0.1:{_closed_port()}",
                                 alpaca_trading_url=trading_url)
    return AlpacaRest(config, AlpacaCredentials(KEY, SECRET))


# -- Alpaca's answer ---------------------------------------------------------------------

async def test_assets_are_asked_of_the_trading_host_with_the_key_headers() -> None:
    async with _trading_host() as (url, seen), _rest(url) as rest:
        listing = await rest.listing()
        usage = rest.limiter.usage()
    assert [(r.path, dict(r.query)) for r in seen] == [("/v2/assets", {"asset_class": "us_equity"})]
    assert seen[0].headers["APCA-API-KEY-ID"] == KEY
    assert seen[0].headers["APCA-API-SECRET-KEY"] == SECRET
    assert usage["requests"] == {"assets": 1}, "counted in Alpaca's REST budget"
    assert listing.venue == "alpaca"
    assert dict(listing.status) == {"AAPL": "active", "TWTR": "inactive", "ARAV": "active"}


async def test_a_ticker_alpaca_does_not_list_is_named_with_the_closest_listed_one() -> None:
    async with _trading_host() as (url, _), _rest(url) as rest:
        listing = await rest.listing()
    assert listing.problems(["AAPL", "AAPLL"]) == {
        "AAPLL": "alpaca does not list it; did you mean 'AAPL'?"}


async def test_an_inactive_asset_is_refused_with_its_status() -> None:
    async with _trading_host() as (url, _), _rest(url) as rest:
        listing = await rest.listing()
    assert listing.problems(["TWTR"]) == {
        "TWTR": "alpaca lists it with status inactive, not active"}


async def test_an_active_asset_alpaca_serves_as_data_only_still_streams() -> None:
    """``tradable=false``: not tradable on Alpaca, but its market data is served."""
    async with _trading_host() as (url, _), _rest(url) as rest:
        listing = await rest.listing()
    assert listing.problems(["ARAV"]) == {}


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_keys_name_the_paper_trading_host_and_never_the_secret(
        status: int) -> None:
    async with _trading_host(status) as (url, _), _rest(url) as rest:
        with pytest.raises(RestError) as err:
            await rest.listing()
    text = str(err.value)
    assert text == (f"alpaca REST HTTP {status}, error 40110000: request is not authorized "
                    f"(asking {url}/v2/assets; live keys are answered by "
                    "https://api.alpaca.markets, paper-trading keys by "
                    "https://paper-api.alpaca.markets: set ALPACA_TRADING_URL)")
    assert SECRET not in text and KEY not in text


async def test_keys_the_default_live_host_refuses_are_asked_of_the_paper_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Paper-trading keys (what a new account has) work with the default trading URL: the
    live host refuses them, the paper host lists the assets."""
    async with _trading_host(401) as (live, refused), _trading_host() as (paper, answered):
        monkeypatch.setattr(AlpacaRest, "TRADING_FALLBACK", {live: paper})
        async with _rest(live) as rest:
            listing = await rest.listing()
            usage = rest.limiter.usage()
    assert (len(refused), len(answered)) == (1, 1)
    assert listing.problems(["AAPL"]) == {}
    assert usage["requests"] == {"assets": 2}, "both requests in Alpaca's budget"


async def test_keys_both_hosts_refuse_name_both(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _trading_host(401) as (live, _), _trading_host(403) as (paper, _):
        monkeypatch.setattr(AlpacaRest, "TRADING_FALLBACK", {live: paper})
        async with _rest(live) as rest:
            with pytest.raises(RestError, match=f"asking {live}/v2/assets and "
                                                f"{paper}/v2/assets; live keys"):
                await rest.listing()


# -- the simulator lists what it lists ------------------------------------------------

async def test_simulator_serves_the_assets_it_lists_and_404_for_others() -> None:
    headers = {"APCA-API-KEY-ID": "sim-key", "APCA-API-SECRET-KEY": "sim-secret"}
    async with ExchangeSimulator([], ["AAPL"]) as sim, \
            aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{sim.alpaca_trading_url}/v2/assets") as r:
            listed = await r.json()
        async with http.get(f"{sim.alpaca_trading_url}/v2/assets/AAPL") as r:
            one = await r.json()
        async with http.get(f"{sim.alpaca_trading_url}/v2/assets/AAPLL") as r:
            missing = (r.status, await r.json())
        async with http.get(f"{sim.alpaca_trading_url}/v2/assets",
                            params={"status": "inactive"}) as r:
            inactive = await r.json()
        async with aiohttp.ClientSession() as anonymous, \
                anonymous.get(f"{sim.alpaca_trading_url}/v2/assets") as r:
            unauthorised = r.status
    assert [a["symbol"] for a in listed] == ["AAPL", "FAKEPACA"]
    assert one == listed[0]
    assert set(one) == set(AAPL), "the documented Asset entity's fields"
    assert {k: one[k] for k in ("class", "symbol", "status", "tradable")} == {
        "class": "us_equity", "symbol": "AAPL", "status": "active", "tradable": True}
    assert missing == (404, {"code": 40410000, "message": "asset not found"})
    assert inactive == []
    assert unauthorised == 401


# -- the manager -------------------------------------------------------------------------

async def test_start_fails_naming_an_unlisted_stock_before_anything_streams(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator([], ["AAPL", "TSLA"]) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_stock_symbols(["AAPL", "TSLAA"])
        with pytest.raises(UnlistedSymbolError) as err:
            await manager.start()
        assert str(err.value) == ("stock_symbols='TSLAA' is invalid: alpaca does not list "
                                  "it; did you mean 'TSLA'?")
        assert not manager.is_running
        assert sim.counters.connections_accepted == 0, "nothing streamed"
        assert set(sim.counters.rest_by_endpoint) == {"/v2/assets"}, "no warm-up either"


async def test_the_assets_are_asked_once_and_counted_in_alpacas_rest_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator([], ["AAPL", "TSLA"], speed=20,
                                 alpaca_connections_per_key=2) as sim:
        point_at(sim, monkeypatch)
        first = StreamManager(fast_config(warm_up=False))
        first.add_stock_symbols(["AAPL"])
        second = StreamManager(fast_config(warm_up=False, backfill=False))
        second.add_stock_symbols(["TSLA"])
        async with first, second:
            await wait_for(lambda: first.get_ticks("AAPL") is not None)
            usage: dict[str, Any] = first.get_metrics()["rest"]["alpaca"]
        assert sim.counters.rest_by_endpoint.get("/v2/assets") == 1
    assert usage["requests"]["assets"] == 1


async def test_an_unlisted_stock_added_at_runtime_raises_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator([], ["AAPL", "MSFT"]) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(warm_up=False, backfill=False))
        manager.add_stock_symbols(["AAPL"])
        async with manager:
            with pytest.raises(UnlistedSymbolError, match="did you mean 'MSFT'"):
                manager.add_stock_symbols(["MSFT", "MSFTT"])
            assert manager.symbols == ["AAPL"], "none of the list was taken"

