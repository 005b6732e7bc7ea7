"""``StreamReader`` acknowledgements against a scripted JetStream: what a stop confirms.

A server too slow to confirm an ack in time still holds it unprocessed; a reader
that stopped then would leave its last batch unacknowledged, and the next start
would read it again. The fakes script exactly which acks time out.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from nats.js import JetStreamContext

from bot.data.nats.reader import StreamReader

SUBJECTS = ["md.tick.binance.BTC_USDT"]


class ScriptedMsg:
    """A delivery whose first ``timeouts`` ack_sync calls time out; records every outcome."""

    def __init__(self, seq: int, pending: int, timeouts: int = 0) -> None:
        self.metadata = SimpleNamespace(
            sequence=SimpleNamespace(stream=seq, consumer=seq), num_pending=pending)
        self.acks: list[str] = []
        self._timeouts = timeouts

    async def ack_sync(self, timeout: float) -> None:
        if self._timeouts:
            self._timeouts -= 1
            self.acks.append("timed out")
            raise TimeoutError
        self.acks.append("confirmed")


class ScriptedJetStream:
    """An ephemeral consumer whose fetches return ``batches`` in turn, then time out."""

    def __init__(self, batches: list[list[ScriptedMsg]]) -> None:
        self.batches = batches
        self.unsubscribed = False

    async def add_consumer(self, stream: str, config: Any) -> Any:
        return SimpleNamespace(name="ephemeral-1")

    async def pull_subscribe_bind(self, **_: Any) -> Any:
        return self

    async def fetch(self, batch: int, timeout: float) -> list[ScriptedMsg]:
        if not self.batches:
            raise TimeoutError
        return self.batches.pop(0)

    async def unsubscribe(self) -> None:
        self.unsubscribed = True


async def _reader(js: ScriptedJetStream) -> StreamReader:
    reader = StreamReader(cast(JetStreamContext, js), "MD_TICKS", None)
    await reader.open(SUBJECTS)
    return reader


async def test_close_sends_an_ack_the_server_did_not_confirm_again_and_awaits_it() -> None:
    batch = [ScriptedMsg(1, 2), ScriptedMsg(2, 1), ScriptedMsg(3, 0, timeouts=1)]
    js = ScriptedJetStream([batch])
    reader = await _reader(js)
    handled: list[Any] = []
    assert await reader.read(handled.append) == 0
    assert handled == batch and reader.counters.ack_errors == 1
    assert batch[-1].acks == ["timed out"]
    await reader.close()
    assert batch[-1].acks == ["timed out", "confirmed"], "the batch's ack-all sent once more"
    assert [m.acks for m in batch[:-1]] == [[], []] and js.unsubscribed


async def test_an_ack_covered_by_a_later_confirmed_one_is_not_sent_again() -> None:
    first, second = [ScriptedMsg(1, 1, timeouts=1)], [ScriptedMsg(2, 0)]
    reader = await _reader(ScriptedJetStream([first, second]))
    await reader.read(lambda msg: None)
    await reader.read(lambda msg: None)
    await reader.close()
    assert (first[0].acks, second[0].acks) == (["timed out"], ["confirmed"])
