"""``DashboardServer``: the status server plus the dashboard page and its WebSocket.

Routes added to :class:`~bot.data.status_server.StatusServer`'s: ``GET /``
(the page), ``/static/...`` (its script, style and the vendored chart library)
and ``GET /ws`` (the live feed, see :mod:`bot.data.dashboard.feed`).

One publisher task drains the feed every ``push_interval`` seconds and sends
the status every ``status_interval``; each message is encoded once and queued
for every client, and each client has its own sender task, so a slow page
never delays the others. A client whose queue passes :data:`CLIENT_QUEUE`
messages or :data:`CLIENT_QUEUE_BYTES` (a page that stopped reading) is
disconnected rather than allowed to hold memory: a close frame if it goes out
within :data:`CLOSE_TIMEOUT_S`, else the connection is cut. The page
reconnects and gets the history again. At most :data:`MAX_CLIENTS` pages are
served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from bot.data.dashboard.feed import Account, DashboardFeed, Engine
from bot.data.status_server import StatusServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from bot.data.stream_manager import StreamManager

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
CLIENT_QUEUE = 1000
CLIENT_QUEUE_BYTES = 2 * 1024 * 1024
# Pages served at once; one more is refused with 503 (memory stays bounded by both limits).
MAX_CLIENTS = 256
CLOSE_TIMEOUT_S = 1.0
HEARTBEAT_S = 20.0
_encode = msgspec.json.Encoder().encode


class _Client:
    """One connected page: its socket and the messages waiting to be sent to it."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None,
                 ) -> None:
        self.ws = ws
        self.transport = transport
        self.queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.queued_bytes = 0  # of the live messages waiting (the snapshot is not counted)

    def send_snapshot(self, text: str) -> None:
        """Queue a message of the snapshot a page gets on connecting (bounded by the history)."""
        self.queue.put_nowait((text, 0))

    def send(self, text: str) -> bool:
        """Queue a live message; False when the client is too far behind."""
        size = len(text)
        if self.queue.qsize() >= CLIENT_QUEUE or self.queued_bytes + size > CLIENT_QUEUE_BYTES:
            return False
        self.queue.put_nowait((text, size))
        self.queued_bytes += size
        return True

    async def next(self) -> str:
        """The next message to send, taken off the queue."""
        text, size = await self.queue.get()
        self.queued_bytes -= size
        return text

    async def disconnect(self) -> None:
        """Close politely if the close frame goes out in time, else cut the connection."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        if not self.ws.closed and self.transport is not None:
            self.transport.abort()


class DashboardServer(StatusServer):
    """Serves the dashboard of ``manager`` (and ``/health``, ``/metrics``).

    ``engine`` (a ``StreamingTradingEngine``) and ``account`` (e.g. its
    ``PaperExecutor``) add the engine's figures, positions and PnL to the page.
    """

    def __init__(self, manager: StreamManager, host: str = "127.0.0.1", port: int = 0, *,
                 push_interval: float = 0.25, status_interval: float = 1.0,
                 history: int | None = None, allowed_hosts: Iterable[str] = (),
                 engine: Engine | None = None, account: Account | None = None) -> None:
        if not push_interval > 0 or not status_interval > 0:
            raise ValueError(f"push_interval ({push_interval!r}) and status_interval "
                             f"({status_interval!r}) must be > 0 seconds")
        super().__init__(manager, host, port, allowed_hosts=allowed_hosts)
        self._supervisor = manager.supervisor
        self.feed = DashboardFeed(manager, history, engine=engine, account=account)
        self.push_interval = push_interval
        self.status_interval = status_interval
        self._clients: set[_Client] = set()
        self._publisher: asyncio.Task[None] | None = None
        self._detach: Callable[[], None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.AbstractRouteDef]:
        return [*super().routes(), web.get("/", self.index), web.get("/ws", self.websocket),
                web.static("/static", STATIC_DIR)]

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        if self._publisher is None:
            self._detach = self.feed.attach()
            # Under the manager's supervisor: a failure shows in its health, and the loop
            # restarts instead of leaving every page frozen.
            self._publisher = self._supervisor.loop("dashboard-publisher", self._publish)

    async def stop(self) -> None:
        task, self._publisher = self._publisher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._detach is not None:
            self._detach()
            self._detach = None
        for client in list(self._clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
        await super().stop()

    # -- handlers --------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self._clients) >= MAX_CLIENTS:
            return web.Response(status=503, text=f"503: {MAX_CLIENTS} dashboard pages are "
                                                 "open already\n")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        client = _Client(ws, request.transport)
        # Snapshot and registration without an await between them: every bar completed
        # after the snapshot reaches this client through the updates.
        for message in (self.feed.hello(), *self.feed.history(), self.feed.status()):
            client.send_snapshot(_encode(message).decode())
        self._clients.add(client)
        sender = asyncio.get_running_loop().create_task(self._send(client))
        try:
            async for msg in ws:  # the page sends nothing; reading notices the close
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _send(self, client: _Client) -> None:
        while True:
            text = await client.next()
            try:
                await client.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                await client.ws.close()
                return

    # -- publishing ------------------------------------------------------------------
    async def _publish(self) -> None:
        next_status = time.monotonic() + self.status_interval
        while True:
            await asyncio.sleep(self.push_interval)
            update = self.feed.update()  # drained with or without clients: nothing piles up
            if update is not None and self._clients:
                self._broadcast(_encode(update).decode())
            now = time.monotonic()
            if now >= next_status:
                next_status = now + self.status_interval
                if self._clients:
                    self._broadcast(_encode(self.feed.status()).decode())
                else:  # keep the trade-rate window current for the next page
                    self.feed.trades.sample()

    def _broadcast(self, text: str) -> None:
        for client in list(self._clients):
            if not client.send(text):
                logger.warning("dashboard client %s is too slow; disconnecting it",
                               client.ws.get_extra_info("peername"))
                self._clients.discard(client)
                task = asyncio.get_running_loop().create_task(client.disconnect())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
