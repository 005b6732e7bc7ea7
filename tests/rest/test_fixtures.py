"""The REST clients on real exchange answers (tests/data): official klines, documented samples.

A small local server answers with the recorded bodies, so the parsing is
checked against data nobody on this project produced.
"""

from __future__ import annotations

import csv
import gzip
import json
from typing import Any

from aiohttp import web

from bot.data.config import StreamManagerConfig
from bot.data.models import BarFlag, Side
from bot.data.rest import AlpacaRest, BinanceRest
from bot.data.venues.alpaca.session import AlpacaSession, stock_trade_id
from tests.helpers import DATA
from tests.rest.conftest import CREDENTIALS, local_server, without_receive_time

ADABTC_CSV = DATA / "binance" / "spot_ADABTC_klines" / "ADABTC-1m-2021-11-27.csv"
BINANCE_SAMPLES = DATA / "binance" / "ws_samples" / "nautilus_binance_json_fixtures"
ALPACA_TRADES = (DATA / "alpaca" / "samples"
                 / "alpaca-trade-api-go_marketdata_testdata_trades.json.gz")


def official_kline_rows() -> list[list[Any]]:
    """The official ADABTC 1m klines, typed as the REST endpoint sends them."""
    with ADABTC_CSV.open() as fh:
        return [[int(r[0]), *r[1:6], int(r[6]), r[7], int(r[8]), *r[9:]] for r in csv.reader(fh)]


async def test_official_klines_become_bars_field_by_field() -> None:
    rows = official_kline_rows()
    server_time = rows[-1][6] + 1 + 30_000  # half a minute into the next minute

    async def klines(request: web.Request) -> web.Response:
        assert (request.query["symbol"], request.query["interval"]) == ("ADABTC", "1m")
        end, limit = int(request.query["endTime"]), int(request.query["limit"])
        return web.json_response([r for r in rows if r[0] <= end][-limit:])

    async def time(_request: web.Request) -> web.Response:
        return web.json_response({"serverTime": server_time})

    async with local_server([web.get("/api/v3/klines", klines),
                             web.get("/api/v3/time", time)]) as url, \
            BinanceRest(StreamManagerConfig(binance_rest_url=url)) as rest:
        bars = await rest.klines("ADA/BTC", "1m", limit=len(rows))
    assert len(bars) == len(rows) == 10
    for bar, row in zip(bars, rows, strict=True):
        assert (bar.symbol, bar.timeframe, bar.flags) == ("ADA/BTC", "1m", BarFlag.NONE)
        assert bar.open_time == row[0] * 1_000_000
        assert bar.close_time == (row[6] + 1) * 1_000_000 - 1
        assert [bar.open, bar.high, bar.low, bar.close, bar.volume] == [
            float(v) for v in row[1:6]]
        assert (bar.quote_volume, bar.trade_count) == (float(row[7]), row[8])
        assert (bar.buy_volume, bar.buy_quote_volume) == (float(row[9]), float(row[10]))
        assert bar.sell_volume == float(row[5]) - float(row[9])
        assert (bar.first_trade_id, bar.last_trade_id) == (-1, -1)


async def test_the_documented_historical_trade_sample_becomes_a_taker_sell_tick() -> None:
    body = (BINANCE_SAMPLES / "spot_rest_trades_response.json").read_text()

    async def trades(_request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    async with local_server([web.get("/api/v3/historicalTrades", trades)]) as url, \
            BinanceRest(StreamManagerConfig(binance_rest_url=url)) as rest:
        [tick] = await rest.historical_trades("BNB/BTC", 28457)
    assert (tick.venue, tick.symbol, tick.trade_id) == ("binance", "BNB/BTC", 28457)
    assert (tick.price, tick.volume, tick.side) == (4.000001, 12.0, Side.SELL)
    assert tick.timestamp == 1_499_865_549_590_000_000


async def test_real_alpaca_trades_become_the_stream_sessions_ticks() -> None:
    with gzip.open(ALPACA_TRADES) as fh:
        recorded = json.load(fh)["trades"]["AAPL"]  # a page of the multi-symbol endpoint

    async def trades(request: web.Request) -> web.Response:
        assert request.match_info["symbol"] == "AAPL"
        return web.json_response({"trades": recorded, "symbol": "AAPL",
                                  "next_page_token": None})

    async with local_server([web.get("/v2/stocks/{symbol}/trades", trades)]) as url, \
            AlpacaRest(StreamManagerConfig(alpaca_rest_url=url), CREDENTIALS) as rest:
        ticks = await rest.trades("AAPL", 0, 2_000_000_000_000_000_000)
    session = AlpacaSession(StreamManagerConfig(), CREDENTIALS, ["AAPL"])
    stream = session.receive(json.dumps([{"T": "t", "S": "AAPL", **t} for t in recorded]), 0)
    assert without_receive_time(ticks) == without_receive_time(stream.ticks)
    assert ticks[0].timestamp == 1_634_112_000_089_607_680  # "08:00:00.08960768Z"
    assert [t.trade_id for t in ticks] == [stock_trade_id("P", i) for i in range(1, 6)]
    assert [t.side for t in ticks] == [Side.UNKNOWN, Side.SELL, Side.SELL, Side.SELL, Side.SELL]
