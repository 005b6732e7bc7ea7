"""Supervised background tasks: none can end without being logged, counted and shown.

Every long-running loop (a venue connection, the manager's clock and health
loops, an async handler's worker, a NATS publisher or consumer) and every
one-off job (a runtime subscribe or unsubscribe) runs under a
:class:`Supervisor`. When one raises anything but cancellation, the supervisor

* logs it at ERROR with its traceback;
* counts it, in total (:attr:`Supervisor.failures`) and per task
  (:meth:`Supervisor.tasks`), for the metrics;
* reports it: :meth:`Supervisor.reasons` names the task and the error for
  ``recent_s`` seconds after its last failure, which the manager's health turns
  into a ``degraded`` status;
* restarts a loop after an exponential backoff with jitter, calling its
  ``on_failure`` first (a connection uses it to stop saying ``connected``); a
  one-off job is not repeated, since repeating it blindly could do its work twice.

A loop that returns ends for good: returning is how a loop says it is finished
(a connection that FAILED, a publisher that drained its queue at stop).

Adopting it is one line where a task is created::

    self._task = supervisor.loop("recorder-flush", self._run)      # restarted on failure
    supervisor.job(f"fill {symbol}", self._fill(cursor, until))     # reported, not repeated
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bot.data.backoff import Backoff
from bot.data.redaction import redact

logger = logging.getLogger(__name__)

RESTART_BACKOFF = Backoff(0.5, 30.0)
RECENT_S = 300.0  # how long a failure keeps health degraded
STABLE_S = 60.0  # a loop that ran this long before failing restarts from the shortest delay
ERROR_CHARS = 200


@dataclass
class TaskRecord:
    """What the supervisor knows of one named task (loops, and jobs once they failed)."""

    name: str
    kind: str  # "loop" or "job"
    running: bool = False
    failures: int = 0
    restarts: int = 0
    last_error: str | None = None
    last_failure_ns: int | None = None
    _last_failure_mono: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "running": self.running, "failures": self.failures,
                "restarts": self.restarts, "last_error": self.last_error,
                "last_failure_ns": self.last_failure_ns}


class Supervisor:
    """Starts tasks, and logs, counts, reports and restarts the ones that fail."""

    def __init__(self, *, backoff: Backoff = RESTART_BACKOFF, recent_s: float = RECENT_S,
                 rng: Callable[[], float] = random.random) -> None:
        self._backoff = backoff
        self._recent_s = recent_s
        self._rng = rng
        self._records: dict[str, TaskRecord] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.failures = 0

    # -- starting tasks ------------------------------------------------------------------
    def loop(self, name: str, run: Callable[[], Awaitable[None]], *,
             on_failure: Callable[[BaseException], None] | None = None) -> asyncio.Task[None]:
        """Run ``run()`` as a task named ``name``, calling it again after each failure."""
        record = self._record(name, "loop")
        return self._track(asyncio.get_running_loop().create_task(
            self._supervise(record, run, on_failure), name=name))

    def job(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` once as a task named ``name``; a failure is reported, not repeated."""
        task = self._track(asyncio.get_running_loop().create_task(coro, name=name))
        task.add_done_callback(self._job_done)
        return task

    # -- what health and metrics read ----------------------------------------------------
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Per task: kind, running, failures, restarts, last error (loops, and failed jobs)."""
        return {name: record.to_dict() for name, record in self._records.items()}

    def reasons(self) -> list[str]:
        """One line per task that failed within the last ``recent_s`` seconds."""
        now = time.monotonic()
        out = []
        for r in self._records.values():
            if r._last_failure_mono is None or now - r._last_failure_mono >= self._recent_s:
                continue
            after = ("; restarting" if r.running else "; ended") if r.kind == "loop" else ""
            out.append(f"task {r.name} failed ({r.failures}x): {r.last_error}{after}")
        return out

    # -- internals -----------------------------------------------------------------------
    def _record(self, name: str, kind: str) -> TaskRecord:
        record = self._records.get(name)
        if record is None:
            record = self._records[name] = TaskRecord(name, kind)
        return record

    def _track(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        self._tasks.add(task)  # a strong reference until it ends
        task.add_done_callback(self._tasks.discard)
        return task

    async def _supervise(self, record: TaskRecord, run: Callable[[], Awaitable[None]],
                         on_failure: Callable[[BaseException], None] | None) -> None:
        attempt = 0
        record.running = True
        try:
            while True:
                started = time.monotonic()
                try:
                    await run()
                    return
                except Exception as exc:  # anything but cancellation: report, then restart
                    if time.monotonic() - started >= STABLE_S:
                        attempt = 0
                    attempt += 1
                    delay = self._backoff.delay(attempt, self._rng)
                    self._failed(record, exc, f"restarting in {delay:.1f}s")
                    if on_failure is not None:
                        try:
                            on_failure(exc)
                        except Exception:
                            logger.exception("task %s: its failure handler raised", record.name)
                await asyncio.sleep(delay)
                record.restarts += 1
        finally:
            record.running = False

    def _job_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._failed(self._record(task.get_name(), "job"), exc, "not repeated")

    def _failed(self, record: TaskRecord, exc: BaseException, then: str) -> None:
        self.failures += 1
        record.failures += 1
        record.last_error = redact(f"{type(exc).__name__}: {exc}")[:ERROR_CHARS]
        record.last_failure_ns = time.time_ns()
        record._last_failure_mono = time.monotonic()
        logger.error("task %s failed: %s; %s", record.name, record.last_error, then,
                     exc_info=exc)
