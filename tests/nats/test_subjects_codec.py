"""Subject names, message ids and payloads, checked on real Binance trades."""

from __future__ import annotations

import msgspec
import pytest

from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.nats.codec import bar_codec, tick_codec
from bot.data.nats.subjects import (
    bar_msg_id,
    bar_subject,
    health_subject,
    symbol_token,
    tick_msg_id,
    tick_subject,
    token_symbol,
)
from tests.helpers import btc_minute_trades

T0 = 1_735_689_600_000_000_000


@pytest.mark.parametrize(("symbol", "token"), [
    ("BTC/USDT", "BTC_USDT"), ("btc/usdt", "BTC_USDT"), ("BRK.B", "BRK-B"), ("TSLA", "TSLA"),
    ("BTC/USD", "BTC_USD"), ("BTC/USDT:USDT", "BTC_USDT~USDT")])
def test_symbols_become_subject_tokens_and_back(symbol: str, token: str) -> None:
    assert symbol_token(symbol) == token
    assert token_symbol(token) == symbol.upper()


@pytest.mark.parametrize("symbol", ["BTC USDT", "BTC/*", "BTC>", "BTC_USDT", "BTC-USDT", "",
                                    "BTC//USDT", "/USDT", "BTC/USDT:"])
def test_symbols_that_cannot_be_tokens_are_refused_with_the_allowed_form(symbol: str) -> None:
    with pytest.raises(ValueError, match="letters and digits"):
        symbol_token(symbol)


def test_subjects_and_ids() -> None:
    tick = Tick("binance", "BTC/USDT", 1.0, 1.0, Side.BUY, 7, T0, T0)
    assert tick_subject("binance", "BTC/USDT") == "md.tick.binance.BTC_USDT"
    assert bar_subject("15m", "alpaca", "BRK.B") == "md.bar.15m.alpaca.BRK-B"
    assert tick_msg_id(tick) == "binance:BTC/USDT:7"
    assert health_subject("ingest-0a") == "md.health.ingest-0a"
    with pytest.raises(ValueError, match=r"worker='a\.b'"):
        health_subject("a.b")


def test_an_incomplete_bar_never_shares_the_id_of_the_complete_one() -> None:
    fields = ("binance", "BTC/USDT", "1m", T0, T0 + 59_999_999_999, 1.0, 1.0, 1.0, 1.0, 1.0,
              1.0, 1.0, 0.0, 1.0, 1, 1, 1)
    whole = Bar(*fields)
    assert bar_msg_id(whole) == f"binance:BTC/USDT:1m:{T0}"
    assert bar_msg_id(Bar(*fields, BarFlag.BACKFILLED)) == bar_msg_id(whole)
    assert bar_msg_id(Bar(*fields, BarFlag.PARTIAL)) == f"binance:BTC/USDT:1m:{T0}:2"
    assert bar_msg_id(Bar(*fields, BarFlag.GAP | BarFlag.EMPTY)) == f"binance:BTC/USDT:1m:{T0}:5"


def test_every_real_trade_survives_the_wire_and_is_compact() -> None:
    codec = tick_codec()
    trades = btc_minute_trades()
    payloads = [codec.encode(t) for t in trades]
    assert [codec.decode(p) for p in payloads] == trades
    as_maps = [msgspec.msgpack.encode(t) for t in trades]
    assert sum(map(len, payloads)) < 0.5 * sum(map(len, as_maps))


def test_payloads_of_fewer_or_more_fields_still_decode() -> None:
    tick = btc_minute_trades()[0]
    as_tuple = msgspec.structs.astuple(tick)
    older = msgspec.msgpack.encode(as_tuple[:8])  # a publisher without the optional fields
    newer = msgspec.msgpack.encode((*as_tuple, "a field from the future"))
    assert tick_codec().decode(older) == tick
    assert tick_codec().decode(newer) == tick


def test_bars_round_trip_with_their_flags() -> None:
    bar = Bar("binance", "BTC/USDT", "1m", T0, T0 + 59_999_999_999, 1.5, 2.0, 1.0, 1.25, 3.0,
              4.5, 1.0, 2.0, 1.5, 3, 10, 12, BarFlag.GAP | BarFlag.BACKFILLED)
    decoded = bar_codec().decode(bar_codec().encode(bar))
    assert decoded == bar and isinstance(decoded.flags, BarFlag)


def test_garbage_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        tick_codec().decode(b"\x93\x01\x02")
