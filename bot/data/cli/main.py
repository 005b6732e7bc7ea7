"""``bot-stream``: the command line of the streaming library.

Each subcommand lives in its own module with ``add_parser`` and ``run``;
``sim`` and ``ingest`` hand their arguments to their own entry points
(:mod:`bot.data.cli.delegate`). Exit status: 0 success, 1 a stream, store or
network error, 2 bad usage or configuration, 130 interrupted; ``health`` has
its own (see its help).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from importlib import metadata
from typing import NoReturn

from bot.data.cli import backtest, dashboard, health, live, record, replay
from bot.data.cli.delegate import DELEGATED
from bot.data.errors import ConfigError, MissingCredentialsError, StreamError
from bot.data.extras import MissingExtra
from bot.data.venues.alpaca.session import AlpacaCredentials

PROG = "bot-stream"
DESCRIPTION = """\
Real-time market data: stream exchange trades into exact OHLCV bars, watch them
live in the terminal or a browser, record, replay, and check health.
"""
EPILOG = """\
Run `bot-stream COMMAND --help` for a command's options. Quick look without keys
or network: `bot-stream live --sim BTC/USDT ETH/USDT`.
"""
COMMANDS = (live, dashboard, record, replay, backtest, health)


class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are one line on stderr (and exit status 2), like every
    other bad input; the full usage is one ``--help`` away. Subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug) on stderr")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    for name, (help_text, _run) in DELEGATED.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][1](argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args.verbose)
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        print(f"{PROG} {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except MissingExtra as exc:  # e.g. record without the store's libraries
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return 2
    except (StreamError, OSError) as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        _quiet_closed_stdout()
    return status


def _configure_logging(verbosity: int) -> None:
    """Log to stderr at the verbosity asked for; credentials in the environment are
    registered as secrets first, so no line at any level (``-vv`` shows every
    WebSocket frame) can print them."""
    with contextlib.suppress(MissingCredentialsError):
        AlpacaCredentials.from_env()  # registers the key id and secret with the redaction
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity else logging.WARNING
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time, so the terminal view's
    redirection shows log lines above the view instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _quiet_closed_stdout() -> None:
    """After the reader of a pipe went away (``| head``), skip the flush at exit that
    would raise BrokenPipeError again."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _version() -> str:
    try:
        return metadata.version("bot-stream")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
