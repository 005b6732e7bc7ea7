"""``bot-stream live`` in a pseudo-terminal: what a person sees, read off the emulated screen."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.data.cli.columns import Column
from bot.data.cli.view import COMPLETED_COLUMNS, SYMBOL_COLUMNS
from bot.data.sim import ExchangeSimulator
from tests.cli.terminal import BOT_STREAM, Terminal

DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
SPEED = "60"  # a simulated minute per second: a 1m bar completes every second


def tables(screen: str) -> list[list[dict[str, str]]]:
    """The tables on the screen, each a list of rows mapping column header -> cell text."""
    out: list[list[dict[str, str]]] = []
    headers: list[str] = []
    for line in screen.splitlines():
        line = line.strip()
        if line.startswith("┃"):
            headers = [cell.strip() for cell in line.strip("┃").split("┃")]
            out.append([])
        elif line.startswith("│") and out:
            out[-1].append(dict(zip(headers, (c.strip() for c in line.strip("│").split("│")),
                                    strict=True)))
    return out


def building(screen: str) -> dict[str, str]:
    """Symbol -> last price, from the 'Building' table (rows with a 'Last' price)."""
    return {row["Symbol"]: row["Last"] for table in tables(screen) for row in table
            if re.fullmatch(r"[\d.]+", row.get("Last", ""))}


def completed(screen: str) -> list[dict[str, str]]:
    """Rows of the 'Last completed bars' table (rows with an open time)."""
    return [row for table in tables(screen) for row in table
            if DATE.fullmatch(row.get("Open time (UTC)", ""))]


async def test_live_sim_shows_symbols_prices_and_bars_that_then_update() -> None:
    term = Terminal([*BOT_STREAM, "live", "--sim", "BTC/USDT", "ETH/USDT", "--sim-speed", SPEED,
                     "--timeframes", "1m", "--refresh", "0.2"])
    try:
        first = await term.wait_for(
            lambda s: {"BTC/USDT", "ETH/USDT"} <= set(building(s))
            and {"BTC/USDT", "ETH/USDT"} <= {c["Symbol"] for c in completed(s)},
            30, "both symbols with a price and a completed bar")
        assert "Building 1m bars" in first and "Last completed 1m bars" in first
        assert "binance-0" in first and "connected" in first
        bars_before = {(c["Symbol"], c["Open time (UTC)"]) for c in completed(first)}
        prices_before = building(first)
        later = await term.wait_for(
            lambda s: bool({(c["Symbol"], c["Open time (UTC)"]) for c in completed(s)}
                           - bars_before) and building(s) != prices_before,
            30, "a newer completed bar and a changed price")
        assert later != first
    finally:
        code = term.close()
    assert code == 0, "Ctrl-C ends the view cleanly"


async def test_live_view_prices_and_bars_are_the_exchanges() -> None:
    async with ExchangeSimulator(["BTC/USDT"], seed=5, speed=float(SPEED)) as sim:
        term = Terminal([*BOT_STREAM, "live", "BTC/USDT", "--timeframes", "1m",
                         "--refresh", "0.2"], env=sim.env())
        try:
            screen = await term.wait_for(
                lambda s: sum(1 for c in completed(s) if not c["Flags"]) >= 2, 30,
                "two complete (unflagged) bars")
        finally:
            term.close()
        traded = {f"{t.price_e8 / 1e8:.12g}" for t in sim.trades("binance", "BTC/USDT")}
        klines = {datetime.fromtimestamp(k.open_time_ns / 1e9, UTC).strftime(
            "%Y-%m-%d %H:%M:%S"): k for k in sim.klines("BTC/USDT", "1m", limit=1000)}
    assert building(screen)["BTC/USDT"] in traded, "the last price is a price that traded"
    checked = 0
    for row in completed(screen):
        if row["Flags"]:
            continue
        k = klines[row["Open time (UTC)"]]
        assert tuple(row[n] for n in ("Open", "High", "Low", "Close")) == tuple(
            f"{v / 1e8:.12g}" for v in (k.open_e8, k.high_e8, k.low_e8, k.close_e8)), (
            f"bar {row['Open time (UTC)']} equals the kline")
        checked += 1
    assert checked >= 2


def by_priority(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in sorted(columns, key=lambda c: c.priority)]


@pytest.mark.parametrize("columns", [80, 100, 160])
async def test_live_view_keeps_every_shown_cell_whole_at_any_width(columns: int) -> None:
    async with ExchangeSimulator(["BTC/USDT", "ETH/USDT"], seed=5, speed=float(SPEED)) as sim:
        term = Terminal([*BOT_STREAM, "live", "BTC/USDT", "ETH/USDT", "--timeframes", "1m",
                         "--refresh", "0.2"], env=sim.env(), columns=columns)
        try:
            screen = await term.wait_for(
                lambda s: {"BTC/USDT", "ETH/USDT"} <= set(building(s))
                and {"BTC/USDT", "ETH/USDT"} <= {c["Symbol"] for c in completed(s)},
                30, f"both symbols with a price and a completed bar at {columns} columns")
        finally:
            term.close()
        traded = {f"{t.price_e8 / 1e8:.12g}" for t in sim.trades("binance", "BTC/USDT")}
    assert "…" not in screen, "no cell is cut"
    assert building(screen)["BTC/USDT"] in traded, "the last price is whole"
    shown = [set(table[0]) for table in tables(screen) if table]
    for names in (by_priority(SYMBOL_COLUMNS), by_priority(COMPLETED_COLUMNS)):
        kept = next(s for s in shown if names[0] in s and names[1] in s)
        assert kept == set(names[:len(kept)]), "the columns left out are the least important"
        if columns == 160:
            assert kept == set(names), "a wide terminal shows every column"
        if columns == 80:
            assert kept != set(names), "an 80-column terminal leaves some out"
