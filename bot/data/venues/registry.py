"""The venues the stream knows, by name; and which venue takes a symbol.

A new venue is one package under ``bot/data/venues/`` and one line in
:data:`VENUES`. Nothing else in the stream names a venue: it looks the venue up
here and reads its :class:`~bot.data.venues.spec.VenueSpec`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.data.config import StreamManagerConfig, symbol_list
from bot.data.errors import ConfigError
from bot.data.gate import VenueRule
from bot.data.venues.alpaca.spec import ALPACA
from bot.data.venues.binance.spec import BINANCE, BINANCE_US
from bot.data.venues.binance_usdm.spec import BINANCE_USDM
from bot.data.venues.spec import DEFAULT_FACTS, AssetClass, VenueFacts, VenueSpec

VENUES: Mapping[str, VenueSpec] = {spec.name: spec for spec in (
    BINANCE,
    BINANCE_US,
    ALPACA,
    BINANCE_USDM,
)}


def venue(name: str) -> VenueSpec:
    """The spec of venue ``name``; a ConfigError listing the known ones otherwise."""
    spec = VENUES.get(name)
    if spec is None:
        raise ConfigError("venue", name, f"allowed: {', '.join(VENUES)}")
    return spec


def facts_of(name: str) -> VenueFacts:
    """The facts of venue ``name``; a venue no spec describes gets :data:`DEFAULT_FACTS`."""
    spec = VENUES.get(name)
    return spec.facts if spec is not None else DEFAULT_FACTS


def venues_for(asset_class: AssetClass, config: StreamManagerConfig) -> list[VenueSpec]:
    """The venues ``config`` streams symbols of ``asset_class`` from, in registry order."""
    return [s for s in VENUES.values() if s.asset_class == asset_class and s.selected(config)]


def route(asset_class: AssetClass, symbol: object, config: StreamManagerConfig,
          field: str) -> tuple[VenueSpec, str]:
    """The venue that takes ``symbol`` and the symbol as its ticks carry it.

    The first venue of the class whose form fits; a ConfigError naming the
    symbol and every form allowed when none does.
    """
    candidates = venues_for(asset_class, config)
    for spec in candidates:
        if spec.accepts(symbol):
            return spec, spec.normalise(symbol, field)
    raise ConfigError(field, symbol, "; or ".join(s.symbol_form.allowed for s in candidates)
                      or f"no venue streams {asset_class} symbols")


def checked_symbols(asset_class: AssetClass, symbols: Iterable[str],
                    config: StreamManagerConfig, field: str) -> list[str]:
    """``symbols`` as their venues' ticks carry them, every one checked before any is returned."""
    return symbol_list(symbols, field, lambda s, f: route(asset_class, s, config, f)[1])


def gate_rules() -> dict[str, VenueRule]:
    """Every venue's own tick rule, by venue name (for the tick gate)."""
    return {name: spec.gate_rule for name, spec in VENUES.items() if spec.gate_rule is not None}
