"""BinanceSession: URLs, (un)subscriptions and their replies, control frames, bad frames."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.errors import ConfigError, ExchangeError, MalformedFrame
from bot.data.models import Side, Tick
from bot.data.venues.binance.session import (
    MAX_CONTROL_MESSAGES_PER_SECOND,
    MAX_STREAMS_PER_CONNECTION,
    MAX_STREAMS_PER_REQUEST,
    MAX_URL_STREAM_BYTES,
    BinanceSession,
)
from bot.data.venues.protocol import (
    Received,
    ServerShutdown,
    SubscriptionResult,
    TickerUpdate,
    VenueSession,
)

TRADE = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT",'
         '"t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}')
# The @ticker payload of Binance's WebSocket documentation.
TICKER = ('{"stream":"bnbbtc@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC",'
          '"p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10",'
          '"b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025",'
          '"l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}}')


def session(*symbols: str, microseconds: bool = False, **config: Any) -> BinanceSession:
    return BinanceSession(StreamManagerConfig(**config), symbols, microseconds=microseconds)


def opened(*symbols: str, **config: Any) -> BinanceSession:
    s = session(*symbols, **config)
    s.url()
    assert s.on_open() == []
    return s


def test_binance_session_satisfies_the_venue_session_protocol() -> None:
    assert isinstance(session(), VenueSession)


def test_url_is_the_combined_stream_of_every_symbol() -> None:
    s = session("BTC/USDT", "eth/usdt")
    assert s.url() == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"
    assert s.symbols == {"BTC/USDT", "ETH/USDT"}


def test_url_carries_the_ticker_channel_and_the_microsecond_option() -> None:
    s = session("BTC/USDT", microseconds=True, binance_trade_channel="aggTrade",
                binance_ticker_channel="bookTicker")
    assert s.url() == ("wss://stream.binance.com:9443/stream?streams="
                       "btcusdt@aggTrade/btcusdt@bookTicker&timeUnit=MICROSECOND")


def test_binance_us_uses_its_own_endpoint_and_venue_name() -> None:
    s = session("BTC/USD", binance_venue="binanceus")
    assert s.url() == "wss://stream.binance.us:9443/stream?streams=btcusd@trade"
    tick = s.receive(TRADE.replace("BTCUSDT", "BTCUSD"), 0)
    assert isinstance(tick, Tick)
    assert (tick.venue, tick.symbol) == ("binanceus", "BTC/USD")


def test_url_without_symbols_opens_the_bare_combined_endpoint() -> None:
    assert session().url() == "wss://stream.binance.com:9443/stream"
    assert session(microseconds=True).url().endswith("/stream?timeUnit=MICROSECOND")


def test_ready_once_the_socket_is_open_and_again_false_on_reconnect() -> None:
    s = session("BTC/USDT")
    s.url()
    assert not s.ready
    s.on_open()
    assert s.ready
    s.url()
    assert not s.ready


def test_trade_frame_returns_the_tick_itself_with_taker_side_from_m() -> None:
    tick = session("BTC/USDT").receive(TRADE.encode(), 99)
    assert tick == Tick("binance", "BTC/USDT", 0.001, 100.0, Side.SELL, 12345,
                        1672515782136 * 1_000_000, 99)
    buy = session("BTC/USDT").receive(TRADE.replace('"m":true', '"m":false'), 0)
    assert isinstance(buy, Tick) and buy.side is Side.BUY


def test_microsecond_timestamps_are_scaled_to_nanoseconds() -> None:
    frame = TRADE.replace("1672515782136,", "1672515782136123,")
    tick = session("BTC/USDT", microseconds=True).receive(frame, 0)
    assert isinstance(tick, Tick) and tick.timestamp == 1672515782136123 * 1_000


def test_unknown_raw_symbol_is_decoded_and_left_raw() -> None:
    tick = session("ETH/USDT").receive(TRADE, 0)
    assert isinstance(tick, Tick) and tick.symbol == "BTCUSDT"


def test_ticker_frame_becomes_a_ticker_update_with_last_price() -> None:
    out = session("BNB/BTC", binance_ticker_channel="ticker").receive(TICKER, 5)
    assert out == Received(events=[TickerUpdate("binance", "BNB/BTC", 0.0024, 10.0, 0.0026,
                                                100.0, 0.0025, 1672515782136 * 1_000_000, 5)])


def test_subscribe_while_open_sends_subscribe_with_increasing_ids() -> None:
    s = opened("BTC/USDT")
    first = s.subscribe(["ETH/USDT", "BTC/USDT"])  # BTC/USDT is already there
    second = s.subscribe(["SOL/USDT"])
    assert [json.loads(m) for m in first + second] == [
        {"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 1},
        {"method": "SUBSCRIBE", "params": ["solusdt@trade"], "id": 2},
    ]
    assert s.symbols == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert s.subscribe(["SOL/USDT"]) == []


def test_unsubscribe_sends_unsubscribe_for_every_channel_of_the_symbol() -> None:
    s = opened("BTC/USDT", "ETH/USDT", binance_ticker_channel="bookTicker")
    (message,) = s.unsubscribe(["ETH/USDT", "XRP/USDT"])
    assert json.loads(message) == {"method": "UNSUBSCRIBE",
                                   "params": ["ethusdt@trade", "ethusdt@bookTicker"], "id": 1}
    assert s.symbols == {"BTC/USDT"}
    assert "ethusdt" not in s.url()


def test_changes_before_the_socket_opens_go_into_the_url_or_on_open() -> None:
    s = session("BTC/USDT")
    assert s.subscribe(["ETH/USDT"]) == []
    assert "ethusdt@trade" in s.url()
    assert s.subscribe(["SOL/USDT"]) == []  # after the URL was built
    assert s.unsubscribe(["BTC/USDT"]) == []
    assert [json.loads(m) for m in s.on_open()] == [
        {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 1},
        {"method": "SUBSCRIBE", "params": ["solusdt@trade"], "id": 2},
    ]


def test_large_subscriptions_are_split_into_requests_the_transport_paces() -> None:
    assert MAX_CONTROL_MESSAGES_PER_SECOND == 5
    s = opened(binance_ticker_channel="ticker")
    messages = [json.loads(m) for m in s.subscribe([f"C{i}/USDT" for i in range(250)])]
    assert [len(m["params"]) for m in messages] == [200, 200, 100]
    assert all(len(m["params"]) <= MAX_STREAMS_PER_REQUEST for m in messages)
    assert [m["id"] for m in messages] == [1, 2, 3]


def test_a_full_connection_names_what_fits_an_8k_request_line_and_subscribes_the_rest() -> None:
    symbols = [f"SYMBOL{i}/USDT" for i in range(512)]
    s = session(*symbols, binance_ticker_channel="bookTicker")  # 1024 streams
    url = s.url()
    request_line = f"GET {url.partition('9443')[2]} HTTP/1.1\r\n"
    assert len(request_line) < MAX_URL_STREAM_BYTES + 100 < 8190, "under a server's 8 KB"
    in_url = url.partition("streams=")[2].split("/")
    messages = [json.loads(m) for m in s.on_open()]
    assert {m["method"] for m in messages} == {"SUBSCRIBE"}
    assert all(len(m["params"]) <= MAX_STREAMS_PER_REQUEST for m in messages)
    subscribed = [p for m in messages for p in m["params"]]
    assert sorted(in_url + subscribed) == sorted(
        f"symbol{i}usdt@{c}" for i in range(512) for c in ("trade", "bookTicker"))
    assert len(in_url + subscribed) == 1024, "each stream once"
    assert in_url[:2] == ["symbol0usdt@trade", "symbol0usdt@bookTicker"], "streams of a symbol"


def test_more_streams_than_a_connection_allows_are_refused() -> None:
    assert MAX_STREAMS_PER_CONNECTION == 1024
    s = session(*(f"C{i}/USDT" for i in range(1024)))
    with pytest.raises(ConfigError, match="1025 streams exceed 1024"):
        s.subscribe(["ONE/MORE"])
    with pytest.raises(ConfigError, match="binance_max_streams_per_connection"):
        StreamManagerConfig(binance_max_streams_per_connection=1025)
    small = session(*(f"C{i}/USDT" for i in range(5)), binance_max_streams_per_connection=10,
                    binance_ticker_channel="bookTicker")
    with pytest.raises(ConfigError):
        small.subscribe(["ONE/MORE"])


def test_success_reply_settles_the_request() -> None:
    s = opened()
    s.subscribe(["BTC/USDT"])
    out = s.receive('{"result":null,"id":1}', 0)
    assert out == Received(events=[SubscriptionResult(1, True)])
    assert s.symbols == {"BTC/USDT"}


def test_error_reply_to_subscribe_is_reported_and_its_symbols_dropped() -> None:
    s = opened("ETH/USDT")
    s.subscribe(["BTC/USDT"])
    text = "Invalid request: too many parameters"
    out = s.receive(b'{"code": 2, "msg": "' + text.encode() + b'", "id": 1}', 0)
    assert out == Received(events=[SubscriptionResult(1, False, 2, text)])
    assert s.symbols == {"ETH/USDT"}


def test_error_reply_to_unsubscribe_restores_the_symbols() -> None:
    s = opened("ETH/USDT")
    s.unsubscribe(["ETH/USDT"])
    out = s.receive('{"code": 2, "msg": "Invalid request: unknown variant", "id": 1}', 0)
    assert isinstance(out, Received) and not out.events[0].ok  # type: ignore[union-attr]
    assert s.symbols == {"ETH/USDT"}


@pytest.mark.parametrize(("code", "text"), [
    (0, "Unknown property"),
    (1, "Invalid value type: expected Boolean"),
    (2, "Invalid request: property name must be a string"),
    (3, "Invalid JSON: expected value at line 1 column 1"),
])
def test_documented_error_without_request_id_is_a_non_fatal_exchange_error(
        code: int, text: str) -> None:
    out = opened().receive(json.dumps({"code": code, "msg": text}), 0)
    assert isinstance(out, Received)
    (error,) = out.events
    assert isinstance(error, ExchangeError)
    assert (error.venue, error.code, error.text, error.fatal) == ("binance", code, text, False)
    assert str(error) == f"binance error {code}: {text}"


def test_server_shutdown_event_is_reported_with_its_time() -> None:
    frame = '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}'
    assert session().receive(frame, 0) == Received(events=[ServerShutdown(1770123456789000000)])


@pytest.mark.parametrize("frame", [
    b"",
    b"not json",
    b'{"stream":"btcusdt@trade","data":{"e":"trade"',  # cut off
    b"[1, 2]",
    b'{"hello": "world"}',
    b'{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"x"}}',
    b'{"stream":"btcusdt@bookTicker","data":{"s":"BTCUSDT","b":"1"}}',
    b'{"stream":"!serverShutdown","data":[]}',
])
def test_malformed_frames_raise_malformed_frame_with_a_sample(frame: bytes) -> None:
    with pytest.raises(MalformedFrame) as info:
        session("BTC/USDT", binance_ticker_channel="bookTicker").receive(frame, 0)
    assert isinstance(info.value, ValueError)
    assert repr(frame.decode()[:20])[1:-1] in str(info.value)


def test_malformed_frame_sample_is_short() -> None:
    with pytest.raises(MalformedFrame) as info:
        session().receive("x" * 10_000, 0)
    assert len(str(info.value)) < 400
