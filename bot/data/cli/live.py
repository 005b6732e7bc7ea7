"""``bot-stream live``: watch symbols stream, in a terminal view or as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live

from bot.data.cli.jsonlines import JsonLinesWriter
from bot.data.cli.session import (
    add_stream_arguments,
    config_from_args,
    positive,
    running_stream,
    wait_until_stopped,
)
from bot.data.cli.view import render, snapshot
from bot.data.config import StreamManagerConfig
from bot.data.events import EventType
from bot.data.tick_rates import TickStats

if TYPE_CHECKING:
    from bot.data.stream_manager import StreamManager

DESCRIPTION = """\
Stream symbols and show, refreshed in place: each symbol's last price, the bar
being built, the last completed bars, the taker buy/sell imbalance, trades per
second, latency percentiles and the state of every connection. With --json,
print every event as one JSON line instead (for jq, a file, another program).
"""
EPILOG = """\
examples:
  bot-stream live --sim BTC/USDT ETH/USDT              no keys, no network
  bot-stream live --sim --sim-speed 30 BTC/USDT        a 1m bar every 2 s
  bot-stream live BTC/USDT --timeframes 1s 1m          live Binance
  bot-stream live BTC/USDT --events bar_complete | jq .data.close
  bot-stream live BTC/USDT --status-port 8787          + /health and /metrics
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "live", help="watch symbols stream in a live terminal view (or as JSON lines)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stream_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true",
                     help="print events as JSON lines instead of the terminal view")
    out.add_argument("--events", type=_event_types, metavar="TYPE[,TYPE...]",
                     help="print only these event types as JSON lines "
                          f"({', '.join(t.value for t in EventType)}); implies --json")
    out.add_argument("--refresh", type=positive, default=0.5, metavar="SECONDS",
                     help="terminal view refresh interval (default 0.5)")
    out.add_argument("--bars", type=int, default=3, metavar="N",
                     help="completed bars shown per symbol (default 3)")
    parser.set_defaults(run=run)


def _event_types(text: str) -> list[EventType]:
    """``"tick,bar_complete"`` -> event types; argparse reports a bad name with the choices."""
    try:
        return [EventType(name.strip()) for name in text.split(",") if name.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: allowed event types are {', '.join(t.value for t in EventType)}, "
            "separated by commas") from None


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # a bad setting fails before anything connects
    return asyncio.run(_live(args, config))


async def _live(args: argparse.Namespace, config: StreamManagerConfig) -> int:
    async with running_stream(args, config) as manager:
        if args.json or args.events:
            await _print_events(manager, args)
        else:
            await _show(manager, args, config.default_timeframe)
    return 0


async def _print_events(manager: StreamManager, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    writer = JsonLinesWriter(sys.stdout.buffer, stop.set)
    for event_type in args.events or list(EventType):
        manager.on(event_type, writer)
    await wait_until_stopped(args.duration, stop)


async def _show(manager: StreamManager, args: argparse.Namespace, timeframe: str) -> None:
    stats = TickStats()
    manager.on_tick(stats.on_tick)
    stopped = asyncio.ensure_future(wait_until_stopped(args.duration))
    with Live(console=Console(), auto_refresh=False) as live:
        while not stopped.done():
            live.update(render(snapshot(manager, stats, timeframe, args.bars)), refresh=True)
            await asyncio.wait({stopped}, timeout=args.refresh)
