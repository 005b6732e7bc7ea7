"""The ingest worker: exchanges -> StreamManager -> JetStream, for one shard of a universe.

``bot-stream ingest ...`` (or ``python -m bot.data.nats.worker ...``) runs one
worker. It takes the whole symbol universe and keeps the symbols its shard
owns (:mod:`bot.data.nats.sharding`), streams them with an ordinary
:class:`~bot.data.stream_manager.StreamManager` (which shards them over
exchange connections within the venue's limits, recovers gaps and warms up
from REST), and publishes every tick and completed bar to JetStream through a
:class:`~bot.data.nats.publisher.Publisher`. Two workers given the same shard
publish the same trades in the same batches under the same message ids, and
JetStream stores each once: either may die without a trade going missing.

Every ``--health-interval`` seconds the worker publishes its health and
metrics as JSON on ``md.health.<worker-id>``; ``--status-port`` serves them
locally (``GET /health``, ``GET /metrics`` for Prometheus, ``GET /metrics.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from bot.data.config import (
    BINANCE_VENUES,
    DEFAULT_BINANCE_VENUE,
    DEFAULT_NATS_BATCH_MS,
    MAX_STREAMS_PER_BINANCE_CONNECTION,
    StreamManagerConfig,
)
from bot.data.errors import ConfigError, StreamError
from bot.data.health import HealthReport
from bot.data.nats.client import connect, connected_url, server_list
from bot.data.nats.publisher import Publisher
from bot.data.nats.sharding import Shard
from bot.data.nats.streams import DAY_S, default_streams, ensure_streams
from bot.data.nats.subjects import check_token, health_subject, symbol_token
from bot.data.redaction import redact_json
from bot.data.status_server import StatusServer
from bot.data.stream_manager import StreamManager
from bot.data.venues.registry import checked_symbols

logger = logging.getLogger(__name__)

PROG = "bot-stream ingest"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S}


@dataclass
class WorkerSettings:
    """Everything a worker needs; :func:`parse_args` builds it from the command line."""

    universe: list[str]
    stocks: list[str] = field(default_factory=list)
    shard: Shard = field(default_factory=lambda: Shard(0, 1))
    worker_id: str = field(default_factory=lambda: default_worker_id())
    servers: list[str] = field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    timeframes: list[str] = field(default_factory=lambda: ["1m", "5m", "15m"])
    publish_ticks: bool = True
    publish_bars: bool = True
    tick_retention_s: float = DAY_S
    bar_retention_s: float = 7 * DAY_S
    duplicate_window_s: float = 120.0
    max_bytes: int = -1
    replicas: int = 1
    queue_size: int = 200_000
    batch_ms: int = DEFAULT_NATS_BATCH_MS
    health_interval_s: float = 5.0
    status_host: str = "127.0.0.1"
    status_port: int | None = None
    binance_venue: str = DEFAULT_BINANCE_VENUE
    max_streams_per_connection: int = MAX_STREAMS_PER_BINANCE_CONNECTION
    log_level: str = "INFO"
    connect_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        """Fail now, naming the bad value, rather than after connecting."""
        check_token("worker_id", self.worker_id)
        self.servers = server_list(self.servers)  # registers credentials in the URLs first
        if self.health_interval_s <= 0:
            raise ConfigError("health_interval", self.health_interval_s, "must be > 0 seconds")
        config = self.manager_config()
        checked_symbols("crypto", self.universe, config, "universe")
        checked_symbols("stock", self.stocks, config, "stocks")
        for symbol in [*self.universe, *self.stocks]:
            symbol_token(symbol)

    def crypto_symbols(self) -> list[str]:
        return self.shard.select(self.universe)

    def stock_symbols(self) -> list[str]:
        return self.shard.select(self.stocks)

    def manager_config(self) -> StreamManagerConfig:
        return StreamManagerConfig(
            supported_timeframes=list(self.timeframes), default_timeframe=self.timeframes[0],
            binance_venue=self.binance_venue,
            binance_max_streams_per_connection=self.max_streams_per_connection,
            nats_batch_ms=self.batch_ms)


def default_worker_id() -> str:
    """``<host>-<pid>`` made subject-safe."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{socket.gethostname()}-{os.getpid()}")


class IngestWorker:
    """One running worker: manager, NATS connection, publisher, health loop, status server."""

    def __init__(self, settings: WorkerSettings, manager: StreamManager | None = None) -> None:
        self.settings = settings
        self.manager = manager or StreamManager(settings.manager_config())
        self.nc: Client | None = None
        self.publisher: Publisher | None = None
        self.status: StatusServer | None = None
        self._detach: Any = None
        self._health_task: asyncio.Task[None] | None = None
        self._started_ns: int | None = None
        self.manager.add_health_contributor(self._judge_publisher)

    async def start(self) -> None:
        """Connect NATS, check the streams, start publishing, then start streaming."""
        s = self.settings
        self.nc = await connect(s.servers, f"ingest-{s.worker_id}",
                                on_disconnected=self._connection_lost,
                                start_timeout=s.connect_timeout_s)
        await ensure_streams(self.nc.jetstream(), default_streams(
            tick_max_age_s=s.tick_retention_s, bar_max_age_s=s.bar_retention_s,
            duplicate_window_s=s.duplicate_window_s, max_bytes=s.max_bytes,
            replicas=s.replicas))
        self.publisher = Publisher(self.nc, ticks=s.publish_ticks, bars=s.publish_bars,
                                   max_queue=s.queue_size,
                                   batch_ms=self.manager.config.nats_batch_ms,
                                   supervisor=self.manager.supervisor)
        await self.publisher.start()
        self._detach = self.publisher.attach(self.manager.bus)
        crypto, stocks = s.crypto_symbols(), s.stock_symbols()
        if not crypto and not stocks:
            logger.warning("worker %s: shard %s owns none of the %d symbols given; idle",
                           s.worker_id, s.shard, len(s.universe) + len(s.stocks))
        if crypto:
            self.manager.add_crypto_symbols(crypto)
        if stocks:
            self.manager.add_stock_symbols(stocks)
        self._started_ns = time.time_ns()
        await self.manager.start()
        self._health_task = self.manager.supervisor.loop("ingest-health", self._health_loop)
        if s.status_port is not None:
            self.status = StatusServer(self, s.status_host, s.status_port)
            await self.status.start()

    async def _connection_lost(self) -> None:
        if self.publisher is not None:
            self.publisher.connection_lost()

    async def stop(self) -> None:
        """Stop streaming, publish what is queued, announce the final health, disconnect."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
        await self.manager.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self.status is not None:
            await self.status.stop()
            self.status = None
        if self.nc is not None and self.nc.is_connected:
            await self._publish_health()
        if self.nc is not None:
            await self.nc.close()
            self.nc = None

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            await self._publish_health()

    async def _publish_health(self) -> None:
        nc = self.nc
        if nc is None or not nc.is_connected:
            return
        report = {"worker": self.settings.worker_id, "time_ns": time.time_ns(),
                  "health": self.get_health(), "metrics": self.get_metrics()}
        payload = json.dumps(report, default=str).encode()
        try:
            await nc.publish(health_subject(self.settings.worker_id), payload)
        except Exception as exc:  # health must never stop the worker
            logger.warning("worker %s: health not published: %r", self.settings.worker_id, exc)

    # -- state -----------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """Who this worker is: id, shard, NATS server, symbols."""
        s = self.settings
        return {"id": s.worker_id, "shard": str(s.shard),
                "nats": None if self.nc is None else connected_url(self.nc),
                "symbols": self.manager.symbols}

    def get_health(self) -> dict[str, Any]:
        """The manager's health plus the publisher's; unhealthy while NATS is unreachable."""
        return self.manager.get_health()

    def _judge_publisher(self, report: HealthReport) -> None:
        """The worker's part of health: who it is, and its publisher (unhealthy while NATS
        is unreachable)."""
        report.sections["worker"] = self.identity()
        pub = report.sections["publisher"] = (
            self.publisher.health() if self.publisher is not None else None)
        if pub is not None and not pub["connected"]:
            report.fail("NATS is unreachable: ticks wait in the publisher queue")
        elif pub is not None and not pub["ok"]:
            report.degrade(f"publisher: {pub['last_error'] or 'records dropped'} "
                           f"(dropped {pub['dropped_overflow']}, queued {pub['queue_depth']})")

    def get_metrics(self) -> dict[str, Any]:
        """The manager's metrics; publisher counters added as ``publish_<name>``."""
        metrics = self.manager.get_metrics()
        metrics["worker"] = self.identity()
        if self.publisher is not None:
            pub = self.publisher.health()
            metrics["publisher"] = pub
            metrics["counters"].update(
                {f"publish_{k}": v for k, v in asdict(self.publisher.counters).items()})
            metrics["counters"]["publish_queue_depth"] = pub["queue_depth"]
        return redact_json(metrics)


# -- command line ------------------------------------------------------------------
DESCRIPTION = """\
Stream one shard of a symbol universe from the exchanges and publish every
trade and completed bar to NATS JetStream (md.tick.<venue>.<SYMBOL>,
md.bar.<timeframe>.<venue>.<SYMBOL>). Run N workers with --shard 0/N .. N-1/N
to split the universe; run two workers with the same --shard for redundancy
(JetStream keeps each trade once). Health and metrics are published on
md.health.<worker-id> every --health-interval seconds.
"""
EPILOG = """\
examples:
  bot-stream ingest --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 \\
      --symbols-file universe.txt --shard 0/3 --worker-id ingest-0a --status-port 9100
  bot-stream ingest --symbols BTC/USDT ETH/USDT --shard 0/1   # local nats-server

Durations accept a unit: 90s, 2m, 24h, 7d (seconds without one). The exchange
endpoints come from BINANCE_WS_URL / BINANCE_REST_URL (and the Alpaca ones) when
set, e.g. to run against `bot-stream sim`.
"""


def _duration(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: a positive number with an optional unit s, m, h or d, "
            "e.g. 90s, 2m, 24h, 7d")
    return float(match[1]) * _UNITS[match[2]]


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _worker_id(text: str) -> str:
    try:
        return check_token("worker-id", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: 0..65535 (0 picks a free one)")
    return port


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    universe = p.add_argument_group("universe and shard")
    universe.add_argument("--symbols", nargs="+", default=[], metavar="PAIR",
                          help="Binance pairs of the whole universe, e.g. BTC/USDT ETH/USDT")
    universe.add_argument("--symbols-file", type=Path, metavar="FILE",
                          help="more Binance pairs, one per line ('#' starts a comment)")
    universe.add_argument("--stocks", nargs="+", default=[], metavar="TICKER",
                          help="Alpaca stock tickers of the universe (needs ALPACA_API_KEY)")
    universe.add_argument("--shard", type=_shard, default=Shard(0, 1), metavar="i/N",
                          help="keep the symbols of shard i of N (stable hash; default 0/1: all)")
    universe.add_argument("--worker-id", type=_worker_id, default=None, metavar="ID",
                          help="name in md.health.<ID> and in logs (default: <host>-<pid>)")
    nats_group = p.add_argument_group("NATS JetStream")
    nats_group.add_argument("--nats", default="nats://127.0.0.1:4222", metavar="URLS",
                            help="server URLs, comma-separated (default %(default)s)")
    nats_group.add_argument("--connect-timeout", type=_duration, default=30.0, metavar="DUR",
                            help="how long to wait for NATS at start (default 30s); later "
                                 "outages are waited out indefinitely")
    nats_group.add_argument("--timeframes", nargs="+", default=["1m", "5m", "15m"],
                            metavar="TF", help="bar timeframes to publish (default 1m 5m 15m)")
    nats_group.add_argument("--no-ticks", action="store_true", help="do not publish ticks")
    nats_group.add_argument("--no-bars", action="store_true", help="do not publish bars")
    nats_group.add_argument("--tick-retention", type=_duration, default=DAY_S, metavar="DUR",
                            help="MD_TICKS max age (default 24h)")
    nats_group.add_argument("--bar-retention", type=_duration, default=7 * DAY_S, metavar="DUR",
                            help="MD_BARS and MD_SIGNALS max age (default 7d)")
    nats_group.add_argument("--duplicate-window", type=_duration, default=120.0, metavar="DUR",
                            help="JetStream dedup window; must cover how far redundant workers "
                                 "and retries lag (default 2m)")
    nats_group.add_argument("--max-bytes", type=int, default=-1, metavar="N",
                            help="size limit of each stream in bytes (default -1: none)")
    nats_group.add_argument("--replicas", type=int, default=1, choices=(1, 3, 5),
                            help="stream replicas in a cluster (default 1)")
    nats_group.add_argument("--batch-ms", type=int, default=DEFAULT_NATS_BATCH_MS, metavar="MS",
                            help="publish a symbol's trades in batches of this much exchange "
                                 "time, one message each; a trade waits at most about twice "
                                 "this (0: every trade alone; a divisor of 1000; default "
                                 "%(default)s)")
    nats_group.add_argument("--queue-size", type=int, default=200_000, metavar="N",
                            help="records queued while NATS is slow or away; beyond, the oldest "
                                 "are dropped and counted (default %(default)s)")
    ops = p.add_argument_group("operations")
    ops.add_argument("--health-interval", type=_duration, default=5.0, metavar="DUR",
                     help="seconds between md.health.<ID> reports (default 5)")
    ops.add_argument("--status-port", type=_port, default=None, metavar="PORT",
                     help="serve GET /health, /metrics (Prometheus), /metrics.json here "
                          "(0 picks a free port; default: off)")
    ops.add_argument("--status-host", default="127.0.0.1", metavar="HOST",
                     help="address of the status server (default %(default)s)")
    ops.add_argument("--venue", default=DEFAULT_BINANCE_VENUE, choices=tuple(BINANCE_VENUES),
                     help="Binance venue (default %(default)s)")
    ops.add_argument("--max-streams-per-connection", type=int, default=1024, metavar="N",
                     help="symbols per exchange connection (default %(default)s)")
    ops.add_argument("--log-level", default="INFO",
                     choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def _read_symbols_file(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError("symbols-file", str(path), f"a readable file ({exc.strerror})") from None
    return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


def parse_args(argv: Sequence[str]) -> WorkerSettings:
    """Settings from the command line; argparse exits with status 2 on bad usage."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    universe = list(args.symbols)
    if args.symbols_file is not None:
        universe += _read_symbols_file(args.symbols_file)
    if not universe and not args.stocks:
        parser.error("give the universe with --symbols, --symbols-file or --stocks")
    if args.no_ticks and args.no_bars:
        parser.error("--no-ticks and --no-bars together leave nothing to publish")
    return WorkerSettings(
        universe=universe, stocks=list(args.stocks), shard=args.shard,
        worker_id=args.worker_id or default_worker_id(), servers=args.nats.split(","),
        timeframes=list(args.timeframes), publish_ticks=not args.no_ticks,
        publish_bars=not args.no_bars, tick_retention_s=args.tick_retention,
        bar_retention_s=args.bar_retention, duplicate_window_s=args.duplicate_window,
        max_bytes=args.max_bytes, replicas=args.replicas, queue_size=args.queue_size,
        batch_ms=args.batch_ms,
        health_interval_s=args.health_interval, status_host=args.status_host,
        status_port=args.status_port, binance_venue=args.venue,
        max_streams_per_connection=args.max_streams_per_connection, log_level=args.log_level,
        connect_timeout_s=args.connect_timeout)


async def run(settings: WorkerSettings) -> None:
    """Run a worker until SIGINT or SIGTERM, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = IngestWorker(settings)
    try:
        await worker.start()
        ident = worker.identity()
        print(f"worker {settings.worker_id} shard {settings.shard}: {len(ident['symbols'])} "
              f"symbols -> {ident['nats']}", flush=True)
        if worker.status is not None:
            print(f"status {worker.status.url}", flush=True)
        await stop.wait()
    finally:
        await worker.stop()


def main(argv: list[str] | None = None) -> int:
    """``bot-stream ingest``: 0 after a clean stop, 1 on a stream or NATS error, 2 on bad usage."""
    try:
        settings = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    except (ConfigError, ValueError) as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(settings))
    except (StreamError, ConnectionError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
