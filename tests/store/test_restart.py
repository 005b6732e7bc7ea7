"""A StreamManager killed with SIGKILL and restarted on its store loses and repeats no trade.

The child process streams from the simulator into a store and is killed; the
restarted manager resumes from the last stored trade, fetches only what is
missing from REST, and the store then holds the exchange's trade sequence
exactly (compared with the simulator's own trade log).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.sim import ExchangeSimulator
from bot.data.store import TradeStore
from bot.data.stream_manager import StreamManager
from tests.streaming import wait_for

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, sys
from bot.data.config import StreamManagerConfig
from bot.data.stream_manager import StreamManager

async def main(root):
    manager = StreamManager(StreamManagerConfig(
        store_path=root, store_flush_interval=0.2, supported_timeframes=["1m"],
        bar_history_size=10))
    manager.add_crypto_symbols(["BTC/USDT"])
    await manager.start()
    print("streaming", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"""



def _stored_ids(root: Path) -> list[int]:
    frame = TradeStore(root).ticks("binance", "BTC/USDT")
    return [int(i) for i in frame["trade_id"]]


async def test_kill_and_restart_leave_the_exact_trade_sequence_in_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "store"
    async with ExchangeSimulator(["BTC/USDT"], seed=31, history_seconds=120) as sim:
        env = {**os.environ, **sim.env(), "PYTHONPATH": str(REPO)}
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        try:
            line = await asyncio.to_thread(child.stdout.readline)  # type: ignore[union-attr]
            assert line.strip() == "streaming"
            await wait_for(lambda: root.exists() and len(_stored_ids(root)) >= 20)
            await asyncio.sleep(0.5)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        before = _stored_ids(root)
        assert before, "the store opens after the kill and holds the flushed trades"
        await asyncio.sleep(1.5)  # trades go on while nothing records them

        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)
        manager = StreamManager(StreamManagerConfig(
            store_path=str(root), store_flush_interval=0.2, supported_timeframes=["1m"],
            bar_history_size=10))
        manager.add_crypto_symbols(["BTC/USDT"])
        await manager.start()
        await wait_for(lambda: not manager.get_health()["backfilling"]
                        and manager.get_metrics()["counters"]["ticks"] > 10)
        await manager.stop()
        counters = manager.get_metrics()["counters"]
        truth = {t.trade_id: t for t in sim.trades("binance", "BTC/USDT")}

    after = _stored_ids(root)
    assert max(Counter(after).values()) == 1, "no trade stored twice"
    assert sorted(after) == list(range(min(after), max(after) + 1)), "no trade missing"
    assert after[: len(before)] == before
    assert 0 < counters["trades_backfilled"] <= len(after) - len(before)
    assert counters["gaps_unfilled"] == 0
    stored = TradeStore(root).tick_records("binance", "BTC/USDT")
    for tick in stored:
        assert tick.price == float(truth[tick.trade_id].price)
