"""The JetStream streams that hold market data, created or checked at start.

Three streams, one per kind of record, so each has its own retention:

========== =============== ==================================
stream     subjects        default retention
========== =============== ==================================
MD_TICKS   ``md.tick.>``   24 hours
MD_BARS    ``md.bar.>``    7 days
MD_SIGNALS ``md.signal.>`` 7 days
========== =============== ==================================

All use file storage (they survive a server restart) and a duplicate window of
2 minutes: a message whose ``Nats-Msg-Id`` was stored less than that long ago
is acknowledged as a duplicate and not stored again. The window must cover how
long two redundant publishers may lag each other and how long a publisher
retries a message.

:func:`ensure_streams` creates a missing stream and brings an existing one to
the wanted settings (retention, size, duplicate window, replicas); a setting
JetStream cannot change in place (storage type) fails with an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bot.data.nats.subjects import BARS, SIGNALS, TICKS

DAY_S = 86_400.0


@dataclass(frozen=True)
class StreamSettings:
    """Retention of one stream: ``max_age_s`` seconds, ``max_bytes`` (-1: no limit)."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: float
    duplicate_window_s: float = 120.0
    max_bytes: int = -1
    replicas: int = 1
    memory: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"stream name {self.name!r}: use letters, digits, '_' and '-'")
        if self.max_age_s <= 0:
            raise ValueError(f"{self.name}: max_age_s={self.max_age_s!r} must be > 0 seconds")
        if not 0 < self.duplicate_window_s <= self.max_age_s:
            raise ValueError(f"{self.name}: duplicate_window_s={self.duplicate_window_s!r} must "
                             f"be > 0 and at most max_age_s ({self.max_age_s!r})")
        if self.max_bytes != -1 and self.max_bytes < 1:
            raise ValueError(f"{self.name}: max_bytes={self.max_bytes!r} must be -1 (no limit) "
                             "or a positive byte count")
        if self.replicas not in (1, 3, 5):
            raise ValueError(f"{self.name}: replicas={self.replicas!r}; allowed: 1, 3, 5")

    def config(self) -> StreamConfig:
        """The JetStream configuration: limits retention, oldest messages discarded first."""
        return StreamConfig(
            name=self.name, subjects=list(self.subjects), retention=RetentionPolicy.LIMITS,
            max_age=self.max_age_s, max_bytes=self.max_bytes, discard=DiscardPolicy.OLD,
            storage=StorageType.MEMORY if self.memory else StorageType.FILE,
            num_replicas=self.replicas, duplicate_window=self.duplicate_window_s)


def default_streams(*, tick_max_age_s: float = DAY_S, bar_max_age_s: float = 7 * DAY_S,
                    duplicate_window_s: float = 120.0, max_bytes: int = -1,
                    replicas: int = 1) -> tuple[StreamSettings, ...]:
    """Settings of MD_TICKS, MD_BARS and MD_SIGNALS (signals keep the bars' retention)."""
    return (
        StreamSettings("MD_TICKS", (f"{TICKS}.>",), tick_max_age_s, duplicate_window_s,
                       max_bytes, replicas),
        StreamSettings("MD_BARS", (f"{BARS}.>",), bar_max_age_s, duplicate_window_s,
                       max_bytes, replicas),
        StreamSettings("MD_SIGNALS", (f"{SIGNALS}.>",), bar_max_age_s, duplicate_window_s,
                       max_bytes, replicas),
    )


async def ensure_streams(js: JetStreamContext, streams: tuple[StreamSettings, ...]) -> None:
    """Create each missing stream; update an existing one whose settings differ."""
    for settings in streams:
        wanted = settings.config()
        try:
            info = await js.stream_info(settings.name)
        except NotFoundError:
            await js.add_stream(wanted)
            continue
        have = info.config
        have_storage, wanted_storage = StorageType(have.storage), StorageType(wanted.storage)
        if have_storage != wanted_storage:
            raise ValueError(f"stream {settings.name} exists with {have_storage.value} storage, "
                             f"{wanted_storage.value} wanted; storage cannot change in place: "
                             "delete or rename the stream")
        if _differs(have, wanted):
            await js.update_stream(have.evolve(
                subjects=wanted.subjects, max_age=wanted.max_age, max_bytes=wanted.max_bytes,
                num_replicas=wanted.num_replicas, duplicate_window=wanted.duplicate_window))


def _differs(have: StreamConfig, wanted: StreamConfig) -> bool:
    return (sorted(have.subjects or []) != sorted(wanted.subjects or [])
            or have.max_age != wanted.max_age or have.max_bytes != wanted.max_bytes
            or (have.num_replicas or 1) != wanted.num_replicas
            or have.duplicate_window != wanted.duplicate_window)
