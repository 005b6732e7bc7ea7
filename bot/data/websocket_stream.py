"""``WebSocketStream``: the legacy single-connection trade stream (deprecated).

One venue connection, one callback per trade, no bars, no history::

    async with WebSocketStream("binance", ["BTC/USDT"], on_trade=print):
        await asyncio.sleep(60)

It is kept for code written against the old interface and is a thin shell over
the same parts the :class:`~bot.data.StreamManager` uses: a
:class:`~bot.data.transport.Connection` (reconnects, backoff, silence recycling,
rollover) driving a venue session of :mod:`bot.data.venues` (URLs, handshake,
decoding), with the callback dispatched by an :class:`~bot.data.events.EventBus`
(a raising callback is logged and counted, a coroutine callback runs behind a
bounded queue). New code should use ``bot.data.StreamManager``, which adds
bars, several venues and connections, health and metrics.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from bot.data.config import StreamManagerConfig, symbol_list
from bot.data.errors import ConfigError, ExchangeError
from bot.data.events import EventBus, EventType
from bot.data.models import Tick
from bot.data.transport import Connection, ConnectionState, ConnectionStats
from bot.data.venues.protocol import VenueSession
from bot.data.venues.registry import VENUES

logger = logging.getLogger(__name__)

ErrorHandler = Callable[[BaseException], Any]


class WebSocketStream:
    """Trades of ``symbols`` from one venue connection, each passed to ``on_trade``.

    ``venue`` is a registered venue (:mod:`bot.data.venues.registry`):
    ``"binance"`` or ``"binanceus"`` (pairs such as ``"BTC/USDT"``),
    ``"binanceusdm"`` (perpetuals such as ``"BTC/USDT:USDT"``) or ``"alpaca"``
    (stock tickers such as ``"TSLA"``, credentials from
    ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``). ``on_trade`` receives each
    :class:`~bot.data.models.Tick`; it may be a function or a coroutine
    function. ``on_error`` receives every error the connection meets: a lost
    connection (it reconnects by itself), an error the venue reports, and the
    final error when it gives up. ``config`` supplies endpoints, feed and
    reconnect settings (default: ``StreamManagerConfig()`` for the venue).

    Every invalid argument fails here with an error naming it, and so does a
    missing Alpaca credential.
    """

    def __init__(self, venue: str, symbols: Iterable[str], on_trade: Callable[[Tick], Any],
                 on_error: ErrorHandler | None = None,
                 config: StreamManagerConfig | None = None) -> None:
        warnings.warn(
            "bot.data.websocket_stream.WebSocketStream is deprecated; use "
            "bot.data.StreamManager (on_tick for trades, plus bars, health and metrics)",
            DeprecationWarning, stacklevel=2)
        if venue not in VENUES:
            raise ConfigError("venue", venue, f"allowed: {', '.join(map(repr, VENUES))}")
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be callable or None, got {on_error!r}")
        self.spec = VENUES[venue]
        if config is None:
            config = self.spec.select(StreamManagerConfig())
        elif (other := self.spec.unselected_because(config)) is not None:
            raise ConfigError("venue", venue, f"{other}; give a config for the same venue")
        symbols = symbol_list(symbols, "symbols")
        if not symbols:
            raise ConfigError("symbols", symbols, "at least one symbol is needed")
        self.venue = venue
        self.config = config
        self._factory = self._session_factory()
        self._symbols = sorted(self._factory(frozenset(symbols)).symbols)  # validates them
        self._on_error = on_error
        self._bus = EventBus(config.async_handler_backlog)
        self._bus.on(EventType.TICK, on_trade, payload_only=True)
        self._connection: Connection | None = None  # the last one started, kept after stop
        self._running = False

    def _session_factory(self) -> Callable[[frozenset[str]], VenueSession]:
        cfg, spec = self.config, self.spec
        credentials = spec.credentials()
        return lambda symbols: spec.session(cfg, credentials, symbols)

    # -- state -----------------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        """The subscribed symbols, normalised (upper case)."""
        return list(self._symbols)

    @property
    def state(self) -> ConnectionState:
        """The connection's state: DISCONNECTED before :meth:`start`, STOPPED after :meth:`stop`."""
        conn = self._connection
        return ConnectionState.DISCONNECTED if conn is None else conn.state

    @property
    def stats(self) -> ConnectionStats:
        """Frames, ticks, malformed frames, reconnects and rollovers of the last connection."""
        conn = self._connection
        return ConnectionStats() if conn is None else conn.stats

    @property
    def handler_errors(self) -> int:
        """How many times ``on_trade`` raised (each was logged, rate-limited)."""
        return self._bus.counters.handler_errors

    # -- lifecycle -------------------------------------------------------------------
    async def start(self, wait_connected: float | None = None) -> None:
        """Connect and wait until trades flow; idempotent.

        Waits up to ``wait_connected`` seconds (default ``connect_timeout`` plus
        one maximal backoff) and raises the connection's fatal error (refused
        credentials, connection limit) or ``TimeoutError`` here.
        """
        if self._running:
            return
        self._running = True
        cfg = self.config
        self._bus.start()
        self._connection = Connection.for_venue(
            self.venue, self._factory, self._symbols, cfg, self.spec.facts,
            on_tick=self._on_tick, on_event=self._on_event, on_state=self._on_state)
        self._connection.start()
        timeout = wait_connected if wait_connected is not None else (
            cfg.connect_timeout + cfg.max_reconnect_delay)
        try:
            await self._connection.wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the connection gracefully and end the callback workers; idempotent."""
        if not self._running:
            return
        self._running = False
        if self._connection is not None:
            await self._connection.stop()
        await self._bus.stop()

    async def __aenter__(self) -> WebSocketStream:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # -- connection callbacks --------------------------------------------------------
    def _on_tick(self, tick: Tick) -> None:
        self._bus.emit_tick(tick, self.venue, tick.receive_timestamp)

    def _on_event(self, _conn: Connection, event: object) -> None:
        if isinstance(event, ExchangeError):
            self._report(event)

    def _on_state(self, conn: Connection) -> None:
        failed = conn.state in (ConnectionState.RECONNECTING, ConnectionState.FAILED)
        if failed and conn.error is not None:
            self._report(conn.error)

    def _report(self, error: BaseException) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(error)
        except Exception:
            logger.exception("%s stream: on_error raised while handling %r", self.venue, error)
