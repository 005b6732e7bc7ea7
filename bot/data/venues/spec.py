"""``VenueSpec``: everything the rest of the stream knows about one venue.

A venue package (``bot/data/venues/<name>/``) describes itself with one
:class:`VenueSpec`: its name, the symbols it takes, its :class:`VenueFacts`
(how its trades and bars behave, its connection limits) and factories for its
sans-I/O session, its REST client and its trade and bar history. The
transport, the aggregator, recovery, the store, replay, NATS and the CLI read
these and name no venue; :mod:`bot.data.venues.registry` maps names to specs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.data.config import StreamManagerConfig, SymbolForm
from bot.data.gate import VenueRule

if TYPE_CHECKING:
    from bot.data.listing import Listing
    from bot.data.venues.history import RestClient, TradeHistory
    from bot.data.venues.protocol import VenueSession

AssetClass = Literal["crypto", "stock"]

@dataclass(frozen=True)
class VenueFacts:
    """How a venue's trades, bars and connections behave.

    ``sequenced``: trade ids are consecutive per symbol, so a jump is a gap and
    trades of one instant are ordered by id (else by arrival). ``empty_bars``:
    the venue's bars cover intervals without trades. ``sides_inferred``: trades
    carry no taker side; the tick rule gives it, so their order matters.
    ``max_streams_per_connection``: streams one connection may carry (None: one
    connection carries every symbol). ``control_interval_s``: least time between
    two control messages on one connection. ``connection_lifetime_s``: the venue
    closes a connection after about this long, so it is replaced before.
    ``authenticated``: the stream needs credentials.
    """

    sequenced: bool = True
    empty_bars: bool = True
    sides_inferred: bool = False
    max_streams_per_connection: int | None = None
    control_interval_s: float = 0.0
    connection_lifetime_s: float | None = None
    authenticated: bool = False


DEFAULT_FACTS = VenueFacts()
"""The facts of a venue no spec describes (a test's or a recording's): sequenced, empty bars."""


class VenueSpec(abc.ABC):
    """One venue: name, symbol form, facts, and how to open its session, REST and history."""

    name: str
    asset_class: AssetClass
    symbol_form: SymbolForm
    facts: VenueFacts
    gate_rule: VenueRule | None = None

    def selected(self, config: StreamManagerConfig) -> bool:
        """Whether ``config`` streams this venue's symbols (one of several alike may be chosen)."""
        return self.unselected_because(config) is None

    def unselected_because(self, config: StreamManagerConfig) -> str | None:
        """Why ``config`` does not stream this venue (the setting that chooses another), or None."""
        return None

    def select(self, config: StreamManagerConfig) -> StreamManagerConfig:
        """``config`` changed to stream this venue where it chooses between venues alike."""
        return config

    def normalise(self, symbol: object, field: str = "symbol") -> str:
        """The symbol as this venue's ticks carry it; a ConfigError naming it if it is not one."""
        return self.symbol_form.normalise(symbol, field)

    def accepts(self, symbol: object) -> bool:
        """True when ``symbol`` has this venue's form."""
        return (isinstance(symbol, str) and len(symbol) <= self.symbol_form.max_length
                and self.symbol_form.pattern.fullmatch(symbol) is not None)

    def symbols_per_connection(self, config: StreamManagerConfig) -> int | None:
        """Symbols one connection carries at most (None: one connection for all)."""
        return self.facts.max_streams_per_connection

    def connection_name(self, config: StreamManagerConfig, index: int) -> str:
        """The name of this venue's ``index``-th connection (health, metrics, logs)."""
        return f"{self.name}-{index}"

    def credentials(self) -> Any:
        """The venue's credentials, loaded once per manager (None when it needs none)."""
        return None

    def market_open(self, now_ns: int) -> bool:
        """True while the venue's market trades (a symbol is expected to trade only then)."""
        return True

    def listing_url(self, config: StreamManagerConfig) -> str | None:
        """The base URL whose listing this venue's symbols are checked against before they
        stream (with the venue's name, the listing cache's key), or None when the venue
        offers no listing to check against."""
        return None

    async def listing(self, rest: Any) -> Listing:
        """The venue's listing, asked over ``rest`` (one of :meth:`rest`'s clients); called
        only when :meth:`listing_url` is not None."""
        raise NotImplementedError(f"{self.name} offers no listing")

    @abc.abstractmethod
    def session(self, config: StreamManagerConfig, credentials: Any,
                symbols: Iterable[str]) -> VenueSession:
        """A sans-I/O session carrying ``symbols``."""

    @abc.abstractmethod
    def rest(self, config: StreamManagerConfig, credentials: Any, clock: Callable[[], int],
             limiter: Any = None) -> RestClient:
        """A REST client stamping receive times by ``clock``; ``limiter`` (budget used, bans)
        carries over from a previous one."""

    @abc.abstractmethod
    def history(self, config: StreamManagerConfig, rest: Any) -> TradeHistory:
        """The trade and bar history recovery and warm-up read, over ``rest``."""

    def __repr__(self) -> str:
        return f"<venue {self.name}>"
