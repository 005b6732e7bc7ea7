"""Optional features and the install extra each needs.

The core install (``pip install bot-stream``) streams, builds bars, keeps history
and health, runs the engine and the simulator. Recording to Parquet, the command
line and dashboard, and NATS need libraries the core does not, installed with an
extra. A feature used without its extra fails at once, where it is first used,
with one :class:`MissingExtra` error naming what is missing and the command that
installs it, rather than an ``ImportError`` from deep inside.
"""

from __future__ import annotations

import importlib.util
import sys

EXTRAS: dict[str, tuple[str, ...]] = {
    "store": ("pyarrow", "polars", "duckdb", "tqdm"),
    "cli": ("rich", "tqdm", "prometheus_client"),
    "nats": ("nats",),
    "backtest": ("matplotlib",),
}
"""Each extra's importable modules (see ``pyproject.toml`` for the distributions)."""


class MissingExtra(ImportError):
    """A feature's libraries are not installed; the message says which extra installs them."""


def require(extra: str, feature: str) -> None:
    """Check (without importing them) that the modules of ``extra`` can be imported, or
    raise :class:`MissingExtra` naming ``feature``, the missing modules and
    ``pip install 'bot-stream[extra]'``."""
    missing = [module for module in EXTRAS[extra] if not _installed(module)]
    if missing:
        raise MissingExtra(f"{feature} needs {', '.join(missing)} (not installed): "
                           f"pip install 'bot-stream[{extra}]'", name=missing[0])


def _installed(module: str) -> bool:
    if module in sys.modules:  # imported already, or blocked (None) as if not installed
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None
