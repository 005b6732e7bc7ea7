"""The venues' protocols read to the letter, against what the client and the simulator do.

Each test states a behaviour the exchange's documentation (or a real recording of the
exchange) fixes, and cites it. Every test here fails on the code it was written against,
so each is marked ``xfail(strict=True)`` with the mechanism at fault: when the mechanism is
mended the test passes, strict xfail turns that into a failure, and the mark comes off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import websockets

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError, ExchangeError
from bot.data.sim import ExchangeSimulator
from bot.data.sim.binance_usdm import usdm_stream_settings
from bot.data.sim.binance_ws import BinanceStreamSettings
from bot.data.stream_manager import StreamManager
from bot.data.venues.alpaca.session import AlpacaCredentials, AlpacaSession
from bot.data.venues.binance.session import BinanceSession
from bot.data.venues.protocol import Received, SubscriptionResult
from tests.cli.test_config import ROOT, run_cli
from tests.helpers import DATA

USDM_CAPTURE = DATA / "binance" / "usdm_ws_capture_2021-04-17" / "BINANCE_FUTURES.ws.5.0"
PERPETUAL = "BTC/USDT:USDT"


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    """Binance spot BTC/USDT and USDⓈ-M BTC/USDT:USDT trading, ten times real time."""
    async with ExchangeSimulator(["BTC/USDT"], futures_symbols=[PERPETUAL], seed=11, speed=10,
                                 history_seconds=120) as simulator:
        yield simulator


async def _frames(url: str, seconds: float) -> list[dict[str, Any]]:
    """Every frame a plain client receives on ``url`` within ``seconds`` (the handshake must
    succeed, as the exchange's does for any stream name it knows)."""
    frames: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    frames.append(json.loads(await ws.recv()))
    return frames


def _recorded_usdm_payload(channel: str) -> dict[str, Any]:
    """The first payload of ``channel`` in the real USDⓈ-M combined-stream recording."""
    with USDM_CAPTURE.open() as fh:
        next(fh)
        for line in fh:
            frame = json.loads(line.split(": ", 1)[1])
            if frame["stream"].endswith("@" + channel):
                payload: dict[str, Any] = frame["data"]
                return payload
    raise AssertionError(f"no {channel} frame in {USDM_CAPTURE.name}")


# -- symbols ---------------------------------------------------------------------------------
# README, "Symbols": "Binance USDⓈ-M perpetuals are written in ccxt's unified notation
# `BASE/QUOTE:SETTLE` with the settlement currency equal to the quote" and "Symbols are checked
# against the venue's form when they are added (...), before anything is sent"; Binance's symbols
# are `^[A-Z0-9-_.]{1,20}$` (binance_usdm/symbols.py, Binance's error -1100).
@pytest.mark.parametrize("symbol", [
    "BTC/USDT:BUSD",  # settled in another currency than its quote
    "ABCDEFGHIJKLMNOPQRS/USDT:USDT",  # base and quote 23 letters: Binance's symbols hold 20
])
def test_a_perpetual_outside_the_documented_form_is_refused_when_added(symbol: str) -> None:
    manager = StreamManager(StreamManagerConfig(check_symbols=False))
    with pytest.raises(ConfigError, match=symbol):
        manager.add_crypto_symbols([symbol])
    assert manager.symbols == []


# -- Binance combined-stream replies --------------------------------------------------------
# A real Binance error reply to a live request, as logged by a client
# (https://github.com/ctubio/Krypto-trading-bot/issues/1121):
# {"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}; the simulator answers in
# that form too (bot/data/sim/binance_ws.py SimBinanceSession.answer). The documentation's
# table (tests/data/binance/docs/binance-spot-api-docs_web-socket-streams.md, "Error Messages")
# writes code and msg at the top level; a client must take either as a refusal.
def test_a_nested_error_reply_is_a_refused_subscription() -> None:
    session = BinanceSession(StreamManagerConfig(check_symbols=False), ["BTC/USDT"])
    session.url()
    session.on_open()
    (request,) = session.subscribe(["ETH/USDT"])
    request_id = json.loads(request)["id"]
    received = session.receive(json.dumps({"error": {"code": 2, "msg": "Invalid request: "
                                                     "invalid stream"}, "id": request_id}), 0)
    assert isinstance(received, Received)
    (result,) = received.events
    assert isinstance(result, SubscriptionResult)
    assert (result.ok, result.error_code) == (False, 2)
    assert session.symbols == {"BTC/USDT"}


# Binance's stream server takes a URL of at most 8004 characters, measured by the maintainer of
# a Binance WebSocket library (https://github.com/oliver-zehentleitner/unicorn-binance-websocket-api/issues/17:
# "the allowed max length of an URI to binance websocket server is 8004 characters"; a longer one
# connects and "Nothing happens"); the same thread's fix is live SUBSCRIBE requests. The config
# allows 1024 streams on one spot connection (binance_max_streams_per_connection, "Binance's
# published limit"), so every URL the session builds must stay within 8004 characters.
def test_a_full_spot_connection_url_stays_within_binances_length_limit() -> None:
    symbols = [f"C{i:04d}/USDT" for i in range(1024)]  # shorter than most real pairs
    session = BinanceSession(StreamManagerConfig(check_symbols=False), symbols)
    assert len(session.url()) <= 8004


# -- simulator: USDⓈ-M stream routing ---------------------------------------------------------
# https://developers.binance.com/zh-CN/docs/products/caas/market-data-streams: "USD-M Futures
# routes streams by path ... /public | High-frequency public market data ... /market | Regular
# market data, for example @aggTrade and @markPrice ... A connection with no routed path only
# receives /public data. ... btcusdt@markPrice belongs to /market and will not deliver. This
# fails silently rather than erroring." (Legacy unrouted URLs were retired on 2026-04-23:
# https://www.treeofalpha.com/preview_article?id=1772787601395.)
async def test_sim_usdm_trades_asked_for_without_the_market_path_are_never_delivered(
        sim: ExchangeSimulator) -> None:
    base = sim.env()["BINANCE_FUTURES_WS_URL"]
    frames = await _frames(f"{base}/stream?streams=btcusdt@trade", 1.5)
    assert [f for f in frames if f.get("stream") == "btcusdt@trade"] == []


# Same page: "/public | High-frequency public market data"; the project's own USDⓈ-M session
# (bot/data/venues/binance_usdm/session.py) and README say book tickers belong to /public and
# are never delivered on /market.
async def test_sim_usdm_book_tickers_are_not_delivered_on_the_market_path(
        sim: ExchangeSimulator) -> None:
    base = sim.env()["BINANCE_FUTURES_WS_URL"]
    frames = await _frames(f"{base}/market/stream?streams=btcusdt@bookTicker", 1.5)
    assert [f for f in frames if f.get("stream") == "btcusdt@bookTicker"] == []


# -- simulator: USDⓈ-M keepalive and payloads ---------------------------------------------------
# https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams:
# "The websocket server will send a ping frame every 3 minutes. If the websocket server does not
# receive a pong frame back from the connection within a 10 minute period, the connection will
# be disconnected."
def test_sim_usdm_pings_every_three_minutes_and_waits_ten_for_the_pong() -> None:
    settings = usdm_stream_settings(BinanceStreamSettings())
    assert (settings.ping_interval, settings.pong_timeout) == (180.0, 600.0)


# Same page: "A single connection can listen to a maximum of 1024 streams." (The client may
# carry fewer; the simulator, speaking the venue, must accept what the venue accepts.)
def test_sim_usdm_connection_takes_the_documented_1024_streams() -> None:
    assert usdm_stream_settings(BinanceStreamSettings()).max_streams == 1024


# The real USDⓈ-M recording (tests/data/binance/usdm_ws_capture_2021-04-17, SOURCES.md): its
# aggTrade payloads carry e E a s p q f l T m, and no `M` (spot's "Was the trade the best price
# match?"), e.g. {"e":"aggTrade","E":1618677448238,"a":52599685,"s":"YFIUSDT","p":"49966.7",
# "q":"0.001","f":64902163,"l":64902163,"T":1618677448084,"m":false}.
async def test_sim_usdm_agg_trade_payload_has_the_recorded_fields(
        sim: ExchangeSimulator) -> None:
    base = sim.env()["BINANCE_FUTURES_WS_URL"]
    frames = await _frames(f"{base}/market/stream?streams=btcusdt@aggTrade", 1.5)
    payloads = [f["data"] for f in frames if f.get("stream") == "btcusdt@aggTrade"]
    assert payloads, "the simulator sent no aggTrade within 1.5 s"
    assert set(payloads[0]) == set(_recorded_usdm_payload("aggTrade"))


# README, "Exchange simulator": `sim.refuse_trades("BTC/USDT")` "records trades with price 0 and
# quantity 0, as Binance USDⓈ-M data has, in the log, the stream and `historicalTrades`"; and
# "Binance USDⓈ-M perpetuals": records whose type `X` is not `MARKET` ("`NA` records of price
# and quantity 0") are what the venue's gate rule refuses. The simulator must be able to make
# them on USDⓈ-M, and only there when asked for a perpetual.
async def test_sim_refused_trades_of_a_perpetual_are_made_on_usdm_only(
        sim: ExchangeSimulator) -> None:
    spot_before = len(sim.trades("binance", "BTC/USDT"))
    futures_before = len(sim.trades("binanceusdm", PERPETUAL))
    sim.refuse_trades(PERPETUAL, 2)
    for _ in range(100):
        if (len(sim.trades("binanceusdm", PERPETUAL)) > futures_before + 2
                and len(sim.trades("binance", "BTC/USDT")) > spot_before + 2):
            break
        await asyncio.sleep(0.05)
    futures_new = sim.trades("binanceusdm", PERPETUAL)[futures_before:]
    spot_new = sim.trades("binance", "BTC/USDT")[spot_before:]
    assert [t.is_market for t in futures_new[:2]] == [False, False]
    assert all(t.is_market for t in spot_new)


# -- simulator: USDⓈ-M REST ------------------------------------------------------------------
# The real USDⓈ-M exchangeInfo of the recorded session
# (/work/shared/fixtures/binance/usdm_ws_capture_2021-04-17/rest/fapi_v1_exchangeInfo.json):
# "rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,
# "limit":2400}, ...]; the project's USDⓈ-M client says the same (binance_usdm/rest.py: "The IP
# limit is 2400 weight a minute").
async def test_sim_usdm_request_weight_limit_is_the_venues_2400(
        sim: ExchangeSimulator) -> None:
    base = sim.env()["BINANCE_FUTURES_REST_URL"]
    async with aiohttp.ClientSession() as http, \
            http.get(f"{base}/fapi/v1/exchangeInfo") as response:
        info = await response.json()
    weight = [r["limit"] for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT"]
    assert weight == [2400]


# The same recorded exchangeInfo: each USDⓈ-M symbol carries pair, contractType,
# deliveryDate, onboardDate, marginAsset, underlyingType (and no spot-only fields such as
# isSpotTradingAllowed or permissionSets).
async def test_sim_usdm_exchange_info_symbols_have_the_futures_fields(
        sim: ExchangeSimulator) -> None:
    base = sim.env()["BINANCE_FUTURES_REST_URL"]
    async with aiohttp.ClientSession() as http, \
            http.get(f"{base}/fapi/v1/exchangeInfo") as response:
        symbol = (await response.json())["symbols"][0]
    assert {"pair", "contractType", "deliveryDate", "onboardDate", "marginAsset",
            "underlyingType"} <= set(symbol)
    assert not {"isSpotTradingAllowed", "permissionSets"} & set(symbol)


# pub.dev binance_futures MarketEndpoints.oldTradesLookup
# (https://pub.dev/documentation/binance_futures/latest/binance_futures/MarketEndpoints/oldTradesLookup.html),
# path fapi/v1/historicalTrades: "This endpoint need your API key only, not the secret key."
# (USDⓈ-M's "Old Trades Lookup (MARKET_DATA)").
async def test_sim_usdm_historical_trades_refuse_a_request_without_an_api_key(
        sim: ExchangeSimulator) -> None:
    base = sim.env()["BINANCE_FUTURES_REST_URL"]
    async with aiohttp.ClientSession() as http, \
            http.get(f"{base}/fapi/v1/historicalTrades",
                     params={"symbol": "BTCUSDT", "limit": "5"}) as response:
        assert response.status != 200
        assert (await response.json())["code"] < 0


# -- Alpaca stream errors --------------------------------------------------------------------
# Alpaca's stream documentation (https://docs.alpaca.markets/docs/streaming-market-data, copied
# in tests/data/alpaca/samples/alpaca_stream_v2_and_v1beta3_samples_from_docs.md): "The number
# of connections to a single endpoint from a user is limited ... this limit is 1. If you try to
# open a second connection, you'll get this error: [{"T":"error","code":406,"msg":"connection
# limit exceeded"}]". Alpaca's own client (alpacahq/alpaca-trade-api-go, marketdata/stream/
# client.go, irrecoverableErrorsAtInit) gives up only on 402 auth failed, 409 insufficient
# subscription, 410 invalid subscribe action for this feed and 411 insufficient scope; on 406 it
# reconnects with backoff: the server releases a dropped connection's session after a while,
# and one reconnect that comes too soon must not end the stream for good.
def test_alpaca_connection_limit_exceeded_is_retried_not_fatal() -> None:
    credentials = AlpacaCredentials("audit-key-id", "audit-secret-key")
    session = AlpacaSession(StreamManagerConfig(), credentials, ["AAPL"])
    session.url()
    received = session.receive('[{"T":"error","code":406,"msg":"connection limit exceeded"}]', 0)
    (error,) = received.events
    assert isinstance(error, ExchangeError)
    assert (error.code, error.fatal) == (406, False)


# -- first hour with futures -----------------------------------------------------------------
# README, "Binance USDⓈ-M perpetuals": "Events, bars, recovery, warm-up, the store, NATS and the
# CLI work for it as for spot (`bot-stream live BTC/USDT:USDT --sim`)."
def test_cli_live_sim_streams_a_perpetual() -> None:
    result = run_cli("live", "--sim", PERPETUAL, "--sim-speed", "60", "--json",
                     "--events", "tick", "--duration", "4")
    assert result.returncode == 0, result.stderr
    ticks = [json.loads(line) for line in result.stdout.splitlines()]
    assert ticks and {t["data"]["symbol"] for t in ticks} == {PERPETUAL}


# README, "Exchange simulator": "`python -m bot.data.sim --symbols BTC/USDT --stocks AAPL` prints
# the environment variables that point any client at it", and "Binance USDⓈ-M perpetuals":
# "Trades ... are asked for on `/market` (`/market/stream?streams=btcusdt@trade`)" and "REST:
# `https://fapi.binance.com/fapi/v1`". The example URLs it prints for a perpetual must be the
# perpetual's, on USDⓈ-M's paths.
async def test_sim_command_shows_a_perpetuals_usdm_urls() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.data.sim", "--symbols", PERPETUAL, "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not lines or not lines[-1].startswith("Ctrl-C"):
                lines.append((await process.stdout.readline()).decode().strip())
    finally:
        process.send_signal(signal.SIGINT)
        await process.wait()
    banner = "\n".join(lines)
    assert "/market/stream?streams=btcusdt@trade" in banner
    assert "/fapi/v1/klines?symbol=BTCUSDT" in banner
