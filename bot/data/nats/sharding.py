"""Deterministic split of a symbol universe among N ingest workers.

Rendezvous (highest-random-weight) hashing: a symbol belongs to the shard
whose hash of ``"SYMBOL|shard"`` is highest. The hash is BLAKE2b, so every
process on every machine agrees (Python's ``hash`` of a str is salted per
process and would not). Growing from N to N+1 shards moves only the symbols
the new shard wins, about 1/(N+1) of them, instead of nearly all of them as a
``hash % N`` split would.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

_SHARD = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need a count of at least 1 and "
                             f"0 <= index < count, e.g. '0/3', '1/3', '2/3'")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"1/3"`` -> ``Shard(1, 3)``; ValueError saying the expected form otherwise."""
        match = _SHARD.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"shard {text!r} must look like 'i/N' (index i of N shards, "
                             "counting from 0), e.g. '0/3'")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, symbol: str) -> bool:
        return shard_of(symbol, self.count) == self.index

    def select(self, symbols: Iterable[str]) -> list[str]:
        """The symbols of this shard, in the given order (duplicates and case folded)."""
        return [s for s in dict.fromkeys(s.upper() for s in symbols) if self.owns(s)]


def _weight(symbol: str, shard: int) -> int:
    digest = hashlib.blake2b(f"{symbol}|{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def shard_of(symbol: str, count: int) -> int:
    """The shard (0..count-1) that owns ``symbol`` (case-insensitive)."""
    if count < 1:
        raise ValueError(f"shard count {count!r} must be at least 1")
    key = symbol.upper()
    return max(range(count), key=lambda shard: _weight(key, shard))
