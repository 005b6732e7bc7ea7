"""The market-data streams: created with the asked retention, updated in place, checked."""

from __future__ import annotations

import pytest
from nats.js.api import StorageType

from bot.data.nats.client import connect
from bot.data.nats.server import NatsServer
from bot.data.nats.streams import StreamSettings, default_streams, ensure_streams


async def test_streams_are_created_then_brought_to_new_settings_keeping_their_data(
        nats_server: NatsServer) -> None:
    nc = await connect(nats_server.url, "test")
    js = nc.jetstream()
    try:
        await ensure_streams(js, default_streams(tick_max_age_s=3600, duplicate_window_s=60))
        await js.publish("md.tick.binance.BTC_USDT", b"x", headers={"Nats-Msg-Id": "a"})
        created = {name: (await js.stream_info(name)).config
                   for name in ("MD_TICKS", "MD_BARS", "MD_SIGNALS")}
        await ensure_streams(js, default_streams(tick_max_age_s=7200, duplicate_window_s=300))
        updated = await js.stream_info("MD_TICKS")
    finally:
        await nc.close()
    ticks = created["MD_TICKS"]
    assert ticks.subjects == ["md.tick.>"] and ticks.storage == StorageType.FILE
    assert (ticks.max_age, ticks.duplicate_window) == (3600, 60)
    assert created["MD_BARS"].subjects == ["md.bar.>"]
    assert created["MD_SIGNALS"].subjects == ["md.signal.>"]
    assert (updated.config.max_age, updated.config.duplicate_window) == (7200, 300)
    assert updated.state.messages == 1


async def test_a_stream_with_other_storage_is_refused_naming_it(nats_server: NatsServer) -> None:
    nc = await connect(nats_server.url, "test")
    try:
        memory = StreamSettings("MD_TICKS", ("md.tick.>",), 3600, memory=True)
        await ensure_streams(nc.jetstream(), (memory,))
        with pytest.raises(ValueError, match="MD_TICKS exists with memory storage, file wanted"):
            await ensure_streams(nc.jetstream(), default_streams())
    finally:
        await nc.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_age_s": 0}, "max_age_s=0 must be > 0"),
    ({"duplicate_window_s": 7200}, "duplicate_window_s=7200 must be > 0 and at most max_age_s"),
    ({"replicas": 2}, "replicas=2; allowed: 1, 3, 5"),
    ({"max_bytes": 0}, "max_bytes=0 must be -1"),
    ({"name": "MD.TICKS"}, "use letters, digits"),
])
def test_bad_settings_name_the_field(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "MD_TICKS", "subjects": ("md.tick.>",), "max_age_s": 3600}
    with pytest.raises(ValueError, match=message):
        StreamSettings(**{**base, **kwargs})  # type: ignore[arg-type]
