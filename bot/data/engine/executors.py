"""Executors: what acts on a signal, and how the engine calls them safely.

The protocol is one method, ``execute(signal)``, sync or async; a plain
function of the signal is accepted too. A sync executor runs inline right after
the SIGNAL event (keep it short); an async one runs in a task of its own, so
signals of one symbol may then execute concurrently. Whatever an executor
raises is logged (rate-limited), counted in ``executor_errors`` and forgotten:
the engine and the stream go on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from bot.data.engine.metrics import EngineMetrics
from bot.data.models import Signal
from bot.data.throttle import LogThrottle

logger = logging.getLogger(__name__)

ExecuteFunction = Callable[[Signal], Awaitable[None] | None]


@runtime_checkable
class Executor(Protocol):
    """Acts on a signal: places an order, simulates one, logs it."""

    def execute(self, signal: Signal) -> Awaitable[None] | None: ...


class LoggingExecutor:
    """Logs every signal it receives and does nothing else (a dry run)."""

    def __init__(self, logger_: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger_ or logger
        self.level = level

    def execute(self, signal: Signal) -> None:
        self.logger.log(self.level, "signal %s %s confidence=%.3f close=%s bar_open_time=%d",
                        signal.direction.value, signal.symbol, signal.confidence,
                        signal.bar.close, signal.bar.open_time)


class ExecutorDispatcher:
    """Calls the engine's executor, isolating and counting its failures."""

    def __init__(self, executor: Executor | ExecuteFunction, metrics: EngineMetrics) -> None:
        if isinstance(executor, Executor):
            self._execute: ExecuteFunction = executor.execute
        elif callable(executor):
            self._execute = executor
        else:
            raise TypeError(
                f"executor must have an execute(signal) method or be callable, got {executor!r}")
        self._metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()
        self._throttle = LogThrottle(logger)

    def dispatch(self, signal: Signal) -> None:
        """Hand ``signal`` to the executor; an async one continues in a task."""
        try:
            result = self._execute(signal)
        except Exception as exc:  # executor failures must not stop the engine
            self._failed(exc)
            return
        if inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(self._await(result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._metrics.executions += 1

    async def _await(self, result: Awaitable[None]) -> None:
        try:
            await result
        except Exception as exc:  # executor failures must not stop the engine
            self._failed(exc)
        else:
            self._metrics.executions += 1

    def _failed(self, exc: Exception) -> None:
        self._metrics.executor_errors += 1
        self._throttle.log("executor", logging.ERROR, "executor raised %r", exc, exc_info=exc)

    async def cancel(self) -> None:
        """Cancel executions still running (at engine stop)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
