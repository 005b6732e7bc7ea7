"""The code blocks of the user's specification (tests/data/seed_streaming.md), verbatim."""

from __future__ import annotations

from pathlib import Path

SEED = Path(__file__).parent / "data" / "seed_streaming.md"


def python_blocks() -> dict[str, str]:
    """Python code blocks keyed by the heading above them."""
    blocks: dict[str, str] = {}
    heading = ""
    code: list[str] | None = None
    for line in SEED.read_text().splitlines():
        if code is not None:
            if line.startswith("```"):
                blocks[heading] = "\n".join(code) + "\n"
                code = None
            else:
                code.append(line)
        elif line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("```python"):
            code = []
    return blocks
