"""Every Python block of the README runs, against the exchange simulator.

Blocks are read verbatim from README.md (see tests/doc_blocks.py). What a block is
given follows from what it uses: a block that reads ``manager`` without defining
it gets a manager streaming from the simulator with a completed bar; a block that
is a dict literal documents the shape of a dict the library returns and is compared
with the real one, key by key. Every other block runs on its own with the
environment pointed at the simulator, its long sleeps cut to a few seconds. A
block that needs what the suite cannot have says so in a comment right above it
(``<!-- readme-test: needs ... -->``) and is skipped with that reason.

Blocks with a known point are checked for it (a tick printed, a DataFrame of
bars, a store holding the recorded trades); the others must run without error.
"""

from __future__ import annotations

import ast
import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from typing import Any

import pandas as pd
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.history import DATAFRAME_COLUMNS
from bot.data.models import Bar
from bot.data.stream_manager import StreamManager, create_default_trading_stream
from tests.doc_blocks import (
    README,
    CodeBlock,
    bound_sleeps,
    free_names,
    python_blocks,
    run_block,
    run_block_async,
    simulator_in_thread,
)

BLOCKS = python_blocks(README)
SPEED = 60.0  # one simulated minute per second: a 1m bar completes every second
BOUND_S = 4.0  # what an example's "stream for a minute" is cut to
GIVEN_NAMES = {"manager"}  # names a block may use without defining them
DAY = datetime(2025, 1, 1, tzinfo=UTC)  # the day the store example reads
SIMULATOR: dict[str, Any] = {"symbols": ("BTC/USDT", "XRP/USDT"), "stocks": ("TSLA",),
                             "seed": 3, "speed": SPEED}


@dataclass(frozen=True)
class Ran:
    """What a block left: its namespace and what it printed."""

    namespace: dict[str, Any]
    out: str


@dataclass(frozen=True)
class Point:
    """What a block is for, checked after it ran, and what it needs first."""

    verify: Callable[[Ran], None]
    simulator: dict[str, Any] = field(default_factory=dict)  # options over SIMULATOR
    after: str | None = None  # the marker of a block that must run first, in the same folder


def _prints_ticks_and_bars(ran: Ran) -> None:
    lines = ran.out.splitlines()
    ticked = {line.split()[1] for line in lines if line.startswith("Tick: ")}
    assert ticked == {"BTC/USDT", "XRP/USDT", "TSLA"}, ran.out[-2000:]
    assert any(line.startswith("Bar: ") and line.endswith(" OHLC") for line in lines)


def _reads_bars_ticks_health_and_metrics(ran: Ran) -> None:
    df = ran.namespace["df"]
    assert len(df) >= 1 and tuple(df.columns) == DATAFRAME_COLUMNS
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    current = ran.namespace["current"]
    assert current is None or (isinstance(current, Bar) and current.symbol == "BTC/USDT")
    assert ran.namespace["ticks"] and ran.namespace["ticks"][-1].symbol == "BTC/USDT"
    assert ran.namespace["health"]["status"] in ("healthy", "degraded")
    assert ran.namespace["metrics"]["counters"]["ticks"] > 0


def _recorded_the_stream(ran: Ran) -> None:
    from bot.data.store import TradeStore

    store = TradeStore("./market-data")
    assert store.series() == [("binance", "BTC/USDT")]
    assert store.series("bars") == [("binance", "BTC/USDT")]


def _reads_the_recorded_day(ran: Ran) -> None:
    ticks, bars, hourly = (ran.namespace[k] for k in ("ticks", "bars", "hourly"))
    assert len(ticks) > 0 and isinstance(ticks.index, pd.DatetimeIndex)
    assert str(ticks.index.tz) == "UTC" and ticks.index.name == "timestamp"
    assert DAY <= ticks.index[0] <= ticks.index[-1] < DAY + pd.Timedelta(days=1)
    assert ticks.index.is_monotonic_increasing
    assert bars.height >= 1 and set(bars["timeframe"]) == {"1m"}
    assert hourly["trades"].sum() == len(ticks)  # DuckDB counts what the DataFrame holds
    assert hourly["symbol"].tolist() == ["BTC/USDT"] * len(hourly)
    assert all(math.isfinite(v) and v > 0 for v in hourly["vwap"])


def _prints_trades(ran: Ran) -> None:
    assert "BTC/USDT" in ran.out, ran.out[-2000:]


# Blocks with a point to check, found by a line they contain.
POINTS: dict[str, Point] = {
    "manager.on_bar_complete(lambda b:": Point(_prints_ticks_and_bars),
    'df = manager.get_bar_dataframe("BTC/USDT"': Point(_reads_bars_ticks_health_and_metrics),
    'config = StreamManagerConfig(store_path="./market-data")':
        Point(_recorded_the_stream, {"start_time_ns": int(DAY.timestamp()) * 10**9 + 10**9}),
    'ticks = store.ticks("binance", "BTC/USDT", start="2025-01-01"':
        Point(_reads_the_recorded_day,
              {"start_time_ns": int(DAY.timestamp()) * 10**9 + 10**9},
              after='config = StreamManagerConfig(store_path="./market-data")'),
    'async with WebSocketStream("binance"': Point(_prints_trades),
}



@dataclass(frozen=True)
class Shape:
    """What returns the dict a block documents; ``maps`` are the paths (fnmatch patterns)
    of dicts keyed by names (connections, handlers, endpoints), compared by their values."""

    returns: Callable[[StreamManager], Any]
    maps: tuple[str, ...] = ()


# Dict blocks that document what a call returns, found by a line they contain.
SHAPES: dict[str, Shape] = {
    '"status": "healthy"': Shape(lambda m: m.get_health()),
    '"uptime_s": 39.8': Shape(lambda m: m.get_metrics(),
                              (".handlers", ".rejected_by_reason", ".connections", ".tasks",
                               ".rest", ".rest.*.requests", ".rest.*.weight")),
    '{"ok": True,': Shape(lambda m: m.get_health()["store"]),
}


def _find(marker: str) -> CodeBlock:
    found = [b for b in BLOCKS if marker in b.code]
    assert len(found) == 1, f"{len(found)} README blocks contain {marker!r}; expected one"
    return found[0]


def _point(block: CodeBlock) -> Point | None:
    return next((p for marker, p in POINTS.items() if marker in block.code), None)


def _shape(block: CodeBlock) -> Shape | None:
    return next((s for marker, s in SHAPES.items() if marker in block.code), None)


def _is_dict_literal(block: CodeBlock) -> bool:
    body = ast.parse(block.code).body
    return len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                          ast.Dict)


def test_the_readme_has_python_blocks_and_every_checked_one_exists() -> None:
    assert len(BLOCKS) >= 8
    for marker in (*POINTS, *SHAPES):
        _find(marker)


def test_a_skipped_block_says_what_it_needs() -> None:
    marked = [b for b in BLOCKS if b.mark is not None]
    assert all(b.mark.startswith("needs ") for b in marked), [b.mark for b in marked]
    assert len(marked) <= len(BLOCKS) // 4, "most README blocks must run in the suite"


def test_free_names_are_what_a_block_reads_without_defining() -> None:
    code = ("import asyncio\nfrom x import y as z\nasync def f(a):\n    return a + b\n"
            "c = [d for d in z]\nawait asyncio.sleep(1)\nprint(manager, c)\n")
    assert free_names(code) == {"b", "manager"}


def test_long_sleeps_are_cut_to_the_bound_and_short_ones_kept() -> None:
    code = "await asyncio.sleep(60)\nawait asyncio.sleep(0.5)\nawait asyncio.sleep(3600)\n"
    assert bound_sleeps(code, 4.0) == ("await asyncio.sleep(4.0)\nawait asyncio.sleep(0.5)\n"
                                       "await asyncio.sleep(4.0)\n")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mark is None], ids=lambda b: b.name)
def test_a_block_uses_only_what_it_defines_or_is_given(block: CodeBlock) -> None:
    unknown = free_names(block.code) - GIVEN_NAMES
    assert not unknown, (f"README block at line {block.line} uses {sorted(unknown)} without "
                         f"importing or defining it")
    if _is_dict_literal(block):
        assert _shape(block) is not None, (
            f"README block at line {block.line} documents a dict: add to SHAPES what returns it")


@pytest.mark.filterwarnings("ignore:.*WebSocketStream is deprecated:DeprecationWarning")
@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_readme_block_runs(block: CodeBlock, monkeypatch: pytest.MonkeyPatch,
                           tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    if block.mark is not None:
        pytest.skip(f"README block at line {block.line}: {block.mark}")
    monkeypatch.chdir(tmp_path)
    point = _point(block)
    options = {**SIMULATOR, **(point.simulator if point else {})}
    symbols, stocks = options.pop("symbols"), options.pop("stocks")
    namespace: dict[str, Any] = {"__name__": "readme"}
    with simulator_in_thread(monkeypatch, symbols, stocks, **options):
        if _is_dict_literal(block):
            _compare_with_what_the_library_returns(block)
            return
        if "manager" in free_names(block.code):
            asyncio.run(_run_with_a_streaming_manager(block, namespace))
        else:
            if point is not None and point.after is not None:
                before = _find(point.after)
                run_block(bound_sleeps(before.code, BOUND_S), {"__name__": "readme"},
                          f"README.md:{before.line}")
            run_block(bound_sleeps(block.code, BOUND_S), namespace, f"README.md:{block.line}")
    if point is not None:
        point.verify(Ran(namespace, capsys.readouterr().out))


async def _streaming_manager(store: bool) -> StreamManager:
    config = StreamManagerConfig(store_path="./store" if store else None)
    manager = create_default_trading_stream(crypto_symbols=["BTC/USDT"], config=config)
    bars: list[Bar] = []
    manager.on_bar_complete(bars.append)
    await manager.start()
    async with asyncio.timeout(30):
        while not bars:
            await asyncio.sleep(0.05)
    return manager


async def _run_with_a_streaming_manager(block: CodeBlock, namespace: dict[str, Any]) -> None:
    manager = await _streaming_manager(store=False)
    try:
        namespace["manager"] = manager
        await run_block_async(block.code, namespace, f"README.md:{block.line}")
    finally:
        await manager.stop()


def _compare_with_what_the_library_returns(block: CodeBlock) -> None:
    shape = _shape(block)
    assert shape is not None
    documented = eval(block.code, {})

    async def actual() -> Any:
        manager = await _streaming_manager(store=True)
        try:
            return shape.returns(manager)
        finally:
            await manager.stop()

    real = asyncio.run(actual())
    differences = _differences(documented, real, "", shape.maps)
    assert not differences, (f"README block at line {block.line} and what the library returns "
                             "differ:\n" + "\n".join(differences))


def _differences(doc: Any, real: Any, path: str, maps: tuple[str, ...]) -> list[str]:
    """Where the documented dict and the real one name different keys (``...`` stands for
    any value; a list is compared by its first item, a map by its first value)."""
    if doc is Ellipsis or doc == {Ellipsis}:
        return []
    if isinstance(doc, dict):
        if not isinstance(real, dict):
            return [f"{path or 'the dict'}: documented as a dict, is {real!r}"]
        if any(fnmatch(path, pattern) for pattern in maps):
            if not doc or not real:
                return []
            return _differences(next(iter(doc.values())), next(iter(real.values())),
                                f"{path}.*", maps)
        found = [f"{path}.{key}: documented, not returned" for key in doc if key not in real]
        found += [f"{path}.{key}: returned, not documented ({real[key]!r:.200})"
                  for key in real if key not in doc]
        for key in doc.keys() & real.keys():
            found += _differences(doc[key], real[key], f"{path}.{key}", maps)
        return found
    if isinstance(doc, list) and doc and isinstance(real, list) and real:
        return _differences(doc[0], real[0], f"{path}[0]", maps)
    return []
