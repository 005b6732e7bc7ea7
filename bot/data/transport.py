"""``Connection``: one WebSocket session loop to one venue endpoint.

It connects with a timeout, lets the venue session (a sans-I/O protocol object
from :mod:`bot.data.venues`) do its handshake and subscriptions, reads frames,
and reconnects with exponential backoff and full jitter. It knows nothing of
bars: every decoded tick goes to ``on_tick``.

Reliability rules it enforces:

* backoff ``uniform(reconnect_delay, min(max_reconnect_delay, reconnect_delay * 2**n))``,
  reset once a connection has stayed up for ``stable_connection_seconds``;
* after ``reconnect_attempts`` consecutive failed attempts on which the venue sent
  nothing, or at once on a fatal venue answer (bad credentials, connection limit,
  insufficient subscription), the connection is FAILED and the error is kept for
  whoever awaits it. A connection that drops again and again but hears from the
  venue in between (trades, or only its replies while the market is closed) keeps
  reconnecting, its backoff grown to ``max_reconnect_delay``: giving up on it would
  stop a market that is flowing, or one about to open;
* a connection that stays open but sends nothing for ``silence_timeout`` is recycled;
  so is one whose liveness probe (:meth:`Connection.probe`, for venues that answer
  a request in order on the stream) goes unanswered for ``probe_timeout``;
* a connection with a maximum lifetime (the venue's facts; Binance: 24 h) is replaced before it
  expires, and on a ``serverShutdown`` notice: the new socket is opened and
  streaming before the old one is closed; the overlap is deduplicated by trade
  id downstream, so the rollover neither loses nor doubles a trade. A retired
  socket is closed in the background (a supervised job), so a close handshake
  the server is slow to finish never delays the new socket's stream;
* control messages (liveness probes included) are paced at the venue's rate (Binance
  accepts at most 5 per second);
* receive times, ``last_message_ns`` and ``state_since_ns`` are read from the
  injected ``clock`` (the manager's), so staleness and bar completion compare
  times of one clock;
* any exception from the venue session's decoder (a malformed or hostile frame:
  invalid JSON, a frame nested deep enough to exhaust the recursion limit,
  values of the wrong type) is a counted parse error: logged rate-limited with a
  short sample, the frame skipped, the stream going on, in the handshake too;
* an exception from ``on_tick`` or ``on_event`` (a bug downstream) is logged with
  its traceback and counted (``callback_errors``), and the stream goes on;
* the session loop runs under a :class:`~bot.data.supervision.Supervisor`:
  anything else it raises is logged, counted and shown in health, the state
  leaves ``connected`` at once, and the loop restarts after a backoff. A loop
  that ends any other way than :meth:`Connection.stop` leaves the connection FAILED.

Pings are answered by the websockets library; it also sends its own keepalive
pings, so a dead peer is noticed even when the venue's pings stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.protocol import Event

from bot.data.backoff import Backoff
from bot.data.config import StreamManagerConfig
from bot.data.errors import ExchangeError, MalformedFrame
from bot.data.models import Tick
from bot.data.supervision import Supervisor
from bot.data.throttle import LogThrottle
from bot.data.venues.protocol import (
    ProbingSession,
    Ready,
    Received,
    ServerShutdown,
    SubscriptionResult,
    VenueSession,
)
from bot.data.venues.spec import VenueFacts

logger = logging.getLogger(__name__)


class ConnectionState(str, enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    SUBSCRIBING = "subscribing"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    FAILED = "failed"


class ConnectionFailed(ExchangeError):
    """A connection gave up: too many consecutive failures, or a fatal venue answer."""


@dataclass
class ConnectionStats:
    frames: int = 0
    ticks: int = 0
    malformed: int = 0
    callback_errors: int = 0
    reconnects: int = 0
    rollovers: int = 0
    silent_recycles: int = 0
    consecutive_failures: int = 0


SessionFactory = Callable[[frozenset[str]], VenueSession]
MessageHandler = Callable[[str | bytes], None]


class StreamingClientConnection(ClientConnection):
    """A websockets client connection that hands each whole message to ``on_message`` as
    soon as its frame is parsed, instead of queueing it for ``recv()``.

    The library parses every frame a socket read brings in one go; handing them on
    from there spares each message the queue, a ``recv()`` coroutine and a task
    wakeup (about a third of the library's cost per frame). A text message is
    decoded from UTF-8 as ``recv()`` would; one that is not valid UTF-8 takes the
    library's path, where ``recv()`` fails the connection (close code 1007) as
    before. Fragmented messages take the library's path too, and so does every
    message while ``on_message`` is None or the library may still hold messages
    for ``recv()``: messages keep their order. Read those with :meth:`recv_queued`.
    ``on_message`` must not raise: it runs inside the protocol's ``data_received``.
    """

    on_message: MessageHandler | None = None
    _held = 0  # whole messages the library holds for recv()

    def process_event(self, event: Event) -> None:
        on_message = self.on_message
        if on_message is not None and not self._held and type(event) is Frame and event.fin:
            opcode = event.opcode
            if opcode is Opcode.TEXT:
                try:
                    text = str(event.data, "utf-8")
                except UnicodeDecodeError:
                    pass  # recv() fails the connection
                else:
                    on_message(text)
                    return
            elif opcode is Opcode.BINARY:
                on_message(bytes(event.data))
                return
        if type(event) is Frame and event.fin and event.opcode in DATA_OPCODES:
            self._held += 1  # this frame completes a message the library queues
        super().process_event(event)

    async def recv_queued(self) -> str | bytes:
        """``recv()``, keeping count of the messages the library still holds: once none
        is left, later messages go to ``on_message`` again. Read every message with it."""
        message = await self.recv()
        self._held -= 1
        return message


class _PumpState:
    """What a socket's message handler leaves for the task that pumps the socket: the
    messages to send in answer, the error that ends the stream, the frames seen."""

    __slots__ = ("error", "frames", "outbox", "waiter")

    def __init__(self) -> None:
        self.frames = 0
        self.outbox: deque[str] = deque()
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    def notify(self) -> None:
        """Wake the pump (there is something to send, or the stream must end)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Connection:
    """Keeps one venue connection alive for a changing set of symbols."""

    def __init__(
        self,
        name: str,
        session_factory: SessionFactory,
        symbols: Iterable[str],
        *,
        on_tick: Callable[[Tick], Any],
        on_event: Callable[[Connection, object], None],
        on_state: Callable[[Connection], None],
        backoff: Backoff,
        max_attempts: int,
        connect_timeout: float,
        silence_timeout: float,
        stable_after: float,
        max_lifetime: float | None = None,
        control_interval: float = 0.0,
        probe_timeout: float = 5.0,
        rng: Callable[[], float] = random.random,
        supervisor: Supervisor | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = name
        self._factory = session_factory
        self.symbols: set[str] = set(symbols)
        self._on_tick = on_tick
        self._on_event = on_event
        self._on_state = on_state
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._connect_timeout = connect_timeout
        self._silence_timeout = silence_timeout
        self._stable_after = stable_after
        self._max_lifetime = max_lifetime
        self._control_interval = control_interval
        self._probe_timeout = probe_timeout
        self._rng = rng
        self._supervisor = supervisor if supervisor is not None else Supervisor()
        self._clock = clock
        self.state = ConnectionState.DISCONNECTED
        self.state_since_ns = clock()
        self.last_message_ns = 0
        self.sockets_opened = 0  # sockets that completed their handshake
        self._probes_liveness = False  # known once a session was made
        self.error: BaseException | None = None
        self.stats = ConnectionStats()
        self._session: VenueSession | None = None
        self._ws: StreamingClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._rollover = asyncio.Event()
        self._dead = asyncio.Event()  # a probe went unanswered: recycle the socket
        # The probe awaiting its answer: the session it went out on, its id, its answer.
        self._probe: tuple[VenueSession, int, asyncio.Future[None]] | None = None
        self._proven_before_probe = 0  # last_message_ns when the probe under way went out
        self._closing: set[asyncio.Task[Any]] = set()  # retired sockets closing
        self._send_lock = asyncio.Lock()
        self._last_send = 0.0
        self._throttle = LogThrottle(logger)

    @classmethod
    def for_venue(cls, name: str, session_factory: SessionFactory, symbols: Iterable[str],
                  config: StreamManagerConfig, facts: VenueFacts, *,
                  on_tick: Callable[[Tick], Any], on_event: Callable[[Connection, object], None],
                  on_state: Callable[[Connection], None],
                  supervisor: Supervisor | None = None,
                  clock: Callable[[], int] = time.time_ns) -> Connection:
        """A connection with the config's reconnect, timeout, silence and probe settings.

        It rolls over before the venue's connection lifetime and paces control
        messages to the venue's rate, as its ``facts`` say.
        """
        return cls(
            name, session_factory, symbols, on_tick=on_tick, on_event=on_event,
            on_state=on_state,
            backoff=Backoff(config.reconnect_delay, config.max_reconnect_delay),
            max_attempts=config.reconnect_attempts, connect_timeout=config.connect_timeout,
            silence_timeout=config.silence_timeout_seconds,
            stable_after=config.stable_connection_seconds,
            max_lifetime=facts.connection_lifetime_s,
            control_interval=facts.control_interval_s,
            probe_timeout=config.liveness_probe_timeout_seconds,
            supervisor=supervisor, clock=clock)

    # -- public ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the session loop, supervised: restarted after an unexpected exception."""
        if self._task is None:
            self._task = self._supervisor.loop(self.name, self._run, on_failure=self._loop_failed)
            self._task.add_done_callback(self._loop_ended)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until streaming; raise the connection's error if it FAILED first."""
        ready = asyncio.ensure_future(self._ready.wait())
        assert self._task is not None
        done, _ = await asyncio.wait({ready, self._task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self.error is not None and self.state is ConnectionState.FAILED:
            raise self.error
        if not done:
            raise TimeoutError(f"{self.name}: not connected within {timeout:.0f}s "
                               f"(state {self.state.value})")

    async def stop(self) -> None:
        """Close gracefully (close frame sent) and end the task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        self._set_state(ConnectionState.STOPPED)

    @property
    def probes_liveness(self) -> bool:
        """True when the venue's sessions answer a liveness probe (:meth:`probe`)."""
        return self._probes_liveness

    @property
    def probing(self) -> bool:
        """True while a liveness probe awaits its answer."""
        return self._probe is not None

    @property
    def proven_ns(self) -> int:
        """Until when (clock time) the connection is known to have delivered what the venue
        sent: its last frame's receive time, but while a probe is out no later than the
        last frame before it. Frames arriving meanwhile are no proof until the answer
        follows them: a probe that goes unanswered shows the stream lost something."""
        if self._probe is None:
            return self.last_message_ns
        return min(self.last_message_ns, self._proven_before_probe)

    async def probe(self) -> bool:
        """Prove the connection still delivers: send the session's probe, await its answer.

        The answer follows, on the same stream, every frame the venue sent before
        reading the probe, so once it is here (True) everything up to the probe's
        sending was delivered; ``last_message_ns`` is then at least the answer's
        receive time. No answer within ``probe_timeout`` seconds of sending means the
        socket is dead though open: it is recycled at once (False), and the reconnect
        lets gap recovery fill what it missed. False too when there is no connection
        to probe, or its session cannot be probed. One probe at a time.
        """
        session, ws = self._session, self._ws
        if (self._probe is not None or ws is None or not isinstance(session, ProbingSession)
                or self.state is not ConnectionState.CONNECTED):
            return False
        request_id, message = session.probe()
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._proven_before_probe = self.last_message_ns
        self._probe = (session, request_id, answer)
        try:
            await self._send([message], ws)  # paced with the other control messages
            try:
                await asyncio.wait_for(asyncio.shield(answer), self._probe_timeout)
                return True
            except TimeoutError:
                if self._session is session:
                    self._throttle.log("probe", logging.WARNING,
                                       "%s: liveness probe unanswered for %gs; recycling",
                                       self.name, self._probe_timeout)
                    self._dead.set()
                return False
        finally:
            self._probe = None

    async def add(self, symbols: Iterable[str]) -> None:
        new = set(symbols) - self.symbols
        if not new:
            return
        self.symbols |= new
        if self._session is not None and self._ws is not None:
            await self._send(self._session.subscribe(sorted(new)))

    async def remove(self, symbols: Iterable[str]) -> None:
        gone = set(symbols) & self.symbols
        if not gone:
            return
        self.symbols -= gone
        if self._session is not None and self._ws is not None:
            await self._send(self._session.unsubscribe(sorted(gone)))

    def request_rollover(self) -> None:
        """Open a replacement socket now and retire the current one once it streams."""
        self._rollover.set()

    # -- the loop --------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0  # failures since the last stable connection: the backoff's exponent
        barren = 0  # attempts in a row on which the venue sent nothing: the give-up count
        try:
            while True:
                if not self.symbols:
                    self._set_state(ConnectionState.DISCONNECTED)
                    await asyncio.sleep(0.2)
                    continue
                started = time.monotonic()
                frames_before = self.stats.frames
                try:
                    await self._connect_and_stream()
                except ExchangeError as exc:
                    if exc.fatal:
                        self._fail(exc)
                        return
                    self._note_failure(exc)
                except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                    self._note_failure(exc)
                if time.monotonic() - started >= self._stable_after:
                    attempt = barren = 0
                attempt += 1
                # A connection that keeps dropping but hears from the venue in between is
                # flaky, not dead: it keeps reconnecting, at the backoff's longest delay.
                barren = 0 if self.stats.frames > frames_before else barren + 1
                self.stats.consecutive_failures = barren
                if barren > self._max_attempts:
                    self._fail(ConnectionFailed(
                        self.name, 0, f"gave up after {self._max_attempts} consecutive failed "
                        f"attempts (the venue sent nothing on any); last error: {self.error!r}",
                        fatal=True))
                    return
                self.stats.reconnects += 1
                self._set_state(ConnectionState.RECONNECTING)
                await asyncio.sleep(self._backoff.delay(attempt, self._rng))
        except asyncio.CancelledError:
            await self._close_ws(self._ws)
            raise

    async def _connect_and_stream(self) -> None:
        session, ws = await self._open()
        self._session, self._ws = session, ws
        reader = asyncio.ensure_future(self._pump(session, ws))
        try:
            while True:
                rollover = asyncio.ensure_future(self._rollover.wait())
                dead = asyncio.ensure_future(self._dead.wait())
                try:
                    done, _ = await asyncio.wait({reader, rollover, dead},
                                                 timeout=self._max_lifetime,
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    rollover.cancel()
                    dead.cancel()
                if reader in done:
                    reader.result()  # re-raises what ended the stream
                    return
                if self._dead.is_set():
                    self.stats.silent_recycles += 1
                    raise TimeoutError(f"{self.name}: liveness probe unanswered for "
                                       f"{self._probe_timeout:g}s; recycling")
                # Lifetime reached or rollover asked for: replace the socket without a gap.
                # The old reader keeps streaming until the new socket is ready.
                self._rollover.clear()
                new_session, new_ws = await self._open(replacing=reader)
                self.stats.rollovers += 1
                await _cancel(reader)
                old_ws, session, ws = ws, new_session, new_ws
                self._session, self._ws = session, ws
                reader = asyncio.ensure_future(self._pump(session, ws))
                self._retire(old_ws)
        finally:
            await _cancel(reader)
            self._ws = None
            self._retire(ws)

    async def _open(self, replacing: asyncio.Future[Any] | None = None,
                    ) -> tuple[VenueSession, StreamingClientConnection]:
        """Connect and complete the handshake; the old reader (if any) keeps streaming meanwhile."""
        if replacing is None:
            self._ready.clear()
            self._set_state(ConnectionState.CONNECTING)
        self._dead.clear()
        session = self._factory(frozenset(self.symbols))
        self._probes_liveness = isinstance(session, ProbingSession)
        async with asyncio.timeout(self._connect_timeout):
            ws = cast(StreamingClientConnection, await websockets.connect(
                session.url(), max_size=2**24, open_timeout=None, close_timeout=2,
                create_connection=StreamingClientConnection))
        try:
            await self._send(session.on_open(), ws)
            if replacing is None:
                self._set_state(ConnectionState.AUTHENTICATING)
            async with asyncio.timeout(self._connect_timeout):
                while not session.ready:
                    frame = await ws.recv_queued()
                    self.stats.frames += 1
                    try:
                        out = session.receive(frame, self._clock())
                    except Exception as exc:
                        self._parse_error(exc, frame)
                        continue
                    self._handle(out)
                    if isinstance(out, Received) and out.send:
                        if self.state is ConnectionState.AUTHENTICATING and replacing is None:
                            self._set_state(ConnectionState.SUBSCRIBING)
                        await self._send(out.send, ws)
        except BaseException:
            await self._close_ws(ws)
            raise
        self.stats.consecutive_failures = 0
        self.error = None
        self.sockets_opened += 1
        self._set_state(ConnectionState.CONNECTED)
        self._ready.set()
        return session, ws

    async def _pump(self, session: VenueSession, ws: StreamingClientConnection) -> None:
        """Stream the socket's messages until it closes, goes silent, or one ends the stream.

        Messages are handled as the library parses them, inside its read callback
        (:class:`StreamingClientConnection`): every message one socket read brought
        in goes through at once, with no task switch per message. This task sends
        what the session asks to send in answer (paced with the other control
        messages; reading goes on meanwhile), reads the messages the library
        queued for ``recv()`` instead, and raises what ended the stream: the
        socket's closure, a fatal venue answer.

        Silence: a watchdog looks at the count of frames every ``min(1, silence/4)``
        seconds (nothing is timed per frame), so a silent socket is recycled between
        ``silence`` seconds and that much more after its last message.
        """
        state = _PumpState()
        handle = self._message_handler(session, ws, state)
        reader = asyncio.ensure_future(self._read_queued(ws, handle, state))
        loop = asyncio.get_running_loop()
        silence = self._silence_timeout
        period = min(1.0, silence / 4)
        seen, seen_at = 0, loop.time()
        ws.on_message = handle
        try:
            while True:
                waiter = state.waiter = loop.create_future()
                while state.outbox and state.error is None:
                    await self._send([state.outbox.popleft()], ws)
                if state.error is None and not reader.done():
                    await asyncio.wait((reader, waiter), timeout=period,
                                       return_when=asyncio.FIRST_COMPLETED)
                if state.error is not None:
                    raise state.error
                if reader.done():
                    reader.result()  # re-raises what ended the stream (the socket closed)
                    return
                if waiter.done():
                    continue
                now = loop.time()
                if state.frames != seen:
                    seen, seen_at = state.frames, now
                elif now - seen_at >= silence:
                    self.stats.silent_recycles += 1
                    raise TimeoutError(f"{self.name}: no message for {silence:g}s; recycling")
        finally:
            ws.on_message = None
            state.waiter = None
            await _cancel(reader)

    async def _read_queued(self, ws: StreamingClientConnection, handle: MessageHandler,
                           state: _PumpState) -> None:
        """Handle, in order, the messages the library queued for ``recv()`` (fragmented
        ones, those that came before streaming began); raises once the socket closes."""
        while True:
            message = await ws.recv_queued()
            if state.error is not None:  # the stream ended while this one waited
                return
            handle(message)

    def _message_handler(self, session: VenueSession, ws: StreamingClientConnection,
                         state: _PumpState) -> MessageHandler:
        """The function that handles one message of ``ws``: decoded by ``session``, its
        tick passed on, its control events acted on, what it asks to send left in
        ``state``'s outbox. It never raises: what must end the stream (a fatal venue
        answer, a bug) is left in ``state.error``, and later messages are no longer
        handled."""
        receive = session.receive
        on_tick = self._on_tick
        clock = self._clock
        stats = self.stats

        def handle(frame: str | bytes) -> None:
            try:
                now = clock()
                self.last_message_ns = now
                stats.frames += 1
                state.frames += 1
                try:
                    out = receive(frame, now)
                except Exception as exc:  # whatever a hostile frame makes the decoder raise
                    self._parse_error(exc, frame)
                    return
                if type(out) is Tick:
                    stats.ticks += 1
                    try:
                        on_tick(out)
                    except Exception as exc:
                        self._callback_error("on_tick", exc)
                elif isinstance(out, Received):
                    self._handle(out)
                    if out.send:
                        state.outbox.extend(out.send)
                        state.notify()
            except Exception as exc:
                ws.on_message = None
                state.error = exc
                state.notify()

        return handle

    def _handle(self, out: Tick | Received) -> None:
        """Deliver a frame's ticks and act on its control events (sending is the caller's)."""
        for tick in (out,) if isinstance(out, Tick) else out.ticks:
            self.stats.ticks += 1
            try:
                self._on_tick(tick)
            except Exception as exc:
                self._callback_error("on_tick", exc)
        if isinstance(out, Tick):
            return
        for bad in out.malformed:  # messages the session skipped; the frame's others went on
            self._parse_error(bad, bad.sample)
        for event in out.events:
            if isinstance(event, ExchangeError):
                if event.fatal:
                    raise event
                self._throttle.log(f"venue:{event.code}", logging.WARNING, "%s: %s",
                                   self.name, event)
            elif isinstance(event, ServerShutdown):
                self.request_rollover()
            elif isinstance(event, SubscriptionResult) and self._answers_probe(event):
                continue
            elif isinstance(event, SubscriptionResult) and not event.ok:
                self._throttle.log("subscription", logging.ERROR,
                                   "%s: subscription request %s refused: %s %s", self.name,
                                   event.request_id, event.error_code, event.error_msg)
            elif isinstance(event, Ready):
                continue
            try:
                self._on_event(self, event)
            except Exception as exc:
                self._callback_error("on_event", exc)

    def _answers_probe(self, event: SubscriptionResult) -> bool:
        """True (and the probe settled) when ``event`` answers the probe under way."""
        probe = self._probe
        if probe is None or probe[0] is not self._session or event.request_id != probe[1]:
            return False
        if not probe[2].done():
            probe[2].set_result(None)
        return True

    def _parse_error(self, exc: Exception, frame: bytes | str) -> None:
        """A frame the session could not decode: counted, logged with a short sample, skipped."""
        self.stats.malformed += 1
        if not isinstance(exc, MalformedFrame):
            exc = MalformedFrame(f"{type(exc).__name__}: {exc}", frame)
        self._throttle.log("malformed", logging.WARNING, "%s: skipped malformed frame: %s",
                           self.name, exc)

    def _callback_error(self, callback: str, exc: Exception) -> None:
        """A bug behind ``on_tick``/``on_event``: logged with its traceback, counted; streaming
        goes on (the tick is lost to the pipeline, not to the connection)."""
        self.stats.callback_errors += 1
        self._throttle.log(f"callback:{callback}:{type(exc).__name__}", logging.ERROR,
                           "%s: %s raised %r; the stream goes on", self.name, callback, exc,
                           exc_info=exc)

    async def _send(self, messages: Iterable[str], ws: ClientConnection | None = None) -> None:
        target = ws if ws is not None else self._ws
        if target is None:
            return
        async with self._send_lock:
            for msg in messages:
                wait = self._last_send + self._control_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    await target.send(msg)
                except websockets.ConnectionClosed:
                    # The read loop sees the closure and reconnects, subscribing the
                    # current symbol set: nothing sent here needs repeating.
                    return
                self._last_send = time.monotonic()

    def _retire(self, ws: ClientConnection | None) -> None:
        """Close a socket no longer read, in the background (its close handshake may take
        up to ``close_timeout``); :meth:`stop` waits for it."""
        if ws is None:
            return
        task = self._supervisor.job(f"{self.name}-close", self._close_ws(ws))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_ws(self, ws: ClientConnection | None) -> None:
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    # -- state -----------------------------------------------------------------------
    def _loop_failed(self, exc: BaseException) -> None:
        """The loop raised unexpectedly; the supervisor restarts it after a backoff."""
        self.error = exc
        self._session = self._ws = None
        self._ready.clear()
        self._set_state(ConnectionState.RECONNECTING)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """The loop's task ended: only :meth:`stop` and a FAILED connection may end it."""
        if task is not self._task or self.state is ConnectionState.FAILED:
            return
        how = "was cancelled" if task.cancelled() else "ended"
        self._fail(ConnectionFailed(self.name, 0, f"connection task {how} unexpectedly",
                                    fatal=True))

    def _note_failure(self, exc: BaseException) -> None:
        self.error = exc
        self._throttle.log(f"fail:{type(exc).__name__}", logging.WARNING,
                           "%s: connection lost: %r", self.name, exc)

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        logger.error("%s: connection FAILED: %s", self.name, exc)
        self._set_state(ConnectionState.FAILED)

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self.state:
            self.state = state
            self.state_since_ns = self._clock()
            self._on_state(self)


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel a task and wait for it, swallowing what it ended with."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
