"""Prometheus exposition of a stream's metrics.

:class:`StreamCollector` is a ``prometheus_client`` custom collector that reads
:meth:`StreamManager.get_metrics` at scrape time, so Prometheus sees exactly the
figures the manager reports and nothing is updated on the per-tick path:

* every counter of ``get_metrics()["counters"]`` as ``bot_stream_<name>_total``;
* rates as ``bot_stream_rate_per_second{counter, window}`` gauges;
* latency percentiles as ``bot_stream_latency_seconds{path, quantile}`` gauges
  (``quantile="1"`` is the maximum) with ``bot_stream_latency_samples{path}``;
* each connection's state as a state set ``bot_stream_connection_state``, and its
  frames, reconnects and rollovers as counters labelled by connection.

Each manager gets its own :class:`CollectorRegistry` (:func:`registry_for`), so
two managers in one process never mix their figures. :func:`start_exporter`
serves a registry on its own port without the status server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from threading import Thread
from typing import Any, Protocol
from wsgiref.simple_server import WSGIServer

from bot.data.extras import require

try:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
    from prometheus_client.core import (
        CollectorRegistry,
        CounterMetricFamily,
        GaugeMetricFamily,
        Metric,
        StateSetMetricFamily,
    )
    from prometheus_client.registry import Collector
except ImportError:
    require("cli", "Prometheus metrics (the status server's /metrics)")
    raise

from bot.data.transport import ConnectionState

PREFIX = "bot_stream"
CONTENT_TYPE = CONTENT_TYPE_LATEST
QUANTILES = {"p50_ms": "0.5", "p90_ms": "0.9", "p99_ms": "0.99", "max_ms": "1"}
RATE_WINDOWS = {"rates_10s": "10s", "rates_1m": "1m"}
CONNECTION_COUNTERS = ("frames", "reconnects", "rollovers")
SCRAPE_TIMEOUT_S = 5.0

MetricsSource = Callable[[], Mapping[str, Any]]


class MetricsProvider(Protocol):
    """What the exporter needs of a stream manager."""

    def get_metrics(self) -> dict[str, Any]: ...


class StreamCollector(Collector):
    """Turns one ``get_metrics()`` snapshot per scrape into metric families."""

    def __init__(self, source: MetricsSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        metrics = self._source()
        yield from _counters(metrics.get("counters", {}))
        yield from _rates(metrics)
        yield from _latency(metrics.get("latency", {}))
        yield from _connections(metrics.get("connections", {}))
        uptime = GaugeMetricFamily(f"{PREFIX}_uptime_seconds", "Seconds since the stream started.")
        uptime.add_metric([], float(metrics.get("uptime_s", 0.0)))
        yield uptime


def _counters(counters: Mapping[str, int]) -> Iterator[Metric]:
    for name, value in sorted(counters.items()):
        family = CounterMetricFamily(f"{PREFIX}_{name}", f"Stream counter {name!r}.")
        family.add_metric([], value)
        yield family


def _rates(metrics: Mapping[str, Any]) -> Iterator[Metric]:
    family = GaugeMetricFamily(f"{PREFIX}_rate_per_second",
                               "Per-second rate of a stream counter over a window.",
                               labels=["counter", "window"])
    for key, window in RATE_WINDOWS.items():
        for name, rate in sorted(metrics.get(key, {}).items()):
            family.add_metric([name, window], rate)
    yield family


def _latency(latency: Mapping[str, Mapping[str, float | int | None]]) -> Iterator[Metric]:
    seconds = GaugeMetricFamily(f"{PREFIX}_latency_seconds",
                                "Latency percentile of a stream path (quantile 1 is the maximum).",
                                labels=["path", "quantile"])
    samples = GaugeMetricFamily(f"{PREFIX}_latency_samples",
                                "Samples the latency percentiles of a path are computed from.",
                                labels=["path"])
    for path, summary in sorted(latency.items()):
        samples.add_metric([path], summary.get("count") or 0)
        for key, quantile in QUANTILES.items():
            value = summary.get(key)
            if value is not None:
                seconds.add_metric([path, quantile], value / 1000.0)
    yield seconds
    yield samples


def _connections(connections: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    states = StateSetMetricFamily(f"{PREFIX}_connection_state",
                                  "State of each venue connection.", labels=["connection"])
    counters = {name: CounterMetricFamily(f"{PREFIX}_connection_{name}",
                                          f"Connection counter {name!r}.", labels=["connection"])
                for name in CONNECTION_COUNTERS}
    for conn, facts in sorted(connections.items()):
        states.add_metric([conn], {s.value: facts.get("state") == s.value
                                   for s in ConnectionState})
        for name, family in counters.items():
            family.add_metric([conn], facts.get(name, 0))
    yield states
    yield from counters.values()


def registry_for(read: MetricsSource) -> CollectorRegistry:
    """A fresh registry holding one :class:`StreamCollector` of ``read``.

    ``read`` returns a ``get_metrics``-shaped dict: ``manager.get_metrics``
    itself, or a function fetching it from elsewhere.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamCollector(read))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (content type :data:`CONTENT_TYPE`)."""
    return generate_latest(registry)


def start_exporter(manager: MetricsProvider, port: int, host: str = "127.0.0.1",
                   loop: asyncio.AbstractEventLoop | None = None
                   ) -> tuple[WSGIServer, Thread]:
    """Serve ``manager``'s metrics at ``http://host:port/metrics`` from a thread.

    Call it from the manager's event loop (or pass ``loop``): each scrape runs
    ``get_metrics`` on that loop, never beside it in the server thread, because
    the manager's buffers are only safe to read from the loop that fills them.
    Returns ``prometheus_client``'s server and thread; ``server.shutdown()``
    stops it.
    """
    target = loop or asyncio.get_running_loop()

    async def snapshot() -> dict[str, Any]:
        return manager.get_metrics()

    def read() -> Mapping[str, Any]:
        return asyncio.run_coroutine_threadsafe(snapshot(), target).result(SCRAPE_TIMEOUT_S)

    return start_http_server(port, host, registry_for(read))
