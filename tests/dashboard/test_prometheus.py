"""The Prometheus exposition carries exactly the figures of ``get_metrics``."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bot.data.prometheus import exposition, registry_for, start_exporter

METRICS: dict[str, Any] = {
    "uptime_s": 12.5,
    "counters": {"frames": 100, "ticks": 90, "bars": 4, "late_ticks": 1},
    "rates_10s": {"ticks": 9.0}, "rates_1m": {"ticks": 1.5},
    "latency": {"exchange_to_receive": {"count": 90, "p50_ms": 1.5, "p90_ms": 3.0,
                                        "p99_ms": 12.0, "max_ms": 40.0},
                "receive_to_bar_dispatch": {"count": 0, "p50_ms": None, "p90_ms": None,
                                            "p99_ms": None, "max_ms": None}},
    "connections": {"binance-0": {"state": "reconnecting", "frames": 100, "reconnects": 3,
                                  "rollovers": 0}},
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_rates_latency_and_states_are_exposed_as_given() -> None:
    got = samples(exposition(registry_for(lambda: METRICS)).decode())
    assert got[("bot_stream_ticks_total", ())] == 90
    assert got[("bot_stream_late_ticks_total", ())] == 1
    assert got[("bot_stream_uptime_seconds", ())] == 12.5
    assert got[("bot_stream_rate_per_second", (("counter", "ticks"), ("window", "10s")))] == 9.0
    assert got[("bot_stream_rate_per_second", (("counter", "ticks"), ("window", "1m")))] == 1.5
    path = ("path", "exchange_to_receive")
    assert got[("bot_stream_latency_seconds", (path, ("quantile", "0.99")))] == 0.012
    assert got[("bot_stream_latency_seconds", (path, ("quantile", "1")))] == 0.04
    assert got[("bot_stream_latency_samples", (path,))] == 90
    assert not any(name == "bot_stream_latency_seconds" and dict(labels)["path"] ==
                   "receive_to_bar_dispatch" for name, labels in got), "no samples, no figure"
    conn = ("connection", "binance-0")
    state = "bot_stream_connection_state"
    assert got[(state, (("bot_stream_connection_state", "reconnecting"), conn))] == 1
    assert got[(state, (("bot_stream_connection_state", "connected"), conn))] == 0
    assert got[("bot_stream_connection_reconnects_total", (conn,))] == 3


def test_counter_families_are_typed_counters() -> None:
    families = {f.name: f.type for f in text_string_to_metric_families(
        exposition(registry_for(lambda: METRICS)).decode())}
    assert families["bot_stream_ticks"] == "counter"
    assert families["bot_stream_latency_seconds"] == "gauge"
    # The text format has no state-set type: a state set is a gauge per state.
    assert families["bot_stream_connection_state"] == "gauge"


async def test_standalone_exporter_reads_the_metrics_on_the_managers_loop() -> None:
    loop = asyncio.get_running_loop()

    class Manager:
        loops: list[asyncio.AbstractEventLoop] = []

        def get_metrics(self) -> dict[str, Any]:
            self.loops.append(asyncio.get_running_loop())
            return METRICS

    manager = Manager()
    server, thread = start_exporter(manager, 0, "127.0.0.1")
    try:
        port = server.server_address[1]
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert samples(body.decode())[("bot_stream_bars_total", ())] == 4
    assert manager.loops == [loop], "get_metrics ran on the manager's event loop"
