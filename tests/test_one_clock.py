"""Latency is measured on the clock of the exchange the manager talks to.

The simulator at speed 30 runs its clock 30 times faster than this machine's: by a
few seconds in, its trades are stamped minutes "in the future". Measured against
the machine's clock, exchange -> receive latency read minus minutes; measured on
the venue's clock (its ``serverTime``, then its trades) it is small and never
negative.
"""

from __future__ import annotations

import pytest

from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.streaming import fast_config, point_at, wait_for


async def test_exchange_to_receive_latency_is_small_and_never_negative_at_speed_30(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT"], speed=30, history_seconds=120) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        manager.add_crypto_symbols(["BTC/USDT"])
        async with manager:
            await wait_for(lambda: len(manager._stream_latency_ns) >= 200)
            latency = manager.get_metrics()["latency"]["exchange_to_receive"]
            samples = list(manager._stream_latency_ns)
            market_ahead_s = (sim.clock.now() - manager._clock()) / 1e9
    assert market_ahead_s > 5, "the venue's clock did run ahead of the machine's"
    assert min(samples) >= 0
    assert latency["p50_ms"] is not None and 0 <= latency["p50_ms"] < 1000
