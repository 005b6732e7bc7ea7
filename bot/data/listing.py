"""What a venue lists: every symbol is checked against it before it streams.

A typo (``BTC/USDTT``), a pair split in the wrong place (``BTCU/SDT``, the same
raw ``BTCUSDT``) or a halted pair would otherwise be subscribed without a word:
the venue sends nothing for it and the stream looks merely quiet. So a
:class:`StreamManager` checks its symbols against the venue's own list before
anything streams: at ``start()`` and at every runtime ``add_*_symbols()``.

A :class:`Listing` is one venue's answer (Binance ``GET /api/v3/exchangeInfo``):
every symbol it lists, in the unified ``BASE/QUOTE`` form, with its status. It
is kept per venue and base URL for :data:`LISTING_TTL_S` seconds in this
process (:class:`ListingCache`), so starting several managers, or adding
symbols at runtime, costs no further request while it is fresh; Binance lists
and delists pairs with days of notice.

A symbol the venue does not list, or lists with a status other than trading,
raises :class:`UnlistedSymbolError`: a :class:`~bot.data.errors.ConfigError`
naming each such symbol, why, and the closest listed ones ("did you mean
'BTC/USDT'?").
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from bot.data.errors import ConfigError

# Binance lists and delists pairs with days of notice: a listing ten minutes old is current.
LISTING_TTL_S = 600.0
# How long asking for a listing may take, retries included. A REST host that accepts
# connections but never answers would otherwise hold start() for the retries' sum
# (30 s a request, 6 requests: about 3 minutes).
LISTING_DEADLINE_S = 30.0
SUGGESTIONS = 3
# How alike (difflib ratio) a listed symbol must be to be suggested: BTC/USDT for
# BTC/USDTT (0.94), not ETH/USDT (0.71).
SIMILARITY = 0.8


@dataclass(frozen=True)
class Listing:
    """The symbols a venue lists (unified form) and each one's status on it.

    ``trading`` is the status meaning "trades now" (Binance ``TRADING``);
    ``venue_time_ns``/``local_time_ns``: the venue's clock as it answered and the
    asking manager's clock when the answer arrived (None when the venue sent no
    time); only that manager takes the venue's clock from them.
    """

    venue: str
    status: Mapping[str, str]
    trading: str
    venue_time_ns: int | None = None
    local_time_ns: int | None = None

    def problems(self, symbols: Iterable[str]) -> dict[str, str]:
        """Each of ``symbols`` that cannot stream, with the reason (empty when all can)."""
        out: dict[str, str] = {}
        for symbol in symbols:
            status = self.status.get(symbol)
            if status is None:
                out[symbol] = f"{self.venue} does not list it{self._suggest(symbol)}"
            elif status != self.trading:
                out[symbol] = (f"{self.venue} lists it with status {status}, not {self.trading}"
                               f"{self._suggest(symbol)}")
        return out

    def _suggest(self, symbol: str) -> str:
        """``"; did you mean 'BTC/USDT'?"`` with the closest trading symbols, or ``""``."""
        candidates = [s for s, st in self.status.items() if st == self.trading and s != symbol]
        close = difflib.get_close_matches(symbol, candidates, n=SUGGESTIONS, cutoff=SIMILARITY)
        if not close:
            return ""
        return f"; did you mean {' or '.join(map(repr, close))}?"


class UnlistedSymbolError(ConfigError):
    """Symbols the venue does not list, or lists but not trading; ``reasons`` maps each to why."""

    def __init__(self, field: str, reasons: Mapping[str, str]) -> None:
        self.reasons = dict(reasons)
        symbols = list(self.reasons)
        value: object = symbols[0] if len(symbols) == 1 else symbols
        detail = "; ".join(f"{s!r}: {why}" if len(symbols) > 1 else why
                           for s, why in self.reasons.items())
        super().__init__(field, value, detail)

    @property
    def symbols(self) -> list[str]:
        return list(self.reasons)


class ListingCache:
    """Listings per (venue, base URL), each fresh for ``ttl_s`` seconds of ``monotonic``."""

    def __init__(self, ttl_s: float = LISTING_TTL_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._listings: dict[tuple[str, str], tuple[float, Listing]] = {}

    def get(self, venue: str, base_url: str) -> Listing | None:
        """The listing fetched less than ``ttl_s`` ago, else None."""
        entry = self._listings.get((venue, base_url))
        if entry is None or self._monotonic() - entry[0] >= self.ttl_s:
            return None
        return entry[1]

    def put(self, base_url: str, listing: Listing) -> None:
        self._listings[(listing.venue, base_url)] = (self._monotonic(), listing)

    def clear(self) -> None:
        self._listings.clear()


#: The listings of this process, shared by every manager.
LISTINGS = ListingCache()
