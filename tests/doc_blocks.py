"""Run the Python code blocks of a Markdown document against the exchange simulator.

Shared by the tests of the user's specification (tests/data/seed_streaming.md) and
of the README: blocks are read verbatim, run in a fresh namespace, and the
simulator they stream from runs on its own thread, so a block may call
``asyncio.run`` itself. A block may also ``await`` at top level (as in a REPL).
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.data.sim import ExchangeSimulator

SEED = Path(__file__).parent / "data" / "seed_streaming.md"
README = Path(__file__).parent.parent / "README.md"
_MARK = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One ```python block: where it is, what it says, and the test mark just above it."""

    heading: str  # the closest heading above it, without the '#'s
    line: int  # 1-based line of its first code line
    code: str
    mark: str | None  # the text of a `<!-- readme-test: ... -->` comment right before it

    @property
    def name(self) -> str:
        return f"L{self.line}-{re.sub(r'[^a-z0-9]+', '-', self.heading.lower()).strip('-')}"


def python_blocks(path: Path) -> list[CodeBlock]:
    """Every ```python block of a Markdown file, in order."""
    blocks: list[CodeBlock] = []
    heading, mark, start = "", None, 0
    code: list[str] | None = None
    previous = ""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if code is not None:
            if line.startswith("```"):
                blocks.append(CodeBlock(heading, start, "\n".join(code) + "\n", mark))
                code = None
            else:
                code.append(line)
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("```python"):
            found = _MARK.match(previous)
            mark, code, start = (found.group(1) if found else None), [], number + 1
        previous = line if line.strip() else previous
    return blocks


def seed_blocks() -> dict[str, str]:
    """The specification's Python blocks keyed by the heading above them."""
    return {block.heading: block.code for block in python_blocks(SEED)}


def free_names(code: str) -> set[str]:
    """Names a block reads but neither binds nor imports (nor are builtins)."""
    tree = ast.parse(code)
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound - set(dir(builtins))


def bound_sleeps(code: str, seconds: float) -> str:
    """``code`` with every ``asyncio.sleep(N)`` longer than ``seconds`` cut to ``seconds``.

    How a test bounds an example that streams for a minute or forever.
    """
    def cut(match: re.Match[str]) -> str:
        return f"asyncio.sleep({seconds})" if float(match.group(1)) > seconds else match.group(0)

    return re.sub(r"asyncio\.sleep\((\d+(?:\.\d+)?)\)", cut, code)


def run_block(code: str, namespace: dict[str, Any], filename: str) -> None:
    """Run a block outside any event loop; a top-level ``await`` runs in ``asyncio.run``."""
    result = eval(_compile(code, filename), namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)


async def run_block_async(code: str, namespace: dict[str, Any], filename: str) -> None:
    """Run a block inside the running event loop (for blocks given a live manager)."""
    result = eval(_compile(code, filename), namespace)
    if inspect.iscoroutine(result):
        await result


def _compile(code: str, filename: str) -> Any:
    return compile(code, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@contextmanager
def simulator_in_thread(monkeypatch: pytest.MonkeyPatch, symbols: tuple[str, ...],
                        stocks: tuple[str, ...] = (), **options: Any,
                        ) -> Iterator[ExchangeSimulator]:
    """A simulator on its own thread and event loop, the environment pointed at it.

    Code under test may then call ``asyncio.run`` itself, as users' scripts do.
    """
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        async with ExchangeSimulator(list(symbols), list(stocks), **options) as sim:
            holder["sim"], holder["stop"] = sim, asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            ready.set()
            await holder["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(20), "simulator did not start"
    sim = holder["sim"]
    for key, value in sim.env().items():
        monkeypatch.setenv(key, value)
    try:
        yield sim
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(20)
