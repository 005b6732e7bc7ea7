"""No lost trade over loopback: drops, backfill, REST limits, unrecoverable gaps, warm-up.

The truth is the simulator's own trade log (what the exchange executed) and its
own klines, aggregated by the separately written pandas reference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.sim import ExchangeSimulator
from bot.data.sim.trades import SimTrade
from bot.data.stream_manager import StreamManager
from tests.reference import reference_bars
from tests.streaming import point_at, wait_for

FIELDS = ["open", "high", "low", "close", "volume", "quote_volume", "buy_volume", "sell_volume",
          "buy_quote_volume", "trade_count", "first_trade_id", "last_trade_id"]



def _config(**kwargs: Any) -> StreamManagerConfig:
    base: dict[str, Any] = {"reconnect_delay": 0.05, "max_reconnect_delay": 0.2,
                            "reconnect_attempts": 100, "connect_timeout": 5.0,
                            "supported_timeframes": ["1m", "5m"], "bar_history_size": 50}
    base.update(kwargs)
    return StreamManagerConfig(**base)


def _as_tick(symbol: str, t: SimTrade) -> Tick:
    """The trade as Binance reports it (millisecond time, taker side from ``m``)."""
    return Tick("binance", symbol, float(t.price), float(t.qty),
                Side.SELL if t.buyer_is_maker else Side.BUY, t.trade_id,
                t.time_ns // 1_000_000 * 1_000_000, t.time_ns)



def _assert_bars_equal_truth(sim: ExchangeSimulator, bars: list[Bar]) -> None:
    """Every completed bar with trades equals the reference over the exchange's trade log."""
    by_symbol: dict[tuple[str, str], list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault((bar.symbol, bar.timeframe), []).append(bar)
    for (symbol, timeframe), got in by_symbol.items():
        truth = reference_bars([_as_tick(symbol, t) for t in sim.trades("binance", symbol)],
                               timeframe).loc[symbol]
        for bar in got:
            if bar.flags & BarFlag.EMPTY:
                assert bar.open_time not in truth.index, (symbol, timeframe, bar.open_time)
                continue
            row = truth.loc[bar.open_time]
            for name in FIELDS:
                assert getattr(bar, name) == pytest.approx(row[name], rel=1e-9), \
                    (symbol, timeframe, bar.open_time, name)


async def test_twenty_drops_over_fifty_thousand_trades_give_the_uninterrupted_bars(
        monkeypatch: pytest.MonkeyPatch) -> None:
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    async with ExchangeSimulator(symbols, seed=21, speed=120.0, history_seconds=900) as sim:
        point_at(sim, monkeypatch)
        # The grace is market time: 2 s of real time at 120x, as at normal speed.
        manager = StreamManager(_config(bar_close_grace_ms=240_000), clock=sim.now_ns)
        manager.add_crypto_symbols(symbols)
        completed: list[Bar] = []
        seen: Counter[tuple[str, int]] = Counter()
        manager.on_bar_complete(completed.append)
        manager.on_tick(lambda e: seen.update([(e.data.symbol, e.data.trade_id)]))
        await manager.start()
        sim.drop_randomly(0.002)
        await wait_for(lambda: manager.get_metrics()["counters"]["reconnects"] >= 20
                        and len(seen) >= 50_000, 90)
        sim.drop_randomly(0)
        await wait_for(lambda: not manager.get_health()["backfilling"])
        await manager.stop()
        counters = manager.get_metrics()["counters"]

        assert max(seen.values()) == 1, "no trade delivered twice as a TICK"
        assert counters["gaps_found"] >= 20 and counters["gaps_unfilled"] == 0
        assert counters["trades_backfilled"] > 0
        keys = Counter((b.symbol, b.timeframe, b.open_time) for b in completed)
        assert max(keys.values()) == 1, "every bar completes once"
        assert not any(b.flags & (BarFlag.GAP | BarFlag.PARTIAL) for b in completed)
        assert {b.symbol for b in completed} == set(symbols)
        _assert_bars_equal_truth(sim, completed)
        for symbol in symbols:  # every trade up to the last one seen arrived, in sequence
            ids = sorted(i for s, i in seen if s == symbol)
            assert ids == list(range(ids[0], ids[-1] + 1))


async def test_a_drop_inside_an_interval_completes_that_bar_once_complete_and_backfilled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=5, speed=20.0, history_seconds=600) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(_config(reconnect_delay=0.5, max_reconnect_delay=0.6),
                                clock=sim.now_ns)
        manager.add_crypto_symbols(["BTC/USDT"])
        completed: list[Bar] = []
        manager.on_bar_complete(completed.append)
        await manager.start()
        await wait_for(lambda: manager.get_current_bar("BTC/USDT") is not None)
        dropped_in = manager.get_current_bar("BTC/USDT")
        assert dropped_in is not None
        sim.drop_all()
        await wait_for(lambda: any(b.open_time == dropped_in.open_time and b.timeframe == "1m"
                                    for b in completed))
        await manager.stop()

    bar = next(b for b in completed if b.open_time == dropped_in.open_time and b.timeframe == "1m")
    assert sum(b.open_time == bar.open_time and b.timeframe == "1m" for b in completed) == 1
    assert bar.flags & BarFlag.BACKFILLED and bar.is_complete_data
    assert manager.get_metrics()["counters"]["trades_backfilled"] > 0
    _assert_bars_equal_truth(sim, [bar])


async def test_a_rest_429_is_answered_by_waiting_what_retry_after_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=6, speed=20.0) as sim:
        point_at(sim, monkeypatch)
        sim.fail_rest(1, status=429, retry_after=1)
        manager = StreamManager(_config(), clock=sim.now_ns)
        manager.add_crypto_symbols(["BTC/USDT"])
        completed: list[Bar] = []
        manager.on_bar_complete(completed.append)
        await manager.start()
        await wait_for(lambda: any(b.timeframe == "1m" for b in completed))
        limiter = manager._sources["binance"].rest.limiter
        await manager.stop()
    assert 1.0 in limiter.waits, f"waited {limiter.waits}, Retry-After said 1 s"
    first = next(b for b in completed if b.timeframe == "1m")
    assert first.is_complete_data, "the warm-up fill succeeded after the wait"
    _assert_bars_equal_truth(sim, [first])


async def test_a_gap_older_than_the_rest_history_is_flagged_and_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=7, speed=20.0, retention=50) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(_config(reconnect_delay=2.0, max_reconnect_delay=2.0),
                                clock=sim.now_ns)
        manager.add_crypto_symbols(["BTC/USDT"])
        completed: list[Bar] = []
        health: list[dict[str, Any]] = []
        manager.on_bar_complete(completed.append)
        manager.on_health(lambda e: health.append(e.data))
        await manager.start()
        await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > 0)
        sim.drop_all()  # 2 s down at 20x: far more than 50 trades are missed
        await wait_for(lambda: manager.get_metrics()["counters"]["gaps_unfilled"] >= 1)
        await wait_for(lambda: any(b.flags & BarFlag.GAP for b in completed))
        await manager.stop()

    gap_reports = [h for h in health if h.get("gaps")]
    assert gap_reports and gap_reports[0]["status"] != "healthy"
    gap = gap_reports[0]["gaps"][0]
    assert gap["symbol"] == "BTC/USDT" and "REST history" in gap["cause"]
    first_missing, last_missing = gap["missing_ids"]
    assert last_missing >= first_missing
    flagged = [b for b in completed if b.flags & BarFlag.GAP]
    assert all(b.open_time <= gap["end_ns"] and b.close_time >= gap["start_ns"] for b in flagged)


async def test_warm_up_serves_500_bars_at_start_and_a_whole_first_streamed_bar(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=8, speed=20.0, history_seconds=510 * 60,
                                 retention=2_000_000) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(_config(bar_history_size=500, supported_timeframes=["1m"]),
                                clock=sim.now_ns)
        manager.add_crypto_symbols(["BTC/USDT"])
        completed: list[Bar] = []
        manager.on_bar_complete(completed.append)
        await manager.start()
        frame = manager.get_bar_dataframe("BTC/USDT", "1m", limit=500)
        assert not completed, "the history is there before the first streamed bar completes"
        assert len(frame) == 500
        await wait_for(lambda: bool(completed))
        await manager.stop()
        first = completed[0]
        kline = next(k for k in sim.klines("BTC/USDT", "1m", limit=1000)
                     if k.open_time_ns == first.open_time)

    assert first.is_complete_data and not first.flags & BarFlag.PARTIAL
    assert frame.index[-1].value == first.open_time - 60 * 10**9, "history ends where stream starts"
    assert (first.open, first.high, first.low, first.close) == (
        kline.open_e8 / 1e8, kline.high_e8 / 1e8, kline.low_e8 / 1e8, kline.close_e8 / 1e8)
    assert first.volume == pytest.approx(kline.volume_e8 / 1e8, rel=1e-9)
    assert first.buy_volume == pytest.approx(kline.taker_buy_volume_e8 / 1e8, rel=1e-9)
    assert first.trade_count == kline.count


async def test_an_alpaca_reconnect_refills_the_window_so_stock_bars_are_uninterrupted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.data.aggregation import BarAggregator
    from bot.data.venues.alpaca.rest import AlpacaRest
    from bot.data.venues.alpaca.session import AlpacaCredentials
    from tests.rest.conftest import alpaca_stream_ticks

    async with ExchangeSimulator([], ["AAPL"], seed=9, speed=20.0, history_seconds=600) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(_config(reconnect_delay=1.0, max_reconnect_delay=1.2,
                                        supported_timeframes=["1m"]), clock=sim.now_ns)
        manager.add_stock_symbols(["AAPL"])
        completed: list[Bar] = []
        manager.on_bar_complete(completed.append)
        await manager.start()
        await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > 20)
        sim.drop_all()  # about 20 s of market time missed at 20x
        await wait_for(lambda: manager.get_metrics()["counters"]["reconnects"] >= 1)
        await wait_for(lambda: manager.get_metrics()["counters"]["trades_backfilled"] > 0
                        and len(completed) >= 3)
        await manager.stop()
        config = StreamManagerConfig(alpaca_rest_url=sim.alpaca_rest_url)
        async with AlpacaRest(config, AlpacaCredentials("sim-key", "sim-secret")) as rest:
            official = {b.open_time: b for b in await rest.bars("AAPL", "1m", limit=100,
                                                                end_ns=sim.now_ns())}
        log = sim.trades("alpaca", "AAPL")

    assert manager.get_metrics()["counters"]["gaps_unfilled"] == 0
    uninterrupted = BarAggregator(["1m"])
    uninterrupted.configure_symbol("alpaca", "AAPL", emit_empty=False, sequenced=False)
    truth: dict[int, Bar] = {}
    for tick in alpaca_stream_ticks(log, "AAPL"):
        for bar in uninterrupted.add(tick) or ():
            truth[bar.open_time] = bar
    for bar in completed:
        assert bar.is_complete_data
        kline = official[bar.open_time]  # the venue's own bar
        assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (
            kline.open, kline.high, kline.low, kline.close, kline.trade_count)
        assert bar.volume == pytest.approx(kline.volume, rel=1e-9)
        same = truth[bar.open_time]  # tick-rule sides as one uninterrupted session gives them
        assert (bar.buy_volume, bar.sell_volume) == pytest.approx(
            (same.buy_volume, same.sell_volume), rel=1e-9)
    assert any(b.flags & BarFlag.BACKFILLED for b in completed)
