"""EventBus: order, removal, isolation of raising and slow handlers."""

from __future__ import annotations

import asyncio

from bot.data.events import EventBus, EventType, StreamEvent
from bot.data.models import Side, Tick

TICK = Tick("binance", "BTC/USDT", 100.0, 1.0, Side.BUY, 1, 10, 11)


def test_handlers_run_in_registration_order_and_tick_handlers_get_the_event() -> None:
    bus = EventBus()
    seen: list[tuple[str, object]] = []
    bus.on_tick(lambda e: seen.append(("a", e)))
    bus.on(EventType.TICK, lambda e: seen.append(("b", e)))
    bus.emit_tick(TICK, "binance", 11)
    assert [name for name, _ in seen] == ["a", "b"]
    event = seen[0][1]
    assert isinstance(event, StreamEvent)
    assert (event.type, event.data, event.timestamp, event.source) == (
        EventType.TICK, TICK, 11, "binance")


def test_bar_handlers_receive_the_record_itself() -> None:
    bus = EventBus()
    got: list[object] = []
    bus.on_bar_complete(got.append)
    bus.emit(EventType.BAR_COMPLETE, "the-bar")
    assert got == ["the-bar"]


def test_removed_handler_is_no_longer_called() -> None:
    bus = EventBus()
    calls: list[int] = []
    remove = bus.on_tick(lambda e: calls.append(1))
    handler = calls.append
    bus.on_tick(handler)
    remove()
    assert bus.off(EventType.TICK, handler)
    bus.emit_tick(TICK, "binance", 1)
    assert calls == []


def test_raising_handler_is_counted_and_the_others_still_run() -> None:
    bus = EventBus()
    seen: list[int] = []

    def boom(_: object) -> None:
        raise RuntimeError("user bug")

    bus.on_tick(boom)
    bus.on_tick(lambda e: seen.append(1))
    for _ in range(5):
        bus.emit_tick(TICK, "binance", 1)
    assert seen == [1] * 5
    assert bus.counters.handler_errors == 5


async def test_slow_async_handler_does_not_block_and_overflow_is_counted() -> None:
    bus = EventBus(async_backlog=3)
    release = asyncio.Event()
    handled: list[int] = []

    async def slow(e: StreamEvent) -> None:
        await release.wait()
        handled.append(e.timestamp)

    fast: list[int] = []
    bus.on_tick(slow)
    bus.on_tick(lambda e: fast.append(e.timestamp))
    bus.start()
    for i in range(10):
        bus.emit_tick(TICK, "binance", i)  # never waits for `slow`
    assert fast == list(range(10))
    release.set()
    await bus.drain()
    # All ten came before the worker ran: three fit the backlog, seven were dropped.
    assert handled == [0, 1, 2]
    assert bus.counters.backlog_dropped == 7
    await bus.stop()


async def test_async_handler_that_raises_is_counted() -> None:
    bus = EventBus()

    async def bad(_: object) -> None:
        raise ValueError("nope")

    bus.on_tick(bad)
    bus.start()
    bus.emit_tick(TICK, "binance", 1)
    await bus.drain()
    assert bus.counters.handler_errors == 1
    await bus.stop()


async def test_an_async_handler_worker_that_fails_is_restarted_and_reported() -> None:
    from bot.data.backoff import Backoff
    from bot.data.supervision import Supervisor

    class FlakyQueue(asyncio.Queue[object]):
        failed = False

        async def get(self) -> object:
            if not self.failed:
                self.failed = True
                raise RuntimeError("worker fault")
            return await super().get()

    bus = EventBus()
    bus.supervisor = Supervisor(backoff=Backoff(0.01, 0.02))
    seen: list[object] = []

    async def handler(event: object) -> None:
        seen.append(event)

    bus.on_tick(handler)
    bus._subs[EventType.TICK][0].queue = FlakyQueue()
    bus.start()
    bus.emit_tick(TICK, "binance", 1)
    await asyncio.wait_for(bus.drain(), 5)
    await bus.stop()
    assert len(seen) == 1, "the queued event survived the worker's restart"
    assert bus.supervisor.failures == 1
    [(name, detail)] = bus.supervisor.tasks().items()
    assert name.startswith("bus-handler:") and detail["restarts"] == 1
