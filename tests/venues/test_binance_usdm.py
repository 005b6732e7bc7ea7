"""Binance USDⓈ-M perpetuals: symbols, the routed stream path, the codec on a real capture,
and a real day's trades rebuilt into bars equal to Binance's official USDⓈ-M klines."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import Counter

import msgspec
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.models import Bar, Side, Tick
from bot.data.pipeline import TickPipeline
from bot.data.venues.binance_usdm.rest import BinanceUsdmRest
from bot.data.venues.binance_usdm.session import BinanceUsdmSession
from bot.data.venues.binance_usdm.spec import BINANCE_USDM
from bot.data.venues.binance_usdm.symbols import to_raw_symbol
from bot.data.venues.protocol import Received, TickerUpdate
from bot.data.venues.registry import route
from tests.helpers import DATA
from tests.venues.captures import capture_frames

DAY = DATA / "binance" / "usdm_BTCUSDT_2020-02-22"
CAPTURE = DATA / "binance" / "usdm_ws_capture_2021-04-17" / "BINANCE_FUTURES.ws.5.0"
SYMBOL = "BTC/USDT:USDT"
NS_PER_US = 1000
NS_PER_MS = 1_000_000


# -- symbols and routing ----------------------------------------------------------------
@pytest.mark.parametrize(("unified", "raw"), [
    ("BTC/USDT:USDT", "BTCUSDT"), ("eth/usdc:usdc", "ETHUSDC"),
    ("1000PEPE/USDT:USDT", "1000PEPEUSDT"),
])
def test_a_linear_perpetual_in_ccxt_notation_is_the_usdm_symbol(unified: str, raw: str) -> None:
    assert to_raw_symbol(unified) == raw


@pytest.mark.parametrize("bad", ["BTC/USDT:BTC", "BTC/USDT", "BTCUSDT", "BTC/USDT:USDT-250328",
                                 "BTC/USDT:", "BTC /USDT:USDT"])
def test_what_is_not_a_usdm_perpetual_is_refused_naming_the_form(bad: str) -> None:
    with pytest.raises(ConfigError, match="BASE/QUOTE:SETTLE"):
        to_raw_symbol(bad)


def test_crypto_symbols_go_to_the_venue_whose_form_they_have() -> None:
    config = StreamManagerConfig()
    assert route("crypto", "BTC/USDT:USDT", config, "crypto_symbols") == (BINANCE_USDM,
                                                                          "BTC/USDT:USDT")
    assert route("crypto", "btc/usdt", config, "crypto_symbols")[0].name == "binance"
    with pytest.raises(ConfigError, match="BASE/QUOTE:SETTLE") as err:
        route("crypto", "BTC-USDT", config, "crypto_symbols")
    assert "BASE/QUOTE" in str(err.value)


# -- the session: routed path, endpoint from the environment -----------------------------
def test_trade_streams_are_asked_for_on_the_market_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BINANCE_FUTURES_WS_URL", raising=False)
    session = BinanceUsdmSession(StreamManagerConfig(), ["BTC/USDT:USDT", "ETH/USDT:USDT"])
    assert session.url() == ("wss://fstream.binance.com/market/stream"
                             "?streams=btcusdt@trade/ethusdt@trade")


def test_the_aggregate_trade_channel_is_asked_for_on_the_market_path_too() -> None:
    config = StreamManagerConfig(binance_trade_channel="aggTrade")
    assert BinanceUsdmSession(config, [SYMBOL]).url().endswith(
        "/market/stream?streams=btcusdt@aggTrade")
    assert BINANCE_USDM.history(config, None).aggregate, "its gaps are filled from aggTrades"


def test_no_book_ticker_is_asked_for_on_the_market_path() -> None:
    """Book tickers are served on /public only: on /market they would never arrive."""
    config = StreamManagerConfig(binance_ticker_channel="bookTicker")
    assert "bookTicker" not in BinanceUsdmSession(config, [SYMBOL]).url()


def test_endpoints_come_from_the_environment_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_FUTURES_WS_URL", "ws://127.0.0.1:9/")
    monkeypatch.setenv("BINANCE_FUTURES_REST_URL", "http://127.0.0.1:9")
    assert BinanceUsdmSession(StreamManagerConfig(), [SYMBOL]).url().startswith(
        "ws://127.0.0.1:9/market/stream?")
    assert BinanceUsdmRest.endpoint(StreamManagerConfig()) == ("binanceusdm",
                                                               "http://127.0.0.1:9")
    monkeypatch.setenv("BINANCE_FUTURES_WS_URL", "fstream.binance.com")
    with pytest.raises(ConfigError, match="BINANCE_FUTURES_WS_URL"):
        BinanceUsdmSession(StreamManagerConfig(), [SYMBOL])


@pytest.mark.parametrize(("rows", "weight"), [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5),
                                              (1000, 5)])
def test_klines_requests_weigh_what_usdm_documents_for_their_rows(rows: int, weight: int) -> None:
    assert BinanceUsdmRest(StreamManagerConfig()).klines_weight(rows) == weight


# -- the codec on a real USDⓈ-M recording -------------------------------------------------
def test_every_frame_of_a_real_usdm_recording_decodes() -> None:
    """3,259 frames: aggTrade become ticks field by field, bookTicker (with E) ticker
    updates; kline and depth streams are not this session's and give nothing."""
    symbols = ["DENT/USDT:USDT", "KSM/USDT:USDT", "XMR/USDT:USDT", "YFI/USDT:USDT"]
    session = BinanceUsdmSession(StreamManagerConfig(), symbols)
    seen: Counter[str] = Counter()
    for raw in capture_frames(CAPTURE):
        frame = json.loads(raw)
        data, channel = frame["data"], frame["stream"].partition("@")[2]
        out = session.receive(raw, 7)
        assert isinstance(out, Received)
        seen[channel] += 1
        if channel == "aggTrade":
            [tick] = out.ticks
            assert tick == Tick("binanceusdm", data["s"].replace("USDT", "/USDT:USDT"),
                                float(data["p"]), float(data["q"]),
                                Side.SELL if data["m"] else Side.BUY, data["a"],
                                data["T"] * NS_PER_MS, 7)
        elif channel == "bookTicker":
            [update] = out.events
            assert isinstance(update, TickerUpdate)
            assert (update.bid, update.ask, update.timestamp) == (
                float(data["b"]), float(data["a"]), data["E"] * NS_PER_MS)
        else:
            assert out == Received(), channel
    assert seen == {"aggTrade": 185, "kline_1m": 99, "depth@100ms": 1016, "bookTicker": 1959}


# -- a real day rebuilt into bars, refused records mixed in --------------------------------
def _day_trades() -> list[dict[str, str]]:
    with gzip.open(DAY / "tardis_trades_full-day.repaired.csv.gz", "rt") as fh:
        return list(csv.DictReader(fh))


def _klines() -> dict[int, list[str]]:
    with (DAY / "BTCUSDT-1m-2020-02_rows_2020-02-22.csv").open() as fh:
        return {int(row[0]) * NS_PER_MS: row for row in csv.reader(fh)}


def _frame(trade_id: int, time_ms: int, price: str, qty: str, taker_buy: bool,
           kind: str = "MARKET") -> bytes:
    """A ``@trade`` frame as USDⓈ-M documents it (``X`` the trade type)."""
    return msgspec.json.encode({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": time_ms + 3, "T": time_ms, "s": "BTCUSDT", "t": trade_id,
        "p": price, "q": qty, "X": kind, "m": not taker_buy}})


def _frames_with_refused_records(trades: list[dict[str, str]]) -> tuple[list[bytes], Counter[str]]:
    """The day's trades as frames, with records USDⓈ-M's klines do not count mixed in:
    ``NA`` with price and quantity 0, and insurance-fund trades at an outlying price. They
    consume trade ids, as on the venue, so the ids are renumbered (klines carry none)."""
    rng = random.Random(20200222)
    frames, mixed = [], Counter[str]()
    next_id = int(trades[0]["id"])
    for row in trades:
        time_ms = int(row["timestamp"]) // 1000
        if rng.random() < 0.002:
            kind, price, qty = rng.choice([("NA", "0", "0"),
                                           ("INSURANCE_FUND", "8000.00", "0.500")])
            frames.append(_frame(next_id, time_ms, price, qty, rng.random() < 0.5, kind))
            mixed[kind] += 1
            next_id += 1
        frames.append(_frame(next_id, time_ms, row["price"], row["amount"], row["side"] == "buy"))
        next_id += 1
    return frames, mixed


def test_a_real_usdm_day_streamed_equals_the_official_klines_in_every_field() -> None:
    """137,988 real USDⓈ-M trades, with refused records mixed in, through the session and
    the pipeline: 1,439 of the day's 1,440 minutes equal Binance's own 1m klines in every
    field (the first lacks one trade the recording began after)."""
    trades = _day_trades()
    frames, mixed = _frames_with_refused_records(trades)
    session = BinanceUsdmSession(StreamManagerConfig(), [SYMBOL])
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]))
    bars: list[Bar] = []
    pipeline.bus.on_bar_complete(bars.append)
    for frame, receive_ns in zip(frames, _receive_times(trades, frames), strict=True):
        tick = session.receive(frame, receive_ns)
        assert isinstance(tick, Tick)
        pipeline.process(tick)
    klines = _klines()
    pipeline.advance(max(klines) + 60 * 10**9 + pipeline.aggregator.grace_ns)

    by_open = {b.open_time: b for b in bars}
    assert sorted(by_open) == sorted(klines)
    first = min(klines)
    for open_ns, row in klines.items():
        if open_ns == first:
            continue
        bar = by_open[open_ns]
        assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (
            float(row[1]), float(row[2]), float(row[3]), float(row[4]), int(row[8])), open_ns
        for got, want in ((bar.volume, row[5]), (bar.quote_volume, row[7]),
                          (bar.buy_volume, row[9]), (bar.buy_quote_volume, row[10])):
            assert got == pytest.approx(float(want), rel=1e-9, abs=1e-9), open_ns
    assert mixed["NA"] > 0 and mixed["INSURANCE_FUND"] > 0
    assert pipeline.gate.refused == {"price": mixed["NA"], "not_market": mixed["INSURANCE_FUND"]}


def _receive_times(trades: list[dict[str, str]], frames: list[bytes]) -> list[int]:
    """Each frame's receive time: the recording's local time of the trade it follows."""
    out, i = [], 0
    for frame in frames:
        data = msgspec.json.decode(frame)["data"]
        while int(trades[i]["timestamp"]) // 1000 != data["T"]:
            i += 1
        out.append(int(trades[i]["local_timestamp"]) * NS_PER_US)
    return out


def test_the_gate_refuses_what_usdm_klines_do_not_count_by_its_own_reason() -> None:
    session = BinanceUsdmSession(StreamManagerConfig(), [SYMBOL])
    market = session.receive(_frame(1, 1_700_000_000_000, "100.0", "1.0", True), 1)
    insurance = session.receive(_frame(2, 1_700_000_000_000, "90.0", "1.0", False,
                                       "INSURANCE_FUND"), 1)
    assert isinstance(market, Tick) and isinstance(insurance, Tick)
    assert market.conditions == () and insurance.conditions == ("INSURANCE_FUND",)
    assert BINANCE_USDM.gate_rule is not None
    assert BINANCE_USDM.gate_rule(market) is None
    assert BINANCE_USDM.gate_rule(insurance) == "not_market"


# -- the listing symbols are checked against ----------------------------------------------
# /fapi/v1/exchangeInfo as USDⓈ-M documents it (fields the listing does not read left out):
# a perpetual, a quarterly delivery contract of the same pair, and a perpetual being settled.
USDM_EXCHANGE_INFO = {"timezone": "UTC", "serverTime": 1_700_000_000_123, "symbols": [
    {"symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "status": "TRADING",
     "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT"},
    {"symbol": "BTCUSDT_250627", "pair": "BTCUSDT", "contractType": "CURRENT_QUARTER",
     "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT"},
    {"symbol": "ETHUSDC", "pair": "ETHUSDC", "contractType": "PERPETUAL", "status": "SETTLING",
     "baseAsset": "ETH", "quoteAsset": "USDC", "marginAsset": "USDC"},
]}


async def test_usdm_symbols_are_checked_against_its_own_exchange_info_at_its_weight(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web

    paths: list[str] = []

    async def exchange_info(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.json_response(USDM_EXCHANGE_INFO)

    app = web.Application()
    app.router.add_get("/fapi/v1/exchangeInfo", exchange_info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("BINANCE_FUTURES_REST_URL", f"http://127.0.0.1:{port}")
    config = StreamManagerConfig()
    rest = BINANCE_USDM.rest(config, None, lambda: 0)
    weights: list[int] = []
    run = rest.limiter.run

    async def counting(*args: object, weight: int = 1, **kwargs: object) -> object:
        weights.append(weight)
        return await run(*args, weight=weight, **kwargs)

    monkeypatch.setattr(rest.limiter, "run", counting)
    try:
        assert BINANCE_USDM.listing_url(config) == f"http://127.0.0.1:{port}"
        listing = await BINANCE_USDM.listing(rest)
    finally:
        await rest.close()
        await runner.cleanup()
    assert paths == ["/fapi/v1/exchangeInfo"] and weights == [1]
    assert listing.venue == "binanceusdm"
    assert listing.venue_time_ns == 1_700_000_000_123 * NS_PER_MS
    assert listing.problems(["BTC/USDT:USDT"]) == {}
    assert listing.problems(["ETH/USDC:USDC"]) == {
        "ETH/USDC:USDC": "binanceusdm lists it with status SETTLING, not TRADING"}
    assert "does not list it" in listing.problems(["BTC/USDT"])["BTC/USDT"]  # spot's form


def test_a_full_usdm_connection_fits_a_server_request_line_and_streams_every_symbol(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The same URL budget as spot; also were the connection to carry 1024 streams.
    monkeypatch.setattr(BinanceUsdmSession, "MAX_STREAMS", 1024)
    symbols = [f"LONGERNAME{i}/USDT:USDT" for i in range(1024)]
    s = BinanceUsdmSession(StreamManagerConfig(), symbols)
    url = s.url()
    assert "/market/stream?streams=" in url and len(url) < 8190 - 100
    in_url = url.partition("streams=")[2].split("/")
    subscribed = [p for m in s.on_open() for p in json.loads(m)["params"]]
    assert sorted(in_url + subscribed) == sorted(f"longername{i}usdt@trade" for i in range(1024))
