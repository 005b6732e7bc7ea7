"""Readers for the recorded Binance combined-stream captures under tests/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import DATA

WS_SAMPLES = DATA / "binance" / "ws_samples"
CAPTURES = sorted((WS_SAMPLES / "cryptofeed_captures").iterdir())
NAUTILUS = WS_SAMPLES / "nautilus_binance_json_fixtures"


def capture_frames(path: Path) -> list[str]:
    """The raw frames of a capture: every line after the URL line is ``<recv time>: <json>``."""
    lines = path.read_text().splitlines()[1:]
    return [line.split(": ", 1)[1] for line in lines if line.strip()]


def all_frames() -> list[tuple[str, str, dict[str, Any]]]:
    """``(capture name, raw frame, parsed frame)`` for every frame of every capture."""
    return [(path.name, raw, json.loads(raw)) for path in CAPTURES
            for raw in capture_frames(path)]


def capture_url(path: Path) -> str:
    """The URL the capture connected to (first line, before ``<->``)."""
    return path.read_text().splitlines()[0].split(" <-> ")[0]
