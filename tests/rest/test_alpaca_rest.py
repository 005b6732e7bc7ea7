"""AlpacaRest: trades as the stream's ticks, page tokens, dedupe, tick-rule sides, bars."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError, MalformedFrame
from bot.data.models import (
    UPDATES_HIGH_LOW,
    UPDATES_OPEN_CLOSE,
    UPDATES_VOLUME,
    Bar,
    BarFlag,
    Side,
)
from bot.data.rest import AlpacaRest, RestError
from bot.data.sim import ExchangeSimulator
from bot.data.sim.trades import E8, SimTrade
from bot.data.venues.alpaca import rest as alpaca_module
from bot.data.venues.alpaca.conditions import updates_for
from bot.data.venues.alpaca.rest import rfc3339_ns
from bot.data.venues.alpaca.session import AlpacaCredentials, stock_trade_id
from tests.rest.conftest import (
    CREDENTIALS,
    NOW_NS,
    alpaca_stream_ticks,
    config_for,
    local_server,
    without_receive_time,
)

SYMBOL = "AAPL"
MINUTE = 60 * 10**9


def requests_of(sim: ExchangeSimulator) -> int:
    return sim.counters.rest_requests


# -- trades ----------------------------------------------------------------------------
async def test_trades_over_several_pages_equal_the_exchange_log_and_the_stream_ticks(
        alpaca_sim: ExchangeSimulator) -> None:
    log = alpaca_sim.trades("alpaca", SYMBOL)
    assert len(log) > 40_000
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        before = requests_of(alpaca_sim)
        ticks = await rest.trades(SYMBOL, log[0].time_ns, NOW_NS)
        requests = requests_of(alpaca_sim) - before
    assert requests == -(-len(log) // 10_000), "one request per page of 10,000"
    assert len(ticks) == len(log)
    for tick, trade in zip(ticks, log, strict=True):
        assert (tick.venue, tick.symbol, tick.timestamp) == ("alpaca", SYMBOL, trade.time_ns)
        assert tick.trade_id == stock_trade_id(trade.exchange, trade.trade_id)
        assert tick.price == trade.price_e8 / E8 and tick.volume == trade.qty_e8 // E8
        assert (tick.conditions, tick.exchange) == (trade.conditions, trade.exchange)
        assert tick.updates == updates_for(trade.conditions)
    assert without_receive_time(ticks) == without_receive_time(alpaca_stream_ticks(log, SYMBOL))


async def test_the_window_is_inclusive_at_both_ends(alpaca_sim: ExchangeSimulator) -> None:
    log = alpaca_sim.trades("alpaca", SYMBOL)
    start, end = log[1000].time_ns, log[1500].time_ns
    expected = [t for t in log if start <= t.time_ns <= end]
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        ticks = await rest.trades(SYMBOL, start, end)
    assert [t.trade_id for t in ticks] == [stock_trade_id(t.exchange, t.trade_id)
                                           for t in expected]


async def test_a_seeded_window_gets_the_stream_sides(alpaca_sim: ExchangeSimulator) -> None:
    log = alpaca_sim.trades("alpaca", SYMBOL)
    stream = alpaca_stream_ticks(log, SYMBOL)
    # A window that opens on a new time whose first trade moves the price.
    first = next(i for i in range(5000, len(log)) if log[i].time_ns != log[i - 1].time_ns
                 and log[i].price_e8 != log[i - 1].price_e8)
    end = log[first + 3000].time_ns
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        ticks = await rest.trades(SYMBOL, log[first].time_ns, end,
                                  previous_price=log[first - 1].price_e8 / E8)
        unseeded = await rest.trades(SYMBOL, log[first].time_ns, end)
    expected = [t for t in stream if log[first].time_ns <= t.timestamp <= end]
    assert without_receive_time(ticks) == without_receive_time(expected)
    assert expected[0].side is not Side.UNKNOWN
    assert unseeded[0].side is Side.UNKNOWN, "without the seed the first trade has no reference"


async def test_a_window_seeded_with_price_and_side_carries_the_side_over_zero_ticks(
        alpaca_sim: ExchangeSimulator) -> None:
    """Trades at the seed price before the first move keep the earlier trade's side."""
    log = alpaca_sim.trades("alpaca", SYMBOL)
    stream_all = alpaca_stream_ticks(log, SYMBOL)
    first = next(i for i in range(5000, len(log)) if log[i].time_ns != log[i - 1].time_ns
                 and log[i].price_e8 == log[i - 1].price_e8
                 and stream_all[i - 1].side is not Side.UNKNOWN)
    moved = next(i for i in range(first, len(log)) if log[i].price_e8 != log[first].price_e8)
    end = log[moved + 100].time_ns
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        price_only = await rest.trades(SYMBOL, log[first].time_ns, end,
                                       previous_price=log[first - 1].price_e8 / E8)
        seeded = await rest.trades(SYMBOL, log[first].time_ns, end,
                                   previous_price=log[first - 1].price_e8 / E8,
                                   previous_side=stream_all[first - 1].side)
    stream = [t for t in stream_all if log[first].time_ns <= t.timestamp <= end]
    lead = moved - first
    assert all(t.side is Side.UNKNOWN for t in price_only[:lead])
    assert all(t.side is stream_all[first - 1].side for t in seeded[:lead])
    assert without_receive_time(seeded) == without_receive_time(stream)


# A small Alpaca stand-in whose pages overlap and arrive out of time order.
def _trade(time: str, exchange: str, trade_id: int, price: float) -> dict[str, Any]:
    return {"t": time, "x": exchange, "p": price, "s": 100, "c": ["@"], "i": trade_id, "z": "C"}


PAGES = {
    None: {"trades": [_trade("2024-03-12T14:30:00.000000100Z", "V", 1, 10.0),
                      _trade("2024-03-12T14:30:00.000000200Z", "V", 2, 10.5),
                      _trade("2024-03-12T14:30:00.000000300Z", "K", 2, 10.25)],
           "symbol": "TSLA", "next_page_token": "cGFnZTI="},
    "cGFnZTI=": {"trades": [_trade("2024-03-12T14:30:00.000000300Z", "K", 2, 10.25),
                            _trade("2024-03-12T14:30:00.000000050Z", "P", 7, 9.5),
                            _trade("2024-03-12T14:30:00.000000400Z", "V", 3, 10.25)],
                 "symbol": "TSLA", "next_page_token": None},
}


@pytest.fixture
async def fake_alpaca() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def trades(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response(PAGES[request.query.get("page_token")])

    async with local_server([web.get("/v2/stocks/{symbol}/trades", trades)]) as url:
        yield url, seen


async def test_duplicates_across_pages_are_kept_once_and_ticks_are_time_ordered(
        fake_alpaca: tuple[str, list[web.Request]]) -> None:
    url, seen = fake_alpaca
    config = StreamManagerConfig(alpaca_rest_url=url, alpaca_feed="sip")
    async with AlpacaRest(config, CREDENTIALS) as rest:
        ticks = await rest.trades("tsla", 0, NOW_NS)
    assert [(t.exchange, t.trade_id & 0xFFFF, t.timestamp % 1000) for t in ticks] == [
        ("P", 7, 50), ("V", 1, 100), ("V", 2, 200), ("K", 2, 300), ("V", 3, 400)]
    # Tick rule in time order: 9.5 first (unknown), then up, up, down, zero tick.
    assert [t.side for t in ticks] == [Side.UNKNOWN, Side.BUY, Side.BUY, Side.SELL, Side.SELL]
    assert [r.match_info["symbol"] for r in seen] == ["TSLA", "TSLA"]
    first = seen[0]
    assert first.headers["APCA-API-KEY-ID"] == CREDENTIALS.key_id
    assert first.headers["APCA-API-SECRET-KEY"] == CREDENTIALS.secret_key
    assert (first.query["feed"], first.query["limit"]) == ("sip", "10000")
    assert first.query["start"] == "1970-01-01T00:00:00.000000000Z"
    assert seen[1].query["page_token"] == "cGFnZTI="


async def test_a_repeated_page_token_ends_the_paging_with_an_error_naming_it() -> None:
    requests = 0

    async def trades(_request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        token = "fresh" if requests == 1 else "again"
        return web.json_response({"trades": [], "symbol": "TSLA", "next_page_token": token})

    async with local_server([web.get("/v2/stocks/{symbol}/trades", trades)]) as url, \
            AlpacaRest(StreamManagerConfig(alpaca_rest_url=url), CREDENTIALS) as rest:
        with pytest.raises(MalformedFrame, match="repeated a next_page_token on "
                           "/v2/stocks/TSLA/trades after 3 pages"):
            await rest.trades("TSLA", 0, NOW_NS)
    assert requests == 3, "fresh, again, again: the third page repeats the second's token"


async def test_paging_stops_at_max_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    requests = 0

    async def bars(_request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        return web.json_response({"bars": [], "next_page_token": f"t{requests}"})

    monkeypatch.setattr(alpaca_module, "MAX_PAGES", 5)
    async with local_server([web.get("/v2/stocks/{symbol}/bars", bars)]) as url, \
            AlpacaRest(StreamManagerConfig(alpaca_rest_url=url), CREDENTIALS) as rest:
        with pytest.raises(MalformedFrame, match="goes on past 5 pages"):
            await rest.bars("AAPL", "1m", limit=10)
    assert requests == 5


async def test_the_test_feed_sends_no_feed_parameter(
        fake_alpaca: tuple[str, list[web.Request]]) -> None:
    url, seen = fake_alpaca
    async with AlpacaRest(StreamManagerConfig(alpaca_rest_url=url, alpaca_feed="test"),
                          CREDENTIALS) as rest:
        await rest.trades("TSLA", 0, NOW_NS)
    assert "feed" not in seen[0].query


# -- bars ------------------------------------------------------------------------------
def expected_bars(sim: ExchangeSimulator, timeframe_ns: int) -> dict[int, dict[str, Any]]:
    """Bars computed by hand from the exchange's trades with the per-field condition rules.

    Open and close are the first and last price-eligible trades in the
    exchange's sequence, high and low over the eligible ones, volume and count
    over the volume-eligible ones; an interval without an eligible price has no
    bar, as Alpaca's documentation says.
    """
    buckets: dict[int, list[SimTrade]] = {}
    for t in sim.trades("alpaca", SYMBOL):
        buckets.setdefault(t.time_ns - t.time_ns % timeframe_ns, []).append(t)
    out: dict[int, dict[str, Any]] = {}
    for open_ns, trades in buckets.items():
        ends = [t for t in trades if updates_for(t.conditions) & UPDATES_OPEN_CLOSE]
        extremes = [t for t in trades if updates_for(t.conditions) & UPDATES_HIGH_LOW]
        counted = [t for t in trades if updates_for(t.conditions) & UPDATES_VOLUME]
        if not ends:
            continue
        out[open_ns] = {
            "open": ends[0].price_e8 / E8, "close": ends[-1].price_e8 / E8,
            "high": max(t.price_e8 for t in extremes) / E8,
            "low": min(t.price_e8 for t in extremes) / E8,
            "volume": sum(t.qty_e8 for t in counted) / E8, "count": len(counted),
            "quote": sum(t.price_e8 * t.qty_e8 for t in counted) / E8 / E8,
            "close_time": open_ns + timeframe_ns - 1}
    return out


def assert_bar_is(bar: Bar, want: dict[str, Any], timeframe: str) -> None:
    assert (bar.venue, bar.symbol, bar.timeframe) == ("alpaca", SYMBOL, timeframe)
    assert bar.close_time == want["close_time"]
    assert [bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trade_count] == [
        want[k] for k in ("open", "high", "low", "close", "volume", "count")]
    # Alpaca rounds vw to 6 decimals; quote_volume is vw * v.
    assert bar.quote_volume == pytest.approx(want["quote"], rel=1e-8)
    assert (bar.buy_volume, bar.sell_volume, bar.buy_quote_volume) == (0.0, 0.0, 0.0)
    assert (bar.first_trade_id, bar.last_trade_id, bar.flags) == (-1, -1, BarFlag.NONE)


async def test_bars_follow_page_tokens_and_equal_bars_computed_from_the_trades(
        alpaca_sim: ExchangeSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alpaca_module, "PAGE_LIMIT", 30)
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        before = requests_of(alpaca_sim)
        bars = await rest.bars(SYMBOL, "1m", limit=100, end_ns=NOW_NS)
        requests = requests_of(alpaca_sim) - before
    # 100 closed bars and the open one (left out): pages of 30, 30, 30, 11.
    assert requests == 4
    assert len(bars) == 100
    assert bars[-1].close_time < NOW_NS <= bars[-1].close_time + MINUTE
    assert [b.open_time for b in bars] == sorted(b.open_time for b in bars)
    want = expected_bars(alpaca_sim, MINUTE)
    for bar in bars:
        assert_bar_is(bar, want[bar.open_time], "1m")


async def test_bars_look_further_back_until_the_history_runs_out(
        alpaca_sim: ExchangeSimulator) -> None:
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        bars = await rest.bars(SYMBOL, "5m", limit=1000, end_ns=NOW_NS)
    want = expected_bars(alpaca_sim, 5 * MINUTE)
    assert [b.open_time for b in bars] == sorted(t for t, w in want.items()
                                                 if w["close_time"] < NOW_NS)
    for bar in bars:
        assert_bar_is(bar, want[bar.open_time], "5m")


async def test_bars_behind_a_long_closed_market_take_one_request(
        alpaca_sim: ExchangeSimulator) -> None:
    """Three hours of history behind a long silence (a weekend, a holiday): one request,
    newest first, finds every bar there is, instead of a window doubling back for weeks."""
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        before = requests_of(alpaca_sim)
        bars = await rest.bars(SYMBOL, "1m", limit=500, end_ns=NOW_NS)
        requests = requests_of(alpaca_sim) - before
    want = expected_bars(alpaca_sim, MINUTE)
    assert [b.open_time for b in bars] == sorted(t for t, w in want.items()
                                                 if w["close_time"] < NOW_NS)[-500:]
    assert requests == 1


async def test_bars_from_a_server_that_ignores_sort_are_still_the_newest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server answering oldest first whatever ``sort`` says: every page is read and the
    newest ``limit`` bars kept (reading only the first page would keep the oldest)."""
    monkeypatch.setattr(alpaca_module, "PAGE_LIMIT", 4)
    opens = [NOW_NS - (20 - i) * MINUTE for i in range(20)]  # 20 closed 1m bars, ascending

    def row(open_ns: int) -> dict[str, Any]:
        return {"t": rfc3339_ns(open_ns), "o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1.0,
                "n": 1, "vw": 1.0}

    async def bars(request: web.Request) -> web.Response:
        first = int(request.query.get("page_token", "0"))
        token = str(first + 4) if first + 4 < len(opens) else None
        return web.json_response({"bars": [row(t) for t in opens[first:first + 4]],
                                  "symbol": "AAPL", "next_page_token": token})

    async with local_server([web.get("/v2/stocks/{symbol}/bars", bars)]) as url, \
            AlpacaRest(StreamManagerConfig(alpaca_rest_url=url), CREDENTIALS) as rest:
        got = await rest.bars("AAPL", "1m", limit=6, end_ns=NOW_NS)
    assert [b.open_time for b in got] == opens[-6:]


async def test_bars_end_at_or_before_end_ns(alpaca_sim: ExchangeSimulator) -> None:
    end = NOW_NS - 30 * MINUTE
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        bars = await rest.bars(SYMBOL, "15m", limit=3, end_ns=end)
    assert len(bars) == 3
    assert bars[-1].close_time <= end < bars[-1].close_time + 15 * MINUTE
    want = expected_bars(alpaca_sim, 15 * MINUTE)
    for bar in bars:
        assert_bar_is(bar, want[bar.open_time], "15m")


async def test_a_timeframe_alpaca_does_not_serve_names_the_allowed_ones(
        alpaca_sim: ExchangeSimulator) -> None:
    async with AlpacaRest(config_for(alpaca_sim), CREDENTIALS) as rest:
        with pytest.raises(ConfigError, match="1m, 5m, 15m, 1h, 1d"):
            await rest.bars(SYMBOL, "3m", limit=10)
        with pytest.raises(ConfigError, match="tickers"):
            await rest.trades("BTC/USD", 0, 1)


# -- errors ----------------------------------------------------------------------------
async def test_refused_credentials_raise_a_typed_error_without_the_secret(
        alpaca_sim: ExchangeSimulator) -> None:
    wrong = AlpacaCredentials("sim-key", "not-the-secret-xyz")
    async with AlpacaRest(config_for(alpaca_sim), wrong) as rest:
        before = requests_of(alpaca_sim)
        with pytest.raises(RestError) as err:
            await rest.trades(SYMBOL, NOW_NS - MINUTE, NOW_NS)
        shown = repr(rest)
    assert requests_of(alpaca_sim) - before == 1
    assert (err.value.venue, err.value.status, err.value.text) == ("alpaca", 403, "forbidden")
    for text in (str(err.value), repr(err.value), shown):
        assert "not-the-secret-xyz" not in text and "sim-key" not in text
