"""One writer per store: a second recorder fails at once naming the store and the holder;
part files are never overwritten whoever writes."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.store import Recorder, TradeStore
from bot.data.store import files as store_files
from bot.data.store.layout import ticks_to_table
from bot.data.stream_manager import StreamManager
from tests.store.test_recorder import _ns, _tick
from tests.streaming import wait_for

REPO = Path(__file__).resolve().parents[2]
DAY = _ns("2025-01-01")

HOLDER = """
import asyncio, sys
from bot.data.store import Recorder

async def main(root):
    recorder = Recorder(root)
    await recorder.start()
    print("holding", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_second_recorder_in_the_same_process_is_refused_naming_the_store(
        tmp_path: Path) -> None:
    from bot.data.store.lock import StoreLocked

    first, second = Recorder(tmp_path), Recorder(tmp_path)
    await first.start()
    with pytest.raises(StoreLocked) as info:
        await second.start()
    assert info.value.holder_pid == os.getpid()
    assert f"store {tmp_path} is already being written by another recorder in this process" \
        in str(info.value)
    assert isinstance(info.value, OSError)
    await second.stop()  # harmless
    await first.stop()
    await second.start()  # free again
    await second.stop()


async def test_a_recorder_in_another_process_is_refused_naming_its_pid(tmp_path: Path) -> None:
    from bot.data.store.lock import LOCK_NAME, StoreLocked

    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.to_thread(child.stdout.readline)  # type: ignore[union-attr]
        assert line.strip() == "holding"
        with pytest.raises(StoreLocked) as info:
            await Recorder(tmp_path).start()
        assert info.value.holder_pid == child.pid
        assert f"already being written by process {child.pid}" in str(info.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    recorder = Recorder(tmp_path)  # a killed holder leaves the store free
    await recorder.start()
    await recorder.stop()
    assert (tmp_path / LOCK_NAME).read_text() == ""  # no stale pid left behind


async def test_a_second_manager_on_one_store_path_fails_to_start_and_the_first_goes_on(
        tmp_path: Path) -> None:
    from bot.data.store.lock import StoreLocked

    config = StreamManagerConfig(store_path=str(tmp_path), store_flush_interval=0.05,
                                 warm_up=False)
    first, second = StreamManager(config), StreamManager(config)
    await first.start()
    with pytest.raises(StoreLocked, match=str(tmp_path)):
        await second.start()
    assert not second.is_running
    first.bus.emit_tick(_tick(DAY + 1, 1), "binance", DAY)
    await wait_for(lambda: first.get_health()["store"]["ticks_written"] == 1, timeout=10)
    await first.stop()
    assert [t.trade_id for t in TradeStore(tmp_path).tick_records("binance", "BTC/USDT")] == [1]


async def test_writers_sharing_a_root_never_overwrite_each_others_part_files(
        tmp_path: Path) -> None:
    """Two recorders used without start() (each locks per flush) keep their own numbering
    cache; every flush still lands in a file of its own."""
    a, b = Recorder(tmp_path), Recorder(tmp_path)
    for i in range(6):
        writer = (a, b)[i % 2]
        writer.record_tick(_tick(DAY + i, i))
        await writer.flush()
    names = sorted(p.name for p in tmp_path.rglob("part-*.parquet"))
    assert names == [f"part-{n}.parquet" for n in range(6)]
    ids = [t.trade_id for t in TradeStore(tmp_path).tick_records("binance", "BTC/USDT")]
    assert ids == list(range(6))


def test_a_part_number_taken_meanwhile_is_skipped_not_replaced(tmp_path: Path) -> None:
    store_files.write_part(ticks_to_table([_tick(DAY, 1)]), tmp_path, 0)
    path = store_files.write_part(ticks_to_table([_tick(DAY, 2)]), tmp_path, 0)
    assert path.name == "part-1.parquet"
    assert pq.read_table(tmp_path / "part-0.parquet")["trade_id"].to_pylist() == [1]
    assert pq.read_table(path)["trade_id"].to_pylist() == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-0.parquet", "part-1.parquet"]


def test_without_hard_links_a_part_file_is_still_never_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(store_files.os, "link", no_links)
    store_files.write_part(ticks_to_table([_tick(DAY, 1)]), tmp_path, 0)
    path = store_files.write_part(ticks_to_table([_tick(DAY, 2)]), tmp_path, 0)
    assert path.name == "part-1.parquet"
    assert pq.read_table(tmp_path / "part-0.parquet")["trade_id"].to_pylist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-0.parquet", "part-1.parquet"]


async def test_a_file_system_without_locks_is_written_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from bot.data.store import lock as store_lock

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(store_lock.fcntl, "flock", no_locks)
    recorder = Recorder(tmp_path)
    await recorder.start()
    recorder.record_tick(_tick(DAY + 1, 1))
    await recorder.stop()
    assert recorder.health()["ok"]
    assert [t.trade_id for t in TradeStore(tmp_path).tick_records("binance", "BTC/USDT")] == [1]
    assert "cannot be locked on this file system (No locks available)" in caplog.text
