"""Every recorded Binance frame through BinanceSession: values equal the frame's fields."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.errors import MalformedFrame
from bot.data.models import Side, Tick
from bot.data.venues.binance.session import BinanceSession
from bot.data.venues.protocol import Received, TickerUpdate
from tests.venues.captures import CAPTURES, NAUTILUS, all_frames, capture_frames, capture_url

MS = 1_000_000
FRAMES = all_frames()


def _session(trade_channel: str, ticker_channel: str | None = None) -> BinanceSession:
    config = StreamManagerConfig(binance_trade_channel=trade_channel,
                                 binance_ticker_channel=ticker_channel)
    return BinanceSession(config)


def _ticks(out: Tick | Received) -> list[Tick]:
    return [out] if isinstance(out, Tick) else out.ticks


def _assert_trade(tick: Tick, data: dict[str, Any], trade_id_field: str) -> None:
    assert tick.symbol == data["s"]  # not subscribed: the raw symbol is kept
    assert tick.price == float(data["p"])
    assert tick.volume == float(data["q"])
    assert tick.trade_id == data[trade_id_field]
    assert tick.timestamp == data["T"] * MS
    assert tick.side is (Side.SELL if data["m"] else Side.BUY)
    assert tick.receive_timestamp == 42


def test_every_captured_agg_trade_decodes_to_a_tick_equal_to_its_fields() -> None:
    session = _session("aggTrade")
    agg = [(raw, msg) for _, raw, msg in FRAMES if msg["stream"].endswith("@aggTrade")]
    assert len(agg) == 159
    for raw, msg in agg:
        out = session.receive(raw.encode(), 42)
        assert isinstance(out, Tick), raw  # the fast path: no wrapper
        _assert_trade(out, msg["data"], "a")


def test_agg_trades_also_decode_on_a_trade_channel_session() -> None:
    session = _session("trade")
    for _, raw, msg in FRAMES:
        if msg["stream"].endswith("@aggTrade"):
            ticks = _ticks(session.receive(raw, 42))
            assert len(ticks) == 1
            _assert_trade(ticks[0], msg["data"], "a")


@pytest.mark.parametrize("ticker_channel", ["bookTicker", None])
def test_every_captured_book_ticker_becomes_a_ticker_update(ticker_channel: str | None) -> None:
    session = _session("trade", ticker_channel)
    books = [(raw, msg["data"]) for _, raw, msg in FRAMES
             if msg["stream"].endswith("@bookTicker")]
    assert len(books) == 2048
    for raw, data in books:
        out = session.receive(raw, 7)
        assert isinstance(out, Received)
        (update,) = out.events
        assert isinstance(update, TickerUpdate)
        assert (update.symbol, update.bid, update.bid_qty, update.ask, update.ask_qty) == (
            data["s"], float(data["b"]), float(data["B"]), float(data["a"]), float(data["A"]))
        assert update.last is None
        assert update.timestamp == (data["E"] * MS if "E" in data else None)
        assert update.receive_timestamp == 7


@pytest.mark.parametrize("channel", ["trade", "aggTrade"])
def test_a_payload_is_this_channels_trade_only_when_its_event_type_says_so(channel: str) -> None:
    """``e`` decides, not the fields: a payload with the trade fields but no ``e``, or
    another event's, is no trade of this channel (the live path's other decoders see it:
    an aggregate trade on a trade session still becomes a tick there, nothing else does)."""
    session = _session(channel)
    session.add_symbol("BTC/USDT")
    fields = {"s": "BTCUSDT", "t": 7, "a": 7, "p": "1.5", "q": "2", "T": 1_700_000_000_000,
              "m": False}
    for event in (None, "kline", "trade" if channel == "aggTrade" else "aggTrade"):
        data = fields if event is None else {"e": event, **fields}
        frame = json.dumps({"stream": f"btcusdt@{channel}", "data": data}).encode()
        assert session.decode_trade(frame, 42) is None, event
        if event in (None, "kline"):  # a malformed frame of its stream, named as such
            with pytest.raises(MalformedFrame, match=f"bad {channel} event"):
                session.receive(frame, 42)
    frame = json.dumps({"stream": f"btcusdt@{channel}", "data": {**fields, "e": channel}})
    tick = session.decode_trade(frame.encode(), 42)
    assert tick is not None and (tick.symbol, tick.trade_id) == ("BTC/USDT", 7)


def test_streams_the_session_does_not_decode_are_skipped_quietly() -> None:
    session = _session("aggTrade", "bookTicker")
    others = [raw for _, raw, msg in FRAMES
              if "@depth" in msg["stream"] or "@kline" in msg["stream"]]
    assert len(others) == 2798 + 114
    for raw in others:
        assert session.receive(raw, 0) == Received()


def test_capture_urls_are_what_the_session_builds_for_their_streams() -> None:
    for path in CAPTURES:
        url = capture_url(path)
        streams = url.split("streams=")[1].split("/")
        agg = [s.split("@")[0] for s in streams if s.endswith("@aggTrade")]
        venue = "binanceus" if ".us:" in url else "binance"
        base = url.split("/stream?")[0]
        config = StreamManagerConfig(binance_venue=venue, binance_ws_url=base,
                                     binance_trade_channel="aggTrade")
        symbols = [s.upper() for s in agg]  # raw names, split below where the quote is known
        session = BinanceSession(config, [_unify(s) for s in symbols])
        expected = "/".join(f"{s}@aggTrade" for s in agg)
        assert session.url() == f"{base}/stream?streams={expected}"


def _unify(raw: str) -> str:
    for quote in ("USDT", "BUSD", "EUR", "ETH", "BTC", "BNB", "TRY", "RUB", "USD"):
        if raw.endswith(quote):
            return f"{raw[: -len(quote)]}/{quote}"
    raise AssertionError(raw)


def test_subscribed_symbols_come_back_unified() -> None:
    session = BinanceSession(StreamManagerConfig(binance_trade_channel="aggTrade"),
                             ["FTM/USDT", "XMR/BTC"])
    symbols = {t.symbol for _, raw, msg in FRAMES if msg["stream"].startswith(("ftmusdt@agg",
               "xmrbtc@agg")) for t in _ticks(session.receive(raw, 0))}
    assert symbols == {"FTM/USDT", "XMR/BTC"}


def test_nautilus_trade_and_agg_trade_samples_decode_inside_a_combined_frame() -> None:
    for name, channel, id_field in (("trade_stream.json", "trade", "t"),
                                    ("agg_trade_stream.json", "aggTrade", "a")):
        data = json.loads((NAUTILUS / name).read_text())
        frame = json.dumps({"stream": f"btcusdt@{channel}", "data": data})
        out = _session(channel).receive(frame, 42)
        assert isinstance(out, Tick)
        _assert_trade(out, data, id_field)


def test_taker_buy_volume_of_klines_equals_agg_trades_with_m_false() -> None:
    """CHECK C: Δ taker-buy volume between kline updates = Σ q of aggTrades with m=false.

    Sides come from the codec's ticks; the aggTrades counted are those whose
    trade-id range [f, l] lies in (L_prev, L_new], and the check only counts a
    delta whose trades were all captured (Σ (l - f + 1) equals Δn).
    """
    checked = 0
    for path in CAPTURES:
        session = _session("aggTrade")
        agg: list[tuple[int, int, Tick]] = []
        klines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for raw in capture_frames(path):
            msg = json.loads(raw)
            if msg["stream"].endswith("@aggTrade"):
                (tick,) = _ticks(session.receive(raw, 0))
                agg.append((msg["data"]["f"], msg["data"]["l"], tick))
            elif msg["stream"].endswith("@kline_1m"):
                klines[msg["data"]["s"]].append(msg["data"]["k"])
        for symbol, updates in klines.items():
            for prev, new in itertools.pairwise(updates):
                if prev["t"] != new["t"] or prev["L"] == new["L"]:
                    continue
                inside = [(f, last, t) for f, last, t in agg if t.symbol == symbol
                          and prev["L"] < f and last <= new["L"]]
                if sum(last - f + 1 for f, last, _ in inside) != new["n"] - prev["n"]:
                    continue
                buy = sum(t.volume for _, _, t in inside if t.side is Side.BUY)
                total = sum(t.volume for _, _, t in inside)
                d_buy = float(Decimal(new["V"]) - Decimal(prev["V"]))
                d_total = float(Decimal(new["v"]) - Decimal(prev["v"]))
                assert math.isclose(buy, d_buy, rel_tol=1e-9, abs_tol=1e-9), (symbol, new)
                assert math.isclose(total, d_total, rel_tol=1e-9, abs_tol=1e-9), (symbol, new)
                checked += 1
    assert checked == 58
