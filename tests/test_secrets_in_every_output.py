"""Canary Alpaca credentials in no output the first canary test leaves out.

The dashboard's live WebSocket feed (its hello, history, update and status
messages), and the CLI's ``record`` at ``-vv`` with a status server: its
output, its status server's HTTP answers while it runs, and every file of the
store it wrote, as bytes and as decoded rows. A CLI whose keys the exchange
refuses says so without them.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pyarrow.parquet as pq
import pytest

from bot.data import StreamManager, StreamManagerConfig
from bot.data.dashboard import DashboardServer
from bot.data.sim import ExchangeSimulator
from tests.streaming import point_at, wait_for
from tests.test_secrets_never_printed import KEY, SECRET, _leaks, debug_log

__all__ = ["debug_log"]  # the fixture, imported for the tests below

LAUNCHER = ("import sys, bot.data.sim.server as sim; "
            "sim.DEFAULT_KEY, sim.DEFAULT_SECRET = sys.argv[1:3]; "
            "from bot.data.cli.main import main; sys.exit(main(sys.argv[3:]))")


async def test_the_dashboard_feed_carries_no_credential(
        monkeypatch: pytest.MonkeyPatch, debug_log: io.StringIO) -> None:
    frames: list[str] = []
    async with ExchangeSimulator(["BTC/USDT"], ["AAPL"], history_seconds=120,
                                 alpaca_keys={KEY: SECRET}) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(StreamManagerConfig(reconnect_delay=0.05,
                                                    max_reconnect_delay=0.2))
        manager.add_crypto_symbols(["BTC/USDT"])
        manager.add_stock_symbols(["AAPL"])
        await manager.start()
        try:
            async with DashboardServer(manager, "127.0.0.1", 0) as server, \
                    aiohttp.ClientSession() as http, \
                    http.ws_connect(f"{server.url}/ws", origin=server.url) as ws:
                await wait_for(lambda: manager.get_ticks("AAPL", 1) != [], timeout=20)
                sim.drop_all()  # authenticate again while the page listens
                kinds: set[str] = set()
                deadline = time.monotonic() + 20
                while not {"hello", "history", "status"} <= kinds or (
                        manager.get_metrics()["counters"]["reconnects"] < 2):
                    assert time.monotonic() < deadline, f"feed sent only {sorted(kinds)}"
                    message = await ws.receive(timeout=10)
                    assert message.type == aiohttp.WSMsgType.TEXT
                    frames.append(message.data)
                    kinds.add(json.loads(message.data)["type"])
        finally:
            await manager.stop()
    assert '"action":"auth"' in debug_log.getvalue(), "the auth frame was sent and logged"
    assert _leaks("\n".join(frames), KEY, SECRET) == []
    assert _leaks(debug_log.getvalue(), KEY, SECRET) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(args: list[str], sim_key: str, sim_secret: str, cwd: Path
         ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET,
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, sim_key, sim_secret, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)


def _get_when_up(url: str, deadline: float) -> bytes:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return bytes(answer.read())
        except urllib.error.HTTPError as refused:  # 503 while unhealthy: its body counts too
            return bytes(refused.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_cli_record_at_debug_prints_serves_and_stores_no_credential(tmp_path: Path) -> None:
    port = _free_port()
    store = tmp_path / "store"
    process = _cli(["-vv", "record", "--sim", "--stocks", "AAPL", "--sim-history", "60",
                    "--duration", "8", "--flush-interval", "0.5", "--status-port", str(port),
                    "--out", str(store)], KEY, SECRET, tmp_path)
    answers: dict[str, bytes] = {}
    try:
        deadline = time.monotonic() + 60
        time.sleep(4)  # streaming for a while: ticks, bars and health to report
        for path in ("/health", "/metrics", "/metrics.json"):
            answers[path] = _get_when_up(f"http://127.0.0.1:{port}{path}", deadline)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err.decode()[-2000:]
    assert b'"action":"auth"' in err, "the auth frame was sent and logged at DEBUG"
    files = [p for p in store.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files), "the store was written"
    found = {"stdout": _leaks(out, KEY, SECRET), "stderr": _leaks(err, KEY, SECRET)}
    found.update({f"http {path}": _leaks(body, KEY, SECRET) for path, body in answers.items()})
    found.update({f"store {p.relative_to(store)}": _leaks(p.read_bytes(), KEY, SECRET)
                  for p in files})
    # Compressed columns need not show a value as plain bytes: scan the decoded rows too.
    found.update({f"rows of {p.relative_to(store)}": _leaks(
        repr(pq.read_table(p).to_pylist()), KEY, SECRET) for p in files if p.suffix == ".parquet"})
    assert {name: pieces for name, pieces in found.items() if pieces} == {}


async def test_cli_whose_keys_are_refused_says_so_without_them(tmp_path: Path) -> None:
    """``bot-stream -vv live --stocks AAPL`` with the canary keys against an exchange
    that knows other keys: authentication is refused, and nothing shows the canary."""
    async with ExchangeSimulator([], ["AAPL"], history_seconds=60,
                                 alpaca_keys={"PKOTHERKEY0000000000": "SkOther0000000000"}) as sim:
        env = {**os.environ, **sim.env(), "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET,
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.data.cli.main", "-vv", "live", "--stocks", "AAPL",
            "--duration", "10", "--set", "reconnect_attempts=1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode != 0, "a refused authentication fails the command"
    assert b"auth" in err.lower()
    assert _leaks(out, KEY, SECRET) == [] and _leaks(err, KEY, SECRET) == []
