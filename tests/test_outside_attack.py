"""Promises held against hostile input found by attacking the stream from outside.

Each test names the behaviour that must hold and drives the real code path
(venue session, transport, pipeline) over loopback or directly, fast.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot.data import StreamManager
from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.models import BarFlag, Side, Tick
from bot.data.pipeline import TickPipeline
from bot.data.recovery import GapRecovery, GapReport
from bot.data.sim import ExchangeSimulator
from bot.data.store import TradeStore
from bot.data.supervision import Supervisor
from bot.data.transport import Backoff, Connection
from bot.data.venues.alpaca.session import AlpacaCredentials, AlpacaSession, split_stock_trade_id
from bot.data.venues.history import TradePosition
from tests.streaming import fast_config, point_at, wait_for

CREDS = AlpacaCredentials("PKOUTSIDEKEY1", "outside-secret-value-2")
TIME = "2024-03-12T14:30:00.123456789Z"


def stock_trade(trade_id: int, **fields: Any) -> dict[str, Any]:
    """An Alpaca stock trade message as the stream sends it."""
    return {"T": "t", "S": "AAPL", "i": trade_id, "x": "V", "p": 170.25, "s": 10, "t": TIME,
            "c": ["@"], "z": "C", **fields}


@asynccontextmanager
async def alpaca_stream(*frames: str) -> AsyncIterator[tuple[Connection, list[Tick]]]:
    """A local Alpaca stream server (handshake as documented, then ``frames``) and a started
    ``Connection`` of an :class:`AlpacaSession` to it; yields it and the ticks it passed on."""
    async def script(ws: ServerConnection) -> None:
        await ws.send('[{"T":"success","msg":"connected"}]')
        await ws.recv()  # auth
        await ws.send('[{"T":"success","msg":"authenticated"}]')
        subscribe = json.loads(await ws.recv())
        await ws.send(json.dumps([{"T": "subscription", "trades": subscribe["trades"]}]))
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    ticks: list[Tick] = []
    async with serve(script, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        config = StreamManagerConfig(alpaca_ws_url=url, alpaca_feed="iex")
        conn = Connection("alpaca-test", lambda symbols: AlpacaSession(config, CREDS, symbols),
                          ["AAPL"], on_tick=ticks.append, on_event=lambda _c, _e: None,
                          on_state=lambda _c: None, backoff=Backoff(0.05, 0.1), max_attempts=3,
                          connect_timeout=5.0, silence_timeout=30.0, stable_after=60.0)
        conn.start()
        try:
            yield conn, ticks
        finally:
            await conn.stop()


BAD_MESSAGES = {
    "a required field missing": {"T": "t", "S": "AAPL", "t": TIME},
    "conditions not a list": stock_trade(2, c="@"),
    "price a string": stock_trade(2, p="170.25"),
    "a time with ten fraction digits": stock_trade(2, t="2024-03-12T14:30:00.1234567891Z"),
    "a time without an offset": stock_trade(2, t="2024-03-12T14:30:00.5"),
    "an id beyond 56 bits": stock_trade(2, i=2**60),
    "not an object": 5,
    "an object without a type": {"S": "AAPL"},
}


@pytest.mark.parametrize("bad", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
async def test_one_bad_alpaca_message_costs_only_itself_not_its_frames_other_trades(
        bad: object) -> None:
    # A data frame carries many trades; the one that cannot be read is counted and skipped,
    # the good ones around it reach the pipeline.
    frame = json.dumps([stock_trade(1), bad, stock_trade(3)])
    async with alpaca_stream(frame, json.dumps([stock_trade(4)])) as (conn, ticks):
        await wait_for(lambda: conn.stats.frames >= 2, timeout=10)
        await asyncio.sleep(0.05)
        assert [t.trade_id & (2**56 - 1) for t in ticks] == [1, 3, 4]
        assert conn.stats.malformed == 1


SECOND = 10**9
T0 = 1_735_689_600 * SECOND  # a minute boundary


class FailingHistory:
    """A venue's REST history that refuses every fetch (a ban, an outage)."""

    sequenced = True
    tick_rule = False

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        raise ConnectionError("REST refused")


def btc(trade_id: int, ts: int) -> Tick:
    return Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY, trade_id, ts, T0 + 10 * SECOND)


async def test_a_failed_fill_after_a_trade_stamped_before_the_last_reports_its_gap_and_streams_on(
        ) -> None:
    # Exchange times need not follow trade ids: the trade that ends a gap may carry a time
    # a millisecond before the last trade's. The gap is reported and flagged all the same,
    # and the symbol's live ticks go on; they never wait behind a fill that died.
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]), clock=lambda: T0)
    reports: list[GapReport] = []
    recovery = GapRecovery(pipeline, {"binance": FailingHistory()},
                           clock=lambda: T0 + 10 * SECOND, on_gap=reports.append)
    recovery.track("binance", "BTC/USDT")
    for tick in (btc(1, T0 + 5 * SECOND), btc(2, T0 + 5 * SECOND),
                 btc(5, T0 + 5 * SECOND - 1_000_000)):  # ids 3 and 4 missing
        recovery.on_tick(tick)
    await wait_for(lambda: not recovery.filling_symbols(), timeout=2)
    for i in range(6, 20):
        recovery.on_tick(btc(i, T0 + 6 * SECOND))

    assert [(r.start_ns, r.end_ns, r.missing_ids) for r in reports] == [
        (T0 + 5 * SECOND - 1_000_000, T0 + 5 * SECOND, (3, 4))]
    assert pipeline.ticks_accepted == 2 + 1 + 14
    bars = pipeline.advance(T0 + 2 * 60 * SECOND)
    assert [b.trade_count for b in bars] == [17] and bars[0].flags & BarFlag.GAP


async def test_a_fill_that_raises_releases_its_symbol_and_is_reported_as_a_failed_task() -> None:
    # A bug behind the fill (here: the gap callback) must not leave the symbol buffering
    # forever with its bars held, and must show in health as a failed task.
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]), clock=lambda: T0)
    supervisor = Supervisor()

    def broken_callback(_report: GapReport) -> None:
        raise RuntimeError("bug in a gap callback")

    recovery = GapRecovery(pipeline, {"binance": FailingHistory()},
                           clock=lambda: T0 + 10 * SECOND, on_gap=broken_callback,
                           supervisor=supervisor)
    recovery.track("binance", "BTC/USDT")
    for tick in (btc(1, T0 + 5 * SECOND), btc(5, T0 + 6 * SECOND)):
        recovery.on_tick(tick)
    await wait_for(lambda: not recovery.filling_symbols(), timeout=2)
    recovery.on_tick(btc(6, T0 + 7 * SECOND))

    assert pipeline.ticks_accepted == 3
    assert any("backfill-BTC/USDT" in reason and "bug in a gap callback" in reason
               for reason in supervisor.reasons())


async def _streaming_then_cut_off(sim: ExchangeSimulator,
                                  backfill_timeout_seconds: float) -> StreamManager:
    """A started manager streaming BTC/USDT from ``sim``, whose stream then drops while
    its REST refuses every request (the caller stops the manager)."""
    manager = StreamManager(fast_config(warm_up=False,
                                        backfill_timeout_seconds=backfill_timeout_seconds))
    manager.add_crypto_symbols(["BTC/USDT"])
    await manager.start()
    try:
        await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > 5, timeout=10)
    except BaseException:
        await manager.stop()
        raise
    sim.fail_rest(10_000, status=503)
    sim.drop_all()
    return manager


async def test_a_reconnect_fill_that_fails_while_the_venue_clock_leads_reports_a_gap_and_streams_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The simulator's clock runs 30 s ahead of ours (a venue clock the gate follows). The
    # stream drops and REST refuses the fill: the outage is a reported gap, and the symbol
    # streams on after it instead of buffering behind the fill forever.
    async with ExchangeSimulator(symbols=["BTC/USDT"], history_seconds=60,
                                 start_time_ns=time.time_ns() + 30 * SECOND) as sim:
        point_at(sim, monkeypatch)
        manager = await _streaming_then_cut_off(sim, backfill_timeout_seconds=0.5)
        try:
            await wait_for(lambda: manager.get_health()["gaps"], timeout=10)
            streamed = manager.get_metrics()["counters"]["ticks"]
            await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > streamed + 5,
                           timeout=10)
            gap = manager.get_health()["gaps"][-1]
            assert gap["symbol"] == "BTC/USDT" and gap["start_ns"] <= gap["end_ns"]
            assert not manager.get_health()["backfilling"]
        finally:
            await manager.stop()


class BlockedHistory:
    """A venue's REST history whose fetches wait until ``answer`` is set, then serve ``trades``."""

    sequenced = True
    tick_rule = False

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.trades: list[Tick] = []

    async def fetch(self, symbol: str, after: TradePosition, until: Tick | None,
                    now_ns: int) -> list[Tick]:
        await self.answer.wait()
        hi = until.trade_id if until is not None else 1 << 62
        return [t for t in self.trades if after.last_id < t.trade_id < hi]


async def test_a_stop_during_a_fill_leaves_no_symbol_filling_or_held_for_the_next_start() -> None:
    # stop() cancels the fill; the next start must not find the symbol still waiting for it
    # (its live ticks buffered forever, its bars never completed by the clock).
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]), clock=lambda: T0)
    history = BlockedHistory()
    history.trades = [btc(i, T0 + 5 * SECOND) for i in range(1, 30)]
    recovery = GapRecovery(pipeline, {"binance": history}, clock=lambda: T0 + 10 * SECOND)
    recovery.track("binance", "BTC/USDT")
    recovery.on_tick(history.trades[0])
    recovery.on_tick(history.trades[4])  # ids 2-4 missing: a fill starts and waits on REST
    await asyncio.sleep(0.01)
    assert recovery.filling_symbols() == ["BTC/USDT"]
    recovery.disconnected(["BTC/USDT"])  # and the stream went down before the stop
    await recovery.stop()

    recovery.track("binance", "BTC/USDT")  # started again: REST answers now
    history.answer.set()
    for tick in history.trades[10:20]:
        recovery.on_tick(tick)
    await wait_for(lambda: not recovery.filling_symbols(), timeout=2)
    bars = pipeline.advance(T0 + 2 * 60 * SECOND)  # the clock completes the quiet bar

    assert [b.trade_count for b in bars] == [20]  # 1, 5 before; 6-10 and 11-20 after
    assert bars[0].first_trade_id == 1 and bars[0].last_trade_id == 20


async def test_a_restart_during_a_failing_fill_streams_the_symbol_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"], history_seconds=60) as sim:
        point_at(sim, monkeypatch)
        manager = await _streaming_then_cut_off(sim, backfill_timeout_seconds=30)
        try:
            await wait_for(lambda: manager.get_health()["backfilling"], timeout=10)
            await manager.stop()
            sim.clear_faults()
            await manager.start()
            streamed = manager.get_metrics()["counters"]["ticks"]
            await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] > streamed + 5,
                           timeout=10)
        finally:
            await manager.stop()


async def test_a_runtime_subscription_whose_warm_up_fails_still_streams_the_symbol(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # Re-adding a symbol reads its stored trades; a disk error there fails the subscription
    # job (reported), but must not leave the symbol waiting for a warm-up fill that never
    # starts: its live ticks buffered without bound, its bars held, for good.
    async with ExchangeSimulator(symbols=["BTC/USDT", "ETH/USDT"], history_seconds=60) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(store_path=str(tmp_path), store_flush_interval=0.2))
        manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
        await manager.start()
        try:
            await wait_for(lambda: len(manager.get_ticks("ETH/USDT", 1000)) > 5, timeout=10)
            await asyncio.sleep(0.5)  # stored
            manager.remove_symbols(["ETH/USDT"])
            await wait_for(lambda: "ETH/USDT" not in manager.symbols, timeout=5)
            await asyncio.sleep(0.2)

            def disk_error(*_args: Any, **_kwargs: Any) -> None:
                raise OSError(5, "Input/output error")

            monkeypatch.setattr(TradeStore, "tick_records", disk_error)
            manager.add_crypto_symbols(["ETH/USDT"])
            await wait_for(lambda: "Input/output error" in str(manager.get_health()["reasons"]),
                           timeout=10)
            await wait_for(lambda: len(manager.get_ticks("ETH/USDT", 1000)) > 5, timeout=10)
            assert "ETH/USDT" not in manager.get_health()["backfilling"]
        finally:
            await manager.stop()


@pytest.mark.parametrize("limit", ["5", 2.5, True, -1])
def test_a_limit_that_is_no_count_is_refused_naming_the_limit_and_what_is_allowed(
        limit: object) -> None:
    manager = StreamManager(StreamManagerConfig())
    manager.add_crypto_symbols(["BTC/USDT"])
    for read in (manager.get_ticks, manager.get_bars, manager.get_bar_dataframe):
        with pytest.raises(ConfigError, match=r"limit=.*integer >= 0.*None"):
            read("BTC/USDT", limit=limit)  # type: ignore[arg-type]


def test_a_limit_of_zero_none_or_a_count_reads_the_newest() -> None:
    manager = StreamManager(StreamManagerConfig())
    manager.add_crypto_symbols(["BTC/USDT"])
    for limit in (0, 3, None):
        assert manager.get_ticks("BTC/USDT", limit=limit) == []  # type: ignore[arg-type]
        assert manager.get_bars("BTC/USDT", limit=limit) == []  # type: ignore[arg-type]
        assert manager.get_bar_dataframe("BTC/USDT", limit=limit).empty  # type: ignore[arg-type]


async def test_a_dashboard_publisher_that_fails_is_reported_and_restarted() -> None:
    # The dashboard's push loop is a background task like the stream's own: a failure in it
    # (here: a defect in building an update) shows in health and the loop goes on, instead
    # of every open page freezing silently.
    from bot.data.dashboard import DashboardServer

    manager = StreamManager(StreamManagerConfig())
    manager.add_crypto_symbols(["BTC/USDT"])
    server = DashboardServer(manager, "127.0.0.1", 0, push_interval=0.01)
    calls = 0
    update = server.feed.update

    def failing_once() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("defect building an update")
        return update()

    server.feed.update = failing_once  # type: ignore[method-assign]
    await server.start()
    try:
        await wait_for(lambda: calls >= 3, timeout=5)
        assert any("dashboard-publisher" in reason and "defect building an update" in reason
                   for reason in manager.get_health()["reasons"])
    finally:
        await server.stop()


async def alpaca_trades_lost(monkeypatch: pytest.MonkeyPatch, fault: str) -> dict[str, int]:
    """Per stock symbol, the simulator's trades (30x its clock) that reached no TICK and lie
    in no reported gap while ``fault`` ("drops" or "garbled") was done to the stream."""
    async with ExchangeSimulator(symbols=[], stock_symbols=["AAPL", "TSLA"], seed=1,
                                 history_seconds=30, speed=30) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config(supported_timeframes=["1m"]))
        ticks: list[Tick] = []
        manager.on_tick(lambda event: ticks.append(event.data))
        manager.add_stock_symbols(["AAPL", "TSLA"])
        await manager.start()
        try:
            start = sim.now_ns()
            for _ in range(3):
                await asyncio.sleep(2)
                if fault == "drops":
                    sim.drop_all()
                else:
                    sim.send_malformed(0.05)
            sim.clear_faults()
            await asyncio.sleep(3)
            end = sim.now_ns() - 60 * SECOND  # well before the last trades still arriving
            gaps = manager.get_health()["gaps"]
        finally:
            await manager.stop()
    lost = {}
    for symbol in ("AAPL", "TSLA"):
        got = {split_stock_trade_id(t.trade_id) for t in ticks if t.symbol == symbol}
        missed = [t for t in sim.trades("alpaca", symbol) if start <= t.time_ns <= end
                  and (t.exchange, t.trade_id) not in got
                  and not any(g["symbol"] == symbol and g["start_ns"] <= t.time_ns <= g["end_ns"]
                              for g in gaps)]
        lost[symbol] = len(missed)
    return lost


async def test_every_alpaca_trade_across_reconnects_reaches_tick_or_a_reported_gap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Alpaca trades carry no sequence: a reconnect's window is filled from REST up to the
    # venue's now as estimated, which trails a fast venue clock. The first trade the stream
    # brings back must bound the window instead, or the trades between are lost unreported.
    assert await alpaca_trades_lost(monkeypatch, "drops") == {"AAPL": 0, "TSLA": 0}


@pytest.mark.xfail(strict=True, reason=(
    "a frame the Alpaca session cannot read is only counted (transport.Connection."
    "_parse_error): with no trade sequence nothing opens a gap for the trades it carried; "
    "filling a window per unreadable frame floods REST under garbage, so the span should be "
    "flagged GAP between each symbol's trades around it instead (recovery.GapRecovery)"))
async def test_every_alpaca_trade_around_unreadable_frames_reaches_tick_or_a_reported_gap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A frame that cannot be read loses the trades it carried, and with no sequence nothing
    # else shows it: those trades must reach a reported gap, the bars around them flagged.
    assert await alpaca_trades_lost(monkeypatch, "garbled") == {"AAPL": 0, "TSLA": 0}
