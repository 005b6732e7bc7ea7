"""The supervisor: a failing task is logged, counted, reported, and a loop is restarted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.data.backoff import Backoff
from bot.data.supervision import Supervisor
from tests.streaming import wait_for

QUICK = Backoff(0.01, 0.02)


async def test_a_loop_that_raises_is_logged_counted_reported_and_restarted(
        caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor(backoff=QUICK)
    runs: list[int] = []
    failures: list[BaseException] = []
    resumed = asyncio.Event()

    async def run() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("injected fault")
        resumed.set()
        await asyncio.sleep(3600)

    with caplog.at_level(logging.ERROR, "bot.data.supervision"):
        task = supervisor.loop("worker", run, on_failure=failures.append)
        await asyncio.wait_for(resumed.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert len(runs) == 2
    assert [type(e) for e in failures] == [RuntimeError]
    assert supervisor.failures == 1
    detail = supervisor.tasks()["worker"]
    assert (detail["failures"], detail["restarts"], detail["kind"]) == (1, 1, "loop")
    assert "RuntimeError: injected fault" in detail["last_error"]
    [reason] = supervisor.reasons()
    assert "worker" in reason and "injected fault" in reason
    [record] = [r for r in caplog.records if "worker" in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None


async def test_a_loop_that_returns_ends_without_a_failure() -> None:
    supervisor = Supervisor(backoff=QUICK)

    async def run() -> None:
        return None

    await supervisor.loop("finite", run)
    assert supervisor.failures == 0 and supervisor.reasons() == []
    assert supervisor.tasks()["finite"]["running"] is False


async def test_cancelling_a_loop_is_no_failure() -> None:
    supervisor = Supervisor(backoff=QUICK)
    task = supervisor.loop("sleeper", lambda: asyncio.sleep(3600))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and supervisor.failures == 0


async def test_a_failed_job_is_reported_and_not_repeated() -> None:
    supervisor = Supervisor(backoff=QUICK)
    calls: list[int] = []

    async def job() -> None:
        calls.append(1)
        raise KeyError("boom")

    task = supervisor.job("subscribe", job())
    await asyncio.gather(task, return_exceptions=True)
    await wait_for(lambda: supervisor.failures == 1, timeout=2)
    await asyncio.sleep(0.05)
    assert calls == [1]
    assert supervisor.tasks()["subscribe"]["kind"] == "job"
    assert "KeyError" in supervisor.reasons()[0]


async def test_a_failure_leaves_the_health_reasons_after_the_recent_window() -> None:
    supervisor = Supervisor(backoff=QUICK, recent_s=0.05)

    async def job() -> None:
        raise ValueError("old news")

    await asyncio.gather(supervisor.job("once", job()), return_exceptions=True)
    await wait_for(lambda: supervisor.reasons() != [], timeout=2)
    await asyncio.sleep(0.1)
    assert supervisor.reasons() == []
    assert supervisor.failures == 1  # the count stays
