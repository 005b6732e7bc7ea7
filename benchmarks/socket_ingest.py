"""Throughput from a loopback WebSocket to ``Tick`` objects, beside a bare socket reader.

A local server (its own process, so it does not share the client's core) sends
pre-encoded Binance combined-stream trade frames, built by the simulator's own
encoders, as fast as the socket takes them: the whole run is serialised once
into WebSocket wire bytes and written in one go. Two clients read them, run
after run, alternately:

* baseline: a bare ``websockets`` client calling ``recv()`` for every frame, no decoding;
* ingest: the real ``transport.Connection`` with a ``BinanceSession``, each frame
  decoded into a ``Tick`` and handed to a no-op ``on_tick``;
* beside them, when it is installed (it is no dependency), a bare ``picows``
  client: another WebSocket library, whose frame parser is compiled, to show
  what the library's own cost per frame is.

Rates are frames per second from the first frame to the last of a run; the
figures are medians of ``--runs`` runs and the ratio ingest/baseline is what to
compare across machines. The client's CPU time per frame over the same span is
printed too: on a machine shared with other work it moves less than the rates.

    python benchmarks/socket_ingest.py [--frames 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection as Pipe
from typing import Any

import msgspec
import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from bot.data.config import StreamManagerConfig
from bot.data.models import Tick
from bot.data.sim.binance_frames import MILLISECONDS, trade_event
from bot.data.sim.market import TradeGenerator, crypto_instrument
from bot.data.sim.trades import SimTrade
from bot.data.transport import Backoff, Connection
from bot.data.venues.binance.session import BinanceSession

PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT")
START_NS = 1_735_689_600_000_000_000  # 2025-01-01 00:00 UTC


def make_frames(n: int, seed: int = 7) -> list[bytes]:
    """``n`` trade frames of the simulator's market, interleaved across :data:`PAIRS` in time."""
    generators = []
    for pair in PAIRS:
        base, quote = pair.split("/")
        generators.append(TradeGenerator(crypto_instrument(base, quote, base + quote), seed,
                                          START_NS, 1))
    trades: list[SimTrade] = []
    until = START_NS
    while len(trades) < n:
        until += 60 * 1_000_000_000
        for gen in generators:
            trades.extend(t for batch in gen.take_until(until) for t in batch)
    trades.sort(key=lambda t: t.time_ns)
    encode = msgspec.json.encode
    return [encode({"stream": f"{t.symbol.lower()}@trade", "data": trade_event(t, MILLISECONDS)})
            for t in trades[:n]]


def wire_bytes(frames: list[bytes]) -> bytes:
    """The frames as a server sends them: unmasked, uncompressed text frames, back to back."""
    return b"".join(Frame(Opcode.TEXT, f).serialize(mask=False, extensions=[]) for f in frames)


def serve_forever(wire: bytes, pipe: Pipe) -> None:
    """Server process: every connection gets the whole run, written in one go."""

    async def handler(ws: ServerConnection) -> None:
        ws.transport.write(wire)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None,
                         max_size=None) as server:
            pipe.send(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


# (frames/s, client CPU microseconds per frame) of one run
Run = tuple[float, float]


class Span:
    """Wall and CPU time from the first frame to the last of a run."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> Run:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return (self.n - 1) / wall, cpu / (self.n - 1) * 1e6


async def run_baseline(url: str, n: int) -> Run:
    """A bare client receiving ``n`` frames without decoding them."""
    span = Span(n)
    async with websockets.connect(url, max_size=2**24) as ws:
        await ws.recv()
        span.start()
        for _ in range(n - 1):
            await ws.recv()
        return span.stop()


async def run_picows(url: str, n: int) -> Run:
    """A bare picows client taking ``n`` frames' payloads without decoding them."""
    from picows import WSListener, ws_connect

    span = Span(n)
    done: asyncio.Future[Run] = asyncio.get_running_loop().create_future()

    class Listener(WSListener):
        count = 0

        def on_ws_frame(self, transport: object, frame: Any) -> None:
            frame.get_payload_as_bytes()
            self.count += 1
            if self.count == 1:
                span.start()
            elif self.count == n:
                done.set_result(span.stop())

    transport, _ = await ws_connect(Listener, url, max_frame_size=2**24)
    try:
        return await asyncio.wait_for(done, 120)
    finally:
        transport.disconnect()


async def run_ingest(url: str, n: int) -> Run:
    """``Connection`` + ``BinanceSession`` turning ``n`` frames into ticks."""
    config = StreamManagerConfig(binance_ws_url=url)
    done: asyncio.Future[Run] = asyncio.get_running_loop().create_future()
    span = Span(n)
    count = 0

    def on_tick(_: Tick) -> None:
        nonlocal count
        count += 1
        if count == 1:
            span.start()
        elif count == n:
            done.set_result(span.stop())

    conn = Connection("bench", lambda symbols: BinanceSession(config, symbols), PAIRS,
                      on_tick=on_tick, on_event=lambda _c, _e: None,
                      on_state=lambda _c: None, backoff=Backoff(0.1, 1.0), max_attempts=1,
                      connect_timeout=10.0, silence_timeout=10.0, stable_after=30.0)
    conn.start()
    try:
        run = await asyncio.wait_for(done, 120)
    finally:
        await conn.stop()
    if conn.stats.malformed or conn.stats.reconnects:
        raise RuntimeError(f"the run was not clean: {conn.stats}")
    return run


def picows_installed() -> bool:
    return importlib.util.find_spec("picows") is not None


async def measure(url: str, n: int, runs: int) -> dict[str, list[Run]]:
    """Each client's runs, interleaved round by round."""
    clients = {"baseline": run_baseline, "ingest": run_ingest}
    if picows_installed():
        clients["picows"] = run_picows
    results: dict[str, list[Run]] = {name: [] for name in clients}
    for _ in range(runs):
        for name, run in clients.items():
            results[name].append(await run(url, n))
    return results


def medians(runs: list[Run]) -> Run:
    return statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    frames = make_frames(args.frames)
    wire = wire_bytes(frames)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("fork").Process(
        target=serve_forever, args=(wire, sender), daemon=True)
    server.start()
    try:
        url = f"ws://127.0.0.1:{receiver.recv()}"
        results = asyncio.run(measure(url, len(frames), args.runs))
    finally:
        server.terminate()
        server.join()
    (b, b_cpu), (i, i_cpu) = medians(results["baseline"]), medians(results["ingest"])
    print(f"frames: {len(frames):,} combined-stream trade frames ({len(wire) / len(frames):.0f} "
          f"bytes each on the wire) over {len(PAIRS)} symbols, runs: {args.runs}")
    print(f"baseline (bare websockets client, recv() only): {b:,.0f} frames/s (median), "
          f"client CPU {b_cpu:.2f} us/frame")
    print(f"ingest (Connection + BinanceSession -> Tick): {i:,.0f} frames/s (median), "
          f"client CPU {i_cpu:.2f} us/frame")
    print(f"ratio ingest/baseline: {i / b:.3f} (by client CPU per frame: {b_cpu / i_cpu:.3f})")
    if "picows" in results:
        p, p_cpu = medians(results["picows"])
        print(f"picows (no dependency), bare client, payload only: {p:,.0f} frames/s (median), "
              f"client CPU {p_cpu:.2f} us/frame; ratio to baseline {p / b:.3f}")
    else:
        print("picows (no dependency): not installed, not measured")


if __name__ == "__main__":
    main()
