"""When a stale symbol may be resubscribed: never in a storm.

Resubscribing a symbol whose stream went quiet costs two control messages on
its connection (and, on a venue without trade sequence, a REST fill). Done for
every stale symbol at every health check, a market-wide lull or a slow start
turns into a flood that the exchange answers by closing the connection, which
makes every symbol stale again. :class:`ResubscribePolicy` allows a symbol's
first resubscription once it is stale, and each later one only after a
cooldown that starts at the stale threshold (the time a resubscription needs
to show whether it brought a trade) and doubles up to
:data:`MAX_COOLDOWN_S`; a trade heard after a resubscription resets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_COOLDOWN_S = 600.0


@dataclass
class _Attempt:
    at_ns: int  # when the last resubscription was sent
    count: int


class ResubscribePolicy:
    """Decides which stale symbols are due for a resubscription (see the module docstring)."""

    def __init__(self, first_cooldown_s: float, max_cooldown_s: float = MAX_COOLDOWN_S,
                 ) -> None:
        self.first_cooldown_s = first_cooldown_s
        self.max_cooldown_s = max(max_cooldown_s, first_cooldown_s)
        self._attempts: dict[str, _Attempt] = {}

    def cooldown_s(self, count: int) -> float:
        """How long after its ``count``-th resubscription a symbol must wait for the next."""
        return min(self.first_cooldown_s * 2 ** max(count - 1, 0), self.max_cooldown_s)

    def due(self, stale: Iterable[str], now_ns: int, last_heard_ns: Mapping[str, int],
            ) -> list[str]:
        """The stale symbols to resubscribe now; records the attempt for each.

        ``last_heard_ns``: receive time of each symbol's last streamed trade; a
        trade after the last resubscription starts the symbol's count afresh.
        """
        out = []
        for symbol in stale:
            attempt = self._attempts.get(symbol)
            if attempt is not None and last_heard_ns.get(symbol, -1) > attempt.at_ns:
                attempt = None  # it traded since: this is a new silence
            if attempt is not None and (now_ns - attempt.at_ns) / 1e9 < self.cooldown_s(
                    attempt.count):
                continue
            count = 1 if attempt is None else attempt.count + 1
            self._attempts[symbol] = _Attempt(now_ns, count)
            out.append(symbol)
        return out

    def forget(self, symbol: str) -> None:
        self._attempts.pop(symbol, None)

    def clear(self) -> None:
        self._attempts.clear()

