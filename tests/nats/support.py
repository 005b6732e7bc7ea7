"""Shared pieces of the NATS tests: worker and consumer processes, the exchange's truth."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nats.js import JetStreamContext

from bot.data.config import StreamManagerConfig
from bot.data.models import Side, Tick
from bot.data.nats.codec import batch_codec, tick_codec
from bot.data.nats.remote import RemoteStreamManager
from bot.data.nats.subjects import BATCH, RECORD_HEADER, WATERMARK
from bot.data.sim import ExchangeSimulator, SimTrade

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC/USDT"
NS_PER_MS = 1_000_000
ACK_TIMEOUT_S = 30.0  # kill tests: an ack is confirmed, not given up, however slow the server


class Process:
    """A child process whose stdout lines are read without blocking the event loop."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[str] = []  # every line read so far

    @classmethod
    async def spawn(cls, name: str, args: Sequence[str], env: dict[str, str],
                    stderr: Path | None = None) -> Process:
        """``python ARGS``; its stderr goes to the file ``stderr`` (default: discarded)."""
        with open(stderr or os.devnull, "wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args, env={**os.environ, **env}, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=err)
        return cls(proc, name)

    async def readline(self, timeout: float = 20.0) -> str:
        """The next complete line; AssertionError when the process ended or stayed silent."""
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line.endswith(b"\n"):
            raise AssertionError(f"{self.name} ended (status {self.proc.returncode}) "
                                 f"before a full line: {line!r}")
        self.lines.append(line.decode().rstrip("\n"))
        return self.lines[-1]

    async def remaining_lines(self) -> list[str]:
        """Every complete line left once the process has ended (a cut last line is dropped)."""
        assert self.proc.stdout is not None
        data = await self.proc.stdout.read()
        lines = data.decode().split("\n")[:-1]
        self.lines += lines
        return lines

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind in the child."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.kill()
                await self.proc.wait()


async def start_worker(nats_url: str, sim: ExchangeSimulator, worker_id: str,
                       symbols: Sequence[str] = (SYMBOL,), *extra: str,
                       stderr: Path | None = None) -> Process:
    """``python -m bot.data.nats.worker`` for ``symbols``; returns once it streams.

    ``extra`` options come last (a second ``--log-level`` wins); its log goes to ``stderr``.
    """
    worker = await Process.spawn(worker_id, [
        "-m", "bot.data.nats.worker", "--nats", nats_url, "--symbols", *symbols,
        "--worker-id", worker_id, "--timeframes", "1m", "--health-interval", "1",
        "--log-level", "WARNING", *extra], sim.env(), stderr)
    line = await worker.readline()
    assert line.startswith(f"worker {worker_id} "), line
    return worker


def remote(nats_url: str, durable: str, symbols: Sequence[str] = (SYMBOL,),
           ack_timeout: float = 1.0) -> RemoteStreamManager:
    manager = RemoteStreamManager(StreamManagerConfig(supported_timeframes=["1m"]),
                                  servers=nats_url, durable=durable, ack_timeout=ack_timeout)
    manager.add_crypto_symbols(list(symbols))
    return manager


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0,
                   what: str = "condition") -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def assert_exact_trade_sequence(ticks: Sequence[Tick], truth: Sequence[SimTrade]) -> None:
    """``ticks`` are the exchange's trades from the first to the last, each once, in order.

    Ids are consecutive (no gap, no duplicate), and every field equals the
    trade the simulated exchange executed under that id.
    """
    assert ticks, "no tick received"
    ids = [t.trade_id for t in ticks]
    assert len(set(ids)) == len(ids), "a trade was delivered twice"
    assert ids == list(range(ids[0], ids[0] + len(ids))), "ids are not consecutive: a gap"
    by_id = {t.trade_id: t for t in truth}
    for tick in ticks:
        trade = by_id[tick.trade_id]
        assert round(tick.price * 1e8) == trade.price_e8, tick
        assert round(tick.volume * 1e8) == trade.qty_e8, tick
        assert tick.side is (Side.SELL if trade.buyer_is_maker else Side.BUY), tick
        assert tick.timestamp // NS_PER_MS == trade.time_ns // NS_PER_MS, tick


def ticks_of(data: bytes, headers: dict[str, str] | None) -> list[Tick]:
    """The ticks one MD_TICKS message carries: a batch's, a single tick, none for a watermark."""
    kind = (headers or {}).get(RECORD_HEADER)
    if kind == BATCH:
        return batch_codec().decode(data)
    if kind == WATERMARK:
        return []
    assert kind is None, f"unknown record kind {kind!r}"
    return [tick_codec().decode(data)]


async def stored_ticks(js: JetStreamContext, last: int | None = None) -> list[Tick]:
    """Every tick stored in MD_TICKS up to stream sequence ``last`` (all), in stream order."""
    if last is None:
        last = (await js.stream_info("MD_TICKS")).state.last_seq
    out: list[Tick] = []
    for seq in range(1, last + 1):
        msg = await js.get_msg("MD_TICKS", seq)
        out += ticks_of(msg.data or b"", msg.headers)
    return out
