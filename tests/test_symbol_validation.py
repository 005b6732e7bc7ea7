"""Symbols are checked against the venue's form before anything is sent.

A symbol with a space, a control character or a URL-special character used to go
raw into Binance's combined-stream URL and break the connection of every other
symbol on it. The venue's form is checked when a symbol is added (before start and
at runtime), all of a list before any of it is taken, with a ``ConfigError`` naming
the symbol and the form allowed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError
from bot.data.models import Tick
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager, create_default_trading_stream
from bot.data.venues.alpaca import session as alpaca
from bot.data.venues.binance.session import BinanceSession, to_raw_symbol
from tests.streaming import fast_config, point_at, wait_for

# Binance's own legal range for a symbol (its error -1100), and stream names as its
# documentation spells them: the symbol in lower case, '@', the channel.
BINANCE_LEGAL_SYMBOL = re.compile(r"[A-Z0-9\-_.]{1,20}")
STREAM_NAME = re.compile(r"[a-z0-9]+@(trade|aggTrade|bookTicker|ticker)")

BAD_PAIRS = [
    "BTCUSDT", "", "/", "BTC/", "/USDT", "BTC/USDT ", " BTC/USDT", "BTC/USDT\n", "BTC\t/USDT",
    "BTC//USDT", "BTC/USDT/X", "BTC/US DT", "BTC/USDT&x=1", "ETH/USDT&timeUnit=MICROSECOND",
    "BTC/USDT#frag", "BTC/USDT?", "BTC%2F/USDT", "BTC/USDT@trade", "BTC-/USDT", "BTC.X/USDT",
    "ÄÖ/USDT", "../../x/y", "\x00BTC/USDT", "BTC/USDT\x7f", "\u017f/USDT", "\u212a/USDT",
    "\uff22TC/USDT", "\u0663/USDT", "A" * 10 + "/" + "B" * 11, "A" * 30 + "/USDT",
]
BAD_TICKERS = ["AAPL ", " AAPL", "AA PL", "A/B", "...", ".B", "BRK.", "BRK..B", "ÄPFEL",
               "AAPL\t", "AAPL,MSFT", '"AAPL"', "AAPL\"]", "*", "AAPL*", "A" * 11,
               "BRK.B.C.D", "\u212aO"]


@pytest.mark.parametrize(("symbol", "raw"), [
    ("BTC/USDT", "BTCUSDT"), ("btc/usdt", "BTCUSDT"), ("1000SATS/USDT", "1000SATSUSDT"),
    ("A/B", "AB"), ("A" * 10 + "/" + "B" * 10, "A" * 10 + "B" * 10),
])
def test_binance_pairs_become_binance_symbols(symbol: str, raw: str) -> None:
    assert to_raw_symbol(symbol) == raw
    assert BINANCE_LEGAL_SYMBOL.fullmatch(raw)


@pytest.mark.parametrize("symbol", BAD_PAIRS)
def test_malformed_binance_pair_is_refused_naming_it_and_the_form(symbol: str) -> None:
    with pytest.raises(ConfigError) as err:
        to_raw_symbol(symbol, "crypto_symbols")
    assert err.value.field == "crypto_symbols" and err.value.value == symbol
    assert f"crypto_symbols={symbol!r} is invalid: must look like 'BASE/QUOTE'" in str(err.value)


@given(st.text(st.characters(codec="utf-8"), max_size=25)
       | st.from_regex(r"[A-Za-z0-9]{1,12}/[A-Za-z0-9]{1,12}", fullmatch=True))
def test_any_accepted_pair_makes_a_legal_symbol_and_stream_name(text: str) -> None:
    try:
        raw = to_raw_symbol(text)
    except ConfigError:
        return
    assert BINANCE_LEGAL_SYMBOL.fullmatch(raw) and "/" in text
    session = BinanceSession(StreamManagerConfig(binance_ws_url="wss://h"), [text])
    query = session.url().removeprefix("wss://h/stream?streams=")
    assert all(STREAM_NAME.fullmatch(name) for name in query.split("/"))


@pytest.mark.parametrize(("symbol", "normal"), [
    ("AAPL", "AAPL"), ("brk.b", "BRK.B"), ("BF.B", "BF.B"), ("A", "A"), ("XYZ.WS.A", "XYZ.WS.A"),
])
def test_alpaca_stock_tickers_are_accepted_in_upper_case(symbol: str, normal: str) -> None:
    assert alpaca.alpaca_symbol(symbol, crypto=False) == normal


@pytest.mark.parametrize("symbol", BAD_TICKERS)
def test_malformed_stock_ticker_is_refused_naming_it_and_the_form(symbol: str) -> None:
    manager = StreamManager()
    with pytest.raises(ConfigError) as err:
        manager.add_stock_symbols(["AAPL", symbol])
    assert err.value.field == "stock_symbols" and err.value.value == symbol
    assert "stock tickers without '/', e.g. 'TSLA' or 'BRK.B'" in str(err.value)
    assert manager.symbols == []


def test_alpaca_crypto_pairs_take_the_pair_form() -> None:
    assert alpaca.alpaca_symbol("btc/usd", crypto=True) == "BTC/USD"
    for bad in ("BTCUSD", "BTC/USD ", "BTC/US D", "*"):
        with pytest.raises(ConfigError, match="crypto pairs"):
            alpaca.alpaca_symbol(bad, crypto=True)


@pytest.mark.parametrize(("symbols", "message"), [
    (None, "a list of symbols"), (123, "a list of symbols"),
    ("BTC/USDT", "not one string"), (b"BTC/USDT", "not one string"),
    ([None], "each symbol must be a non-empty string"),
    ([123], "each symbol must be a non-empty string"),
    ([""], "each symbol must be a non-empty string"),
])
def test_symbols_must_be_a_list_of_strings(symbols: Any, message: str) -> None:
    manager = StreamManager()
    with pytest.raises(ConfigError, match=message) as err:
        manager.add_crypto_symbols(symbols)
    assert err.value.field == "crypto_symbols"
    with pytest.raises(ConfigError, match=message):
        manager.add_stock_symbols(symbols)


def test_a_list_with_one_bad_symbol_adds_none_of_it() -> None:
    manager = StreamManager()
    manager.add_crypto_symbols(["SOL/USDT"])
    universe = ["BTC/USDT", "ETH/USDT"] + [f"X{i}/USDT" for i in range(10_000)]
    with pytest.raises(ConfigError, match=r"'X9999/USDT '"):
        manager.add_crypto_symbols([*universe[:-1], "X9999/USDT "])
    assert manager.symbols == ["SOL/USDT"]
    manager.add_crypto_symbols([*universe, "btc/usdt"])
    assert len(manager.symbols) == 10_003


def test_default_trading_stream_refuses_bad_symbols_at_construction() -> None:
    with pytest.raises(ConfigError, match="crypto_symbols='BTC USDT'"):
        create_default_trading_stream(["BTC USDT"])
    with pytest.raises(ConfigError, match=r"stock_symbols='\*'"):
        create_default_trading_stream(stock_symbols=["*"])


async def test_bad_symbol_added_at_runtime_never_reaches_the_exchange(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=5, speed=20.0,
                                 history_seconds=60) as sim:
        point_at(sim, monkeypatch)
        manager = StreamManager(fast_config())
        with pytest.raises(ConfigError, match=r"'ETH/USDT '"):
            manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT "])  # the repro's 'space' case
        assert manager.symbols == []
        manager.add_crypto_symbols(["BTC/USDT"])
        ticks: dict[str, list[Tick]] = defaultdict(list)
        manager.on_tick(lambda e: ticks[e.data.symbol].append(e.data))
        await manager.start()
        try:
            await wait_for(lambda: len(ticks["BTC/USDT"]) >= 5)
            accepted = sim.counters.connections_accepted
            for bad in (["ETH/USDT&timeUnit=MICROSECOND"], ["ÄÖ/USDT"], ["ETH/US DT"]):
                with pytest.raises(ConfigError):
                    manager.add_crypto_symbols(bad)
            seen = len(ticks["BTC/USDT"])
            await wait_for(lambda: len(ticks["BTC/USDT"]) >= seen + 20)
            assert [set(s.streams) for s in sim.binance_streams.sessions] == [{"btcusdt@trade"}]
            assert sim.counters.connections_accepted == accepted
            assert all(c.stats.reconnects == 0 for c in manager._connections)
            assert manager.get_health()["status"] == "healthy"
        finally:
            await manager.stop()
    assert manager.symbols == ["BTC/USDT"]


def test_binance_session_takes_all_of_a_subscription_or_none() -> None:
    session = BinanceSession(StreamManagerConfig(binance_ws_url="wss://h"), ["BTC/USDT"])
    with pytest.raises(ConfigError, match="'ETH/USDT&x'"):
        session.subscribe(["SOL/USDT", "ETH/USDT&x"])
    assert session.symbols == {"BTC/USDT"}
    assert session.url() == "wss://h/stream?streams=btcusdt@trade"
