"""Where a :class:`~bot.data.stream_manager.StreamManager`'s trades come from.

A manager composes one :class:`TickSource`. The default,
:class:`VenueConnections`, streams from the venues themselves: each venue
group's WebSocket connections, whose ticks go through gap recovery into the
pipeline. The NATS :class:`~bot.data.nats.remote.JetStreamSource` reads ticks
published by ingest workers instead. The manager tells its source when it
opens and stops and which symbols each venue wants; the source feeds the
manager's pipeline and may add its own part to health and metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.data.health import HealthReport
    from bot.data.pipeline import TickPipeline
    from bot.data.supervision import Supervisor
    from bot.data.venue_group import VenueGroup


class TickSource(Protocol):
    """A source of ticks for one manager; see the module docstring."""

    def attach(self, pipeline: TickPipeline, groups: Mapping[str, VenueGroup],
               supervisor: Supervisor) -> None:
        """Bind to the manager's pipeline, venue groups (wanted symbols) and supervisor."""
        ...

    async def open(self, timeout: float | None) -> None:
        """Before the manager subscribes anything: reach the source (may raise)."""
        ...

    def started(self) -> None:
        """The manager has started: begin delivering."""
        ...

    async def subscribe(self, group: VenueGroup, symbols: list[str]) -> None:
        """Deliver ``symbols`` of ``group``'s venue from now on."""
        ...

    async def sync(self) -> None:
        """Stop delivering what the venue groups no longer want."""
        ...

    def forget(self, symbol: str) -> None:
        """``symbol`` was removed: drop its ticks at once, before :meth:`sync`."""
        ...

    async def stop(self) -> None:
        """The manager stops: finish what is in hand and close."""
        ...

    def add_metrics(self, metrics: dict[str, Any]) -> None:
        """Add the source's own figures to the manager's metrics."""
        ...

    def judge(self, report: HealthReport) -> None:
        """Add the source's part of health (its section and reasons)."""
        ...


class VenueConnections:
    """The venues' own connections: each venue group shards its symbols over them.

    The connections themselves (states, reconnects) are judged with the rest of
    the manager's health, so this source adds nothing of its own.
    """

    def __init__(self) -> None:
        self._groups: Mapping[str, VenueGroup] = {}

    def attach(self, pipeline: TickPipeline, groups: Mapping[str, VenueGroup],
               supervisor: Supervisor) -> None:
        self._groups = groups

    async def open(self, timeout: float | None) -> None:
        return None

    def started(self) -> None:
        return None

    async def subscribe(self, group: VenueGroup, symbols: list[str]) -> None:
        await group.assign(symbols)

    async def sync(self) -> None:
        for group in list(self._groups.values()):
            await group.drop_unwanted()

    def forget(self, symbol: str) -> None:
        return None

    async def stop(self) -> None:
        return None

    def add_metrics(self, metrics: dict[str, Any]) -> None:
        return None

    def judge(self, report: HealthReport) -> None:
        return None
