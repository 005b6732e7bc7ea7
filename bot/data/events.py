"""Event types and the in-process ``EventBus``.

Handlers are called in registration order. A sync handler runs inline on the
producer's path (keep it short); an async handler runs in a worker task of its
own behind a bounded queue, so a slow coroutine never blocks the stream: when
its queue is full, the event is dropped for that handler, counted and logged.
A handler that raises is logged (rate-limited) and counted; the other handlers
and the stream go on. The workers run under :attr:`EventBus.supervisor`, so a
worker that fails for any other reason is logged, counted and restarted with
its queue intact. The time sync handler calls take is kept (the last
:data:`HANDLER_SAMPLES` timed calls per handler), so a handler that slows the
stream can be named (:meth:`EventBus.handler_times`): every call for most
events, and for TICK the first dispatch and one in :data:`TICK_TIMING_EVERY`
(reading the clock costs about a tenth of a tick's path).

What a handler receives: the shortcuts for record events (``on_bar_complete``,
``on_prediction``, ``on_signal``) pass the record itself (a ``Bar``, a
``Prediction``, a ``Signal``), as the seed's ``lambda b: b.symbol`` expects; the
others (``on_tick``, ``on_reconnect``, ``on_health``) and the generic ``on``
pass the :class:`StreamEvent`, whose ``data`` holds the payload.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from bot.data.supervision import Supervisor
from bot.data.throttle import LogThrottle

logger = logging.getLogger(__name__)


class EventType(enum.StrEnum):
    TICK = "tick"
    BAR_COMPLETE = "bar_complete"
    PREDICTION = "prediction"
    SIGNAL = "signal"
    RECONNECT = "reconnect"
    HEALTH = "health"
    TICKER = "ticker"


class StreamEvent(msgspec.Struct, frozen=True):
    """One event: what happened (``type``), its payload (``data``), when (ns) and where from."""

    type: EventType
    data: Any
    timestamp: int
    source: str = ""


Handler = Callable[[Any], Any]
_TICK = EventType.TICK
HANDLER_SAMPLES = 1000
TICK_TIMING_EVERY = 16
_perf_ns = time.perf_counter_ns


@dataclass
class BusCounters:
    """Failures the bus absorbed, for the manager's metrics."""

    handler_errors: int = 0
    backlog_dropped: int = 0


class _Subscription:
    __slots__ = ("durations_ns", "event_type", "fn", "is_async", "name", "payload_only", "queue",
                 "worker")

    def __init__(self, event_type: EventType, fn: Handler, payload_only: bool) -> None:
        self.event_type = event_type
        self.fn = fn
        self.payload_only = payload_only
        self.is_async = _is_async_callable(fn)
        self.queue: asyncio.Queue[Any] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.name = getattr(fn, "__qualname__", None) or repr(fn)
        self.durations_ns: deque[int] = deque(maxlen=HANDLER_SAMPLES)  # sync calls only


class EventBus:
    """Dispatches events to handlers; isolates their failures and slowness."""

    def __init__(self, async_backlog: int = 10000) -> None:
        self._async_backlog = async_backlog
        self._subs: dict[EventType, list[_Subscription]] = {t: [] for t in EventType}
        self._sync: dict[EventType, list[_Subscription]] = {t: [] for t in EventType}
        self._tick_subs: list[_Subscription] = []
        self._tick_plain: list[Handler] | None = []
        self._untimed_ticks = 0  # TICK dispatches before the next timed one (small ints: no
        # allocation per tick); the first dispatch is timed
        self.counters = BusCounters()
        # Where the async handlers' workers run; the StreamManager puts its own here.
        self.supervisor = Supervisor()
        self._throttle = LogThrottle(logger)
        self._running = False

    # -- registration --------------------------------------------------------------
    def on(self, event_type: EventType, handler: Handler, *,
           payload_only: bool = False) -> Callable[[], None]:
        """Call ``handler`` for every event of ``event_type``; returns a function that removes it.

        ``payload_only`` passes ``event.data`` instead of the event.
        """
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        event_type = EventType(event_type)
        sub = _Subscription(event_type, handler, payload_only)
        self._subs[event_type].append(sub)
        self._reindex(event_type)
        if sub.is_async and self._running:
            self._start_worker(sub)
        return lambda: self._remove(sub)

    def off(self, event_type: EventType, handler: Handler) -> bool:
        """Remove the first registration of ``handler``; True if one was found."""
        for sub in self._subs[EventType(event_type)]:
            if sub.fn is handler or sub.fn == handler:
                self._remove(sub)
                return True
        return False

    def on_tick(self, handler: Handler) -> Callable[[], None]:
        return self.on(EventType.TICK, handler)

    def on_bar_complete(self, handler: Handler) -> Callable[[], None]:
        return self.on(EventType.BAR_COMPLETE, handler, payload_only=True)

    def on_prediction(self, handler: Handler) -> Callable[[], None]:
        return self.on(EventType.PREDICTION, handler, payload_only=True)

    def on_signal(self, handler: Handler) -> Callable[[], None]:
        return self.on(EventType.SIGNAL, handler, payload_only=True)

    def on_reconnect(self, handler: Handler) -> Callable[[], None]:
        return self.on(EventType.RECONNECT, handler)

    def on_health(self, handler: Handler) -> Callable[[], None]:
        return self.on(EventType.HEALTH, handler)

    def _remove(self, sub: _Subscription) -> None:
        subs = self._subs[sub.event_type]
        if sub in subs:
            subs.remove(sub)
            self._reindex(sub.event_type)
        if sub.worker is not None:
            sub.worker.cancel()
            sub.worker = None

    def _reindex(self, event_type: EventType) -> None:
        # Copy-on-write: a handler removing itself mid-dispatch does not disturb the loop.
        self._sync[event_type] = list(self._subs[event_type])
        self._tick_subs = self._sync[EventType.TICK]
        # When every tick handler is a plain sync function of the event, skip the checks.
        self._tick_plain = (None if any(s.is_async or s.payload_only for s in self._tick_subs)
                            else [s.fn for s in self._tick_subs])

    # -- dispatch ------------------------------------------------------------------
    def emit(self, event_type: EventType, data: Any, source: str = "",
             timestamp: int | None = None) -> None:
        """Deliver ``data`` to every handler of ``event_type``."""
        subs = self._sync[event_type]
        if not subs:
            return
        event = StreamEvent(event_type, data, time.time_ns() if timestamp is None else timestamp,
                            source)
        for sub in subs:
            arg = data if sub.payload_only else event
            if sub.is_async:
                self._enqueue(sub, arg)
                continue
            started = _perf_ns()
            try:
                sub.fn(arg)
            except Exception as exc:
                self._failed(sub, exc)
            sub.durations_ns.append(_perf_ns() - started)

    def emit_tick(self, tick: Any, source: str, timestamp: int) -> None:
        """``emit(EventType.TICK, ...)`` without the per-call lookups (the hot path)."""
        subs = self._tick_subs
        if not subs:
            return
        event = StreamEvent(_TICK, tick, timestamp, source)
        plain = self._tick_plain
        untimed = self._untimed_ticks
        if plain is not None and untimed:
            self._untimed_ticks = untimed - 1
            for fn in plain:
                try:
                    fn(event)
                except Exception as exc:
                    self._failed(next(s for s in subs if s.fn is fn), exc)
            return
        self._untimed_ticks = TICK_TIMING_EVERY - 1
        for sub in subs:
            if sub.is_async:
                self._enqueue(sub, tick if sub.payload_only else event)
                continue
            started = _perf_ns()
            try:
                sub.fn(tick if sub.payload_only else event)
            except Exception as exc:
                self._failed(sub, exc)
            sub.durations_ns.append(_perf_ns() - started)

    def handler_times(self) -> dict[str, deque[int]]:
        """Recent durations (ns) of each sync handler's calls, keyed ``"<event>:<handler>"``."""
        return {f"{sub.event_type.value}:{sub.name}": sub.durations_ns
                for subs in self._subs.values() for sub in subs
                if not sub.is_async and sub.durations_ns}

    def _enqueue(self, sub: _Subscription, arg: Any) -> None:
        if sub.queue is None:
            sub.queue = asyncio.Queue(self._async_backlog)
        try:
            sub.queue.put_nowait(arg)
        except asyncio.QueueFull:
            self.counters.backlog_dropped += 1
            self._throttle.log(f"backlog:{sub.name}", logging.WARNING,
                               "async handler %s is too slow: its backlog of %d is full, "
                               "event dropped for it", sub.name, self._async_backlog)

    def _failed(self, sub: _Subscription, exc: Exception) -> None:
        self.counters.handler_errors += 1
        self._throttle.log(f"error:{sub.name}", logging.ERROR, "%s handler %s raised %r",
                           sub.event_type.value, sub.name, exc, exc_info=exc)

    # -- lifecycle of async workers -----------------------------------------------
    def start(self) -> None:
        """Start the workers of async handlers (needs a running event loop)."""
        self._running = True
        for subs in self._subs.values():
            for sub in subs:
                if sub.is_async and sub.worker is None:
                    self._start_worker(sub)

    async def drain(self) -> None:
        """Wait until every async handler has processed what was queued for it."""
        for subs in self._subs.values():
            for sub in list(subs):
                if sub.queue is not None and sub.worker is not None:
                    await sub.queue.join()

    async def stop(self) -> None:
        """Cancel the async workers; events still queued are discarded."""
        self._running = False
        workers = [s.worker for subs in self._subs.values() for s in subs if s.worker]
        for subs in self._subs.values():
            for sub in subs:
                sub.worker = None
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)

    def _start_worker(self, sub: _Subscription) -> None:
        if sub.queue is None:
            sub.queue = asyncio.Queue(self._async_backlog)
        sub.worker = self.supervisor.loop(f"bus-handler:{sub.name}",
                                          lambda: self._run_worker(sub))

    async def _run_worker(self, sub: _Subscription) -> None:
        queue = sub.queue
        assert queue is not None
        while True:
            arg = await queue.get()
            try:
                result = sub.fn(arg)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self._failed(sub, exc)
            finally:
                queue.task_done()


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)
