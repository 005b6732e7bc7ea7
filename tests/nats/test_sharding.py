"""Splitting a symbol universe among workers: deterministic, complete, stable when it grows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.data.nats.sharding import Shard, shard_of

UNIVERSE = [f"C{i:04d}/USDT" for i in range(2000)]

# The assignment is part of a deployment: changing it moves symbols between running
# workers. These values pin it.
PINNED = {"BTC/USDT": [0, 0, 0, 3, 3], "ETH/USDT": [0, 1, 2, 2, 4],
          "SOL/USDT": [0, 1, 1, 1, 1], "AAPL": [0, 1, 1, 1, 7]}


def test_assignment_is_pinned_and_case_insensitive() -> None:
    for symbol, shards in PINNED.items():
        assert [shard_of(symbol, n) for n in (1, 2, 3, 4, 8)] == shards
        assert [shard_of(symbol.lower(), n) for n in (1, 2, 3, 4, 8)] == shards


def test_assignment_is_the_same_in_processes_with_different_hash_seeds() -> None:
    code = ("from bot.data.nats.sharding import shard_of; "
            f"print([shard_of(s, 7) for s in {UNIVERSE[:200]!r}])")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1
    assert outputs.pop().strip() == str([shard_of(s, 7) for s in UNIVERSE[:200]])


def test_shards_partition_the_universe_evenly() -> None:
    shards = [Shard(i, 4).select(UNIVERSE) for i in range(4)]
    assert sorted(s for shard in shards for s in shard) == sorted(UNIVERSE)
    assert all(400 <= len(shard) <= 600 for shard in shards), [len(s) for s in shards]


def test_adding_a_shard_moves_only_the_symbols_the_new_shard_takes() -> None:
    before = {s: shard_of(s, 4) for s in UNIVERSE}
    after = {s: shard_of(s, 5) for s in UNIVERSE}
    moved = [s for s in UNIVERSE if before[s] != after[s]]
    assert all(after[s] == 4 for s in moved)
    assert 300 <= len(moved) <= 500  # about a fifth


def test_select_keeps_order_and_folds_case_and_duplicates() -> None:
    mine = Shard(0, 1).select(["eth/usdt", "BTC/USDT", "ETH/USDT"])
    assert mine == ["ETH/USDT", "BTC/USDT"]


@pytest.mark.parametrize(("text", "message"), [
    ("3/3", "0 <= index < count"), ("0/0", "count of at least 1"), ("1-3", "'i/N'"),
    ("a/b", "'i/N'"), ("", "'i/N'")])
def test_bad_shard_names_the_expected_form(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)


def test_parse_round_trips() -> None:
    assert Shard.parse(" 2/5 ") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
