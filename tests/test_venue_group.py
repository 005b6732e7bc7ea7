"""One generic group per venue shards its symbols by the venue's own limits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.data.config import StreamManagerConfig
from bot.data.venue_group import VenueGroup
from bot.data.venues.alpaca.spec import ALPACA
from bot.data.venues.binance.spec import BINANCE
from bot.data.venues.binance_usdm.spec import BINANCE_USDM
from bot.data.venues.spec import VenueSpec


class _Conn:
    """Stands in for a transport Connection: its name and the symbols it carries."""

    def __init__(self, name: str, symbols: Iterable[str]) -> None:
        self.name = name
        self.symbols = set(symbols)

    async def add(self, symbols: Iterable[str]) -> None:
        self.symbols |= set(symbols)

    async def remove(self, symbols: Iterable[str]) -> None:
        self.symbols -= set(symbols)


def _group(spec: VenueSpec, **config: Any) -> VenueGroup:
    def open_connection(name: str, factory: Any, symbols: list[str], venue: VenueSpec) -> Any:
        assert venue is spec
        return _Conn(name, symbols)

    return VenueGroup(spec, StreamManagerConfig(**config), open_connection)


def _layout(group: VenueGroup) -> list[tuple[str, int]]:
    return [(c.name, len(c.symbols)) for c in group.connections]


async def test_usdm_symbols_are_sharded_at_its_200_streams_per_connection() -> None:
    group = _group(BINANCE_USDM)
    symbols = [f"C{i}/USDT:USDT" for i in range(450)]
    group.want(symbols)
    await group.assign(symbols)
    assert _layout(group) == [("binanceusdm-0", 200), ("binanceusdm-1", 200),
                              ("binanceusdm-2", 50)]


async def test_spot_shards_by_its_configured_streams_and_channels() -> None:
    group = _group(BINANCE, binance_max_streams_per_connection=100,
                   binance_ticker_channel="bookTicker")
    symbols = [f"C{i}/USDT" for i in range(120)]
    group.want(symbols)
    await group.assign(symbols)
    assert _layout(group) == [("binance-0", 50), ("binance-1", 50), ("binance-2", 20)]


async def test_a_venue_without_a_stream_limit_carries_every_symbol_on_one_connection(
        monkeypatch: Any) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "key-for-the-test")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret-for-the-test")
    group = _group(ALPACA)
    group.want(["AAPL", "TSLA"])
    await group.assign(["AAPL", "TSLA"])
    group.want(["MSFT"])
    await group.assign(["MSFT"])
    assert _layout(group) == [("alpaca-iex", 3)]


async def test_new_symbols_fill_a_connection_with_room_before_another_opens() -> None:
    group = _group(BINANCE_USDM)
    first = [f"C{i}/USDT:USDT" for i in range(150)]
    group.want(first)
    await group.assign(first)
    more = [f"D{i}/USDT:USDT" for i in range(100)]
    group.want(more)
    await group.assign(more)
    assert _layout(group) == [("binanceusdm-0", 200), ("binanceusdm-1", 50)]


async def test_unwanted_symbols_are_unsubscribed_and_a_readded_one_stays_where_it_was() -> None:
    group = _group(BINANCE_USDM)
    group.want(["A/USDT:USDT", "B/USDT:USDT"])
    await group.assign(["A/USDT:USDT", "B/USDT:USDT"])
    conn = group.connections[0]
    group.unwant("A/USDT:USDT")
    group.unwant("B/USDT:USDT")
    group.want(["B/USDT:USDT"])  # removed and added again before the sync ran
    await group.drop_unwanted()
    assert conn.symbols == {"B/USDT:USDT"} and group.connection_of("B/USDT:USDT") is conn
