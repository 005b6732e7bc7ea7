"""The terminal view's figures and the JSON-lines output, checked against hand-computed values."""

from __future__ import annotations

import io
import json

from rich.console import Console

from bot.data.cli.jsonlines import JsonLinesWriter, encode_event
from bot.data.cli.view import SymbolView, TickStats, ViewModel, imbalance, imbalance_text, render
from bot.data.events import EventType, StreamEvent
from bot.data.models import Bar, BarFlag, Side, Tick

MINUTE = 60 * 10**9
T0 = 1_735_689_600 * 10**9  # 2025-01-01 00:00 UTC


def bar(buy: float, sell: float, flags: BarFlag = BarFlag.NONE) -> Bar:
    volume = buy + sell
    return Bar("binance", "BTC/USDT", "1m", T0, T0 + MINUTE - 1, 100.0, 110.0, 90.0, 105.0,
               volume, volume * 100.0, buy, sell, buy * 100.0, 7, 1, 7, flags)


def tick(symbol: str, price: float) -> StreamEvent:
    return StreamEvent(EventType.TICK, Tick("binance", symbol, price, 1.0, Side.BUY, 1, T0, T0),
                       T0, "binance")


def test_imbalance_is_the_taker_buy_minus_sell_share() -> None:
    assert imbalance(bar(3.0, 1.0)) == 0.5  # (3 - 1) / (3 + 1)
    assert imbalance(bar(0.0, 0.0)) is None
    assert imbalance(None) is None
    assert imbalance_text(0.5).plain == " +50% ▮▮▮▮▮▮▮▮▯▯"  # buy share 75 % of 10 cells
    assert imbalance_text(-1.0).plain == "-100% ▯▯▯▯▯▯▯▯▯▯"


def test_tick_rates_per_symbol_over_the_sampling_window() -> None:
    stats = TickStats()
    stats.sample(now=100.0)
    for _ in range(5):
        stats.on_tick(tick("BTC/USDT", 1.0))
    stats.on_tick(tick("ETH/USDT", 2.0))
    assert stats.sample(now=102.0) == {"BTC/USDT": 2.5, "ETH/USDT": 0.5}
    assert stats.last["ETH/USDT"].price == 2.0


def test_render_shows_each_figure_of_the_view_model() -> None:
    view = ViewModel(
        timeframe="1m", uptime_s=3725.0, health="degraded", ticks_per_s=12.5, bars=42,
        symbols=[SymbolView("BTC/USDT", tick("BTC/USDT", 105.5).data, bar(3.0, 1.0),
                            [bar(1.0, 1.0, BarFlag.PARTIAL)], 12.5)],
        connections={"binance-0": {"state": "reconnecting", "frames": 1234, "reconnects": 2}},
        latency={"exchange_to_receive": {"p50_ms": 1.5, "p90_ms": 2.0, "p99_ms": 9.25,
                                         "max_ms": 12.0}},
        reasons=["connection binance-0 is reconnecting"])
    console = Console(record=True, width=160)
    console.print(render(view))
    text = console.export_text()
    assert "up 01:02:05" in text and "degraded" in text and "12.5 ticks/s" in text
    assert "connection binance-0 is reconnecting" in text
    assert "105.5" in text and "+5.500%" in text  # last price against the bar's open of 100
    assert "+50% ▮▮▮▮▮▮▮▮▯▯" in text
    assert "2025-01-01 00:00:00" in text and "PARTIAL" in text and "50%" in text
    assert "1,234" in text and "reconnecting" in text
    assert "exchange → receive: 1.50 / 2.00 / 9.25 / 12.00" in text


def test_json_line_of_a_bar_carries_vwap_and_flags_as_numbers() -> None:
    event = StreamEvent(EventType.BAR_COMPLETE, bar(3.0, 1.0, BarFlag.PARTIAL), T0, "binance")
    line = json.loads(encode_event(event))
    assert line["type"] == "bar_complete" and line["timestamp"] == T0
    assert line["data"]["vwap"] == 100.0  # quote volume 400 / volume 4
    assert line["data"]["flags"] == 2
    empty = StreamEvent(EventType.BAR_COMPLETE, bar(0.0, 0.0), T0, "binance")
    assert json.loads(encode_event(empty))["data"]["vwap"] is None


def test_writer_stops_once_the_reader_goes_away() -> None:
    class ClosedPipe(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise BrokenPipeError

    closed: list[bool] = []
    writer = JsonLinesWriter(ClosedPipe(), lambda: closed.append(True))
    writer(tick("BTC/USDT", 1.0))
    writer(tick("BTC/USDT", 1.0))
    assert closed == [True]
    out = io.BytesIO()
    JsonLinesWriter(out, lambda: None)(tick("BTC/USDT", 1.0))
    assert json.loads(out.getvalue())["data"]["price"] == 1.0
