"""RemoteStreamManager and its reader against a real JetStream, fed by an in-process publisher.

The ticks are synthetic with a hand-made pattern, so the expected bars are
computed here with plain Python over the same list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from nats.aio.client import Client

from bot.data.errors import StreamError, UnknownSeriesError
from bot.data.models import Bar, Side, Tick
from bot.data.nats.client import connect
from bot.data.nats.codec import Watermark, batch_codec, tick_codec
from bot.data.nats.publisher import Publisher
from bot.data.nats.server import NatsServer
from bot.data.nats.streams import default_streams, ensure_streams
from tests.nats.support import remote, wait_for

T0 = 1_735_689_600_000_000_000  # 2025-01-01 00:00 UTC: far behind the wall clock
STEP_NS = 10_000_000  # one trade every 10 ms: 6,000 per minute
MINUTE_NS = 60_000_000_000


def synthetic(symbol: str, first: int, count: int, t0: int = T0) -> list[Tick]:
    """Trades ``first .. first+count-1`` from ``t0``; price 100 + id % 7 (a minute spans 100..106).

    Live-like ticks start at the wall clock (a stream that caught up completes its
    quiet bars by the clock); the backlog test's start years before it.
    """
    return [Tick("binance", symbol, 100.0 + i % 7, 0.5, Side.BUY if i % 2 else Side.SELL, i,
                 t0 + i * STEP_NS, t0 + i * STEP_NS) for i in range(first, first + count)]


@pytest.fixture
async def publisher(nats_server: NatsServer) -> AsyncIterator[Publisher]:
    nc = await connect(nats_server.url, "test-publisher")
    await ensure_streams(nc.jetstream(), default_streams())
    pub = Publisher(nc)
    await pub.start()
    yield pub
    await pub.stop()
    await nc.close()


async def test_backlog_far_behind_the_clock_builds_every_bar_whole(
        nats_server: NatsServer, publisher: Publisher) -> None:
    ticks = synthetic("BTC/USDT", 0, 18_600)  # three whole minutes and a few seconds
    for tick in ticks:
        publisher.publish(tick)
    assert await publisher.flush(30)
    manager = remote(nats_server.url, "backlog")
    manager.source.batch = 100  # many fetches: the clock ticks many times during the catch-up
    completed: list[Bar] = []
    manager.on_bar_complete(completed.append)
    await manager.start()
    try:
        await wait_for(lambda: manager.get_metrics()["source"]["ticks"] == len(ticks), 30,
                       "the whole backlog read")
        counters = manager.get_metrics()["counters"]
        # Once caught up, the clock completes the empty minutes from 2025 until now too:
        # only the backlog's own minutes are checked.
        bars = [b for b in completed if b.open_time < T0 + 3 * MINUTE_NS]
    finally:
        await manager.stop()
    assert counters["late_ticks"] == 0 and counters["ticks"] == len(ticks)
    assert [b.open_time for b in bars][:3] == [T0, T0 + MINUTE_NS, T0 + 2 * MINUTE_NS]
    for bar in bars[:3]:
        minute = [t for t in ticks if bar.open_time <= t.timestamp < bar.open_time + MINUTE_NS]
        assert (bar.open, bar.high, bar.low, bar.close) == (
            minute[0].price, max(t.price for t in minute), min(t.price for t in minute),
            minute[-1].price)
        assert bar.trade_count == len(minute) == 6000
        assert bar.volume == pytest.approx(0.5 * len(minute))


async def test_a_delivery_taken_by_another_reader_is_fetched_again_in_order(
        nats_server: NatsServer, publisher: Publisher) -> None:
    manager = remote(nats_server.url, "astray")
    manager.source.batch = 50
    seen: list[int] = []
    manager.on_tick(lambda e: seen.append(e.data.trade_id))
    feed = asyncio.create_task(_feed(publisher, "BTC/USDT", 4000, time.time_ns()))
    await manager.start()
    thief: Client = await connect(nats_server.url, "thief")
    try:
        await wait_for(lambda: len(seen) >= 500, 20, "ticks before the theft")
        sub = await thief.jetstream().pull_subscribe_bind(durable="astray", stream="MD_TICKS")
        stolen = await sub.fetch(5, timeout=5)
        await feed
        await wait_for(lambda: len(seen) >= 4000, 20, "every tick")
        repositions = manager.get_metrics()["counters"]["nats_repositions"]
    finally:
        await manager.stop()
        await thief.close()
    assert stolen, "the thief took deliveries (up to 5: the manager competes for them)"
    assert seen == list(range(4000)), "the stolen deliveries came back, in order"
    assert repositions >= 1


async def test_symbols_added_and_removed_at_runtime_change_what_is_read(
        nats_server: NatsServer, publisher: Publisher) -> None:
    manager = remote(nats_server.url, "runtime")
    now = time.time_ns()
    await manager.start()
    try:
        for tick in synthetic("BTC/USDT", 0, 100, now):
            publisher.publish(tick)
        await wait_for(lambda: len(manager.get_ticks("BTC/USDT", 1000)) == 100)
        manager.add_crypto_symbols(["ETH/USDT"])
        await wait_for(lambda: "md.tick.binance.ETH_USDT" in
                       manager.get_metrics()["source"]["filter_subjects"])
        for tick in synthetic("ETH/USDT", 0, 50, now):
            publisher.publish(tick)
        await wait_for(lambda: len(manager.get_ticks("ETH/USDT", 1000)) == 50)
        manager.remove_symbols(["BTC/USDT"])
        await wait_for(lambda: manager.get_metrics()["source"]["filter_subjects"] ==
                       ["md.tick.binance.ETH_USDT"])
        for tick in synthetic("BTC/USDT", 100, 50, now) + synthetic("ETH/USDT", 50, 50, now):
            publisher.publish(tick)
        await wait_for(lambda: len(manager.get_ticks("ETH/USDT", 1000)) == 100)
        with pytest.raises(UnknownSeriesError, match="ETH/USDT"):
            manager.get_ticks("BTC/USDT")
        assert "BTC/USDT" not in manager.pipeline.ticks
    finally:
        await manager.stop()


async def test_missing_stream_fails_at_start_naming_it(nats_server: NatsServer) -> None:
    manager = remote(nats_server.url, "nostream")
    with pytest.raises(StreamError, match=r"MD_TICKS.*not found.*ingest worker"):
        await manager.start()
    assert not manager.is_running


async def _feed(publisher: Publisher, symbol: str, count: int, t0: int, chunk: int = 40) -> None:
    """Publish ``count`` trades a chunk at a time, so the stream grows while it is read."""
    for first in range(0, count, chunk):
        for tick in synthetic(symbol, first, min(chunk, count - first), t0):
            publisher.publish(tick)
        await asyncio.sleep(0.01)


async def test_a_bar_waits_for_the_workers_watermark_not_the_local_clock(
        nats_server: NatsServer, publisher: Publisher) -> None:
    """A worker recovering a gap goes quiet; its consumers must not complete the bar short."""
    manager = remote(nats_server.url, "watermark")
    completed: list[Bar] = []
    manager.on_bar_complete(completed.append)
    minute = synthetic("BTC/USDT", 0, 6000)  # one whole minute, a year behind the local clock
    await manager.start()
    try:
        for tick in minute[:3000]:
            publisher.publish(tick)
        assert await publisher.flush(10)
        await wait_for(lambda: manager.get_metrics()["counters"]["ticks"] == 3000, 20,
                       "the first half read")
        await asyncio.sleep(1.0)  # four turns of the local clock, each far past the minute
        assert not completed, "the local clock completed a bar the worker had not"
        for tick in minute[3000:]:  # the recovered trades, then the worker's word
            publisher.publish(tick)
        publisher.publish(Watermark("binance", "BTC/USDT", T0 + MINUTE_NS))
        assert await publisher.flush(10)
        await wait_for(lambda: bool(completed), 20, "the bar completed on the watermark")
        counters = manager.get_metrics()["counters"]
    finally:
        await manager.stop()
    bar = completed[0]
    assert (bar.open_time, bar.trade_count, bar.volume) == (T0, 6000, pytest.approx(3000.0))
    assert counters["late_ticks"] == 0 and counters["nats_watermarks"] == 1


async def test_a_batch_cut_short_beside_the_whole_one_delivers_each_trade_once_in_order(
        nats_server: NatsServer, publisher: Publisher) -> None:
    """A worker that could fill a batch only partly stores it beside another's whole one."""
    nc = await connect(nats_server.url, "hasty")
    now = time.time_ns()
    ticks = synthetic("BTC/USDT", 0, 200, now)  # 10 ms apart: five per 50 ms window
    steps = iter(range(0, 1 << 62, 10**9))
    hasty = Publisher(nc, clock=lambda: next(steps))  # every open batch is overdue at once
    await hasty.start()
    for start in range(0, len(ticks), 3):
        for tick in ticks[start:start + 3]:
            hasty.publish(tick)
        await asyncio.sleep(0.005)
    for tick in ticks:
        publisher.publish(tick)
    assert await hasty.flush(10) and await publisher.flush(10)
    await hasty.stop()
    await nc.close()
    manager = remote(nats_server.url, "overlap")
    seen: list[int] = []
    manager.on_tick(lambda e: seen.append(e.data.trade_id))
    await manager.start()
    try:
        await wait_for(lambda: len(seen) >= 200, 20, "every trade")
        await asyncio.sleep(0.2)  # anything more would be a repeat
        counters = manager.get_metrics()["counters"]
    finally:
        await manager.stop()
    windows = len({t.timestamp // 50_000_000 for t in ticks})
    assert hasty.counters.tick_messages > publisher.counters.tick_messages == windows
    assert seen == list(range(200))
    assert counters["nats_ticks"] == 200 and counters["duplicate_ticks"] == 0
    assert counters["nats_overlapping_ticks"] > 0


def test_batches_single_ticks_and_overlaps_reach_the_pipeline_once_in_order() -> None:
    manager = remote("nats://127.0.0.1:1", "unused")
    source = manager.source
    source._accepted = frozenset(manager.symbols)  # what start() subscribes to
    seen: list[int] = []
    manager.on_tick(lambda e: seen.append(e.data.trade_id))
    ticks = synthetic("BTC/USDT", 0, 9, time.time_ns())
    codec, single = batch_codec(), tick_codec()

    def deliver(payload: bytes, kind: str | None = "batch") -> None:
        headers = None if kind is None else {"Md-Record": kind}
        source._on_message(SimpleNamespace(subject="md.tick.binance.BTC_USDT",  # type: ignore[arg-type]
                                           data=payload, headers=headers))

    deliver(codec.encode("binance", "BTC/USDT", ticks[:3]))  # one worker's, cut short
    deliver(codec.encode("binance", "BTC/USDT", ticks[:6]))  # another's, whole
    deliver(codec.encode("binance", "BTC/USDT", ticks[3:6]))  # the first worker's rest
    deliver(single.encode(ticks[6]), kind=None)  # a tick as published before batches
    deliver(codec.encode("binance", "BTC/USDT", ticks[7:]))
    deliver(b"\x93\x01", kind="batch")  # garbage
    deliver(codec.encode("binance", "BTC/USDT", ticks[7:]), kind="future-kind")
    state = source.state()
    assert seen == list(range(9))
    assert (state["ticks"], state["overlapping_ticks"], state["decode_errors"]) == (9, 6, 2)
    assert manager.get_metrics()["counters"]["duplicate_ticks"] == 0


def test_overlapping_batches_of_an_unsequenced_venue_reach_the_pipeline_once_in_order() -> None:
    """Stock trade ids are not consecutive: a partial batch and the whole one still merge."""
    manager = remote("nats://127.0.0.1:1", "unused", symbols=())
    manager.add_stock_symbols(["AAPL"])
    source = manager.source
    source._accepted = frozenset(manager.symbols)
    seen: list[int] = []
    manager.on_tick(lambda e: seen.append(e.data.trade_id))
    now = time.time_ns()
    ids = [52_983_525_029_461, 7, 52_983_525_027_888, 3_000, 12, 52_983_525_033_020]
    ticks = [Tick("alpaca", "AAPL", 180.0 + k, 10.0, Side.UNKNOWN, tid, now + k * STEP_NS,
                  now + k * STEP_NS) for k, tid in enumerate(ids)]
    codec = batch_codec()
    for part in (ticks[:2], ticks[:4], ticks[2:4], ticks[4:]):  # cut short, whole, rest, next
        source._on_message(SimpleNamespace(subject="md.tick.alpaca.AAPL",  # type: ignore[arg-type]
                                           data=codec.encode("alpaca", "AAPL", part),
                                           headers={"Md-Record": "batch"}))
    assert seen == ids
    assert (source.state()["ticks"], source.state()["overlapping_ticks"]) == (6, 4)
