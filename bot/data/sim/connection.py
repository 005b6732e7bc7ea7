"""One accepted WebSocket on the server side: ordered sending under the fault switches.

Venue sessions enqueue messages without blocking (the market feed calls them
synchronously); a writer task sends them in order. Every send passes through
the faults: a silent server discards its frames, a dropping server cuts the
TCP connection without a close frame, a garbling server corrupts frames.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from bot.data.sim.faults import Faults

# Messages a client may leave unread before the server gives up on it (a "slow client").
MAX_BACKLOG = 200_000


@dataclass
class Counters:
    """What the simulator did, for tests and the command line."""

    connections_accepted: int = 0
    connections_open: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    drops: int = 0
    malformed_sent: int = 0
    rest_requests: int = 0
    rest_rejected: int = 0
    rest_by_endpoint: dict[str, int] = field(default_factory=dict)  # path -> requests
    rate_limit_closes: int = 0  # connections closed with 1008 for sending too much
    connections_refused: int = 0


def service_unavailable() -> web.Response:
    """The answer to a WebSocket handshake while the venue is down: HTTP 503, an HTML page."""
    return web.Response(status=503, content_type="text/html",
                        text="<html><head><title>503 Service Temporarily Unavailable</title>"
                             "</head><body><center><h1>503 Service Temporarily Unavailable"
                             "</h1></center></body></html>")


def garble(text: str, rng: random.Random) -> str:
    """A corrupted copy of a JSON frame: cut short (invalid JSON) or with leaf types swapped."""
    if rng.random() < 0.5:
        return text[: max(1, len(text) // 2)]

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str) and value.replace(".", "", 1).isdigit():
            return float(value)
        return value

    return msgspec.json.encode(swap(msgspec.json.decode(text))).decode()


Frame = Callable[[list[Any]], str]


class RawFrame(str):
    """A frame sent exactly as given, not encoded (e.g. a hostile, deeply nested one)."""


class SimConnection:
    """Outgoing side of one WebSocket: a backlog of messages and the task that sends them.

    ``encode`` turns a run of batchable messages into one frame (Alpaca packs
    data points into one JSON array; Binance sends one frame per message).
    """

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, faults: Faults,
                 counters: Counters, encode: Frame, max_batch: int = 1) -> None:
        self.request = request
        self.ws = ws
        self.faults = faults
        self.counters = counters
        self.sent = 0
        self.closed = asyncio.Event()
        self._encode = encode
        self._max_batch = max_batch
        self._backlog: collections.deque[tuple[Any, bool]] = collections.deque()
        self._ready = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop(), name="sim-ws-writer")

    def send(self, message: Any, batchable: bool = False) -> None:
        """Queue ``message``; batchable ones may share a frame with their neighbours."""
        if self.closed.is_set():
            return
        if len(self._backlog) >= MAX_BACKLOG:
            self.abort()
            return
        self._backlog.append((message, batchable))
        self._ready.set()

    def _next_frame(self) -> str:
        message, batchable = self._backlog.popleft()
        if isinstance(message, RawFrame):
            return str(message)
        messages = [message]
        while (batchable and self._backlog and self._backlog[0][1]
               and len(messages) < self._max_batch):
            messages.append(self._backlog.popleft()[0])
        return self._encode(messages)

    async def _write_loop(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not self.closed.is_set():
                await self._ready.wait()
                self._ready.clear()
                while self._backlog and not self.closed.is_set():
                    await self._send_frame(self._next_frame())

    async def _send_frame(self, text: str) -> None:
        if self.faults.silent:
            return
        if self.faults.should_drop(self.sent):
            self.abort()
            return
        if self.faults.should_garble():
            text = garble(text, self.faults.rng)
            self.counters.malformed_sent += 1
        await self.ws.send_str(text)
        self.sent += 1
        self.counters.messages_sent += 1

    async def flush(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until everything queued so far was sent."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._backlog and not self.closed.is_set():
                    await asyncio.sleep(0.001)

    def abort(self) -> None:
        """Cut the TCP connection at once: no close frame, as a network failure would."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._ready.set()
        self.counters.drops += 1
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, reason: str = "") -> None:
        """Close politely with a close frame carrying ``code`` and ``reason``."""
        if self.closed.is_set():
            return
        await self.flush()
        self.closed.set()
        self._ready.set()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode())

    async def finish(self) -> None:
        """End the writer task (the handler is returning)."""
        self.closed.set()
        self._ready.set()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
