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
from types import SimpleNamespace
from typing import Any

import pytest

from bot.data.models import Side, Tick
from bot.data.sim import ExchangeSimulator, SimTrade
from bot.data.sim.trades import E8
from tests.conftest import FAULT_SUMMARY_PROPERTY
from tests.fault_catalogue import TOTAL, Run, Settings, Verdict, draw, run_catalogue
from tests.streaming import point_at

CI_SEED = 20261130
SEEDS = [int(s) for s in os.environ.get("FAULT_SEED", str(CI_SEED)).split(",") if s.strip()]
FAULTS_PER_RUN = int(os.environ.get("FAULT_COUNT", "10"))
EXAMPLES = 4  # failures shown per invariant

FAULT_KINDS = [k.strip() for k in os.environ.get("FAULT_KINDS", "").split(",") if k.strip()]


def _report(seed: int, names: list[str], run: Run, verdict: Verdict) -> list[str]:
    bounds, formula = run.rest_bounds()
    counts = Counter(run.sim.counters.rest_by_endpoint)
    counts[TOTAL] = sum(counts.values())
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
        seed: int, monkeypatch: pytest.MonkeyPatch, record_property: Any) -> None:
    names = draw(seed, FAULTS_PER_RUN, FAULT_KINDS)

    def set_env(sim: ExchangeSimulator) -> None:
        point_at(sim, monkeypatch)

    run, verdict = await run_catalogue(Settings(), seed, names, set_env)
    lines = _report(seed, names, run, verdict)
    text = "\n".join(lines)
    print(text)
    record_property(FAULT_SUMMARY_PROPERTY, text)  # tests/conftest.py ends the output with it
    assert not verdict.failures, (
        f"FAULT_SEED={seed}: {len(verdict.failures)} invariant checks failed\n{text}")


def test_the_same_seed_draws_the_same_faults_and_always_a_refused_trade() -> None:
    assert draw(7, 10) == draw(7, 10) != draw(8, 10)
    assert all("refused trades" in draw(seed, 3) for seed in range(20))
    assert set(draw(7, 30, ["connection drop"])) == {"connection drop"}
    with pytest.raises(ValueError, match="unknown faults"):
        draw(7, 3, ["solar flare"])


def _judged(ticked: list[int], gaps: list[dict[str, Any]]) -> Verdict:
    """The tick invariants over a log of trades 1-10 (5 refused) and what reached TICK."""
    log = [SimTrade("BTCUSDT", i, 0 if i == 5 else 100 * E8, 0 if i == 5 else E8,
                    i * 1_000_000_000, False, i * 1_000_000_000) for i in range(1, 11)]
    sim = SimpleNamespace(trades=lambda venue, symbol: log)
    manager = SimpleNamespace(get_health=lambda: {"status": "healthy", "backfilling": []})
    run = Run(Settings(symbols=("BTC/USDT",)), sim, manager)  # type: ignore[arg-type]
    run.start_ns, run.end_ids, run.gaps = 0, {"BTC/USDT": 10}, gaps
    for trade in log:
        if trade.trade_id in ticked:
            tick = Tick("binance", "BTC/USDT", float(trade.price), float(trade.qty), Side.BUY,
                        trade.trade_id, trade.time_ns, trade.time_ns)
            run.tick_counts[("BTC/USDT", trade.trade_id)] += 1
            run.ticks[("BTC/USDT", trade.trade_id)] = tick
    verdict = Verdict()
    run._check_ticks(verdict, "BTC/USDT", log)
    return verdict


def test_a_trade_missing_outside_every_reported_gap_fails_and_inside_one_passes() -> None:
    every_market_trade = [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert not _judged(every_market_trade, []).failures
    missing = _judged([1, 2, 3, 4, 6, 9, 10], []).failures
    assert len(missing) == 1 and "ids 7-8" in missing[0]
    by_ids = [{"symbol": "BTC/USDT", "start_ns": 0, "end_ns": 0, "missing_ids": [7, 8]}]
    by_time = [{"symbol": "BTC/USDT", "start_ns": 7_000_000_000, "end_ns": 8_000_000_000,
                "missing_ids": None}]
    assert not _judged([1, 2, 3, 4, 6, 9, 10], by_ids).failures
    assert not _judged([1, 2, 3, 4, 6, 9, 10], by_time).failures
    refused = _judged([*every_market_trade, 5], []).failures
    assert len(refused) == 1 and "refused never ticks" in refused[0]
