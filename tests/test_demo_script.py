"""``make demo`` (``scripts/demo/test_streaming.py --sim``) as a new user meets it.

It runs against the simulator's catalogue: a clean run says healthy with no
warning and no negative latency; a symbol the simulator does not list, or one
that is not a symbol, is one line naming it and exit status 2, never a traceback
nor an invented market.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo" / "test_streaming.py"


def _demo(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "ALPACA_"))}
    return subprocess.run([sys.executable, str(DEMO), "--sim", *argv], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_the_demo_runs_healthy_without_warnings_or_negative_latency() -> None:
    result = _demo("--duration", "4")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "\nHealth: healthy\n" in result.stdout
    assert re.search(r"^Bar: +BTC/USDT +1m ", result.stdout, re.MULTILINE)
    metrics = json.loads(result.stdout.split("Metrics: ", 1)[1].split("\n\n", 1)[0])
    latency = metrics["latency"]["exchange_to_receive"]
    assert latency["count"] > 0 and latency["p50_ms"] >= 0


@pytest.mark.parametrize(("symbol", "message"), [
    ("BTC/USDTT", "crypto_symbols='BTC/USDTT' is invalid: binance does not list it; did you "
                  "mean 'BTC/USDT'?"),
    ("BTCUSDT", "crypto_symbols='BTCUSDT' is invalid: must look like 'BASE/QUOTE'"),
])
def test_a_symbol_the_simulator_cannot_stream_is_one_line_and_exit_2(symbol: str,
                                                                      message: str) -> None:
    result = _demo("--symbols", symbol, "--duration", "20")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"test_streaming.py: configuration error: {message}")
