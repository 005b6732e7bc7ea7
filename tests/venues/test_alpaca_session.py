"""AlpacaSession: handshake, errors, trades (stock and crypto), credentials and secrets."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pandas as pd
import pytest

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError, ExchangeError, MalformedFrame, MissingCredentialsError
from bot.data.models import UPDATES_ALL, UPDATES_VOLUME, Side, Tick
from bot.data.venues.alpaca.conditions import updates_for
from bot.data.venues.alpaca.session import (
    ERROR_CODES,
    AlpacaCredentials,
    AlpacaSession,
    split_stock_trade_id,
    stock_trade_id,
)
from bot.data.venues.protocol import Ready, Received, SubscriptionResult, VenueSession
from tests.helpers import DATA

SAMPLES = DATA / "alpaca" / "samples"
KEY, SECRET = "PKTESTKEY123", "sEcReT-ValUe-987"
CREDS = AlpacaCredentials(KEY, SECRET)
CONNECTED = '[{"T":"success","msg":"connected"}]'
AUTHENTICATED = '[{"T":"success","msg":"authenticated"}]'
# The stock trade example of Alpaca's stream documentation.
DOC_TRADE = {"T": "t", "i": 96921, "S": "AAPL", "x": "D", "p": 126.55, "s": 1,
             "t": "2021-02-22T15:51:44.208Z", "c": ["@", "I"], "z": "C"}
# The crypto (v1beta3) trade example of Alpaca's documentation.
CRYPTO_TRADE = {"T": "t", "S": "AVAX/USD", "p": 47.299, "s": 29.205707815,
                "t": "2024-03-12T10:27:48.858228144Z", "i": 3447222699101865076, "tks": "S"}


def session(*symbols: str, crypto: bool = False, **config: Any) -> AlpacaSession:
    return AlpacaSession(StreamManagerConfig(**config), CREDS, symbols, crypto=crypto)


def ready_session(*symbols: str, crypto: bool = False) -> AlpacaSession:
    s = session(*symbols, crypto=crypto)
    s.url()
    s.receive(CONNECTED, 0)
    s.receive(AUTHENTICATED, 0)
    s.receive(json.dumps([{"T": "subscription", "trades": list(symbols)}]), 0)
    assert s.ready
    return s


def frame(*messages: dict[str, Any]) -> bytes:
    return json.dumps(list(messages)).encode()


def test_alpaca_session_satisfies_the_venue_session_protocol() -> None:
    assert isinstance(session(), VenueSession)


@pytest.mark.parametrize(("feed", "crypto", "url"), [
    ("iex", False, "wss://stream.data.alpaca.markets/v2/iex"),
    ("sip", False, "wss://stream.data.alpaca.markets/v2/sip"),
    ("delayed_sip", False, "wss://stream.data.alpaca.markets/v2/delayed_sip"),
    ("test", False, "wss://stream.data.alpaca.markets/v2/test"),
    ("iex", True, "wss://stream.data.alpaca.markets/v1beta3/crypto/us"),
])
def test_url_follows_feed_and_asset_class(feed: str, crypto: bool, url: str) -> None:
    assert session(crypto=crypto, alpaca_feed=feed).url() == url


def test_sandbox_base_url_from_config() -> None:
    s = session(alpaca_ws_url="wss://stream.data.sandbox.alpaca.markets")
    assert s.url() == "wss://stream.data.sandbox.alpaca.markets/v2/iex"


def test_handshake_step_by_step() -> None:
    s = session("FAKEPACA", alpaca_feed="test")
    s.url()
    assert s.on_open() == []  # the client waits for the server's greeting
    assert not s.ready

    out = s.receive(CONNECTED, 0)
    assert (out.ticks, out.events) == ([], [])
    (auth,) = out.send
    assert json.loads(auth.encode()) == {"action": "auth", "key": KEY, "secret": SECRET}
    assert not s.ready

    out = s.receive(AUTHENTICATED, 0)
    assert [json.loads(m) for m in out.send] == [{"action": "subscribe", "trades": ["FAKEPACA"]}]
    assert out.events == [] and not s.ready

    out = s.receive('[{"T":"subscription","trades":["FAKEPACA"],"quotes":[],"bars":[],'
                    '"updatedBars":[],"dailyBars":[],"statuses":[],"lulds":[],'
                    '"corrections":["FAKEPACA"],"cancelErrors":["FAKEPACA"]}]', 0)
    assert out == Received(events=[SubscriptionResult(None, True, symbols=("FAKEPACA",)),
                                   Ready()])
    assert s.ready


def test_handshake_without_symbols_is_ready_after_authentication() -> None:
    s = session()
    s.url()
    s.receive(CONNECTED, 0)
    assert s.receive(AUTHENTICATED, 0) == Received(events=[Ready()])
    assert s.ready


def test_reconnect_starts_the_handshake_over_with_every_symbol() -> None:
    s = ready_session("AAPL")
    s.subscribe(["TSLA"])
    s.url()
    assert not s.ready
    s.receive(CONNECTED, 0)
    out = s.receive(AUTHENTICATED, 0)
    assert [json.loads(m) for m in out.send] == [{"action": "subscribe",
                                                  "trades": ["AAPL", "TSLA"]}]


def test_subscribe_before_authentication_waits_for_the_handshake() -> None:
    s = session("AAPL")
    s.url()
    assert s.subscribe(["TSLA"]) == []
    s.receive(CONNECTED, 0)
    assert s.unsubscribe(["AAPL"]) == []
    out = s.receive(AUTHENTICATED, 0)
    assert [json.loads(m) for m in out.send] == [{"action": "subscribe", "trades": ["TSLA"]}]


def test_subscribe_and_unsubscribe_messages_once_ready() -> None:
    s = ready_session("AAPL")
    assert [json.loads(m) for m in s.subscribe(["voo", "AAPL"])] == [
        {"action": "subscribe", "trades": ["VOO"]}]
    assert [json.loads(m) for m in s.unsubscribe(["VOO", "IBM"])] == [
        {"action": "unsubscribe", "trades": ["VOO"]}]
    assert s.subscribe(["AAPL"]) == [] and s.unsubscribe(["IBM"]) == []
    assert s.symbols == {"AAPL"}


def test_symbols_must_fit_the_stream() -> None:
    with pytest.raises(ConfigError, match="stock tickers"):
        session("BTC/USD")
    with pytest.raises(ConfigError, match="crypto pairs"):
        session("TSLA", crypto=True)


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_error_code_becomes_a_typed_exchange_error(code: int) -> None:
    text = ERROR_CODES[code]
    out = session().receive(frame({"T": "error", "code": code, "msg": text}), 0)
    (error,) = out.events
    assert isinstance(error, ExchangeError)
    assert (error.venue, error.code, error.text) == ("alpaca", code, text)
    assert error.fatal is (code in {402, 405, 408, 409, 410, 411})
    assert str(code) in str(error) and text in str(error)


def test_documented_stock_trade_example_decodes_field_by_field() -> None:
    s = ready_session("AAPL")
    (tick,) = s.receive(frame(DOC_TRADE), 77).ticks
    assert tick == Tick("alpaca", "AAPL", 126.55, 1.0, Side.UNKNOWN, stock_trade_id("D", 96921),
                        pd.Timestamp("2021-02-22T15:51:44.208Z").value, 77, ("@", "I"), "D",
                        UPDATES_VOLUME)


def test_alpaca_py_trade_fixture_decodes_field_by_field() -> None:
    sample = json.loads((SAMPLES / "alpaca-py_test_websockets_message_dicts.json").read_text())
    trade = dict(sample["trade"], t="1970-01-01T00:00:10.00000001Z")  # Timestamp(10 s, 10 ns)
    (tick,) = ready_session("AAPL").receive(frame(trade), 0).ticks
    assert (tick.symbol, tick.price, tick.volume, tick.exchange, tick.conditions) == (
        "AAPL", 177.79, 90.0, "V", ("@", "I"))
    assert tick.timestamp == 10_000_000_010
    assert split_stock_trade_id(tick.trade_id) == ("V", 6142)


def test_real_trade_page_decodes_with_tick_rule_sides_and_unique_ids() -> None:
    with gzip.open(SAMPLES / "alpaca-trade-api-go_marketdata_testdata_trades.json.gz") as fh:
        trades = json.load(fh)["trades"]["AAPL"]
    messages = [dict(t, T="t", S="AAPL") for t in trades]
    ticks = ready_session("AAPL").receive(frame(*messages), 0).ticks
    assert [t.price for t in ticks] == [t["p"] for t in trades]
    assert [t.volume for t in ticks] == [t["s"] for t in trades]
    assert [t.timestamp for t in ticks] == [pd.Timestamp(t["t"]).value for t in trades]
    assert [t.conditions for t in ticks] == [tuple(t["c"]) for t in trades]
    assert [t.updates for t in ticks] == [updates_for(tuple(t["c"])) for t in trades]
    # 140.2 -> 140.1 (down) -> 140.1 (zero: keeps sell) -> 140.0 (down) -> 140.0 (zero)
    assert [t.side for t in ticks] == [Side.UNKNOWN, Side.SELL, Side.SELL, Side.SELL, Side.SELL]
    assert [split_stock_trade_id(t.trade_id) for t in ticks] == [("P", i) for i in range(1, 6)]


def test_same_trade_id_on_two_exchanges_gives_two_tick_ids() -> None:
    a = dict(DOC_TRADE, x="D")
    b = dict(DOC_TRADE, x="V")
    ticks = ready_session("AAPL").receive(frame(a, b), 0).ticks
    assert ticks[0].trade_id != ticks[1].trade_id
    assert all(0 < t.trade_id < 2**63 for t in ticks)


def test_crypto_trade_takes_its_side_from_the_taker_field() -> None:
    s = ready_session("AVAX/USD", crypto=True)
    sell, buy, unknown = s.receive(frame(CRYPTO_TRADE, dict(CRYPTO_TRADE, tks="B"),
                                         {k: v for k, v in CRYPTO_TRADE.items() if k != "tks"}),
                                   1).ticks
    assert sell == Tick("alpaca", "AVAX/USD", 47.299, 29.205707815, Side.SELL,
                        3447222699101865076, 1710239268858228144, 1, (), "", UPDATES_ALL)
    assert (buy.side, unknown.side) == (Side.BUY, Side.UNKNOWN)


def test_messages_the_session_does_not_handle_are_skipped() -> None:
    sample = json.loads((SAMPLES / "alpaca-py_test_websockets_message_dicts.json").read_text())
    others = [dict(sample[k], t="2021-02-22T15:51:44.208Z") for k in
              ("bar", "quote", "trading_status", "trade_cancel")]
    out = ready_session("AAPL").receive(frame(*others, DOC_TRADE), 0)
    assert len(out.ticks) == 1 and out.events == [] and out.send == []


@pytest.mark.parametrize("data", [b"", b"{", b'{"T":"t"}', b"[1", b'"text"'])
def test_frames_that_are_no_message_array_raise_malformed_frame(data: bytes) -> None:
    with pytest.raises(MalformedFrame):
        ready_session("AAPL").receive(data, 0)


@pytest.mark.parametrize("message", [
    1, {"S": "AAPL"},
    dict(DOC_TRADE, p="126.55"),
    {k: v for k, v in DOC_TRADE.items() if k != "t"},
    dict(DOC_TRADE, t="2021-02-22 15:51:44Z"),
    {k: v for k, v in DOC_TRADE.items() if k != "x"},
    {"T": "error", "msg": "no code"},
])
def test_a_malformed_message_is_reported_and_skipped(message: object) -> None:
    out = ready_session("AAPL").receive(json.dumps([message]), 0)
    assert out.ticks == [] and out.events == []
    assert [type(bad) for bad in out.malformed] == [MalformedFrame]


def test_credentials_read_from_either_pair_of_environment_variables() -> None:
    assert AlpacaCredentials.from_env({"ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}) == (
        AlpacaCredentials("k", "s"))
    assert AlpacaCredentials.from_env({"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"}) == (
        AlpacaCredentials("k", "s"))


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(MissingCredentialsError) as info:
        AlpacaCredentials.from_env({"ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "  "})
    message = str(info.value)
    assert "ALPACA_SECRET_KEY or APCA_API_SECRET_KEY" in message
    assert "ALPACA_API_KEY" not in message
    with pytest.raises(MissingCredentialsError, match="ALPACA_API_KEY or APCA_API_KEY_ID"):
        AlpacaCredentials.from_env({})


def test_secrets_appear_in_no_repr_or_str() -> None:
    s = session("AAPL")
    s.url()
    out = s.receive(CONNECTED, 0)
    error = session().receive(frame({"T": "error", "code": 402, "msg": "auth failed"}), 0)
    objects: list[object] = [CREDS, s, out, out.send, out.send[0], error, error.events[0]]
    for obj in objects:
        logged = "%s" % (obj,)  # noqa: UP031 - the way logging formats its arguments
        for shown in (repr(obj), str(obj), f"{obj}", logged):
            assert KEY not in shown and SECRET not in shown, shown
    assert SECRET in out.send[0].encode().decode()  # what goes on the wire is intact
