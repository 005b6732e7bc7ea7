"""One symbol's stream goes quiet while the others flow; the market keeps trading it."""

from __future__ import annotations

import json

import pytest
import websockets

from bot.data.sim import ExchangeSimulator
from tests.sim.conftest import ALPACA_HEADERS, recv_json

STREAM = "/stream?streams=btcusdt@trade/ethusdt@trade"


def _last_id(sim: ExchangeSimulator, venue: str, symbol: str) -> int:
    trades = sim.trades(venue, symbol)
    return trades[-1].trade_id if trades else -1


async def _binance_trade_ids(ws: websockets.ClientConnection, frames: int
                             ) -> dict[str, list[int]]:
    """Trade ids per symbol in the next ``frames`` trade frames."""
    ids: dict[str, list[int]] = {"BTCUSDT": [], "ETHUSDT": []}
    for _ in range(frames):
        data = (await recv_json(ws))["data"]
        ids[data["s"]].append(data["t"])
    return ids


async def test_a_quiet_binance_symbol_is_not_streamed_but_still_trades(
        sim: ExchangeSimulator) -> None:
    async with websockets.connect(sim.binance_ws_url + STREAM) as ws:
        await _binance_trade_ids(ws, 5)
        sim.go_quiet("BTC/USDT")
        quiet_from = _last_id(sim, "binance", "BTC/USDT")
        during = await _binance_trade_ids(ws, 150)
        sim.go_quiet("BTC/USDT", False)
        resumed_from = _last_id(sim, "binance", "BTC/USDT")
        after = await _binance_trade_ids(ws, 150)
    assert resumed_from > quiet_from + 5, "the market kept trading BTCUSDT while it was quiet"
    assert all(i <= quiet_from for i in during["BTCUSDT"]), "only frames already in flight"
    assert len(during["ETHUSDT"]) >= 140, "the other symbol kept streaming"
    # The last trade logged before the resume may still be unpublished then: it streams.
    assert after["BTCUSDT"] and min(after["BTCUSDT"]) >= resumed_from, \
        "after resuming, trades executed from then on are streamed; the quiet ones never are"


async def test_a_quiet_stock_is_withheld_on_the_alpaca_stream(sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.alpaca_ws_url}/v2/test",
                                  additional_headers=ALPACA_HEADERS) as ws:
        await recv_json(ws)  # connected
        await recv_json(ws)  # authenticated
        await ws.send(json.dumps({"action": "subscribe", "trades": ["FAKEPACA"]}))
        assert (await recv_json(ws))[0]["T"] == "subscription"
        await recv_json(ws)
        sim.go_quiet("FAKEPACA", venue="alpaca")
        quiet_from = _last_id(sim, "alpaca", "FAKEPACA")
        with pytest.raises(TimeoutError):
            while True:  # what was in flight, then nothing
                for message in await recv_json(ws, timeout=1.0):
                    assert message["i"] <= quiet_from
        assert _last_id(sim, "alpaca", "FAKEPACA") > quiet_from, "it kept trading"
        sim.clear_faults()
        resumed_from = _last_id(sim, "alpaca", "FAKEPACA")
        assert all(m["i"] >= resumed_from for m in await recv_json(ws))


async def test_go_quiet_names_a_symbol_no_venue_trades(sim: ExchangeSimulator) -> None:
    with pytest.raises(KeyError, match="'DOGE/USDT' is not traded by any venue"):
        sim.go_quiet("DOGE/USDT")
    with pytest.raises(KeyError, match="'AAPL' is not traded by binance"):
        sim.go_quiet("AAPL", venue="binance")
    with pytest.raises(ValueError, match="venue must be 'binance', 'alpaca' or None"):
        sim.go_quiet("AAPL", venue="kraken")
