"""Canary Alpaca credentials never appear anywhere: logs at DEBUG, reports, HTTP, store, CLI.

The manager streams a stock and a pair from the simulator, which accepts only the
canary key, with the root logger at DEBUG capturing every record of every logger
(``websockets.client`` logs each frame, the auth frame included); the connection
is dropped once so the auth frame and REST requests with key headers happen again,
and a refused authentication raises. Then every byte of the log, health, metrics,
the status server's and the dashboard's answers, the exception and the store
written is searched for the key id, the secret, and every 8-character piece of them.
The CLI at ``-vv`` is searched the same way.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.data import StreamManager, StreamManagerConfig
from bot.data.dashboard import DashboardServer
from bot.data.sim import ExchangeSimulator
from bot.data.status_server import StatusServer
from tests.streaming import point_at, wait_for

KEY = "PKCANARYKEY4T9Q2ZX1"
SECRET = "SkCanarySecret7Hq2Lm9Vx4Rt8Wn3Jd6"
FRAGMENT = 8


def _pieces(*values: str) -> set[str]:
    return {v[i:i + FRAGMENT] for v in values for i in range(len(v) - FRAGMENT + 1)}


def _leaks(text: str | bytes, *values: str) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return sorted(p for p in _pieces(*values) if p in text)


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Every record of every logger at DEBUG, formatted with tracebacks, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return bytes(answer.read())


async def test_canary_credentials_appear_in_no_log_report_http_answer_or_store(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, debug_log: io.StringIO) -> None:
    outputs: dict[str, str | bytes] = {}
    store = tmp_path / "store"
    async with ExchangeSimulator(["BTC/USDT"], ["AAPL"], history_seconds=120,
                                 alpaca_keys={KEY: SECRET}) as sim:
        point_at(sim, monkeypatch)
        assert os.environ["ALPACA_API_KEY"] == KEY
        manager = StreamManager(StreamManagerConfig(store_path=str(store),
                                                    store_flush_interval=0.5,
                                                    reconnect_delay=0.05,
                                                    max_reconnect_delay=0.2))
        manager.add_crypto_symbols(["BTC/USDT"])
        manager.add_stock_symbols(["AAPL"])
        await manager.start()
        status = StatusServer(manager, "127.0.0.1", 0)
        dashboard = DashboardServer(manager, "127.0.0.1", 0)
        await status.start()
        await dashboard.start()
        try:
            await wait_for(lambda: manager.get_ticks("AAPL", 1) != [], timeout=20)
            sim.drop_all()  # authenticate again, and fill the gap over REST with key headers
            await wait_for(lambda: manager.get_metrics()["counters"]["reconnects"] >= 2,
                           timeout=20)
            await asyncio.sleep(1.0)
            for base, paths in ((status.url, ("/health", "/metrics", "/metrics.json")),
                                (dashboard.url, ("/", "/health", "/metrics", "/metrics.json"))):
                for path in paths:
                    outputs[f"http {base}{path}"] = await asyncio.to_thread(_get, base + path)
            outputs["get_health"] = json.dumps(manager.get_health(), default=str)
            outputs["get_metrics"] = json.dumps(manager.get_metrics(), default=str)
            outputs["reprs"] = repr([g.credentials() for g in manager._groups.values()]) + repr(
                manager._sources) + repr(
                [c.__dict__ for c in manager._connections])
        finally:
            await dashboard.stop()
            await status.stop()
            await manager.stop()

        sim.refuse_auth(True)
        refused = StreamManager(StreamManagerConfig(reconnect_attempts=1, warm_up=False))
        refused.add_stock_symbols(["AAPL"])
        with pytest.raises(Exception) as raised:
            await refused.start()
        outputs["auth failure"] = f"{raised.value!r} {raised.value} {raised.value.__dict__!r}"

    files = [p for p in store.rglob("*") if p.is_file()]
    assert files, "the store was written"
    for path in files:
        outputs[f"store {path.name}"] = path.read_bytes()
    outputs["DEBUG log"] = debug_log.getvalue()
    assert "> TEXT" in outputs["DEBUG log"], "websockets logged frames at DEBUG"
    assert '"action":"auth"' in outputs["DEBUG log"], "the auth frame itself was logged"

    found = {name: _leaks(text, KEY, SECRET) for name, text in outputs.items()}
    assert {name: pieces for name, pieces in found.items() if pieces} == {}


def test_the_cli_at_debug_prints_no_credential(tmp_path: Path) -> None:
    """``bot-stream -vv live --sim --stocks AAPL``, its simulator keyed with the canary."""
    launcher = ("import sys, bot.data.sim.server as sim; "
                "sim.DEFAULT_KEY, sim.DEFAULT_SECRET = sys.argv[1:3]; "
                "from bot.data.cli.main import main; sys.exit(main(sys.argv[3:]))")
    env = {**os.environ, "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET,
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", launcher, KEY, SECRET, "-vv", "live", "--sim", "--stocks", "AAPL",
         "--sim-history", "60", "--duration", "4", "--json"],
        capture_output=True, env=env, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"websockets.client" in done.stderr and b'"action":"auth"' in done.stderr
    assert b'"type": "tick"' in done.stdout or b'"type":"tick"' in done.stdout
    assert _leaks(done.stdout, KEY, SECRET) == []
    assert _leaks(done.stderr, KEY, SECRET) == []
