"""A recording process killed with SIGKILL leaves a readable store holding every flushed tick."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pyarrow.parquet as pq

from bot.data.models import Tick
from bot.data.store import TradeStore
from tests.helpers import xrpeth_trades

REPO = Path(__file__).resolve().parents[2]
LAP_SHIFT_NS = 3 * 86_400 * 10**9
LAP_IDS = 10**7

# The child records lap after lap of the XRP/ETH trades (shifted in time and id),
# flushing every 500 ticks, and prints the ticks written after each flush.
CHILD = """
import asyncio, sys
import msgspec
from bot.data.config import StreamManagerConfig
from bot.data.pipeline import TickPipeline
from bot.data.store import Recorder
from tests.helpers import xrpeth_trades

async def main(root, shift, ids):
    pipeline = TickPipeline(StreamManagerConfig())
    recorder = Recorder(root, flush_interval=3600, flush_rows=10**6)
    recorder.attach(pipeline.bus)
    base = xrpeth_trades()
    lap = 0
    while True:
        for i, tick in enumerate(base):
            pipeline.process(msgspec.structs.replace(
                tick, timestamp=tick.timestamp + lap * shift,
                trade_id=tick.trade_id + lap * ids))
            if i % 500 == 499:
                await recorder.flush()
                print(recorder.counters.ticks_written, flush=True)
        lap += 1

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def _fed(n: int) -> list[Tick]:
    """The first ``n`` ticks the child fed."""
    base = xrpeth_trades()
    return [msgspec.structs.replace(t, timestamp=t.timestamp + lap * LAP_SHIFT_NS,
                                    trade_id=t.trade_id + lap * LAP_IDS)
            for lap in range(n // len(base) + 1) for t in base][:n]


def test_sigkill_mid_recording_loses_nothing_flushed_and_leaves_no_corrupt_file(
        tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(LAP_SHIFT_NS),
                              str(LAP_IDS)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout is not None
    reported = 0
    rng = random.Random()
    kill_after = rng.randrange(15, 40)
    try:
        for _ in range(kill_after):
            line = child.stdout.readline()
            assert line, "the recording child died before it was killed"
            reported = int(line)
        time.sleep(rng.uniform(0, 0.02))  # land anywhere in the next flush
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    for part in tmp_path.rglob("part-*.parquet"):
        pq.read_table(part)  # every visible file is whole
    recorded = TradeStore(tmp_path).tick_records("binance", "XRP/ETH")
    fed = {t.trade_id: t for t in _fed(len(recorded) + 500)}
    assert len(recorded) >= reported
    assert {t.trade_id for t in recorded} >= set(list(fed)[:reported])
    assert all(fed[t.trade_id] == t for t in recorded)
