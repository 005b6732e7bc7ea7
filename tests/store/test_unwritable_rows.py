"""A row the store cannot hold is left out alone and reported; the flush task never dies of it."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.events import EventBus, EventType
from bot.data.models import Side, Tick
from bot.data.store import Recorder, TradeStore
from bot.data.store import files as store_files
from bot.data.stream_manager import StreamManager
from tests.store.support import record_live
from tests.store.test_recorder import _ns, _tick
from tests.streaming import wait_for
from tests.support.fakex import FakeBinance, trade_frame

INT64_MAX = 2**63 - 1
DAY = _ns("2025-01-01")


def _ids(root: Path, symbol: str = "BTC/USDT") -> list[int]:
    return [t.trade_id for t in TradeStore(root).tick_records("binance", symbol)]


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("trade_id", 2**63, "trade_id=9223372036854775808 does not fit int64"),
    ("trade_id", float("nan"), "trade_id=nan does not fit int64"),
    ("receive_timestamp", 2**64, "receive_timestamp=18446744073709551616 does not fit int64"),
    ("timestamp", INT64_MAX + 1, "timestamp=9223372036854775808 does not fit int64"),
])
async def test_a_value_that_does_not_fit_its_column_leaves_out_that_row_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, field: str, value: object,
        shown: str) -> None:
    recorder = Recorder(tmp_path)
    good = [_tick(DAY + i, i) for i in range(1, 7)]
    bad = msgspec.structs.replace(good[2], **{field: value})
    for tick in [*good[:3], bad, *good[3:]]:
        recorder.record_tick(tick)
    with caplog.at_level(logging.WARNING, "bot.data.store.recorder"):
        written = await recorder.flush()

    assert written == len(good)
    assert _ids(tmp_path) == [t.trade_id for t in good]
    health = recorder.health()
    assert health["ok"] and health["unwritable_ticks"] == 1 and health["buffered_ticks"] == 0
    assert shown in health["last_unwritable"]["reason"]
    assert health["last_unwritable"]["kind"] == "ticks"
    assert shown in caplog.text


async def test_a_time_beyond_any_date_is_left_out_and_named(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    recorder.record_tick(_tick(DAY + 1, 1))
    recorder.record_tick(_tick(2**53 * 10**6, 2))  # T = 2**53 ms: year 287396
    recorder.record_tick(_tick(DAY + 3, 3))
    assert await recorder.flush() == 2
    assert _ids(tmp_path) == [1, 3]
    health = recorder.health()
    assert health["unwritable_ticks"] == 1
    assert "timestamp=9007199254740992000000" in health["last_unwritable"]["reason"]


async def test_a_bar_that_does_not_fit_is_left_out_and_the_others_are_written(
        tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    _, bars = await record_live([_tick(DAY + i * 10**9, i) for i in range(1, 200)],
                                tmp_path / "source")
    huge = msgspec.structs.replace(bars[0], last_trade_id=2**63)
    for bar in (huge, *bars[1:4]):
        recorder.record_bar(bar)
    assert await recorder.flush() == 3
    stored = TradeStore(tmp_path).bar_records("binance", "BTC/USDT", bars[1].timeframe)
    assert stored == [b for b in bars[1:4] if b.timeframe == bars[1].timeframe]
    health = recorder.health()
    assert health["unwritable_bars"] == 1
    assert "last_trade_id=9223372036854775808" in health["last_unwritable"]["reason"]


async def test_anything_published_as_a_tick_is_refused_without_harm(tmp_path: Path) -> None:
    bus = EventBus()
    recorder = Recorder(tmp_path)
    recorder.attach(bus)
    bus.emit(EventType.TICK, {"not": "a tick"})
    bus.emit_tick(_tick(DAY + 1, 1), "binance", DAY)
    assert await recorder.flush() == 1
    assert _ids(tmp_path) == [1]
    assert recorder.health()["unwritable_ticks"] == 1
    assert "AttributeError" in recorder.health()["last_unwritable"]["reason"]


async def test_a_tick_with_a_field_of_the_wrong_kind_is_refused_alone(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    recorder.record_tick(_tick(DAY + 1, 1))
    recorder.record_tick(msgspec.structs.replace(_tick(DAY + 2, 2), side="buy"))  # not a Side
    recorder.record_tick(_tick(DAY + 3, 3))
    assert await recorder.flush() == 2
    assert _ids(tmp_path) == [1, 3]
    assert "'str' object has no attribute 'value'" in \
        recorder.health()["last_unwritable"]["reason"]


async def test_a_partition_of_nothing_but_misshapen_ticks_writes_no_file(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    recorder.record_tick(msgspec.structs.replace(_tick(DAY + 2, 2), side="buy"))
    assert await recorder.flush() == 0
    assert list(tmp_path.rglob("*.parquet")) == []
    assert recorder.health()["unwritable_ticks"] == 1 and recorder.health()["files_written"] == 0


async def test_a_write_failing_in_an_unforeseen_way_keeps_its_rows_for_the_next_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = store_files.pq.write_table
    calls = 0

    def flaky(table: object, fh: object, **options: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a fault nobody foresaw")
        real_write(table, fh, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(store_files.pq, "write_table", flaky)
    recorder = Recorder(tmp_path)
    for i in (1, 2, 3):
        recorder.record_tick(_tick(DAY + i, i))
    assert await recorder.flush() == 0
    health = recorder.health()
    assert not health["ok"] and health["buffered_ticks"] == 3
    assert "RuntimeError: a fault nobody foresaw" in health["last_error"]
    assert await recorder.flush() == 3
    assert recorder.health()["ok"] and _ids(tmp_path) == [1, 2, 3]


async def test_the_flush_task_outlives_an_unwritable_row_and_writes_the_later_ones(
        tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, flush_interval=3600, flush_rows=2)
    await recorder.start()
    recorder.record_tick(_tick(DAY + 1, 2**63))
    recorder.record_tick(_tick(DAY + 2, 2))
    await wait_for(lambda: recorder.counters.ticks_written == 1, timeout=10)
    recorder.record_tick(_tick(DAY + 3, 3))
    recorder.record_tick(_tick(DAY + 4, 4))
    await wait_for(lambda: recorder.counters.ticks_written == 3, timeout=10)  # by the task
    assert recorder.health()["flush_task"] == "running"
    recorder.record_tick(_tick(DAY + 5, 5))
    await recorder.stop()  # does not raise, writes the last one
    assert _ids(tmp_path) == [2, 3, 4, 5]
    assert recorder.health()["flush_task"] == "stopped"


async def test_a_flush_task_that_ends_unexpectedly_shows_in_health_and_stop_still_writes(
        tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, flush_interval=3600)
    await recorder.start()
    assert recorder._task is not None
    recorder._task.cancel()  # whatever ends it, health must say so
    await wait_for(lambda: recorder.health()["flush_task"] == "failed", timeout=10)
    recorder.record_tick(_tick(DAY + 1, 1))
    health = recorder.health()
    assert not health["ok"] and health["flush_task"] == "failed"
    assert "flush task" in health["problems"][0] and str(tmp_path) in health["problems"][0]
    await recorder.stop()
    assert _ids(tmp_path) == [1]


async def test_a_round_that_fails_unexpectedly_is_reported_and_the_next_round_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(tmp_path, flush_interval=0.05)
    real_flush = recorder.flush
    rounds = 0

    async def flush() -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise RuntimeError("a fault nobody foresaw")
        return await real_flush()

    monkeypatch.setattr(recorder, "flush", flush)
    await recorder.start()
    await wait_for(lambda: recorder.counters.flush_task_errors == 1, timeout=10)
    assert "a fault nobody foresaw" in (recorder.health()["last_error"] or "")
    recorder.record_tick(_tick(DAY + 1, 1))
    await wait_for(lambda: recorder.counters.ticks_written == 1, timeout=10)
    assert recorder.health()["ok"] and recorder.health()["flush_task"] == "running"
    await recorder.stop()


async def test_a_manager_whose_store_meets_unwritable_rows_keeps_recording_and_reporting(
        tmp_path: Path) -> None:
    manager = StreamManager(StreamManagerConfig(store_path=str(tmp_path),
                                                store_flush_interval=0.05, warm_up=False))
    await manager.start()
    manager.bus.emit_tick(_tick(DAY + 1, 1), "binance", DAY)
    manager.bus.emit_tick(_tick(DAY + 2, 2**63, "ETH/USDT"), "binance", DAY)
    manager.bus.emit_tick(_tick(2**53 * 10**6, 5, "ETH/USDT"), "binance", DAY)
    await wait_for(lambda: manager.get_health()["store"]["ticks_written"] == 1, timeout=10)
    manager.bus.emit_tick(_tick(DAY + 3, 3), "binance", DAY)
    await wait_for(lambda: manager.get_health()["store"]["ticks_written"] == 2, timeout=10)
    health, metrics = manager.get_health(), manager.get_metrics()
    await manager.stop()
    assert health["store"]["unwritable_ticks"] == 2 and health["store"]["flush_task"] == "running"
    assert metrics["counters"]["ticks"] >= 0
    assert _ids(tmp_path) == [1, 3]


@pytest.mark.parametrize(("trade_id", "time_ms"), [(2**63, None), (5, 2**53)],
                         ids=["hugeid", "bigT"])
async def test_a_streamed_trade_that_does_not_fit_never_stops_the_recording(
        tmp_path: Path, trade_id: int, time_ms: int | None) -> None:
    """Through a fake Binance: a trade id of 2**63, or a time of 2**53 ms, on the wire."""
    fake = FakeBinance()
    await fake.start()
    sent: list[int] = []

    async def script(ws: Any, request: object) -> None:
        now = int(time.time() * 1000)
        for n in range(40):
            fake.add_trade("BTCUSDT", 1000 + n, "100", "1", now + n)
            await ws.send_str(trade_frame("BTCUSDT", 1000 + n, "100", "1", now + n))
            sent.append(1000 + n)
            if n == 10:
                await ws.send_str(trade_frame("ETHUSDT", trade_id, "10", "1", time_ms or now))
            await asyncio.sleep(0.01)
        await asyncio.sleep(3600)

    fake.script = script
    env = fake.env()
    manager = StreamManager(StreamManagerConfig(
        warm_up=False, backfill=False, check_symbols=False, store_path=str(tmp_path),
        store_flush_interval=0.1, binance_ws_url=env["BINANCE_WS_URL"],
        binance_rest_url=env["BINANCE_REST_URL"]))
    manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
    try:
        await manager.start()
        await wait_for(lambda: len(sent) == 40 and
                       manager.get_health()["store"]["ticks_written"] >= 40, timeout=20)
        health, metrics = manager.get_health(), manager.get_metrics()
    finally:
        await manager.stop()  # does not raise
        await fake.stop()
    assert health["store"]["ok"] and health["store"]["flush_task"] == "running"
    assert metrics["counters"]["ticks"] >= 40
    assert _ids(tmp_path) == sent


def test_a_refused_row_is_reported_in_a_few_hundred_characters() -> None:
    from bot.data.store.rows import TICK_ROWS, to_table

    tick = Tick("binance", "X" * 1000, 1.0, 1.0, Side.BUY, 2**63, DAY, DAY)
    table, refused = to_table(TICK_ROWS, [tick])
    assert table is None and len(refused[0].to_dict()["row"]) <= 303
