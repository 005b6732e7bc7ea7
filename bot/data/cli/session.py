"""What the streaming subcommands share: their flags, and a running stream to use.

``live``, ``record`` and ``dashboard`` all take symbols, configuration flags,
``--sim`` (an in-process exchange simulator: no keys, no network),
``--status-port`` and ``--duration``; :func:`running_stream` turns those flags
into a started :class:`StreamManager` and tears everything down in reverse
order, and :func:`wait_until_stopped` returns on Ctrl-C, SIGTERM or when the
duration is up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from bot.data.cli.config import load_config, parse_assignments
from bot.data.config import StreamManagerConfig
from bot.data.timeframes import ALLOWED_TIMEFRAMES
from bot.data.venues.registry import checked_symbols

if TYPE_CHECKING:
    from bot.data.stream_manager import StreamManager

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT")


def positive(text: str) -> float:
    """An argparse type: a finite number > 0 (argparse names the flag in its error)."""
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number > 0")
    return value


def non_negative(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = _finite(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port number, 0 to 65535 (0 picks a free port)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number 0-65535")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--timeframes``, ``--default-timeframe``, ``--set``."""
    group = parser.add_argument_group("configuration (file < BOT_STREAM_<FIELD> env < flags)")
    group.add_argument("--config", metavar="FILE.toml",
                       help="TOML file of StreamManagerConfig fields, e.g. "
                            "bar_close_grace_ms = 500")
    group.add_argument("--timeframes", nargs="+", metavar="TF",
                       help=f"bar timeframes (allowed: {' '.join(ALLOWED_TIMEFRAMES)}); "
                            "default 1m 5m 15m")
    group.add_argument("--default-timeframe", metavar="TF",
                       help="timeframe shown first (default: the first of --timeframes)")
    group.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       dest="settings", help="any StreamManagerConfig field; repeatable")


def add_stream_arguments(parser: argparse.ArgumentParser, *, status: bool = True) -> None:
    """Symbols, configuration, simulator, status server and duration flags."""
    parser.add_argument("symbols", nargs="*", metavar="SYMBOL",
                        help="Binance pairs such as BTC/USDT (default when no --stocks: "
                             f"{' '.join(DEFAULT_SYMBOLS)})")
    parser.add_argument("--stocks", nargs="+", default=[], metavar="TICKER",
                        help="Alpaca stocks such as TSLA (needs ALPACA_API_KEY and "
                             "ALPACA_SECRET_KEY, or --sim)")
    add_config_arguments(parser)
    sim = parser.add_argument_group("simulator")
    sim.add_argument("--sim", action="store_true",
                     help="stream from an in-process exchange simulator (no keys, no network); "
                          "it lists BTC, ETH, SOL, BNB, XRP, DOGE and ADA against USDT")
    sim.add_argument("--sim-speed", type=positive, default=1.0, metavar="X",
                     help="simulated market seconds per real second (30: a 1m bar every 2 s); "
                          "default 1")
    sim.add_argument("--sim-seed", type=int, default=1, metavar="N", help="simulator seed")
    sim.add_argument("--sim-history", type=non_negative, default=3600.0, metavar="SECONDS",
                     help="market seconds traded before the start, which the stream's warm-up "
                          "loads as bar history (default 3600)")
    run = parser.add_argument_group("run")
    if status:
        run.add_argument("--status-port", type=port, metavar="PORT",
                         help="serve /health, /metrics (Prometheus) and /metrics.json here "
                              "(0 picks a free port)")
        run.add_argument("--status-host", default="127.0.0.1", metavar="HOST",
                         help="address of the status server (default 127.0.0.1)")
    run.add_argument("--duration", type=positive, metavar="SECONDS",
                     help="stop after this long (default: until Ctrl-C)")


def config_from_args(args: argparse.Namespace) -> StreamManagerConfig:
    """The validated config from ``--config``, the environment and the flags."""
    flags: dict[str, str | list[str]] = dict(parse_assignments(args.settings))
    if args.timeframes:
        flags["supported_timeframes"] = args.timeframes
    if args.default_timeframe:
        flags["default_timeframe"] = args.default_timeframe
    return load_config(args.config, flags=flags)


def symbols_from_args(args: argparse.Namespace,
                      config: StreamManagerConfig) -> tuple[list[str], list[str]]:
    """(crypto, stocks), each checked against its venue's symbol form before anything starts;
    the default pairs when neither is given."""
    crypto = checked_symbols("crypto", args.symbols, config, "symbols")
    stocks = checked_symbols("stock", args.stocks, config, "--stocks")
    if not crypto and not stocks:
        crypto = list(DEFAULT_SYMBOLS)
    return crypto, stocks


@contextlib.asynccontextmanager
async def running_stream(args: argparse.Namespace,
                         config: StreamManagerConfig) -> AsyncIterator[StreamManager]:
    """A started manager for the flags; the simulator and status server around it if asked."""
    from bot.data.stream_manager import create_default_trading_stream

    crypto, stocks = symbols_from_args(args, config)
    async with contextlib.AsyncExitStack() as stack:
        if args.sim:
            from bot.data.sim import ExchangeSimulator
            from bot.data.sim.market import CATALOGUE_PAIRS

            # The simulator lists its own catalogue, as an exchange does: a pair it does
            # not list is refused by the stream's symbol check, never invented.
            # USDⓈ-M has no catalogue: the perpetuals named are the ones it lists.
            sim = await stack.enter_async_context(ExchangeSimulator(
                CATALOGUE_PAIRS, stocks, futures_symbols=[s for s in crypto if ":" in s],
                seed=args.sim_seed, speed=args.sim_speed, history_seconds=args.sim_history))
            # Credentials, and the endpoints of venues configured by their own package, are read
            # from the environment: the simulator's, while it runs.
            stack.enter_context(_environment(sim.env()))
            config = dataclasses.replace(
                config, binance_ws_url=sim.binance_ws_url, binance_rest_url=sim.binance_rest_url,
                alpaca_ws_url=sim.alpaca_ws_url, alpaca_rest_url=sim.alpaca_rest_url)
            note(f"simulator: {sim.base_http} (speed {args.sim_speed:g}x, seed {args.sim_seed})")
        manager = create_default_trading_stream(crypto, stocks, config)
        await manager.start(timeout=args.duration)  # --duration bounds start-up too
        stack.push_async_callback(manager.stop)
        if getattr(args, "status_port", None) is not None:
            from bot.data.status_server import StatusServer

            server = await stack.enter_async_context(
                StatusServer(manager, args.status_host, args.status_port))
            note(f"status server: {server.url}/health  {server.url}/metrics")
        yield manager


async def wait_until_stopped(duration: float | None, stop: asyncio.Event | None = None) -> None:
    """Return on SIGINT or SIGTERM, after ``duration`` seconds when given, or once ``stop``
    is set."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def note(message: str) -> None:
    """A progress message on stderr, leaving stdout to the command's output."""
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, restoring what was there before."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
