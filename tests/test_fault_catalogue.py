"""Random sequences of real-world exchange faults, and the invariants every run must keep.

The seed is fixed for CI; ``FAULT_SEED`` overrides it (a comma-separated list
runs several), ``FAULT_COUNT`` sets how many faults a run draws and
``FAULT_KINDS`` (comma-separated catalogue names) what it draws from, to
narrow a failure down to one fault. Each run's
summary (faults injected, invariant checks passed, the REST formula and the
counts) is printed, attached as the ``fault_catalogue`` property, and shown in
the terminal summary whether or not output is captured. See
:mod:`tests.fault_catalogue` for the catalogue and the invariants.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

from bot.data.sim import ExchangeSimulator
from tests.fault_catalogue import Run, Settings, Verdict, draw, run_catalogue
from tests.streaming import point_at

CI_SEED = 20261130
SEEDS = [int(s) for s in os.environ.get("FAULT_SEED", str(CI_SEED)).split(",") if s.strip()]
FAULTS_PER_RUN = int(os.environ.get("FAULT_COUNT", "10"))
EXAMPLES = 4  # failures shown per invariant
FAULT_KINDS = [k.strip() for k in os.environ.get("FAULT_KINDS", "").split(",") if k.strip()]


class _TerminalSummary:
    """Writes the runs' summaries at the end of the session, captured output or not."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", "fault catalogue")
        for line in self.lines:
            terminalreporter.write_line(line)


@pytest.fixture
def summary(request: pytest.FixtureRequest) -> _TerminalSummary:
    plugins = request.config.pluginmanager
    plugin = plugins.get_plugin("fault-catalogue-summary")
    if plugin is None:
        plugin = _TerminalSummary()
        plugins.register(plugin, "fault-catalogue-summary")
    assert isinstance(plugin, _TerminalSummary)
    return plugin


def _report(seed: int, names: list[str], run: Run, verdict: Verdict) -> list[str]:
    bounds, formula = run.rest_bounds()
    counts = run.sim.counters.rest_by_endpoint
    lines = [
        f"seed {seed}: {len(run.injected)} faults injected, "
        f"{sum(verdict.passed.values())} invariant checks passed, "
        f"{len(verdict.failures)} failed",
        *(f"  fault {n}: {i.describe()}" for n, i in enumerate(run.injected, 1)),
        "  checks passed: " + ", ".join(f"{k} {n}" for k, n in sorted(verdict.passed.items())),
        "  REST requests (count <= bound): " + ", ".join(
            f"{path.rsplit('/', 1)[-1]} {counts.get(path, 0)} <= {bounds.get(path, 0)}"
            for path in sorted(set(bounds) | set(counts))),
        *(f"  formula: {f}" for f in formula),
        "  memory peaks: " + ", ".join(f"{k} {v}" for k, v in sorted(run.peaks.items())),
        f"  settled {run.settle_s:.1f} s after the exchange healed; "
        f"gaps reported: {len(run.gaps)}; bars completed: {len(run.bars)}; "
        f"ticks: {sum(run.tick_counts.values())}; exchange: "
        f"{run.sim.counters.connections_accepted} connections accepted, "
        f"{run.sim.counters.connections_refused} refused with 503, "
        f"{run.sim.counters.rest_rejected} REST answers faulted",
    ]
    repeated = Counter(run.sim.rest_log).most_common(3)
    if repeated and repeated[0][1] > 1:
        lines.append("  most repeated REST requests: "
                     + "; ".join(f"{n} x {q}" for q, n in repeated))
    if names != [i.name for i in run.injected]:
        lines.append(f"  drawn: {names}")
    by_invariant: dict[str, list[str]] = {}
    for failure in verdict.failures:
        by_invariant.setdefault(failure.partition("]")[0] + "]", []).append(failure)
    for invariant, failures in by_invariant.items():
        lines.append(f"  FAILED {invariant} {len(failures)} times")
        lines.extend(f"    {f.partition('] ')[2]}" for f in failures[:EXAMPLES])
        if len(failures) > EXAMPLES:
            lines.append(f"    ... and {len(failures) - EXAMPLES} more")
    return lines


@pytest.mark.timeout(150)
@pytest.mark.parametrize("seed", SEEDS)
async def test_random_fault_sequences_keep_every_invariant(
        seed: int, monkeypatch: pytest.MonkeyPatch, summary: _TerminalSummary,
        record_property: Any) -> None:
    names = draw(seed, FAULTS_PER_RUN, FAULT_KINDS)

    def set_env(sim: ExchangeSimulator) -> None:
        point_at(sim, monkeypatch)

    run, verdict = await run_catalogue(Settings(), seed, names, set_env)
    lines = _report(seed, names, run, verdict)
    text = "\n".join(lines)
    print(text)
    record_property("fault_catalogue", text)
    summary.lines.extend(lines)
    assert not verdict.failures, (
        f"FAULT_SEED={seed}: {len(verdict.failures)} invariant checks failed\n{text}")
