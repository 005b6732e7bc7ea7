"""``StreamReader``: a filtered slice of a JetStream stream, in order, each message once.

A durable pull consumer with ack-all remembers where a reader stopped, but on
its own it does not guarantee what a bar builder needs, every message exactly
once and in stream order:

* messages delivered to a process that died unacknowledged are redelivered
  only after the ack wait, *after* newer ones went to its successor;
* a fetch reply lost with a connection leaves delivered messages behind that
  a later ack-all would acknowledge unseen.

So the reader keeps its own position: the stream sequence of the last message
it handled. Every delivery carries the consumer's delivery sequence, which
grows by one per delivered message; a jump means deliveries went astray, and
the reader then *repositions* the consumer (deletes it and creates it again
starting right after its position), discarding the rest of that batch. At
open, a durable that delivered beyond its ack floor (its last process died) is
repositioned after the ack floor the same way. A redelivery of a message at or
before the position is acknowledged and skipped. The handler runs before the
batch is acknowledged (ack-all of the last handled message, confirmed by the
server), so a restart resumes right after the last acknowledged message. An
ack the server did not confirm in time is covered by the next batch's; at
:meth:`StreamReader.close` it is sent once more and awaited, so a graceful stop
leaves nothing handled for the next start to read again.

One process per durable name: two readers sharing one would split its messages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError

from bot.data.errors import StreamError
from bot.data.throttle import LogThrottle

logger = logging.getLogger(__name__)

DELIVER_POLICIES = {"all": DeliverPolicy.ALL, "new": DeliverPolicy.NEW}
NATS_ERRORS = (NatsError, OSError, TimeoutError)


@dataclass
class ReaderCounters:
    """What the reader did, for the owner's metrics."""

    messages: int = 0  # handed to the handler
    batches: int = 0
    redelivered_skipped: int = 0  # at or before the position: handled already
    repositions: int = 0  # consumer recreated after the position
    ack_errors: int = 0
    fetch_errors: int = 0


class StreamReader:
    """Reads ``subjects`` of ``stream`` through the consumer ``durable`` (None: ephemeral).

    ``deliver`` is where a consumer created afresh starts: ``"all"`` retained
    messages or only ``"new"`` ones.
    """

    def __init__(self, js: JetStreamContext, stream: str, durable: str | None, *,
                 deliver: str = "all", batch: int = 500, fetch_timeout: float = 1.0,
                 ack_timeout: float = 2.0) -> None:
        self.js = js
        self.stream = stream
        self.durable = durable
        self.deliver = deliver
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.ack_timeout = ack_timeout
        self.counters = ReaderCounters()
        self.name: str | None = durable
        self.subjects: list[str] = []
        self.position = 0  # stream sequence of the last message handled
        self.pending: int | None = None  # messages left after the last batch
        self._next_delivery = 1
        self._astray: str | None = None  # why the consumer must be repositioned
        self._current: ConsumerConfig | None = None
        self._unconfirmed: Msg | None = None  # the last ack, if the server did not confirm it
        self._sub: JetStreamContext.PullSubscription | None = None
        self._throttle = LogThrottle(logger)

    # -- the consumer ------------------------------------------------------------------
    async def open(self, subjects: list[str]) -> None:
        """Create the consumer, or resume the durable one (repositioned if it must be)."""
        self.subjects = list(subjects)
        info = None
        if self.durable is not None:
            with contextlib.suppress(NotFoundError):
                info = await self.js.consumer_info(self.stream, self.durable)
        if info is None:
            await self._create(start_after=None)
            return
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        delivered = info.delivered.stream_seq if info.delivered else 0
        self.position = floor
        if delivered > floor:
            await self._reposition("deliveries beyond the last ack (a previous reader died)")
            return
        self._next_delivery = (info.delivered.consumer_seq if info.delivered else 0) + 1
        # Where it started is the existing consumer's own (it cannot change); the rest is ours.
        wanted = self._config(start_after=None)
        await self._apply(wanted.evolve(deliver_policy=info.config.deliver_policy,
                                        opt_start_seq=info.config.opt_start_seq),
                          subscribe=True)

    async def update_subjects(self, subjects: list[str]) -> None:
        """Read these subjects from now on (the consumer is updated in place)."""
        if subjects != self.subjects and self._current is not None:
            self.subjects = list(subjects)
            await self._apply(self._current.evolve(filter_subjects=self.subjects),
                              subscribe=False)

    async def close(self) -> None:
        """Stop reading, once the last acknowledgement is confirmed (sent again if it was not)."""
        unconfirmed = self._unconfirmed
        if unconfirmed is not None and self._sub is not None:
            await self._ack(unconfirmed)
        await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(*NATS_ERRORS):
                await sub.unsubscribe()

    def _config(self, start_after: int | None) -> ConsumerConfig:
        policy = DELIVER_POLICIES[self.deliver]
        if start_after:
            policy = DeliverPolicy.BY_START_SEQUENCE
        return ConsumerConfig(
            durable_name=self.durable, name=self.name, deliver_policy=policy,
            opt_start_seq=start_after + 1 if start_after else None, ack_policy=AckPolicy.ALL,
            filter_subjects=self.subjects, max_ack_pending=max(20_000, 4 * self.batch),
            inactive_threshold=None if self.durable else 300.0)

    async def _create(self, start_after: int | None) -> None:
        self._next_delivery = 1
        await self._apply(self._config(start_after), subscribe=True)

    async def _apply(self, config: ConsumerConfig, *, subscribe: bool) -> None:
        try:
            info: ConsumerInfo = await self.js.add_consumer(self.stream, config)
        except NotFoundError as exc:
            raise StreamError(f"JetStream stream {self.stream!r} not found ({exc.description}): "
                              "start an ingest worker first, it creates the streams") from exc
        self.name = info.name
        self._current = config.evolve(name=info.name)
        if subscribe:
            # A new inbox: deliveries of a consumer being replaced cannot reach this one.
            await self._unsubscribe()
            self._sub = await self.js.pull_subscribe_bind(
                durable=self.durable, stream=self.stream,
                name=None if self.durable else info.name)

    async def _reposition(self, why: str) -> None:
        """Recreate the consumer to start right after :attr:`position`."""
        self._astray = why
        logger.warning("reader %s: %s; restarting after stream sequence %d", self.name, why,
                       self.position)
        self._unconfirmed = None  # the consumer it was for is replaced
        if self.name is not None:
            with contextlib.suppress(NotFoundError):
                await self.js.delete_consumer(self.stream, self.name)
        if self.durable is None:
            self.name = None
        await self._create(start_after=self.position)
        self._astray = None
        self.counters.repositions += 1

    # -- reading -------------------------------------------------------------------------
    async def read(self, handle: Callable[[Msg], None]) -> int | None:
        """Fetch one batch and hand each new message to ``handle``, in order, then ack.

        Returns how many messages are still pending (0 when the fetch found
        none), or None when NATS failed (counted and logged; call again).
        """
        if self._astray is not None:
            try:
                await self._reposition(self._astray)
            except NATS_ERRORS as exc:
                self.counters.fetch_errors += 1
                self._throttle.log("reposition", logging.WARNING,
                                   "reader %s: reposition failed: %r", self.name, exc)
                return None
        sub = self._sub
        if sub is None:
            raise StreamError("StreamReader.read() before open()")
        try:
            msgs = await sub.fetch(self.batch, timeout=self.fetch_timeout)
        except TimeoutError:
            self.pending = 0
            return 0
        except NATS_ERRORS as exc:
            self.counters.fetch_errors += 1
            self._throttle.log("fetch", logging.WARNING, "reader %s: fetch failed: %r",
                               self.name, exc)
            return None
        if not msgs:
            self.pending = 0
            return 0
        self.counters.batches += 1
        last_handled: Msg | None = None
        astray = False
        for msg in msgs:
            meta = msg.metadata
            if meta.sequence.consumer != self._next_delivery:
                astray = True
                break
            self._next_delivery += 1
            last_handled = msg
            if meta.sequence.stream <= self.position:
                self.counters.redelivered_skipped += 1
                continue
            self.position = meta.sequence.stream
            self.counters.messages += 1
            handle(msg)
        if last_handled is not None:
            await self._ack(last_handled)
        if astray:
            self._astray = "deliveries went astray"
            return self.pending
        self.pending = msgs[-1].metadata.num_pending
        return self.pending

    async def _ack(self, msg: Msg) -> None:
        """Acknowledge everything up to ``msg`` (ack-all), confirmed by the server."""
        try:
            await msg.ack_sync(timeout=self.ack_timeout)
        except NATS_ERRORS as exc:
            # Not lost: the next ack covers it (ack-all) and close() sends it again; until
            # then a redelivery of its batch is skipped by position.
            self._unconfirmed = msg
            self.counters.ack_errors += 1
            self._throttle.log("ack", logging.WARNING, "reader %s: ack failed: %r",
                               self.name, exc)
        else:
            self._unconfirmed = None
