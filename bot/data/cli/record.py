"""``bot-stream record``: stream symbols into a Parquet store directory."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from bot.data.cli.session import (
    add_stream_arguments,
    config_from_args,
    note,
    positive,
    running_stream,
    symbols_from_args,
    wait_until_stopped,
)
from bot.data.config import StreamManagerConfig

if TYPE_CHECKING:
    from bot.data.store import Recorder

DESCRIPTION = """\
Stream symbols and write every trade and completed bar to a partitioned Parquet
store (kind/venue/symbol/date), flushed atomically every few seconds. Read it
back with bot.data.store.TradeStore, or replay it with `bot-stream replay`.
"""
EPILOG = """\
examples:
  bot-stream record --sim --duration 60 --out data/ BTC/USDT
  bot-stream record --out /srv/ticks BTC/USDT ETH/USDT --status-port 8787
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "record", help="stream symbols into a Parquet store directory",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stream_arguments(parser)
    store = parser.add_argument_group("store")
    store.add_argument("--out", required=True, type=Path, metavar="DIR",
                       help="store root directory (created when missing)")
    store.add_argument("--flush-interval", type=positive, default=5.0, metavar="SECONDS",
                       help="write buffered rows this often (default 5)")
    store.add_argument("--retention-days", type=int, metavar="DAYS",
                       help="delete date partitions older than this (default: keep all)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bot.data.store import Recorder  # here: the store's libraries load only when used

    config = config_from_args(args)
    symbols_from_args(args, config)  # a bad symbol is refused before the store directory is touched
    recorder = Recorder(args.out, flush_interval=args.flush_interval,
                        retention_days=args.retention_days)
    return asyncio.run(_record(args, config, recorder))


async def _record(args: argparse.Namespace, config: StreamManagerConfig,
                  recorder: Recorder) -> int:
    await recorder.start()  # the store's writer lock first: a second writer fails before connecting
    try:
        async with running_stream(args, config) as manager:
            recorder.attach(manager.bus)
            note(f"recording {', '.join(manager.symbols)} into {args.out} (Ctrl-C stops)")
            await wait_until_stopped(args.duration)
    finally:  # after the stream stopped, so the last trades are written too
        await recorder.stop()
    health = recorder.health()
    print(f"recorded {health['ticks_written']:,} ticks and {health['bars_written']:,} bars "
          f"in {health['files_written']:,} files under {args.out}")
    if health["unwritable_ticks"] or health["unwritable_bars"]:
        print(f"left out {health['unwritable_ticks']:,} ticks and {health['unwritable_bars']:,} "
              f"bars the store cannot hold; the last: {health['last_unwritable']['reason']}")
    for problem in health["problems"]:
        print(f"store problem: {problem}")
    return 0 if health["ok"] else 1
