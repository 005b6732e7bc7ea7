"""The recorder writes what the bus carried, atomically, and survives a failing disk."""

from __future__ import annotations

import asyncio
import errno
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.data.models import Side, Tick
from bot.data.store import Recorder, StoreError, TradeStore
from bot.data.store import files as store_files
from bot.data.store.layout import ticks_to_table
from tests.helpers import xrpeth_trades
from tests.store.support import TIMEFRAMES, record_live

DAY_NS = 86_400 * 10**9


def _tick(ts: int, trade_id: int, symbol: str = "BTC/USDT") -> Tick:
    return Tick("binance", symbol, 100.0 + trade_id % 7, 0.5, Side.BUY, trade_id, ts, ts + 5)


def _ns(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 10**9


async def test_store_reads_back_every_recorded_tick_and_bar_field_by_field(
        tmp_path: Path) -> None:
    ticks = xrpeth_trades()
    recorder, live = await record_live(ticks, tmp_path, flush_rows=3_000)
    store = TradeStore(tmp_path)
    assert store.tick_records("binance", "XRP/ETH") == ticks
    for tf in TIMEFRAMES:
        assert store.bar_records("binance", "XRP/ETH", tf) == [b for b in live
                                                                if b.timeframe == tf]
    health = recorder.health()
    assert health["ok"] and health["ticks_written"] == len(ticks)
    assert health["bars_written"] == len(live) and health["buffered_ticks"] == 0


async def test_files_are_partitioned_by_kind_venue_symbol_and_utc_date(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    recorder.record_tick(_tick(_ns("2025-01-01") + 5, 1))
    recorder.record_tick(_tick(_ns("2025-01-02") + 5, 2))
    await recorder.flush()
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "kind=ticks/venue=binance/symbol=BTC%2FUSDT/date=2025-01-01/part-0.parquet",
        "kind=ticks/venue=binance/symbol=BTC%2FUSDT/date=2025-01-02/part-0.parquet",
    ]


async def test_each_flush_adds_a_new_part_and_a_new_recorder_continues_the_numbering(
        tmp_path: Path) -> None:
    ts = _ns("2025-01-01")
    for trade_id in (1, 2):
        recorder = Recorder(tmp_path)
        recorder.record_tick(_tick(ts + trade_id, trade_id))
        await recorder.flush()
        recorder.record_tick(_tick(ts + 10 + trade_id, 10 + trade_id))
        await recorder.flush()
    names = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    assert names == [f"part-{n}.parquet" for n in range(4)]
    assert [t.trade_id for t in TradeStore(tmp_path).tick_records("binance", "BTC/USDT")] == [
        1, 2, 11, 12]


async def test_rows_threshold_triggers_a_flush_without_waiting_for_the_interval(
        tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, flush_interval=3600, flush_rows=10)
    await recorder.start()
    for i in range(10):
        recorder.record_tick(_tick(_ns("2025-01-01") + i, i))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if recorder.counters.ticks_written == 10:
            break
    await recorder.stop()
    assert recorder.counters.ticks_written == 10


async def test_unwritable_root_is_a_clear_counted_error_and_recording_goes_on(
        tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    recorder = Recorder(blocker / "store")
    recorder.record_tick(_tick(_ns("2025-01-01"), 1))
    assert await recorder.flush() == 0
    health = recorder.health()
    assert not health["ok"] and health["write_errors"] == 1
    assert str(blocker) in health["last_error"] and "Not a directory" in health["last_error"]
    recorder.record_tick(_tick(_ns("2025-01-01") + 1, 2))
    assert recorder.health()["buffered_ticks"] == 2  # kept for the retry
    blocker.unlink()  # the disk is back
    assert await recorder.flush() == 2
    assert recorder.health()["ok"]
    assert len(TradeStore(blocker / "store").tick_records("binance", "BTC/USDT")) == 2


async def test_buffer_is_bounded_and_drops_the_oldest_rows_while_the_disk_fails(
        tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    recorder = Recorder(blocker / "store", flush_rows=5, max_buffered_rows=5)
    for i in range(8):
        recorder.record_tick(_tick(_ns("2025-01-01") + i, i))
    await recorder.flush()
    recorder.record_tick(_tick(_ns("2025-01-01") + 8, 8))
    assert recorder.health()["dropped_ticks"] == 4
    blocker.unlink()
    await recorder.flush()
    kept = TradeStore(blocker / "store").tick_records("binance", "BTC/USDT")
    assert [t.trade_id for t in kept] == [4, 5, 6, 7, 8]


def test_a_disk_full_write_names_the_path_and_leaves_no_file_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(table: object, fh: object, **_: object) -> None:
        fh.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_files.pq, "write_table", full_disk)
    target = tmp_path / "d" / "part-0.parquet"
    with pytest.raises(StoreError) as info:
        store_files.write_part(ticks_to_table([_tick(1, 1)]), target.parent, 0)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert str(target) in str(info.value) and "No space left" in str(info.value)
    assert list((tmp_path / "d").iterdir()) == []


async def test_retention_deletes_date_partitions_older_than_the_setting(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, retention_days=3, clock_ns=lambda: _ns("2025-01-10") + 7)
    for i, day in enumerate(["2025-01-01", "2025-01-06", "2025-01-07", "2025-01-10"]):
        recorder.record_tick(_tick(_ns(day), i))
    await recorder.flush()
    removed = await recorder.apply_retention()
    assert sorted(p.name for p in removed) == ["date=2025-01-01", "date=2025-01-06"]
    days = sorted(t.timestamp for t in TradeStore(tmp_path).tick_records("binance", "BTC/USDT"))
    assert days == [_ns("2025-01-07"), _ns("2025-01-10")]
    assert recorder.health()["partitions_deleted"] == 2


async def test_start_removes_temporary_files_a_crashed_writer_left(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    recorder.record_tick(_tick(_ns("2025-01-01"), 1))
    await recorder.flush()
    (partition,) = tmp_path.rglob("date=*")
    leftover = partition / ".part-1.parquet.123.tmp"
    leftover.write_bytes(b"PAR1 torn")
    await recorder.start()
    await recorder.stop()
    assert not leftover.exists()


async def test_stop_during_a_flush_loses_and_overwrites_nothing(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, flush_interval=3600, flush_rows=1_000)
    await recorder.start()
    ticks = [_tick(_ns("2025-01-01") + i, i) for i in range(20_000)]
    for tick in ticks[:10_000]:
        recorder.record_tick(tick)
    await asyncio.sleep(0)  # the flush task wakes and hands a write to its thread
    for tick in ticks[10_000:]:
        recorder.record_tick(tick)
    await recorder.stop()
    assert TradeStore(tmp_path).tick_records("binance", "BTC/USDT") == ticks
    assert recorder.health()["ticks_written"] == 20_000
