"""Symbols the simulator lists without simulating their market."""

from __future__ import annotations

import aiohttp

from bot.data.sim import ExchangeSimulator


async def test_symbols_listed_without_a_market_are_listed_and_cost_no_trades() -> None:
    """``listed``: a catalogue beside the simulated markets (``bot-stream --sim`` lists its
    catalogue and simulates only the symbols asked for)."""
    headers = {"APCA-API-KEY-ID": "sim-key", "APCA-API-SECRET-KEY": "sim-secret"}
    async with ExchangeSimulator(["BTC/USDT"], [], listed=["ETH/USDT", "BTC/USDT:USDT",
                                                           "TSLA"]) as sim, \
            aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{sim.binance_rest_url}/api/v3/exchangeInfo") as r:
            spot = [s["symbol"] for s in (await r.json())["symbols"]]
        async with http.get(f"{sim.binance_rest_url}/fapi/v1/exchangeInfo") as r:
            perpetuals = [s["symbol"] for s in (await r.json())["symbols"]]
        async with http.get(f"{sim.alpaca_trading_url}/v2/assets") as r:
            stocks = [a["symbol"] for a in await r.json()]
    assert (spot, perpetuals, stocks) == (["BTCUSDT", "ETHUSDT"], ["BTCUSDT"],
                                          ["FAKEPACA", "TSLA"])
    assert set(sim.feed.sources) == {("binance", "BTCUSDT"), ("alpaca", "FAKEPACA")}
