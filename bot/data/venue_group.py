"""``VenueGroup``: the connections of one venue and the symbols each carries.

One group per venue does what differs between venues only by their facts:
sharding (no connection carries more symbols than the venue's
``symbols_per_connection``; a venue without a limit gets one connection),
subscribing new symbols on connections with room before opening another,
and unsubscribing removed ones. Reconnecting and resubscribing after a
reconnect are each connection's own (:class:`~bot.data.transport.Connection`
keeps its symbol set across sockets). The group knows nothing of bars,
recovery or health: the manager composes those.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from bot.data.config import StreamManagerConfig
from bot.data.errors import StreamError
from bot.data.transport import Connection, SessionFactory
from bot.data.venues.spec import VenueSpec

OpenConnection = Callable[[str, SessionFactory, list[str], VenueSpec], Connection]
"""Opens and starts a connection: name, session factory, symbols, venue."""


class VenueGroup:
    """The wanted symbols of one venue, and which connection carries each."""

    def __init__(self, spec: VenueSpec, config: StreamManagerConfig,
                 open_connection: OpenConnection) -> None:
        self.spec = spec
        self.config = config
        self._open_connection = open_connection
        self.carriers: dict[str, Connection | None] = {}  # wanted symbol -> its connection
        self.connections: list[Connection] = []
        self._credentials: Any = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def symbols(self) -> list[str]:
        """The wanted symbols, in the order they were added."""
        return list(self.carriers)

    def wants(self, symbol: str) -> bool:
        return symbol in self.carriers

    def want(self, symbols: Iterable[str]) -> list[str]:
        """Add symbols to the wanted set; returns the ones that were not in it."""
        new = [s for s in symbols if s not in self.carriers]
        self.carriers.update(dict.fromkeys(new))
        return new

    def unwant(self, symbol: str) -> bool:
        """Drop a symbol from the wanted set; False if it was not wanted."""
        return self.carriers.pop(symbol, False) is not False

    def connection_of(self, symbol: str) -> Connection | None:
        """The connection carrying ``symbol`` (None before it is assigned)."""
        return self.carriers.get(symbol)

    def credentials(self) -> Any:
        """The venue's credentials, loaded once (sessions and REST share them)."""
        if self._credentials is None:
            self._credentials = self.spec.credentials()
        return self._credentials

    async def drop_unwanted(self) -> None:
        """Unsubscribe what is no longer wanted; a symbol removed and added again stays put."""
        for conn in self.connections:
            gone = [s for s in conn.symbols if s not in self.carriers]
            if gone:
                with contextlib.suppress(StreamError, OSError):
                    await conn.remove(gone)
            for symbol in conn.symbols:
                if symbol in self.carriers and self.carriers[symbol] is None:
                    self.carriers[symbol] = conn

    async def assign(self, symbols: list[str]) -> None:
        """Put wanted, unassigned ``symbols`` on connections with room, opening shards as needed."""
        per_conn = self.spec.symbols_per_connection(self.config)
        pending = [s for s in symbols if s in self.carriers and self.carriers[s] is None]
        for conn in self.connections:
            if not pending:
                break
            room = len(pending) if per_conn is None else per_conn - len(conn.symbols)
            if room > 0:
                batch, pending = pending[:room], pending[room:]
                await conn.add(batch)
                for s in batch:
                    self.carriers[s] = conn
        while pending:
            size = len(pending) if per_conn is None else per_conn
            batch, pending = pending[:size], pending[size:]
            conn = self._open(batch)
            for s in batch:
                self.carriers[s] = conn

    def _open(self, symbols: list[str]) -> Connection:
        spec, cfg = self.spec, self.config
        credentials = self.credentials()
        conn = self._open_connection(
            spec.connection_name(cfg, len(self.connections)),
            lambda syms: spec.session(cfg, credentials, syms), symbols, spec)
        self.connections.append(conn)
        return conn

    def detach(self) -> list[Connection]:
        """Forget the connections (the caller stops them); every symbol stays wanted."""
        conns, self.connections = self.connections, []
        self.carriers = dict.fromkeys(self.carriers)
        return conns
