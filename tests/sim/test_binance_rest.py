"""Binance REST market data computed from the simulator's own trades."""

from __future__ import annotations

import csv
import itertools
from typing import Any

import aiohttp
import pandas as pd
import pytest

from bot.data.sim import ExchangeSimulator
from tests.sim.conftest import DATA

BTC_MINUTE = DATA / "binance" / "spot_BTCUSDT_2025-01-01"
BTC_TRADES = BTC_MINUTE / "BTCUSDT-trades-2025-01-01_rows0-2630_minute0000.csv"
BTC_KLINE = BTC_MINUTE / "BTCUSDT-1m-2025-01-01_row0_0000.csv"


async def get(url: str, **params: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http, http.get(url, params=params) as response:
        await response.read()
        return response


async def get_json(url: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(
            url, params=params, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def pandas_klines(sim: ExchangeSimulator, symbol: str) -> pd.DataFrame:
    """An independent aggregation of the exchange's trades into 1m klines."""
    trades = pd.DataFrame([{"time": t.time_ns, "price": float(t.price), "qty": float(t.qty),
                            "buy": not t.buyer_is_maker} for t in sim.trades("binance", symbol)])
    trades["open_ms"] = trades["time"] // 60_000_000_000 * 60_000
    trades["buy_qty"] = trades["qty"].where(trades["buy"], 0.0)
    grouped = trades.groupby("open_ms")
    return pd.DataFrame({"open": grouped["price"].first(), "high": grouped["price"].max(),
                         "low": grouped["price"].min(), "close": grouped["price"].last(),
                         "volume": grouped["qty"].sum(), "count": grouped.size(),
                         "taker_buy": grouped["buy_qty"].sum()})


async def test_klines_equal_an_independent_pandas_aggregation_of_the_trades(
        sim: ExchangeSimulator) -> None:
    rows = await get_json(f"{sim.binance_rest_url}/api/v3/klines", symbol="BTCUSDT",
                          interval="1m", limit="1000")
    assert isinstance(rows, list)
    expected = pandas_klines(sim, "BTCUSDT")
    closed = [r for r in rows if r[0] in expected.index and r[0] < expected.index.max()]
    assert len(closed) >= 9
    for row in closed:
        want = expected.loc[row[0]]
        assert len(row) == 12 and row[6] == row[0] + 59_999 and row[11] == "0"
        assert [float(v) for v in row[1:5]] == [want.open, want.high, want.low, want.close]
        assert float(row[5]) == pytest.approx(want.volume, rel=1e-12)
        assert row[8] == want["count"]
        assert float(row[9]) == pytest.approx(want.taker_buy, rel=1e-12, abs=1e-12)


async def test_historical_trades_paginate_by_from_id_without_gaps(sim: ExchangeSimulator) -> None:
    first = sim.trades("binance", "ETHUSDT")[0].trade_id
    ids: list[int] = []
    from_id = first
    for _ in range(3):
        page = await get_json(f"{sim.binance_rest_url}/api/v3/historicalTrades",
                              symbol="ETHUSDT", fromId=str(from_id), limit="1000")
        assert isinstance(page, list) and len(page) == 1000
        ids += [row["id"] for row in page]
        from_id = page[-1]["id"] + 1
    assert ids == list(range(first, first + 3000))
    assert set(page[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker",
                            "isBestMatch"}


async def test_a_trade_older_than_the_retention_is_no_longer_served() -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"], history_seconds=300,
                                 retention=100) as sim:
        kept = sim.trades("binance", "BTC/USDT")
        assert 100 <= len(kept) <= 110
        old = await get_json(f"{sim.binance_rest_url}/api/v3/historicalTrades",
                             symbol="BTCUSDT", fromId=str(kept[0].trade_id - 1))
        assert old == []


async def test_agg_trades_cover_every_trade_id_once(sim: ExchangeSimulator) -> None:
    rows = await get_json(f"{sim.binance_rest_url}/api/v3/aggTrades", symbol="BTCUSDT",
                          limit="1000")
    assert isinstance(rows, list)
    assert all(b["f"] == a["l"] + 1 and b["a"] == a["a"] + 1 for a, b in itertools.pairwise(rows))
    assert set(rows[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}


async def test_every_answer_carries_the_used_weight_header(sim: ExchangeSimulator) -> None:
    first = await get(f"{sim.binance_rest_url}/api/v3/trades", symbol="BTCUSDT")
    second = await get(f"{sim.binance_rest_url}/api/v3/exchangeInfo")
    assert int(second.headers["X-MBX-USED-WEIGHT-1M"]) == int(
        first.headers["X-MBX-USED-WEIGHT-1M"]) + 20


async def test_spending_the_weight_limit_answers_429_with_retry_after() -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"], rest_weight_limit=50) as sim:
        statuses = [(await get(f"{sim.binance_rest_url}/api/v3/trades", symbol="BTCUSDT"))
                    for _ in range(3)]
    assert [r.status for r in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 61


async def test_rest_requests_are_counted_by_endpoint(sim: ExchangeSimulator) -> None:
    for _ in range(2):
        await get_json(f"{sim.binance_rest_url}/api/v3/klines", symbol="BTCUSDT", interval="1m")
    await get_json(f"{sim.binance_rest_url}/api/v3/time")
    assert sim.counters.rest_by_endpoint == {"/api/v3/klines": 2, "/api/v3/time": 1}
    assert sim.counters.rest_requests == 3


async def test_errors_use_binance_codes(sim: ExchangeSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.binance_rest_url}/api/v3/klines",
                            params={"symbol": "NOPE", "interval": "1m"}) as response:
            assert response.status == 400
            assert await response.json() == {"code": -1121, "msg": "Invalid symbol."}
        async with http.get(f"{sim.binance_rest_url}/api/v3/klines",
                            params={"symbol": "BTCUSDT", "interval": "7m"}) as response:
            assert (await response.json())["code"] == -1120


async def test_replay_of_the_official_trade_file_yields_exactly_those_trades() -> None:
    with BTC_TRADES.open() as fh:
        rows = list(csv.reader(fh))
    end_us = int(rows[-1][4])
    async with ExchangeSimulator(symbols=["BTC/USDT"], replay={"BTC/USDT": BTC_TRADES},
                                 start_time_ns=end_us * 1000 + 1) as sim:
        served = await get_json(f"{sim.binance_rest_url}/api/v3/historicalTrades",
                                headers={"X-MBX-TIME-UNIT": "MICROSECOND"}, symbol="BTCUSDT",
                                fromId=rows[0][0], limit="1000")
        assert isinstance(served, list)
        for row, trade in zip(rows, served, strict=False):
            assert [trade["id"], trade["price"], trade["qty"], trade["quoteQty"], trade["time"],
                    trade["isBuyerMaker"]] == [int(row[0]), row[1], row[2], row[3], int(row[4]),
                                               row[5] == "True"]
        assert len(sim.trades("binance", "BTCUSDT")) == len(rows) == 2631


async def test_klines_of_the_replayed_minute_equal_the_official_kline() -> None:
    with BTC_KLINE.open() as fh:
        official = next(csv.reader(fh))
    async with ExchangeSimulator(symbols=["BTC/USDT"], replay={"BTC/USDT": BTC_TRADES},
                                 start_time_ns=1735689660_000_000_000) as sim:
        rows = await get_json(f"{sim.binance_rest_url}/api/v3/klines",
                              headers={"X-MBX-TIME-UNIT": "MICROSECOND"}, symbol="BTCUSDT",
                              interval="1m", startTime="1735689600000000")
    assert isinstance(rows, list)
    assert [str(v) for v in rows[0]] == official


async def test_replay_streams_the_file_in_compressed_market_time() -> None:
    import json

    import websockets

    with BTC_TRADES.open() as fh:
        first_ids = [int(row[0]) for row, _ in zip(csv.reader(fh), range(50), strict=False)]
    async with ExchangeSimulator(symbols=["BTC/USDT"], replay={"BTC/USDT": BTC_TRADES},
                                 speed=60) as sim, websockets.connect(
            f"{sim.binance_ws_url}/ws/btcusdt@trade") as ws:
        seen = [json.loads(await ws.recv())["t"] for _ in range(50)]
    # The connection opens a moment after the first trade: what it sees is a run of the file.
    assert seen == list(range(seen[0], seen[0] + 50))
    assert first_ids[0] <= seen[0]
