"""The terminal view's figures and the JSON-lines output, checked against hand-computed values."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
from decimal import Decimal

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from bot.data.cli.columns import Column, Phrases, fitting_columns
from bot.data.cli.formatting import price
from bot.data.cli.jsonlines import (
    SIGNIFICANT_DIGITS,
    JsonLinesWriter,
    encode_event,
    iso_utc,
    rounded,
)
from bot.data.cli.view import (
    SymbolView,
    ViewModel,
    imbalance,
    imbalance_text,
    render,
    snapshot,
)
from bot.data.events import EventType, StreamEvent
from bot.data.models import Bar, BarFlag, Prediction, Side, Signal, SignalDirection, Tick
from bot.data.tick_rates import TickStats
from tests.cli.terminal import BOT_STREAM, ROOT

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


def test_tick_rate_counts_only_the_last_window() -> None:
    stats = TickStats(window_s=60.0)
    stats.sample(now=0.0)
    for _ in range(600):  # 10 a second for the first minute
        stats.on_tick(tick("BTC/USDT", 1.0))
    assert stats.sample(now=60.0) == {"BTC/USDT": 10.0}
    for second in range(61, 121):  # then 1 a second, sampled every second
        stats.on_tick(tick("BTC/USDT", 1.0))
        rate = stats.sample(now=float(second))
    assert rate == {"BTC/USDT": 1.0}, "the first minute's trades are out of the window"


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
    assert re.search(r"exchange → receive\s+│\s+1.50 │\s+2.00 │\s+9.25 │\s+12.00 │", text)


def test_columns_left_out_are_the_least_important_that_do_not_fit() -> None:
    columns = [Column("A", 0), Column("B", 3), Column("C", 1), Column("D", 2)]
    widths = [10, 10, 10, 10]  # each drawn 13 wide (2 padding, 1 line), plus 1 closing line
    assert fitting_columns(columns, widths, 53) == [0, 1, 2, 3]
    assert fitting_columns(columns, widths, 52) == [0, 2, 3]  # B (priority 3) goes first
    assert fitting_columns(columns, widths, 27) == [0, 2]
    assert fitting_columns(columns, widths, 5) == [0]  # the first is kept whatever the width


def test_header_phrases_wrap_between_phrases_never_inside_one() -> None:
    phrases = Phrases([Text("up 00:00:05"), Text("healthy"), Text("1,676.1 ticks/s"),
                       Text("42 bars")], separator="  ")
    assert [line.plain for line in phrases.lines(30)] == [
        "up 00:00:05  healthy", "1,676.1 ticks/s  42 bars"]
    assert [line.plain for line in phrases.lines(10)] == [
        "up 00:00:05", "healthy", "1,676.1 ticks/s", "42 bars"]  # a phrase wider stays whole
    assert [line.plain for line in phrases.lines(200)] == [
        "up 00:00:05  healthy  1,676.1 ticks/s  42 bars"]


def test_view_at_80_100_160_columns_shows_symbols_and_prices_whole() -> None:
    long = "1000SATS/USDT"
    view = ViewModel(
        timeframe="1m", uptime_s=5.0, health="healthy", ticks_per_s=1.0, bars=1,
        symbols=[SymbolView(long, tick(long, 0.00012345).data, bar(3.0, 1.0),
                            [bar(1.0, 1.0, BarFlag.PARTIAL | BarFlag.BACKFILLED)], 1.0),
                 SymbolView("BTC/USDT", tick("BTC/USDT", 59999.12).data, bar(3.0, 1.0), [], 1.0)],
        connections={"binance-0": {"state": "connected", "frames": 10, "reconnects": 0}},
        latency={"exchange_to_receive": {"p50_ms": 1.5, "p90_ms": 2.0, "p99_ms": 9.25,
                                         "max_ms": 12.0}})
    shown = {}
    for width in (80, 100, 160):
        console = Console(record=True, width=width)
        console.print(render(view))
        text = console.export_text()
        assert "…" not in text, f"a cell is cut at {width} columns"
        assert all(len(line) <= width for line in text.splitlines())
        for whole in (long, "0.00012345", "59999.12", "PARTIAL|BACKFILLED", "binance-0"):
            assert whole in text, f"{whole} at {width} columns"
        shown[width] = text
    assert "Ticks/s" not in shown[80] and "Ticks/s" in shown[160]
    assert shown[80].count("┃") < shown[100].count("┃") <= shown[160].count("┃")


def test_json_line_of_a_bar_carries_vwap_and_flags_as_names() -> None:
    event = StreamEvent(EventType.BAR_COMPLETE, bar(3.0, 1.0, BarFlag.PARTIAL | BarFlag.GAP), T0,
                        "binance")
    line = json.loads(encode_event(event))
    assert line["type"] == "bar_complete" and line["timestamp_ns"] == T0
    assert line["timestamp"] == "2025-01-01T00:00:00Z"
    assert line["data"]["vwap"] == 100.0  # quote volume 400 / volume 4
    assert line["data"]["flags"] == ["PARTIAL", "GAP"]
    empty = StreamEvent(EventType.BAR_COMPLETE, bar(0.0, 0.0), T0, "binance")
    assert json.loads(encode_event(empty))["data"]["vwap"] is None
    assert json.loads(encode_event(empty))["data"]["flags"] == []


def test_json_line_times_are_iso_utc_with_exact_nanoseconds_beside() -> None:
    assert iso_utc(T0) == "2025-01-01T00:00:00Z"
    assert iso_utc(T0 + 123_000_000) == "2025-01-01T00:00:00.123Z"
    assert iso_utc(T0 + 123_456_000) == "2025-01-01T00:00:00.123456Z"
    assert iso_utc(T0 + 1) == "2025-01-01T00:00:00.000000001Z"
    event = StreamEvent(EventType.TICK, Tick("binance", "BTC/USDT", 1.0, 1.0, Side.SELL, 9,
                                             T0 + 5_000_000, T0 + 7_250_001), T0 + 7_250_001)
    data = json.loads(encode_event(event))["data"]
    assert data["timestamp"] == "2025-01-01T00:00:00.005Z"
    assert data["timestamp_ns"] == T0 + 5 * 10**6
    assert data["receive_timestamp"] == "2025-01-01T00:00:00.007250001Z"
    assert data["side"] == "sell"


def test_json_line_floats_are_the_decimals_that_traded_not_binary_noise() -> None:
    noisy = 0.13089000000000015  # what a sum of volumes or a decoded price can hold
    assert repr(0.1 + 0.2) == "0.30000000000000004"
    event = StreamEvent(EventType.TICK, Tick("binance", "X/USDT", noisy, 0.1 + 0.2, Side.BUY, 1,
                                             T0, T0), T0)
    line = encode_event(event).decode()
    assert '"price":0.13089,' in line and '"volume":0.3,' in line
    assert rounded(59_999.123456789012) == 59_999.1234568  # 12 significant digits
    assert rounded(float("nan")) is None


def test_json_lines_of_every_record_parse_and_round_trip() -> None:
    flagged = Bar("binance", "BTC/USDT", "1m", T0, T0 + MINUTE - 1, 0.13089, 0.1309, 0.13088,
                  0.13089, 1234.5, 161.5834, 600.25, 634.25, 78.56, 42, 100, 141,
                  BarFlag.BACKFILLED | BarFlag.PARTIAL)
    prediction = Prediction("BTC/USDT", "1m", T0, 0.75, "momentum", 1500, 0.5, flagged)
    signal = Signal("BTC/USDT", SignalDirection.BUY, 0.5, flagged, prediction, T0 + MINUTE)
    lines = b"".join(encode_event(StreamEvent(t, d, T0 + MINUTE, "engine")) for t, d in (
        (EventType.BAR_COMPLETE, flagged), (EventType.PREDICTION, prediction),
        (EventType.SIGNAL, signal))).decode().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        for name, value in _instants(record):
            assert pd.Timestamp(value).value == _instants_ns(record)[name], name
    bar_data = records[0]["data"]
    rebuilt = Bar(**{f: bar_data[f] for f in Bar.__struct_fields__ if f not in
                     ("open_time", "close_time", "flags")},
                  open_time=pd.Timestamp(bar_data["open_time"]).value,
                  close_time=pd.Timestamp(bar_data["close_time"]).value,
                  flags=BarFlag(sum(BarFlag[name] for name in bar_data["flags"])))
    assert rebuilt == flagged
    assert records[2]["data"]["bar"] == bar_data
    assert records[2]["data"]["prediction"]["bar_open_time"] == "2025-01-01T00:00:00Z"
    assert records[2]["data"]["direction"] == "buy"


def _instants(record: dict[str, object], prefix: str = "") -> list[tuple[str, str]]:
    """(path, ISO text) of every instant in ``record``, nested records included."""
    out = []
    for name, value in record.items():
        if isinstance(value, dict):
            out += _instants(value, f"{prefix}{name}.")
        elif f"{name}_ns" in record:
            assert isinstance(value, str)
            out.append((prefix + name, value))
    return out


def _instants_ns(record: dict[str, object], prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in record.items():
        if isinstance(value, dict):
            out.update(_instants_ns(value, f"{prefix}{name}."))
        elif name.endswith("_ns") and isinstance(value, int):
            out[prefix + name[:-3]] = value
    return out


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


def test_live_json_from_the_simulator_is_readable_line_by_line() -> None:
    """``bot-stream live --json``: every line parses, instants equal their ns, flags are names,
    and each price is the trade's decimal (the simulator trades in 1e-8 steps)."""
    out = subprocess.run(
        [*BOT_STREAM, "live", "--sim", "BTC/USDT", "--sim-speed", "60", "--timeframes", "1m",
         "--events", "tick,bar_complete", "--duration", "4"],
        capture_output=True, timeout=60, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    records = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert {r["type"] for r in records} == {"tick", "bar_complete"}
    for record in records:
        for name, value in _instants(record):
            assert pd.Timestamp(value).value == _instants_ns(record)[name], name
        data = record["data"]
        prices = [data["price"]] if record["type"] == "tick" else [
            data[k] for k in ("open", "high", "low", "close")]
        for p in prices:
            assert len(repr(p).partition(".")[2]) <= 8, f"{p!r} is not the traded decimal"
        if record["type"] == "bar_complete":
            assert all(name in BarFlag.__members__ for name in data["flags"])


def test_prices_are_written_whole_without_binary_noise() -> None:
    assert price(0.13089000000000015) == "0.13089"
    assert price(1_234_567.89) == "1234567.89"  # eight significant digits would round it
    assert price(0.00012345) == "0.00012345"
    assert price(None) == "—"


@given(st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("9999999.99999"),
                   places=8, allow_nan=False, allow_infinity=False),
       st.integers(min_value=-2, max_value=2))
def test_json_float_is_the_decimal_it_came_from_despite_binary_noise(
        traded: Decimal, ulps: int) -> None:
    if len(traded.normalize().as_tuple().digits) > SIGNIFICANT_DIGITS:
        return  # more digits than a price carries
    noisy = float(traded)
    for _ in range(abs(ulps)):
        noisy = math.nextafter(noisy, math.inf if ulps > 0 else -math.inf)
    assert Decimal(repr(rounded(noisy))) == traded


def test_header_counts_the_bars_the_view_holds_for_its_timeframe_warm_up_included() -> None:
    """Bars loaded at start (warm-up) are shown in the tables, so the header counts them: it
    never says "0 bars" above a table of completed bars."""
    from bot.data.stream_manager import StreamManager

    manager = StreamManager()
    manager.add_crypto_symbols(["BTC/USDT", "ETH/USDT"])
    minute = 60 * 10**9
    for symbol, count in (("BTC/USDT", 3), ("ETH/USDT", 2)):
        history = manager.pipeline.history("binance", symbol, "1m")
        for i in range(count):  # as warm-up loads them: into the history, not completed live
            history.append(Bar("binance", symbol, "1m", i * minute, (i + 1) * minute - 1,
                               1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 1, i, i))
    manager.pipeline.history("binance", "BTC/USDT", "5m").append(
        Bar("binance", "BTC/USDT", "5m", 0, 5 * minute - 1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
            0.5, 0.5, 0.5, 1, 0, 0))
    view = snapshot(manager, TickStats(), "1m")
    assert manager.get_metrics()["counters"]["bars"] == 0, "none completed live"
    assert view.bars == 5
    assert sum(len(s.completed) for s in view.symbols) == 5
    console = Console(record=True, width=120)
    console.print(render(view))
    assert "5 bars 1m" in console.export_text()
