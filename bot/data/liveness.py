"""Which quiet bars the clock may complete: only those a connection proved it delivered.

The clock completes a bar nobody traded past once its grace is over, as if the
market were quiet. A connection whose TCP stays open while the venue stops
sending looks exactly like a quiet market, so for a connection that can be
probed (:attr:`~bot.data.transport.Connection.probes_liveness`) a bar completed
by the clock needs proof the connection was alive up to its end plus the grace:
a frame received since then (any frame: a trade, a ticker, a reply), or the
answer to a liveness probe sent then. Until that proof arrives, the connection's
symbols are completed only up to its last frame; so are they while it is not
connected (gap recovery holds them then too). While a probe is out, frames that
arrive before its answer prove nothing yet: should the answer never come, the
stream lost something (a venue that stalled and resumed), and only the recycle's
gap fill can tell what.

At most one probe per connection and socket per bar boundary; the transport
paces it with the other control messages. An unanswered probe recycles the
connection (the transport's job), whose reconnect holds the symbols and lets gap
recovery fill or flag what the silence hid.

Venues without a request answered in order on the stream (Alpaca) are not
probed: their quiet bars complete by time, as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from bot.data.timeframes import align
from bot.data.transport import Connection, ConnectionState


class LivenessGuard:
    """Per clock reading: how far each unproven connection's symbols may complete, and
    which connections to probe now."""

    def __init__(self, base_ns: int, grace_ns: int) -> None:
        self.base_ns = base_ns
        self.grace_ns = grace_ns
        # connection -> (sockets it had opened, the bar boundary last probed for)
        self._probed: dict[Connection, tuple[int, int]] = {}
        # connection -> monotonic time since when it has gone unproven, across reconnects
        self._unproven_since: dict[Connection, float] = {}

    def check(self, now_ns: int, connections: Iterable[Connection],
              ) -> tuple[dict[Connection, int], list[Connection]]:
        """``(unproven, to_probe)`` at ``now_ns``.

        ``unproven`` maps each connection not proven alive past the last bar
        boundary whose grace is over (or not connected at all) to the time it is
        proven up to (:attr:`~bot.data.transport.Connection.proven_ns`): the clock
        completes its symbols' bars only up to that time minus the grace.
        ``to_probe``: those of them connected, not yet probed for this boundary on
        their current socket, with no probe under way.
        """
        boundary = align(now_ns - self.grace_ns, self.base_ns)
        due = boundary + self.grace_ns
        unproven: dict[Connection, int] = {}
        to_probe: list[Connection] = []
        mono = time.monotonic()
        for conn in connections:
            proven = conn.proven_ns
            if not conn.probes_liveness or proven >= due:
                self._unproven_since.pop(conn, None)
                continue
            unproven[conn] = proven
            self._unproven_since.setdefault(conn, mono)
            if conn.state is not ConnectionState.CONNECTED or conn.probing:
                continue
            probed = (conn.sockets_opened, boundary)
            if self._probed.get(conn, (-1, -1)) < probed:
                self._probed[conn] = probed
                to_probe.append(conn)
        return unproven, to_probe

    def unproven_for(self, conn: Connection) -> float | None:
        """Seconds ``conn`` has gone without proof since a bar boundary needed one (its
        reconnects do not reset it); None while it is proven."""
        since = self._unproven_since.get(conn)
        return None if since is None else time.monotonic() - since

    def retry(self, conn: Connection) -> None:
        """Let ``conn`` be probed again for the current boundary (its probe could not be
        judged: it went out on a socket replaced meanwhile)."""
        self._probed.pop(conn, None)

    def clear(self) -> None:
        self._probed.clear()
        self._unproven_since.clear()
