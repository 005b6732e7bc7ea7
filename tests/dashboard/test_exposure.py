"""The status server and the dashboard answer only requests addressed to themselves.

A page elsewhere must not read the stream through DNS rebinding (a foreign
``Host``) nor open the dashboard's WebSocket from the user's browser (a foreign
``Origin``: cross-site WebSocket hijacking). Requests are sent raw where a
client library would fill the headers in itself.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.data.dashboard import DashboardServer
from bot.data.status_server import HostGuard, StatusServer
from bot.data.stream_manager import StreamManager


async def _status_line(port: int, host: str, path: str = "/health",
                       extra: str = "") -> str:
    """The status line the server answers a raw request with ``Host: host``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
                 .encode())
    await writer.drain()
    line = (await reader.readline()).decode().strip()
    writer.close()
    await writer.wait_closed()
    return line


def test_host_guard_accepts_the_bound_address_and_loopback_names_with_the_port() -> None:
    guard = HostGuard("127.0.0.1", 8787)
    for host in ("127.0.0.1:8787", "localhost:8787", "[::1]:8787", "LOCALHOST:8787",
                 "127.0.0.1"):
        assert guard.accepts_host(host), host


def test_host_guard_refuses_foreign_names_other_ports_and_garbage() -> None:
    guard = HostGuard("127.0.0.1", 8787)
    for host in ("attacker.example:8787", "attacker.example", "127.0.0.1:8788",
                 "localhost.attacker.example:8787", "127.0.0.1@attacker.example:8787",
                 "127.0.0.1:port", "", None, "10.0.0.5:8787"):
        assert not guard.accepts_host(host), host


def test_host_guard_takes_configured_names_and_any_address_when_bound_to_all() -> None:
    guard = HostGuard("0.0.0.0", 9100, allowed_hosts=["md-worker.internal"])
    assert guard.accepts_host("10.0.0.5:9100")
    assert guard.accepts_host("md-worker.internal:443")
    assert not guard.accepts_host("attacker.example:9100")
    assert not guard.accepts_host("10.0.0.5:9101")


def test_origin_must_be_absent_or_this_server() -> None:
    guard = HostGuard("127.0.0.1", 8787)
    assert guard.accepts_origin(None)
    assert guard.accepts_origin("http://127.0.0.1:8787")
    assert guard.accepts_origin("http://localhost:8787")
    assert not guard.accepts_origin("http://attacker.example")
    assert not guard.accepts_origin("http://127.0.0.1:9999")
    assert not guard.accepts_origin("null")
    assert not guard.accepts_origin("file://")


async def test_status_server_refuses_a_foreign_host_with_403() -> None:
    async with StatusServer(StreamManager()) as server:
        refused = await _status_line(server.port, f"attacker.example:{server.port}")
        allowed = await _status_line(server.port, f"127.0.0.1:{server.port}")
        localhost = await _status_line(server.port, f"localhost:{server.port}",
                                       "/metrics.json")
    assert refused.startswith("HTTP/1.1 403")
    assert allowed.startswith("HTTP/1.1 200")
    assert localhost.startswith("HTTP/1.1 200")


async def test_status_server_accepts_a_configured_host_name() -> None:
    async with StatusServer(StreamManager(), allowed_hosts=["stream.internal"]) as server:
        line = await _status_line(server.port, "stream.internal")
    assert line.startswith("HTTP/1.1 200")


async def test_dashboard_refuses_a_websocket_from_another_origin_and_its_page_from_another_host(
        ) -> None:
    async with DashboardServer(StreamManager()) as server, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{server.url}/ws", origin="http://attacker.example")
        async with http.ws_connect(f"{server.url}/ws", origin=server.url) as ws:
            same_origin = await ws.receive_json(timeout=5)
        async with http.ws_connect(f"{server.url}/ws") as ws:
            no_origin = await ws.receive_json(timeout=5)
        page = await _status_line(server.port, f"attacker.example:{server.port}", "/")
        rebound_ws = await _status_line(
            server.port, f"attacker.example:{server.port}", "/ws",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    assert refused.value.status == 403
    assert same_origin["type"] == no_origin["type"] == "hello"
    assert page.startswith("HTTP/1.1 403")
    assert rebound_ws.startswith("HTTP/1.1 403")
