"""``import bot.data`` stays light: no data-frame, storage, calendar or ML library is loaded.

Each import runs in a fresh interpreter, which then reports which of the heavy
modules ended up in ``sys.modules``. They load only where they are used
(DataFrames, the recorder, the NYSE calendar, scikit-learn predictors).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "pyarrow", "polars", "duckdb", "exchange_calendars", "sklearn")


def _heavy_modules_loaded_by(statement: str) -> list[str]:
    probe = (f"import json, sys\n{statement}\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("statement", [
    "import bot.data",
    "from bot.data import StreamManager",
    "from bot.data import StreamManager, StreamManagerConfig, EventType, Tick, Bar",
    "from bot.data import create_default_trading_stream",
    "from bot.data.websocket_stream import WebSocketStream",
])
def test_importing_the_stream_loads_no_heavy_library(statement: str) -> None:
    assert _heavy_modules_loaded_by(statement) == []


def test_the_probe_sees_a_heavy_library_when_one_is_imported() -> None:
    assert "pandas" in _heavy_modules_loaded_by("import bot.data\nimport pandas")
