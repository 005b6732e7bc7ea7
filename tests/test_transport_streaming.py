"""The transport hands messages on as the WebSocket library parses them, without changing
what a venue session sees.

``Connection`` handles each whole message inside the library's read callback,
several per socket read (:class:`~bot.data.transport.StreamingClientConnection`),
and reads the rest (fragmented messages, those queued before streaming began)
with ``recv()``. These tests drive it against a local ``websockets`` server
writing raw frames, with a recording session, and pin what must not change:
the order of messages, text decoded as text, invalid UTF-8 failing the
connection, answers sent in order, a fatal answer ending the stream, and a
socket that keeps talking never taken for silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from bot.data.errors import ExchangeError
from bot.data.models import Tick
from bot.data.transport import Backoff, Connection, ConnectionState, StreamingClientConnection
from bot.data.venues.protocol import Received
from tests.streaming import wait_for

Script = Callable[[ServerConnection], Awaitable[None]]


class RecordingSession:
    """A venue session that keeps every message it is given; ``ask-N`` is answered with
    ``answer-N``, ``fatal`` with a fatal venue error."""

    def __init__(self, url: str, log: list[str | bytes]) -> None:
        self._url = url
        self.log = log

    def url(self) -> str:
        return self._url

    def on_open(self) -> list[str]:
        return []

    @property
    def ready(self) -> bool:
        return True

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset({"X"})

    def subscribe(self, symbols: Sequence[str]) -> list[str]:
        return []

    def unsubscribe(self, symbols: Sequence[str]) -> list[str]:
        return []

    def receive(self, frame: bytes | str, receive_ns: int) -> Tick | Received:
        self.log.append(frame)
        if frame == "fatal":
            return Received(events=[ExchangeError("test", 1, "refused for good", fatal=True)])
        if isinstance(frame, str) and frame.startswith("ask-"):
            return Received(send=["answer-" + frame[4:]])
        return Received()


def wire(*frames: Frame) -> bytes:
    """Frames as a server sends them (unmasked), back to back: one socket write."""
    return b"".join(f.serialize(mask=False, extensions=[]) for f in frames)


def text(message: str) -> Frame:
    return Frame(Opcode.TEXT, message.encode())


@asynccontextmanager
async def streaming(script: Script, silence: float = 10.0,
                    ) -> AsyncIterator[tuple[Connection, list[str | bytes]]]:
    """A server running ``script`` per connection and a started ``Connection`` to it."""
    log: list[str | bytes] = []
    async with serve(script, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        conn = Connection("test", lambda _symbols: RecordingSession(url, log), ["X"],
                          on_tick=lambda _t: None, on_event=lambda _c, _e: None,
                          on_state=lambda _c: None, backoff=Backoff(0.05, 0.1),
                          max_attempts=3, connect_timeout=5.0, silence_timeout=silence,
                          stable_after=60.0)
        conn.start()
        try:
            yield conn, log
        finally:
            await conn.stop()


async def test_messages_keep_their_order_around_a_fragmented_one() -> None:
    # The second burst comes while streaming: a fragmented message waits in the library's
    # queue for recv() while the whole ones behind it arrive in the same socket read.
    async def script(ws: ServerConnection) -> None:
        ws.transport.write(wire(*(text(f"m{i}") for i in range(5))))
        await asyncio.sleep(0.3)
        ws.transport.write(wire(
            text("m5"),
            Frame(Opcode.TEXT, b"frag-", fin=False), Frame(Opcode.CONT, b"ment", fin=False),
            Frame(Opcode.CONT, b"ed", fin=True),
            *(text(f"m{i}") for i in range(6, 40))))
        await ws.wait_closed()

    expected = ["m0", "m1", "m2", "m3", "m4", "m5", "frag-mented",
                *(f"m{i}" for i in range(6, 40))]
    async with streaming(script) as (conn, log):
        await wait_for(lambda: len(log) >= len(expected))
        await asyncio.sleep(0.1)
        assert log == expected
        assert conn.stats.frames == len(expected)
        assert conn.stats.reconnects == 0


async def test_text_arrives_as_text_and_binary_as_bytes() -> None:
    async def script(ws: ServerConnection) -> None:
        await asyncio.sleep(0.2)
        ws.transport.write(wire(text("é"), Frame(Opcode.BINARY, b"\x00\xff")))
        await ws.wait_closed()

    async with streaming(script) as (_conn, log):
        await wait_for(lambda: len(log) >= 2)
        assert log == ["é", b"\x00\xff"]


async def test_a_text_frame_of_invalid_utf8_fails_the_connection_with_1007() -> None:
    close_codes: list[int | None] = []

    async def script(ws: ServerConnection) -> None:
        await asyncio.sleep(0.2)
        ws.transport.write(wire(text("before"), Frame(Opcode.TEXT, b"\xff\xfe"), text("after")))
        await ws.wait_closed()
        close_codes.append(ws.close_code)

    async with streaming(script) as (conn, log):
        await wait_for(lambda: bool(close_codes) and conn.stats.reconnects >= 1)
        assert close_codes[0] == 1007
        assert log[0] == "before"
        assert "after" not in log[:2]


async def test_answers_a_message_asks_for_are_sent_in_order_while_streaming() -> None:
    received: list[str] = []

    async def script(ws: ServerConnection) -> None:
        await asyncio.sleep(0.2)
        ws.transport.write(wire(*(text(f"ask-{i}" if i % 3 == 0 else f"m{i}")
                                  for i in range(60))))
        async for message in ws:
            received.append(str(message))

    async with streaming(script) as (conn, log):
        await wait_for(lambda: len(received) >= 20)
        assert received == [f"answer-{i}" for i in range(0, 60, 3)]
        assert len(log) == 60
        assert conn.state is ConnectionState.CONNECTED


async def test_a_fatal_answer_while_streaming_fails_the_connection_and_nothing_after_it_is_handled(
        ) -> None:
    async def script(ws: ServerConnection) -> None:
        await asyncio.sleep(0.2)
        ws.transport.write(wire(text("m0"), text("fatal"),
                                *(text(f"m{i}") for i in range(1, 30))))
        await ws.wait_closed()

    async with streaming(script) as (conn, log):
        await wait_for(lambda: conn.state is ConnectionState.FAILED)
        assert log == ["m0", "fatal"]
        assert isinstance(conn.error, ExchangeError) and conn.error.fatal


async def test_a_socket_that_keeps_talking_is_never_recycled_as_silent() -> None:
    # One message every 0.1 s for 1.5 s against a 0.4 s silence timeout.
    async def script(ws: ServerConnection) -> None:
        for i in range(15):
            await ws.send(f"m{i}")
            await asyncio.sleep(0.1)
        await ws.wait_closed()

    async with streaming(script, silence=0.4) as (conn, log):
        await wait_for(lambda: len(log) >= 15)
        assert conn.stats.silent_recycles == 0
        assert conn.stats.reconnects == 0
        await wait_for(lambda: conn.stats.silent_recycles >= 1)  # then it falls silent


async def test_once_the_queued_messages_are_read_later_ones_are_handed_on_directly() -> None:
    # The library queues the fragmented message and the one behind it for recv(); once
    # both are read, the next burst goes straight to on_message again.
    bursts = [wire(Frame(Opcode.TEXT, b"a", fin=False), Frame(Opcode.CONT, b"b"), text("c")),
              wire(text("d"), text("e"))]

    async def script(ws: ServerConnection) -> None:
        await ws.recv()
        for burst in bursts:
            ws.transport.write(burst)
            await asyncio.sleep(0.3)
        await ws.wait_closed()

    direct: list[str | bytes] = []
    queued: list[str | bytes] = []
    async with serve(script, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with websockets.connect(url, create_connection=StreamingClientConnection) as ws:
            assert isinstance(ws, StreamingClientConnection)
            ws.on_message = direct.append
            await ws.send("go")
            queued.append(await ws.recv_queued())
            queued.append(await ws.recv_queued())
            await wait_for(lambda: len(direct) >= 2)
    assert queued == ["ab", "c"]
    assert direct == ["d", "e"]
