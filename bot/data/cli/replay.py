"""``bot-stream replay``: rebuild bars from a recorded store and print them or a summary.

The ticks go through the same ``TickPipeline`` the live stream uses
(:func:`bot.data.store.replay`), so the bars are those the live session built.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from rich.table import Table
from tqdm import tqdm

from bot.data.cli.formatting import bar_line, console, price
from bot.data.cli.jsonlines import plain
from bot.data.cli.session import add_config_arguments, config_from_args, note, positive
from bot.data.errors import ConfigError
from bot.data.models import Bar

if TYPE_CHECKING:
    from bot.data.store import ReplayResult

DESCRIPTION = """\
Replay the trades of a store written by `bot-stream record` (or a Recorder)
through the streaming pipeline, with a progress bar on stderr, and print a
summary of the bars per symbol and timeframe, or every bar (--bars, --json).
Bars end where the recording does: a bar the recording's end cuts is printed
flagged PARTIAL, and no bar is made for time after it.
A damaged part file is skipped with a warning naming it, the rest is replayed,
and the exit status is 1.
"""
EPILOG = """\
examples:
  bot-stream replay data/                                   summary of every series
  bot-stream replay data/ BTC/USDT --timeframes 1m 1h --bars
  bot-stream replay data/ --start 2025-01-01T00:00 --end 2025-01-02 --json > bars.jsonl
  bot-stream replay data/ --speed 60                        paced: 60x real time
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay", help="rebuild bars from a recorded store; print them or a summary",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, metavar="DIR", help="store root directory")
    parser.add_argument("symbols", nargs="*", metavar="SYMBOL",
                        help="symbols to replay (default: every recorded one)")
    add_config_arguments(parser)
    select = parser.add_argument_group("selection and pace")
    select.add_argument("--start", metavar="TIME", help="first exchange time, ISO 8601 "
                                                        "(naive times are UTC)")
    select.add_argument("--end", metavar="TIME", help="end exchange time (exclusive)")
    select.add_argument("--speed", type=positive, metavar="X",
                        help="pace at X times real time (default: as fast as possible)")
    out = parser.add_argument_group("output")
    out.add_argument("--bars", action="store_true", help="print every completed bar")
    out.add_argument("--json", action="store_true",
                     help="print every completed bar as a JSON line (implies --bars)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bot.data.pipeline import TickPipeline
    from bot.data.store import TradeStore, replay  # here: the store's libraries load when used
    from bot.data.store.replay import select_series

    config = config_from_args(args)
    store = TradeStore(args.store)
    series = select_series(store, args.symbols)
    start, end = parse_time(args.start, "--start"), parse_time(args.end, "--end")
    pipeline = TickPipeline(config)
    bars: list[Bar] = []
    print_bar = _json_line if args.json else _text_line if args.bars else bars.append
    pipeline.bus.on_bar_complete(print_bar)
    result = asyncio.run(replay(store, pipeline, speed=args.speed,
                                progress=not args.no_progress, series=series, start=start,
                                end=end))
    if not (args.bars or args.json):
        _summary(bars, result)
    skipped = store.unreadable_files()
    if skipped:
        note(f"{len(skipped)} damaged part file(s) skipped (named in the warnings above); "
             "the rest was replayed")
        return 1
    return 0


def parse_time(text: str | None, flag: str) -> int | None:
    """A time flag as ns since the epoch, read as the store reads a time bound (naive is
    UTC); None stays None. A ConfigError naming the flag when it is not a time."""
    from bot.data.frames import time_bound_ns  # here: numpy loads when a time is given

    try:
        return time_bound_ns(text, flag)
    except ValueError:
        raise ConfigError(flag, text, "must be an ISO 8601 date or time, e.g. 2025-01-01 or "
                                      "2025-01-01T12:30 (naive times are UTC)") from None


def _text_line(bar: Bar) -> None:
    tqdm.write(bar_line(bar), file=sys.stdout)


def _json_line(bar: Bar) -> None:
    """The bar as ``live --json`` writes one: ISO times beside the ns, rounded floats, flag
    names."""
    tqdm.write(msgspec.json.encode(plain(bar)).decode(), file=sys.stdout)


def _summary(bars: list[Bar], result: ReplayResult) -> None:
    groups: dict[tuple[str, str], list[Bar]] = defaultdict(list)
    for bar in bars:
        groups[(bar.symbol, bar.timeframe)].append(bar)
    table = Table(title="Replayed bars", title_justify="left", header_style="bold cyan")
    for name in ("Symbol", "TF", "Bars", "First open (UTC)", "Last open (UTC)", "Open", "High",
                 "Low", "Close", "Volume", "Buy %"):
        table.add_column(name, justify="left" if name in ("Symbol", "TF") else "right")
    for (symbol, timeframe), series in groups.items():
        volume = sum(b.volume for b in series)
        buy = sum(b.buy_volume for b in series)
        table.add_row(symbol, timeframe, str(len(series)),
                      f"{series[0].open_datetime:%Y-%m-%d %H:%M}",
                      f"{series[-1].open_datetime:%Y-%m-%d %H:%M}", price(series[0].open),
                      price(max(b.high for b in series)), price(min(b.low for b in series)),
                      price(series[-1].close), f"{volume:.6g}",
                      f"{buy / volume * 100:.1f}%" if volume else "—")
    out = console()
    out.print(table)
    rate = result.ticks / result.wall_seconds if result.wall_seconds > 0 else 0.0
    out.print(f"{result.ticks:,} ticks ({result.refused:,} refused) -> {result.bars:,} bars "
                  f"in {result.wall_seconds:.2f} s ({rate:,.0f} ticks/s)")
