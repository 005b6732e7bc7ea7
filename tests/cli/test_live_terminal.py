"""``bot-stream live`` in a pseudo-terminal: what a person sees, read off the emulated screen."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.data.sim import ExchangeSimulator
from tests.cli.terminal import BOT_STREAM, Terminal

DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
SPEED = "60"  # a simulated minute per second: a 1m bar completes every second


def rows(screen: str) -> list[list[str]]:
    """The table rows on the screen, as lists of cell texts."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in screen.splitlines() if line.strip().startswith("│")]


def building(screen: str) -> dict[str, str]:
    """Symbol -> last price, from the 'Building' table (rows whose second cell is a number)."""
    out = {}
    for cells in rows(screen):
        if len(cells) == 10 and cells[0] and re.fullmatch(r"[\d.]+", cells[1]):
            out[cells[0]] = cells[1]
    return out


def completed(screen: str) -> list[list[str]]:
    """Rows of the 'Last completed bars' table: symbol, open time, O, H, L, C, ... flags."""
    return [cells for cells in rows(screen) if len(cells) == 10 and DATE.fullmatch(cells[1])]


async def test_live_sim_shows_symbols_prices_and_bars_that_then_update() -> None:
    term = Terminal([*BOT_STREAM, "live", "--sim", "BTC/USDT", "ETH/USDT", "--sim-speed", SPEED,
                     "--timeframes", "1m", "--refresh", "0.2"])
    try:
        first = await term.wait_for(
            lambda s: {"BTC/USDT", "ETH/USDT"} <= set(building(s))
            and {"BTC/USDT", "ETH/USDT"} <= {c[0] for c in completed(s)},
            30, "both symbols with a price and a completed bar")
        assert "Building 1m bars" in first and "Last completed 1m bars" in first
        assert "binance-0" in first and "connected" in first
        bars_before = {(c[0], c[1]) for c in completed(first)}
        prices_before = building(first)
        later = await term.wait_for(
            lambda s: {(c[0], c[1]) for c in completed(s)} - bars_before != set()
            and building(s) != prices_before,
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
                lambda s: sum(1 for c in completed(s) if not c[9]) >= 2, 30,
                "two complete (unflagged) bars")
        finally:
            term.close()
        traded = {f"{t.price_e8 / 1e8:.8g}" for t in sim.trades("binance", "BTC/USDT")}
        klines = {datetime.fromtimestamp(k.open_time_ns / 1e9, UTC).strftime(
            "%Y-%m-%d %H:%M:%S"): k for k in sim.klines("BTC/USDT", "1m", limit=1000)}
    assert building(screen)["BTC/USDT"] in traded, "the last price is a price that traded"
    checked = 0
    for _symbol, opened, o, h, lo, c, *_rest, flags in completed(screen):
        if flags:
            continue
        k = klines[opened]
        assert (o, h, lo, c) == tuple(f"{v / 1e8:.8g}" for v in (
            k.open_e8, k.high_e8, k.low_e8, k.close_e8)), f"bar {opened} equals the kline"
        checked += 1
    assert checked >= 2
