"""Exponential backoff with full jitter, shared by reconnects and task restarts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between ``base`` and ``cap`` seconds.

    Attempt ``n`` (from 1) waits ``uniform(base, min(cap, base * 2**(n-1)))``, so
    many clients failing together spread out instead of retrying in step.
    """

    base: float
    cap: float

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        upper = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return self.base + (upper - self.base) * rng()
