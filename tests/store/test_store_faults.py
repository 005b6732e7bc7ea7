"""A store path that cannot be written (a file, a full disk, a read-only file system) degrades
health naming the path, keeps the rows in memory and writes them all once it can."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.store import Recorder, TradeStore
from bot.data.store import files as store_files
from bot.data.stream_manager import StreamManager
from tests.store.test_recorder import _ns, _tick
from tests.streaming import wait_for

DAY = _ns("2025-01-01")


def _ids(root: Path) -> list[int]:
    return [t.trade_id for t in TradeStore(root).tick_records("binance", "BTC/USDT")]


async def test_a_store_path_that_is_a_file_is_left_intact_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("important unrelated data\n")
    manager = StreamManager(StreamManagerConfig(store_path=str(path), store_flush_interval=0.05,
                                                warm_up=False))
    await manager.start()  # does not raise: the stream goes on without its store
    manager.bus.emit_tick(_tick(DAY + 1, 1), "binance", DAY)
    await wait_for(lambda: manager.get_health()["store"]["write_errors"] >= 2, timeout=10)
    health = manager.get_health()
    manager.get_metrics()
    await manager.stop()
    assert path.read_text() == "important unrelated data\n"
    assert health["status"] == "degraded"
    assert any(r.startswith(f"store: cannot create directory {path}") for r in health["reasons"])
    assert health["store"]["last_error_path"] == str(path)
    assert health["store"]["buffered_ticks"] == 1


async def test_a_full_disk_keeps_the_rows_and_writes_every_one_when_space_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = store_files.pq.write_table
    full = True

    def disk(table: object, fh: object, **options: object) -> None:
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(table, fh, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(store_files.pq, "write_table", disk)
    recorder = Recorder(tmp_path, flush_interval=0.02)
    await recorder.start()
    for i in range(1, 11):
        recorder.record_tick(_tick(DAY + i, i))
    await wait_for(lambda: recorder.counters.write_errors >= 2, timeout=10)  # retried
    health = recorder.health()
    assert not health["ok"] and health["buffered_ticks"] == 10
    assert "No space left on device" in health["problems"][0]
    assert health["last_error_path"].startswith(str(tmp_path / "kind=ticks"))
    for i in range(11, 21):
        recorder.record_tick(_tick(DAY + i, i))
    full = False
    await wait_for(lambda: recorder.counters.ticks_written == 20, timeout=10)
    assert recorder.health()["ok"]
    await recorder.stop()
    assert _ids(tmp_path) == list(range(1, 21))
    assert not list(tmp_path.rglob(".part-*.tmp"))


async def test_a_read_only_store_is_reported_and_locked_and_written_once_it_is_writable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.data.store import lock as store_lock
    from bot.data.store.lock import LOCK_NAME, StoreLocked

    real_open = store_lock.os.open
    read_only = True

    def open_(path: str, flags: int, mode: int = 0o777) -> int:
        if read_only and (flags & store_lock.os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, mode)

    monkeypatch.setattr(store_lock.os, "open", open_)
    recorder = Recorder(tmp_path, flush_interval=0.02)
    await recorder.start()  # does not raise: reported, tried again by every flush
    health = recorder.health()
    assert not health["ok"] and health["last_error_path"] == str(tmp_path / LOCK_NAME)
    assert "Read-only file system" in health["last_error"]
    recorder.record_tick(_tick(DAY + 1, 1))
    await wait_for(lambda: recorder.counters.write_errors >= 2, timeout=10)
    read_only = False
    await wait_for(lambda: recorder.counters.ticks_written == 1, timeout=10)
    with pytest.raises(StoreLocked):  # the flush took the lock for good
        await Recorder(tmp_path).start()
    await recorder.stop()
    assert _ids(tmp_path) == [1]
