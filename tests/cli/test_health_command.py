"""``bot-stream health`` reads a status server's report; its exit status says how things are."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.data.cli.main import main
from bot.data.status_server import StatusServer
from tests.cli.terminal import BOT_STREAM, ROOT


def report(status: str) -> dict[str, Any]:
    """A health report as ``StreamManager.get_health`` shapes it, written by hand."""
    return {"status": status, "reasons": [] if status == "healthy" else ["connection x is down"],
            "timestamp_ns": 1, "stale_symbols": [],
            "connections": [{"name": "binance-0", "venue": "binance", "state": "connected",
                             "state_age_s": 12.5, "last_message_age_s": 0.1, "reconnects": 2,
                             "symbols": 1, "error": None}],
            "symbols": [{"symbol": "BTC/USDT", "venue": "binance", "last_tick_age_s": 0.2,
                         "ticks_last_minute": 321, "stale": False}]}


class FixedManager:
    """Answers what it was given."""

    def __init__(self, health: dict[str, Any]) -> None:
        self.health = health

    def get_health(self) -> dict[str, Any]:
        return self.health

    def get_metrics(self) -> dict[str, Any]:
        return {"counters": {}, "latency": {}, "connections": {}}


@pytest.mark.parametrize(("status", "code"), [("healthy", 0), ("degraded", 1), ("unhealthy", 2)])
async def test_exit_status_follows_the_reported_health(
        status: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    async with StatusServer(FixedManager(report(status))) as server:
        assert await asyncio.to_thread(main, ["health", "--url", server.url, "--json"]) == code
        assert json.loads(capsys.readouterr().out) == report(status)
        assert await asyncio.to_thread(main, ["health", "--port", str(server.port)]) == code
    out = capsys.readouterr().out
    assert f"status: {status}" in out
    assert "binance-0" in out and "connected" in out and "321" in out


def test_unreachable_server_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        assert main(["health", "--port", str(port), "--timeout", "2"]) == 3
    assert f"cannot read http://127.0.0.1:{port}/health" in capsys.readouterr().out


async def test_health_of_a_running_recorder_started_with_status_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [*BOT_STREAM, "record", "BTC/USDT", "--sim", "--out", str(tmp_path),
         "--status-port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            code = await asyncio.to_thread(main, ["health", "--port", str(port), "--json"])
            if code == 0:
                break
            await asyncio.sleep(0.2)
        assert code == 0, "the recorder's stream reports healthy"
    finally:
        process.terminate()
        assert process.wait(20) == 0, "SIGTERM stops the recorder cleanly"
