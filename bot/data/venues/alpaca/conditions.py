"""Which bar fields an Alpaca stock trade may update, from its sale conditions.

Alpaca builds minute bars from trades filtered per field by condition code
(its "Stock Minute Bars" article; tests/data/alpaca/docs has the text). The
sets below combine, in this order of authority:

1. Alpaca's official exclusion list (staff answer in Alpaca's forum, "the full
   list of conditions which would exclude a trade from being included in a
   bar"): B, W, 4, 7, 9, C, G, H, I, M, N, P, Q, R, T. The staff text says
   such trades "aren't included in bar prices", so these exclude a trade from
   open/close and high/low. The stored copy of the list is cut off after T.
2. Where that list is silent, a user's published per-field sets that
   reproduced Alpaca's bars exactly (UTP specification, page 43):
   - volume: B says nothing about volume (and Alpaca's article says volume
     "includes almost all trades"), so volume excludes only M, Q and 9, the
     informational official open/close and corrected-close reports, which
     repeat volume already counted;
   - prices: conditions past the cut-off of list 1 that the per-field sets
     exclude: U and V from all prices, Z (sold out of sequence) from open/close.

Every other condition (``@`` regular sale, ``F`` intermarket sweep, ``O``
opening print, ``6`` closing print, ...) updates every field. A trade whose
conditions exclude it from a field never updates that field; several
conditions combine by excluding the union.
"""

from __future__ import annotations

from functools import lru_cache

from bot.data.models import UPDATES_ALL, UPDATES_HIGH_LOW, UPDATES_OPEN_CLOSE, UPDATES_VOLUME

OFFICIAL_PRICE_EXCLUSIONS = frozenset("BW479CGHIMNPQRT")
EXCLUDED_FROM_HIGH_LOW = OFFICIAL_PRICE_EXCLUSIONS | {"U", "V"}
EXCLUDED_FROM_OPEN_CLOSE = OFFICIAL_PRICE_EXCLUSIONS | {"U", "V", "Z"}
EXCLUDED_FROM_VOLUME = frozenset({"M", "Q", "9"})


def _mask(condition: str) -> int:
    """The fields one condition leaves a trade allowed to update."""
    mask = UPDATES_ALL
    if condition in EXCLUDED_FROM_HIGH_LOW:
        mask &= ~UPDATES_HIGH_LOW
    if condition in EXCLUDED_FROM_OPEN_CLOSE:
        mask &= ~UPDATES_OPEN_CLOSE
    if condition in EXCLUDED_FROM_VOLUME:
        mask &= ~UPDATES_VOLUME
    return mask


@lru_cache(maxsize=1024)
def updates_for(conditions: tuple[str, ...]) -> int:
    """``Tick.updates`` bitmask for a trade with these condition codes (cached per set)."""
    mask = UPDATES_ALL
    for condition in conditions:
        mask &= _mask(condition)
    return mask
