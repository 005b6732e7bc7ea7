"""Subcommands that hand their arguments to another entry point unchanged.

``bot-stream sim ...`` is ``python -m bot.data.sim ...``; ``bot-stream ingest
...`` is the NATS ingest worker's ``main``. Both are imported only when used,
so the rest of the command line works without their dependencies.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

INGEST_MODULE = "bot.data.nats.worker"

SIM_HELP = ("run the exchange simulator and print the URLs and environment that point "
            "a client at it (see bot-stream sim --help)")
INGEST_HELP = ("run the NATS ingest worker; its arguments follow (see bot-stream ingest "
               "--help)")


def run_sim(argv: list[str]) -> int:
    """The simulator until Ctrl-C; prints its URLs and ``export`` lines first."""
    from bot.data.sim.__main__ import main as sim_main

    sim_main(argv)
    return 0


def run_ingest(argv: list[str]) -> int:
    """``bot.data.nats.worker.main(argv)``; a clear error when it is not installed."""
    try:
        worker_main: Callable[[list[str]], int] = importlib.import_module(INGEST_MODULE).main
    except ModuleNotFoundError as exc:
        if exc.name is not None and (INGEST_MODULE + ".").startswith(exc.name + "."):
            print(f"bot-stream ingest: the ingest worker ({INGEST_MODULE}) is not part of this "
                  "installation", file=sys.stderr)
        else:
            print(f"bot-stream ingest: the ingest worker needs the Python package "
                  f"{exc.name!r}, which is not installed", file=sys.stderr)
        return 1
    return worker_main(argv)


DELEGATED: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "sim": (SIM_HELP, run_sim),
    "ingest": (INGEST_HELP, run_ingest),
}
