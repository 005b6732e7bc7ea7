"""Publisher against a real JetStream: subjects, message ids, dedup, overflow, outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client

from bot.data.events import EventBus, EventType
from bot.data.models import Bar, BarFlag, Prediction, Side, Signal, SignalDirection, Tick
from bot.data.nats.client import connect
from bot.data.nats.codec import SignalCodec, Watermark, bar_codec, batch_codec, watermark_codec
from bot.data.nats.publisher import Publisher
from bot.data.nats.server import NatsServer
from bot.data.nats.streams import default_streams, ensure_streams
from bot.data.nats.subjects import batch_msg_id
from tests.nats.support import stored_ticks, wait_for

T0 = 1_735_689_600_000_000_000


def ticks(first: int, count: int, symbol: str = "BTC/USDT") -> list[Tick]:
    return [Tick("binance", symbol, 60_000.0 + i, 0.01, Side.BUY, i, T0 + i, T0 + i)
            for i in range(first, first + count)]


def bar(flags: BarFlag = BarFlag.NONE) -> Bar:
    return Bar("binance", "BTC/USDT", "1m", T0, T0 + 59_999_999_999, 1.0, 2.0, 0.5, 1.5, 3.0,
               4.0, 1.0, 2.0, 1.5, 3, 7, 9, flags)


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await connect(nats_server.url, "test")
    await ensure_streams(client.jetstream(), default_streams())
    yield client
    await client.close()


async def stored_trade_ids(nc: Client) -> list[int]:
    """Trade ids of every tick stored in MD_TICKS, in stream order (batches unpacked)."""
    return [t.trade_id for t in await stored_ticks(nc.jetstream())]


async def test_bus_records_land_on_their_subjects_with_ids_that_collapse_copies(
        nc: Client) -> None:
    received: list[Any] = []

    async def collect(msg: Any) -> None:
        received.append(msg)

    await nc.subscribe("md.>", cb=collect)
    bus = EventBus()
    publisher = Publisher(nc)
    publisher.attach(bus)
    await publisher.start()
    tick = ticks(42, 1)[0]
    partial = bar(BarFlag.PARTIAL)
    prediction = Prediction("BTC/USDT", "1m", T0, 0.7, "test", 1)
    signal = Signal("BTC/USDT", SignalDirection.BUY, 0.7, bar(), prediction, T0)
    bus.emit_tick(tick, "binance", T0)
    bus.emit(EventType.BAR_COMPLETE, bar())
    bus.emit(EventType.BAR_COMPLETE, partial)
    bus.emit(EventType.SIGNAL, signal)
    bus.emit_tick(tick, "binance", T0)  # the same trade again: a duplicate for JetStream
    assert await publisher.flush(10)
    await wait_for(lambda: len(received) == 6)
    await publisher.stop()
    by_subject = {m.subject: m for m in received}
    assert sorted(by_subject) == ["md.bar.1m.binance.BTC_USDT", "md.signal.binance.BTC_USDT",
                                  "md.tick.binance.BTC_USDT"]
    ids = [m.headers["Nats-Msg-Id"] for m in received]
    through = T0 + 60_000_000_000  # the completed bar's end: one watermark, after its trades
    batch_id = batch_msg_id("binance", "BTC/USDT", [42])
    assert batch_id.startswith("binance:BTC/USDT:42-42:1:")
    assert ids == [batch_id, f"binance:BTC/USDT:through:{through}",
                   f"binance:BTC/USDT:1m:{T0}", f"binance:BTC/USDT:1m:{T0}:2",
                   f"binance:BTC/USDT:1m:{T0}:buy", batch_id]
    assert received[1].subject == "md.tick.binance.BTC_USDT"
    assert received[0].headers["Md-Record"] == "batch"
    assert received[1].headers["Md-Record"] == "watermark"
    assert watermark_codec().decode(received[1].data) == Watermark("binance", "BTC/USDT",
                                                                   through)
    assert batch_codec().decode(received[0].data) == [tick]
    assert bar_codec().decode(received[3].data) == partial
    assert SignalCodec().decode(received[4].data) == signal
    assert (publisher.counters.stored, publisher.counters.duplicates) == (5, 1)


async def test_two_publishers_of_the_same_trades_at_different_paces_store_each_once(
        nc: Client) -> None:
    trades = [Tick("binance", "BTC/USDT", 60_000.0 + i, 0.01, Side.BUY, i,
                   T0 + i * 10_000_000, T0 + i * 10_000_000) for i in range(300)]  # 10 ms apart
    first, second = Publisher(nc, batch_ms=50), Publisher(nc, batch_ms=50)
    await first.start()
    await second.start()
    for tick in trades:  # all at once
        first.publish(tick)
    for start in range(0, 300, 7):  # a few at a time, the sending task running in between
        for tick in trades[start:start + 7]:
            second.publish(tick)
        await asyncio.sleep(0.002)
    assert await first.flush(10) and await second.flush(10)
    await first.stop()
    await second.stop()
    info = await nc.jetstream().stream_info("MD_TICKS")
    assert info.state.messages == 60, "one batch per 50 ms window, stored once"
    assert await stored_trade_ids(nc) == list(range(300))
    assert first.counters.stored + second.counters.stored == 300
    assert first.counters.duplicates + second.counters.duplicates == 300
    assert first.counters.tick_messages == second.counters.tick_messages == 60


async def test_overflow_drops_the_oldest_records_and_says_so(nc: Client) -> None:
    publisher = Publisher(nc, max_queue=100, max_in_flight=10)
    for tick in ticks(0, 150):  # not started: nothing leaves the queue
        publisher.publish(tick)
    assert publisher.counters.dropped_overflow == 50
    health = publisher.health()
    assert not health["ok"] and health["queue_depth"] == 100
    await publisher.start()
    assert await publisher.flush(10)
    await publisher.stop()
    assert await stored_trade_ids(nc) == list(range(50, 150))


async def test_records_published_through_a_server_crash_are_all_stored_once(
        nats_server: NatsServer, nc: Client) -> None:
    publisher = Publisher(nc, ack_timeout=1.0)
    await publisher.start()
    for tick in ticks(0, 200):
        publisher.publish(tick)
    nats_server.kill()
    await wait_for(lambda: not nc.is_connected)
    for tick in ticks(200, 300):
        publisher.publish(tick)
    assert not publisher.health()["connected"]
    await asyncio.to_thread(nats_server.start)
    assert await publisher.flush(20)
    await publisher.stop()
    assert await stored_trade_ids(nc) == list(range(500))
    assert publisher.health()["ok"]


async def test_a_sending_task_that_raises_is_restarted_reported_and_loses_nothing(
        nc: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.data.backoff import Backoff
    from bot.data.supervision import Supervisor

    supervisor = Supervisor(backoff=Backoff(0.01, 0.02))
    publisher = Publisher(nc, supervisor=supervisor)
    real_send = publisher._send
    calls = [0]

    async def flaky_send(batch: list[Any]) -> list[Any]:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("injected publisher fault")
        return await real_send(batch)

    monkeypatch.setattr(publisher, "_send", flaky_send)
    await publisher.start()
    for tick in ticks(1, 5):
        publisher.publish(tick)
    await wait_for(lambda: publisher.counters.stored == 5)
    await publisher.stop()
    assert supervisor.failures == 1
    assert supervisor.tasks()["nats-publisher"]["restarts"] == 1
    assert "injected publisher fault" in supervisor.reasons()[0]
    assert await stored_trade_ids(nc) == [1, 2, 3, 4, 5]
