"""BinanceRest against the simulator: trades as the stream's ticks, pagination, klines as bars."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from bot.data.aggregation import BarAggregator
from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError, MalformedFrame
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.rest import BinanceRest, RestError
from bot.data.sim import ExchangeSimulator
from bot.data.sim.klines import Kline
from bot.data.sim.trades import E8, SimTrade
from bot.data.venues.binance import rest as binance_rest
from tests.rest.conftest import (
    NOW_NS,
    ManualClock,
    binance_agg_stream_ticks,
    binance_stream_ticks,
    config_for,
    local_server,
    without_receive_time,
)

SYMBOL = "BTC/USDT"
MS = 1_000_000


def assert_tick_is_the_trade(tick: Tick, trade: SimTrade, venue: str = "binance") -> None:
    """Field by field against the exchange's own record (times truncated to Binance's ms)."""
    assert (tick.venue, tick.symbol, tick.trade_id) == (venue, SYMBOL, trade.trade_id)
    assert tick.price == trade.price_e8 / E8 and tick.volume == trade.qty_e8 / E8
    assert tick.side is (Side.SELL if trade.buyer_is_maker else Side.BUY)
    assert tick.timestamp == trade.time_ns // MS * MS


def assert_bar_is_the_kline(bar: Bar, kline: Kline, timeframe: str) -> None:
    assert (bar.venue, bar.symbol, bar.timeframe) == ("binance", SYMBOL, timeframe)
    assert (bar.open_time, bar.close_time) == (kline.open_time_ns, kline.close_time_ns)
    assert [bar.open, bar.high, bar.low, bar.close] == [
        v / E8 for v in (kline.open_e8, kline.high_e8, kline.low_e8, kline.close_e8)]
    assert bar.volume == kline.volume_e8 / E8
    assert bar.buy_volume == kline.taker_buy_volume_e8 / E8
    assert bar.sell_volume == pytest.approx((kline.volume_e8 - kline.taker_buy_volume_e8) / E8,
                                            rel=1e-12, abs=1e-12)
    assert bar.quote_volume == pytest.approx(kline.quote_e16 / E8 / E8, rel=1e-12)
    assert bar.buy_quote_volume == pytest.approx(kline.taker_buy_quote_e16 / E8 / E8, rel=1e-12)
    assert bar.trade_count == kline.count
    assert (bar.first_trade_id, bar.last_trade_id) == (-1, -1)
    assert bar.flags == (BarFlag.NONE if kline.count else BarFlag.EMPTY)


def aggregator_bars(sim: ExchangeSimulator, timeframe: str) -> dict[int, Bar]:
    """The project's own bars over the stream codec's ticks of every trade, by open time."""
    aggregator = BarAggregator([timeframe], grace_ns=0)
    bars: list[Bar] = []
    for tick in binance_stream_ticks(sim.trades("binance", SYMBOL), SYMBOL):
        bars.extend(aggregator.add(tick) or ())
    bars.extend(aggregator.advance(NOW_NS))
    return {b.open_time: b for b in bars}


def assert_same_bar(rest: Bar, built: Bar) -> None:
    """Kline bar and aggregator bar: OHLC and counts exact, float sums to 1e-9."""
    assert (rest.open_time, rest.close_time, rest.timeframe) == (
        built.open_time, built.close_time, built.timeframe)
    assert [rest.open, rest.high, rest.low, rest.close, rest.trade_count] == [
        built.open, built.high, built.low, built.close, built.trade_count]
    for name in ("volume", "quote_volume", "buy_volume", "sell_volume", "buy_quote_volume"):
        assert getattr(rest, name) == pytest.approx(getattr(built, name), rel=1e-9, abs=1e-12)
    assert rest.flags == built.flags & BarFlag.EMPTY


# -- trades ----------------------------------------------------------------------------
async def test_historical_trades_equal_the_exchange_log_and_the_stream_codec_ticks(
        binance_sim: ExchangeSimulator) -> None:
    chosen = binance_sim.trades("binance", SYMBOL)[100:1100]
    async with BinanceRest(config_for(binance_sim)) as rest:
        ticks = await rest.historical_trades(SYMBOL, chosen[0].trade_id)
        assert rest.used_weight == binance_sim.binance_rest.weights.used == 25
    assert len(ticks) == 1000
    for tick, trade in zip(ticks, chosen, strict=True):
        assert_tick_is_the_trade(tick, trade)
    assert without_receive_time(ticks) == without_receive_time(
        binance_stream_ticks(chosen, SYMBOL))


async def test_ticks_carry_the_configured_venue_as_the_stream_does(
        binance_sim: ExchangeSimulator) -> None:
    trade = binance_sim.trades("binance", SYMBOL)[0]
    async with BinanceRest(config_for(binance_sim, binance_venue="binanceus")) as rest:
        [tick] = await rest.historical_trades(SYMBOL, trade.trade_id, limit=1)
    assert_tick_is_the_trade(tick, trade, venue="binanceus")


async def test_agg_trades_equal_the_exchange_aggregates_and_the_agg_trade_codec_ticks(
        binance_sim: ExchangeSimulator) -> None:
    log = binance_sim.feed.log("binance", "BTCUSDT")
    assert log is not None
    aggs = log.aggs[50:550]
    async with BinanceRest(config_for(binance_sim)) as rest:
        ticks = await rest.agg_trades(SYMBOL, from_id=aggs[0].agg_id, limit=500)
    assert [t.trade_id for t in ticks] == [a.agg_id for a in aggs]
    assert [t.volume for t in ticks] == [a.qty_e8 / E8 for a in aggs]
    assert without_receive_time(ticks) == without_receive_time(
        binance_agg_stream_ticks(aggs, "BTCUSDT", SYMBOL))


async def test_trades_from_pages_up_to_until_id_without_duplicate_or_hole(
        binance_sim: ExchangeSimulator) -> None:
    log = binance_sim.trades("binance", SYMBOL)
    first, last = log[10].trade_id, log[2600].trade_id
    async with BinanceRest(config_for(binance_sim)) as rest:
        before = binance_sim.counters.rest_requests
        ticks = await rest.trades_from(SYMBOL, first, until_id=last)
        requests = binance_sim.counters.rest_requests - before
    assert [t.trade_id for t in ticks] == list(range(first, last + 1))
    assert requests == 3  # 1000 + 1000 + 591
    for tick, trade in zip(ticks, log[10:2601], strict=True):
        assert_tick_is_the_trade(tick, trade)


async def test_trades_from_without_until_id_stops_once_caught_up_with_the_latest_trade(
        binance_sim: ExchangeSimulator) -> None:
    log = binance_sim.trades("binance", SYMBOL)
    start = len(log) - 2345
    async with BinanceRest(config_for(binance_sim)) as rest:
        before = binance_sim.counters.rest_requests
        ticks = await rest.trades_from(SYMBOL, log[start].trade_id)
        requests = binance_sim.counters.rest_requests - before
    assert [t.trade_id for t in ticks] == [t.trade_id for t in log[start:]]
    assert requests == 3


async def test_trades_from_aggregate_pages_aggregate_ids(binance_sim: ExchangeSimulator) -> None:
    log = binance_sim.feed.log("binance", "BTCUSDT")
    assert log is not None
    aggs = log.aggs[5:2105]
    async with BinanceRest(config_for(binance_sim)) as rest:
        ticks = await rest.trades_from(SYMBOL, aggs[0].agg_id, until_id=aggs[-1].agg_id,
                                       aggregate=True)
    assert without_receive_time(ticks) == without_receive_time(
        binance_agg_stream_ticks(aggs, "BTCUSDT", SYMBOL))


async def test_trades_from_refuses_an_until_id_before_from_id(
        binance_sim: ExchangeSimulator) -> None:
    async with BinanceRest(config_for(binance_sim)) as rest:
        with pytest.raises(ConfigError, match="until_id"):
            await rest.trades_from(SYMBOL, 100, until_id=99)


async def test_first_trade_id_at_is_the_first_trade_at_or_after_the_time(
        binance_sim: ExchangeSimulator) -> None:
    log = binance_sim.trades("binance", SYMBOL)
    start_ms = log[777].time_ns // MS + 1  # just after a trade's millisecond
    expected = next(t.trade_id for t in log if t.time_ns >= start_ms * MS)
    async with BinanceRest(config_for(binance_sim)) as rest:
        assert await rest.first_trade_id_at(SYMBOL, start_ms) == expected
        assert await rest.first_trade_id_at(SYMBOL, NOW_NS // MS + 60_000) is None


# -- klines ----------------------------------------------------------------------------
async def test_klines_are_the_last_closed_klines_and_equal_the_aggregator_bars(
        binance_sim: ExchangeSimulator) -> None:
    async with BinanceRest(config_for(binance_sim)) as rest:
        bars = await rest.klines(SYMBOL, "1m", limit=20)
    official = binance_sim.klines(SYMBOL, "1m", limit=21)
    assert official[-1].close_time_ns >= NOW_NS, "the simulator's last kline is still open"
    assert len(bars) == 20
    for bar, kline in zip(bars, official[:-1], strict=True):
        assert_bar_is_the_kline(bar, kline, "1m")
    built = aggregator_bars(binance_sim, "1m")
    for bar in bars:
        assert_same_bar(bar, built[bar.open_time])


async def test_klines_page_by_1000_backwards_oldest_first_with_empty_intervals(
        binance_sim: ExchangeSimulator) -> None:
    async with BinanceRest(config_for(binance_sim)) as rest:
        before = binance_sim.counters.rest_requests
        bars = await rest.klines(SYMBOL, "1s", limit=1700)
        requests = binance_sim.counters.rest_requests - before
    assert requests == 3  # the server's time, then klines 1000 + 700
    official = binance_sim.klines(SYMBOL, "1s", limit=1701)[:-1]
    assert len(bars) == 1700
    for bar, kline in zip(bars, official, strict=True):
        assert_bar_is_the_kline(bar, kline, "1s")
    assert any(b.flags == BarFlag.EMPTY for b in bars), "quiet seconds give empty klines"
    built = aggregator_bars(binance_sim, "1s")
    for bar in bars:
        assert_same_bar(bar, built[bar.open_time])


async def test_klines_end_at_or_before_end_ms(binance_sim: ExchangeSimulator) -> None:
    end_ms = NOW_NS // MS - 10 * 60_000 + 30_000  # half a minute into a minute ten ago
    async with BinanceRest(config_for(binance_sim)) as rest:
        bars = await rest.klines(SYMBOL, "5m", limit=2, end_ms=end_ms)
    official = binance_sim.klines(SYMBOL, "5m", limit=2, end_ns=end_ms * MS - 5 * 60 * 10**9)
    assert [b.open_time for b in bars] == [k.open_time_ns for k in official]
    assert bars[-1].close_time <= end_ms * MS < bars[-1].close_time + 5 * 60 * 10**9
    for bar, kline in zip(bars, official, strict=True):
        assert_bar_is_the_kline(bar, kline, "5m")


async def test_klines_beyond_the_history_return_what_there_is(
        binance_sim: ExchangeSimulator) -> None:
    async with BinanceRest(config_for(binance_sim)) as rest:
        bars = await rest.klines(SYMBOL, "1m", limit=5000)
    assert [b.open_time for b in bars] == [
        k.open_time_ns for k in binance_sim.klines(SYMBOL, "1m", limit=5000)[:-1]]


# -- errors ----------------------------------------------------------------------------
async def test_an_unknown_symbol_raises_binance_code_and_message_after_one_request(
        binance_sim: ExchangeSimulator) -> None:
    async with BinanceRest(config_for(binance_sim)) as rest:
        before = binance_sim.counters.rest_requests
        with pytest.raises(RestError) as err:
            await rest.historical_trades("NOPE/USDT", 1)
    assert binance_sim.counters.rest_requests - before == 1
    assert (err.value.venue, err.value.status, err.value.code, err.value.text) == (
        "binance", 400, -1121, "Invalid symbol.")
    assert "-1121" in str(err.value) and "Invalid symbol." in str(err.value)


@pytest.mark.parametrize("limit", [0, 1001, 2.5, True])
async def test_an_out_of_range_limit_is_refused_before_any_request(
        binance_sim: ExchangeSimulator, limit: object) -> None:
    async with BinanceRest(config_for(binance_sim)) as rest:
        before = binance_sim.counters.rest_requests
        with pytest.raises(ConfigError, match=r"limit.*1 to 1000"):
            await rest.historical_trades(SYMBOL, 1, limit)  # type: ignore[arg-type]
    assert binance_sim.counters.rest_requests == before


async def test_bad_arguments_name_what_is_allowed(binance_sim: ExchangeSimulator) -> None:
    async with BinanceRest(config_for(binance_sim)) as rest:
        with pytest.raises(ValueError, match="allowed: 1s, 1m"):
            await rest.klines(SYMBOL, "2m", limit=1)
        with pytest.raises(ValueError, match="BASE/QUOTE"):
            await rest.historical_trades("BTCUSDT", 1)
        with pytest.raises(ConfigError, match="from_id or start_ms"):
            await rest.agg_trades(SYMBOL, from_id=1, start_ms=2)


async def test_a_given_session_is_used_and_left_open(binance_sim: ExchangeSimulator,
                                                      clock: ManualClock) -> None:
    async with aiohttp.ClientSession() as session:
        rest = BinanceRest(config_for(binance_sim), session=session, limiter=clock.limiter())
        trade = binance_sim.trades("binance", SYMBOL)[0]
        [tick] = await rest.historical_trades(SYMBOL, trade.trade_id, limit=1)
        await rest.close()
        assert not session.closed
    assert_tick_is_the_trade(tick, trade)
    assert clock.slept == [], "no wait was needed"
    assert tick.receive_timestamp > 0


async def test_a_closed_client_refuses_requests(binance_sim: ExchangeSimulator) -> None:
    rest = BinanceRest(config_for(binance_sim))
    await rest.historical_trades(SYMBOL, binance_sim.trades("binance", SYMBOL)[0].trade_id, 1)
    await rest.close()
    with pytest.raises(RuntimeError, match="BinanceRest is closed"):
        await rest.historical_trades(SYMBOL, 1, 1)


# -- the venue's clock: read once in a while, not before every klines request ----------
class _ClockedVenue:
    """A Binance stand-in 5 minutes ahead of this machine that counts its requests."""

    AHEAD_MS = 5 * 60_000

    def __init__(self) -> None:
        self.counts = {"time": 0, "klines": 0, "exchangeInfo": 0}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v3/{name}", self.answer)]

    async def answer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.counts[name] += 1
        now_ms = int(time.time() * 1000) + self.AHEAD_MS
        if name == "klines":
            return web.json_response([])
        if name == "exchangeInfo":
            return web.json_response({"serverTime": now_ms, "symbols": []})
        return web.json_response({"serverTime": now_ms})


async def test_concurrent_klines_share_one_reading_of_the_venue_clock() -> None:
    venue = _ClockedVenue()
    async with local_server(venue.routes()) as url, \
            BinanceRest(StreamManagerConfig(binance_rest_url=url)) as rest:
        await asyncio.gather(*(rest.klines(f"X{i}/USDT", "1m", limit=5) for i in range(20)))
        server_ms = await rest._server_time_ms()
    assert venue.counts == {"time": 1, "klines": 20, "exchangeInfo": 0}
    ahead = server_ms - int(time.time() * 1000)
    assert _ClockedVenue.AHEAD_MS - 2000 < ahead <= _ClockedVenue.AHEAD_MS


async def test_the_venue_clock_is_read_again_once_its_reading_is_old(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binance_rest, "SERVER_TIME_TTL_S", 0.0)
    venue = _ClockedVenue()
    async with local_server(venue.routes()) as url, \
            BinanceRest(StreamManagerConfig(binance_rest_url=url)) as rest:
        for _ in range(3):
            await rest.klines(SYMBOL, "1m", limit=5)
    assert venue.counts["time"] == 3


async def test_the_listing_reads_the_venue_clock_for_the_klines() -> None:
    venue = _ClockedVenue()
    async with local_server(venue.routes()) as url, \
            BinanceRest(StreamManagerConfig(binance_rest_url=url)) as rest:
        await rest.listing()
        await rest.klines(SYMBOL, "1m", limit=5)
    assert venue.counts == {"time": 0, "klines": 1, "exchangeInfo": 1}


async def test_a_success_whose_body_is_cut_short_is_asked_once_more(
        binance_sim: ExchangeSimulator) -> None:
    """A 200 with half its body (cut on its way) is asked again, in the budget: one such
    answer costs a request, not the fill; two in a row reach the caller as malformed."""
    chosen = binance_sim.trades("binance", SYMBOL)[100:1100]
    async with BinanceRest(config_for(binance_sim)) as rest:
        binance_sim.garble_rest(1)
        ticks = await rest.historical_trades(SYMBOL, chosen[0].trade_id)
        assert [t.trade_id for t in ticks] == [t.trade_id for t in chosen]
        assert rest.limiter.usage()["requests"] == {"historicalTrades": 2}
        binance_sim.garble_rest(2)
        with pytest.raises(MalformedFrame, match="unexpected historicalTrades answer"):
            await rest.historical_trades(SYMBOL, chosen[0].trade_id)
        assert rest.limiter.usage()["requests"] == {"historicalTrades": 4}
