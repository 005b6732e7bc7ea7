"""A damaged part file is skipped and reported; reads, SQL, replay and restarts go on without it."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.pipeline import TickPipeline
from bot.data.sim import ExchangeSimulator
from bot.data.store import Recorder, TradeStore, replay
from bot.data.store import store as store_module
from bot.data.stream_manager import StreamManager
from tests.store.test_recorder import _ns, _tick
from tests.streaming import point_at, wait_for

DAY = _ns("2025-01-01")
DAMAGE = ["garbage", "empty", "truncated"]
QUARANTINE_DIR = "quarantine"  # where the writer moves damaged files, below the root


async def _recorded(root: Path) -> list[Tick]:
    """Two flushes of BTC/USDT (part-0 and part-1 of one day), as a recorder writes them."""
    recorder = Recorder(root)
    ticks = [_tick(DAY + i * 10**9, i) for i in range(1, 41)]
    for chunk in (ticks[:20], ticks[20:]):
        for tick in chunk:
            recorder.record_tick(tick)
        await recorder.flush()
    return ticks


def _plant(root: Path, damage: str) -> Path:
    """A damaged part-2 beside the two good ones."""
    (good, *_) = sorted(root.rglob("part-0.parquet"))
    bad = good.with_name("part-2.parquet")
    data = {"garbage": b"PAR1 this is not parquet \x00\x01" * 10, "empty": b"",
            "truncated": good.read_bytes()[: good.stat().st_size // 2]}[damage]
    bad.write_bytes(data)
    return bad


@pytest.mark.parametrize("damage", DAMAGE)
async def test_reads_skip_a_damaged_file_name_it_in_a_warning_and_list_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    ticks = await _recorded(tmp_path)
    bad = _plant(tmp_path, damage)
    store = TradeStore(tmp_path)
    with caplog.at_level(logging.WARNING, "bot.data.store"):
        assert store.tick_records("binance", "BTC/USDT") == ticks
        assert store.last_trade("binance", "BTC/USDT") == ticks[-1]
        assert len(store.ticks("binance", "BTC/USDT", DAY + 5 * 10**9, DAY + 10 * 10**9)) == 5
    (listed,) = store.unreadable_files()
    assert listed["path"] == str(bad) and listed["moved_to"] is None and listed["error"]
    assert bad.exists()  # a reader only skips: moving is the writer's
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per file, not once per read
    assert str(bad) in warnings[0].getMessage() and listed["error"] in warnings[0].getMessage()


@pytest.mark.parametrize("damage", DAMAGE)
async def test_sql_runs_over_the_files_that_are_whole(tmp_path: Path, damage: str) -> None:
    await _recorded(tmp_path)
    bad = _plant(tmp_path, damage)
    store = TradeStore(tmp_path)
    for _ in range(2):  # the second query reads the list of whole files at once
        frame = store.sql("SELECT count(*) AS n, max(trade_id) AS last FROM ticks")
        assert (frame["n"][0], frame["last"][0]) == (40, 40)
    assert [f["path"] for f in store.unreadable_files()] == [str(bad)]


async def test_a_query_error_is_still_the_users_own(tmp_path: Path) -> None:
    await _recorded(tmp_path)
    import duckdb

    with pytest.raises(duckdb.Error):
        TradeStore(tmp_path).sql("SELECT no_such_column FROM ticks")
    with pytest.raises(duckdb.Error):
        TradeStore(tmp_path).sql("SELECT * FROM read_parquet('/no/such/file.parquet')")


async def test_the_writers_store_moves_a_damaged_file_to_quarantine_keeping_its_path(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ticks = await _recorded(tmp_path)
    bad = _plant(tmp_path, "garbage")
    recorder = Recorder(tmp_path)
    await recorder.start()
    with caplog.at_level(logging.WARNING, "bot.data.store"):
        assert recorder.store.tick_records("binance", "BTC/USDT") == ticks
    health = recorder.health()
    await recorder.stop()

    moved = tmp_path / QUARANTINE_DIR / bad.relative_to(tmp_path)
    assert not bad.exists() and moved.read_bytes().startswith(b"PAR1 this is not")
    (listed,) = health["unreadable_files"]
    assert listed == {"path": str(bad), "error": listed["error"], "moved_to": str(moved)}
    assert health["ok"]
    assert str(bad) in caplog.text and str(moved) in caplog.text
    plain = TradeStore(tmp_path)  # the tree is whole again, for every reader and DuckDB's glob
    assert plain.tick_records("binance", "BTC/USDT") == ticks
    assert plain.sql("SELECT count(*) AS n FROM ticks")["n"][0] == 40
    assert plain.series() == [("binance", "BTC/USDT")]
    assert plain.unreadable_files() == []


async def test_a_second_damaged_file_of_the_same_name_is_kept_beside_the_first(
        tmp_path: Path) -> None:
    await _recorded(tmp_path)
    recorder = Recorder(tmp_path)
    await recorder.start()
    for damage in ("garbage", "empty"):
        bad = _plant(tmp_path, damage)
        recorder.store.tick_records("binance", "BTC/USDT")
    await recorder.stop()
    moved = sorted(p.name for p in (tmp_path / QUARANTINE_DIR).rglob("part-2*"))
    assert moved == ["part-2.parquet", "part-2.parquet.1"]
    assert not bad.exists()


async def test_a_file_written_later_under_a_skipped_name_is_read(tmp_path: Path) -> None:
    ticks = await _recorded(tmp_path)
    bad = _plant(tmp_path, "empty")
    store = TradeStore(tmp_path)
    assert store.tick_records("binance", "BTC/USDT") == ticks
    bad.unlink()
    recorder = Recorder(tmp_path)  # writes part-2 anew, whole this time
    later = _tick(DAY + 100 * 10**9, 100)
    recorder.record_tick(later)
    await recorder.flush()
    assert bad.exists()
    assert store.tick_records("binance", "BTC/USDT") == [*ticks, later]


async def test_replay_goes_on_past_a_damaged_file(tmp_path: Path) -> None:
    ticks = await _recorded(tmp_path)
    _plant(tmp_path, "truncated")
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=["1m"]))
    result = await replay(TradeStore(tmp_path), pipeline, progress=False)
    assert result.ticks == len(ticks) and result.refused == 0 and result.bars == 1


async def test_a_manager_restarts_on_a_store_with_a_damaged_file_and_sets_it_aside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    async with ExchangeSimulator(["BTC/USDT"], seed=5, history_seconds=120) as sim:
        point_at(sim, monkeypatch)
        config = StreamManagerConfig(store_path=str(root), store_flush_interval=0.1,
                                     supported_timeframes=["1m"], bar_history_size=10)
        first = StreamManager(config)
        first.add_crypto_symbols(["BTC/USDT"])
        await first.start()
        await wait_for(lambda: first.get_health()["store"]["ticks_written"] >= 10)
        await first.stop()
        before = TradeStore(root).tick_records("binance", "BTC/USDT")
        newest = max(root.rglob("part-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
        bad = newest.with_name("part-99.parquet")
        bad.write_bytes(b"")

        second = StreamManager(config)
        second.add_crypto_symbols(["BTC/USDT"])
        await second.start()
        await wait_for(lambda: second.get_metrics()["counters"]["ticks"] > 5
                       and not second.get_health()["backfilling"])
        health = second.get_health()
        await second.stop()

    (listed,) = health["store"]["unreadable_files"]
    assert listed["path"] == str(bad) and listed["moved_to"] is not None
    assert Path(listed["moved_to"]).parent.parent.parent.parent.parent.name == QUARANTINE_DIR
    assert not bad.exists()
    after = [t.trade_id for t in TradeStore(root).tick_records("binance", "BTC/USDT")]
    assert after[: len(before)] == [t.trade_id for t in before]
    assert after == list(range(after[0], after[0] + len(after))), "no trade missing"


async def test_a_file_the_writer_may_not_read_is_skipped_but_not_moved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = await _recorded(tmp_path)
    (other,) = tmp_path.rglob("part-1.parquet")
    recorder = Recorder(tmp_path)
    await recorder.start()
    real_scan = store_module._scan

    def scan(files: list[Path], *args: object) -> object:
        if other in files:
            raise PermissionError(13, "Permission denied", str(other))
        return real_scan(files, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "_scan", scan)
    assert recorder.store.tick_records("binance", "BTC/USDT") == ticks[:20]
    (listed,) = recorder.store.unreadable_files()
    await recorder.stop()
    assert listed["moved_to"] is None and "Permission denied" in listed["error"]
    assert other.exists()


async def test_a_file_damaged_inside_with_a_whole_footer_is_skipped_by_reads_and_sql(
        tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    first = [_tick(DAY + i, i) for i in range(20_000)]
    later = [_tick(DAY + 10**9 + i, 10**6 + i) for i in range(10)]
    for batch in (first, later):
        for tick in batch:
            recorder.record_tick(tick)
        await recorder.flush()
    (damaged,) = tmp_path.rglob("part-0.parquet")
    footer = pq.read_metadata(damaged).serialized_size
    data = bytearray(damaged.read_bytes())
    for k in range(4, len(data) - footer - 100, 3):  # the pages, not the footer
        data[k] ^= 0x5A
    damaged.write_bytes(bytes(data))
    pq.read_metadata(damaged)  # the footer still reads

    assert TradeStore(tmp_path).tick_records("binance", "BTC/USDT") == later
    store = TradeStore(tmp_path)
    frame = store.sql("SELECT * FROM ticks ORDER BY trade_id")
    assert list(frame["trade_id"]) == [t.trade_id for t in later]
    assert [f["path"] for f in store.unreadable_files()] == [str(damaged)]
