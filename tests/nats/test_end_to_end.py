"""Across processes: simulator -> ingest worker(s) -> JetStream -> remote StreamManager.

Each test runs its own nats-server with file storage, the exchange simulator
in this process, the ingest workers as child processes, and checks what the
remote side saw against the simulator's own trade log and klines.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.models import Bar, BarFlag, Tick
from bot.data.nats.client import connect
from bot.data.nats.server import NatsServer
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.nats.support import (
    ACK_TIMEOUT_S,
    SYMBOL,
    Process,
    assert_exact_trade_sequence,
    remote,
    start_worker,
    stored_ticks,
    wait_for,
)

SUMS = ("volume", "quote_volume", "buy_volume", "sell_volume", "buy_quote_volume")


def _complete(bars: list[Bar], symbol: str) -> dict[int, Bar]:
    return {b.open_time: b for b in bars if b.symbol == symbol and not b.flags & BarFlag.PARTIAL}


async def test_remote_bars_equal_a_local_managers_and_the_exchanges_klines(
        nats_server: NatsServer, sim: ExchangeSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    symbols = ["BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"]  # spot and a USDⓈ-M perpetual
    for key, value in sim.env().items():
        monkeypatch.setenv(key, value)
    worker = await start_worker(nats_server.url, sim, "w-e2e", symbols, "--status-port", "0")
    status_url = (await worker.readline()).removeprefix("status ")
    local = StreamManager(StreamManagerConfig(supported_timeframes=["1m"]))
    local.add_crypto_symbols(symbols)
    far = remote(nats_server.url, "e2e", symbols)
    local_bars: list[Bar] = []
    remote_bars: list[Bar] = []
    local.on_bar_complete(local_bars.append)
    far.on_bar_complete(remote_bars.append)
    try:
        await local.start()
        await far.start()
        await wait_for(lambda: all(len(_complete(remote_bars, s)) >= 4 for s in symbols), 30,
                       "four complete 1m bars per symbol on the remote side")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{status_url}/health") as resp:
                health = await resp.json()
            async with http.get(f"{status_url}/metrics.json") as resp:
                metrics = await resp.json()
    finally:
        await far.stop()
        await local.stop()
        await worker.stop()
    assert health["worker"]["id"] == "w-e2e" and health["publisher"]["connected"]
    assert metrics["counters"]["publish_stored"] > 0
    for symbol in symbols:
        far_bars, near_bars = _complete(remote_bars, symbol), _complete(local_bars, symbol)
        klines = {k.open_time_ns: k for k in sim.klines(symbol, "1m", limit=1000)}
        common = sorted(set(far_bars) & set(near_bars))
        assert len(common) >= 3, f"{symbol}: too few bars in common: {common}"
        for open_time in common:
            far_bar, near_bar, kline = far_bars[open_time], near_bars[open_time], klines[open_time]
            for name in ("open", "high", "low", "close", "trade_count", "first_trade_id",
                         "last_trade_id", "close_time"):
                assert getattr(far_bar, name) == getattr(near_bar, name), (symbol, name)
            # BACKFILLED tells where the local manager got trades; the remote got all from
            # the stream. Every other flag must agree.
            assert far_bar.flags == near_bar.flags & ~BarFlag.BACKFILLED, symbol
            for name in SUMS:
                assert getattr(far_bar, name) == pytest.approx(getattr(near_bar, name),
                                                               rel=1e-12), (symbol, name)
            assert (round(far_bar.open * 1e8), round(far_bar.high * 1e8),
                    round(far_bar.low * 1e8), round(far_bar.close * 1e8)) == (
                kline.open_e8, kline.high_e8, kline.low_e8, kline.close_e8)
            assert far_bar.trade_count == kline.count
            assert far_bar.volume == pytest.approx(kline.volume_e8 / 1e8, rel=1e-9)
            assert far_bar.buy_volume == pytest.approx(kline.taker_buy_volume_e8 / 1e8,
                                                       rel=1e-9)


async def test_redundant_workers_either_killed_mid_run_deliver_each_trade_once(
        nats_server: NatsServer, sim: ExchangeSimulator) -> None:
    health: dict[str, dict[str, Any]] = {}
    nc = await connect(nats_server.url, "health-watch")

    async def on_health(msg: Any) -> None:
        report = json.loads(msg.data)
        health[report["worker"]] = report["metrics"]["counters"]

    await nc.subscribe("md.health.*", cb=on_health)
    first = await start_worker(nats_server.url, sim, "w-a")
    second = await start_worker(nats_server.url, sim, "w-b")
    far = remote(nats_server.url, "redundant")
    ticks: list[Tick] = []
    far.on_tick(lambda e: ticks.append(e.data))
    workers = [first, second]
    try:
        await far.start()
        await wait_for(lambda: len(ticks) >= 300 and "w-b" in health, 20, "ticks and health")
        first.kill()
        third = await start_worker(nats_server.url, sim, "w-c")
        workers.append(third)
        seen = len(ticks)
        await wait_for(lambda: len(ticks) >= seen + 300, 20, "ticks after the first kill")
        second.kill()
        seen = len(ticks)
        await wait_for(lambda: len(ticks) >= seen + 300, 20, "ticks after the second kill")
        await wait_for(lambda: health.get("w-c", {}).get("publish_duplicates", 0) > 0, 10,
                       "w-c reporting duplicates")
    finally:
        await far.stop()
        for worker in workers:
            await worker.stop()
        await nc.close()
    assert_exact_trade_sequence(ticks, sim.trades("binance", SYMBOL))
    # JetStream, not the consumer, collapsed the copies: both workers cut the same batches,
    # stored once; none carried a trade another had delivered, none reached the aggregator.
    counters = far.get_metrics()["counters"]
    assert counters["duplicate_ticks"] == 0
    assert counters["nats_ticks"] == len(ticks) and counters["nats_overlapping_ticks"] == 0
    assert health["w-b"]["publish_duplicates"] + health["w-b"]["publish_stored"] > 0


async def test_killed_consumer_resumes_after_its_last_ack_without_loss_or_repeat(
        nats_server: NatsServer, sim: ExchangeSimulator, tmp_path: Path) -> None:
    worker = await start_worker(nats_server.url, sim, "w-resume")
    freeze = tmp_path / "freeze"
    killed = await Process.spawn("consumer", [
        "-m", "tests.nats.consumer_proc", nats_server.url, "resume", SYMBOL, str(freeze)], {})
    nc = await connect(nats_server.url, "inspect")
    js = nc.jetstream()
    second: list[Tick] = []
    third: list[Tick] = []
    try:
        printed = [int(await killed.readline()) for _ in range(400)]
        # A batch carries many ticks: killed mid-run once it has acknowledged some.
        while not getattr((await js.consumer_info("MD_TICKS", "resume")).ack_floor,
                          "stream_seq", 0):
            printed += [int(await killed.readline()) for _ in range(20)]
        # Killed inside its tick handler: between two confirmed acks. An ack sent just
        # before a kill reaches the server's ack queue after it, and the floor read here
        # would still move (the server processes acks apart from consumer info requests).
        freeze.touch()
        while not (line := await killed.readline()).startswith("frozen"):
            printed.append(int(line))
        killed.kill()
        await killed.proc.wait()
        floor = (await js.consumer_info("MD_TICKS", "resume")).ack_floor
        assert floor is not None and floor.stream_seq
        acked_last = (await stored_ticks(js, floor.stream_seq))[-1]  # the floor's batch's last

        async def run(into: list[Tick], count: int) -> None:
            manager = remote(nats_server.url, "resume", ack_timeout=ACK_TIMEOUT_S)
            manager.on_tick(lambda e: into.append(e.data))
            await manager.start()
            await wait_for(lambda: len(into) >= count, 20, f"{count} ticks after a restart")
            await manager.stop()

        await run(second, 200)  # after a SIGKILL
        await run(third, 200)  # after a graceful stop
    finally:
        killed.kill()  # a frozen consumer would otherwise outlive a failed test
        await nc.close()
        await worker.stop()
    assert line == "frozen ack_errors=0", "every ack of the killed consumer was confirmed"
    assert acked_last.trade_id in printed, "the killed consumer processed what it acknowledged"
    assert second[0].trade_id == acked_last.trade_id + 1, "resumed right after the last ack"
    assert third[0].trade_id == second[-1].trade_id + 1, "a graceful stop acknowledges all"
    ids = [i for i in printed if i <= acked_last.trade_id] + [t.trade_id for t in second + third]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "no gap and no repeat across restarts"
    assert_exact_trade_sequence(second + third, sim.trades("binance", SYMBOL))


async def test_nats_server_crash_and_restart_loses_no_trade(
        nats_server: NatsServer, sim: ExchangeSimulator) -> None:
    worker = await start_worker(nats_server.url, sim, "w-crash")
    far = remote(nats_server.url, "crash")
    ticks: list[Tick] = []
    far.on_tick(lambda e: ticks.append(e.data))
    try:
        await far.start()
        await wait_for(lambda: len(ticks) >= 300, 20, "ticks before the crash")
        nats_server.kill()
        await asyncio.sleep(1.0)  # trades go on at the exchange meanwhile
        during = sim.trades("binance", SYMBOL)[-1].trade_id
        await asyncio.to_thread(nats_server.start)
        await wait_for(lambda: ticks[-1].trade_id > during + 300, 30,
                       "ticks from after the restart")
    finally:
        await far.stop()
        await worker.stop()
    assert ticks[0].trade_id < during - 300, "the crash happened mid-run"
    assert_exact_trade_sequence(ticks, sim.trades("binance", SYMBOL))
    assert far.get_metrics()["counters"]["duplicate_ticks"] == 0


async def test_workers_cutting_batches_differently_still_deliver_each_trade_once_in_order(
        nats_server: NatsServer, sim: ExchangeSimulator) -> None:
    """A worker sending every trade alone beside one batching 100 ms windows (a rolling change
    of --batch-ms): their messages differ, both are stored, the consumer merges them."""
    alone = await start_worker(nats_server.url, sim, "w-alone", [SYMBOL], "--batch-ms", "0")
    batching = await start_worker(nats_server.url, sim, "w-batch", [SYMBOL], "--batch-ms", "100")
    far = remote(nats_server.url, "mixed")
    ticks: list[Tick] = []
    far.on_tick(lambda e: ticks.append(e.data))
    try:
        await far.start()
        await wait_for(lambda: len(ticks) >= 300, 20, "ticks from both workers")
        alone.kill()
        seen = len(ticks)
        await wait_for(lambda: len(ticks) >= seen + 300, 20, "ticks after the kill")
    finally:
        await far.stop()
        await alone.stop()
        await batching.stop()
    assert_exact_trade_sequence(ticks, sim.trades("binance", SYMBOL))
    counters = far.get_metrics()["counters"]
    assert counters["duplicate_ticks"] == 0 and counters["late_ticks"] == 0
    assert counters["nats_ticks"] == len(ticks), "every copy skipped before the pipeline"
    assert counters["nats_overlapping_ticks"] > 0, "both workers' messages were read"
