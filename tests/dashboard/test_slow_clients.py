"""A page that stops reading holds bounded memory, is disconnected, and never delays the others.

The sockets are stand-ins: one whose every send (and close frame) waits forever,
as a browser tab that stopped reading with a full TCP window, and one that reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.data.dashboard import server as dashboard
from bot.data.dashboard.server import CLIENT_QUEUE_BYTES, DashboardServer, _Client
from bot.data.stream_manager import StreamManager


class _StuckSocket:
    closed = False

    async def send_str(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, **kwargs: Any) -> None:
        await asyncio.Event().wait()

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 50000)


class _ReadingSocket:
    closed = False

    def __init__(self) -> None:
        self.received: list[str] = []

    async def send_str(self, text: str) -> None:
        self.received.append(text)

    async def close(self, **kwargs: Any) -> None:
        self.closed = True


class _Transport:
    aborted = False

    def abort(self) -> None:
        self.aborted = True


async def test_a_page_that_stops_reading_is_cut_off_with_bounded_memory_and_others_go_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "CLOSE_TIMEOUT_S", 0.05)
    server = DashboardServer(StreamManager())
    transport = _Transport()
    reader = _ReadingSocket()
    stuck = _Client(_StuckSocket(), transport)  # type: ignore[arg-type]
    reading = _Client(reader, None)  # type: ignore[arg-type]
    server._clients = {stuck, reading}
    senders = [asyncio.create_task(server._send(c)) for c in (stuck, reading)]
    message = "x" * 100_000
    most_queued = 0
    for _ in range(200):
        server._broadcast(message)
        most_queued = max(most_queued, stuck.queued_bytes)
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    for task in senders:
        task.cancel()
    assert stuck not in server._clients and reading in server._clients
    assert most_queued <= CLIENT_QUEUE_BYTES
    assert transport.aborted, "a page that does not take the close frame is cut off"
    assert len(reader.received) == 200, "the reading page got every message meanwhile"


async def test_the_snapshot_on_connect_is_not_held_against_a_page() -> None:
    client = _Client(_ReadingSocket(), None)  # type: ignore[arg-type]
    for _ in range(3):
        client.send_snapshot("h" * CLIENT_QUEUE_BYTES)
    assert client.send("live update")
    assert client.queued_bytes == len("live update")
