"""Every benchmark script still runs and prints its figures.

The benchmarks are not timed here (speed is judged by running them, not by
tests); this only pins that a script does not rot when the library changes: it
imports what exists, its synthetic data passes the tick gate, and it prints the
lines its docstring promises. Each runs as a subprocess with small sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "aggregate.py": (["--messages", "100000", "--symbols", "3", "--runs", "1"],
                     ["ratio pipeline/baseline", "with gap detection"]),
    "bulk_aggregate.py": (["--ticks", "20000", "--runs", "1"], ["x baseline"]),
    "engine_latency.py": (["--bars", "20", "--runs", "1"],
                          ["baseline: bare pipeline", "engine: default features"]),
    "memory.py": (["--capacity", "500", "--symbols", "2", "--bars", "50", "--appends", "5000",
                   "--runs", "1"],
                  ["bytes per buffered tick: ring", "bytes per bar in history",
                   "append ns per tick: ring"]),
    "socket_ingest.py": (["--frames", "3000", "--runs", "1"], ["ratio ingest/baseline"]),
    "nats_throughput.py": (["--ticks", "3000", "--runs", "1", "--latency-ms", "50",
                            "--live-rate", "500", "--live-seconds", "0.5"],
                           ["(baseline)", "end to end: Publisher -> consumer", "catch-up:",
                            "bytes per tick", "batch window   50 ms: p50"]),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_script_runs_and_prints_its_figures(script: str) -> None:
    args, expected = CASES[script]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    for line in expected:
        assert line in done.stdout, done.stdout
    assert "refused" not in done.stderr, done.stderr[-2000:]
