"""The dashboard in headless Chromium against the simulator, as a person would use it.

Desktop (1400 px) and phone (390 px) pages of one stream with an engine and a
paper account: candles equal the exchange's klines, VWAP is drawn, signals are
arrows whose details show on hover, the OHLC legend follows the crosshair, the
header's bar count is the bars drawn, trades per minute are not capped by the
tick buffer, 5m is fitted to its bars, the symbol switch changes the chart, the
engine's position and PnL are shown, and a phone never scrolls sideways.
Screenshots go to a temporary directory whose path is printed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.data.dashboard import DashboardServer
from bot.data.engine import StreamingTradingEngine
from bot.data.engine.paper import PaperExecutor
from bot.data.events import EventType
from bot.data.models import Prediction, Signal, SignalDirection
from bot.data.sim import ExchangeSimulator
from bot.data.stream_manager import StreamManager
from tests.dashboard.support import e8, kline_ohlc_e8, streaming, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 30_000
TICK_BUFFER = 500  # far below a minute of the simulator's trades at speed 60
HISTORY_S = 3600.0  # an hour of bars for the warm-up, as `bot-stream dashboard --sim` has
BTC_CARD = 'article[data-symbol="BTC/USDT"]'


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it (see .ci/run)")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                    args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """A fresh temporary directory for the screenshots, its path printed for people to look."""
    path = Path(tempfile.mkdtemp(prefix="bot-stream-dashboard-"))
    print(f"\ndashboard screenshots: {path}")
    return path


async def open_page(browser: Any, url: str, width: int, height: int,
                    errors: list[str]) -> Any:
    page = await browser.new_page(viewport={"width": width, "height": height})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    await page.goto(url)
    return page


async def drawn_bar_count(page: Any) -> tuple[int, int]:
    """(the header's bar count, the candles drawn on the charts shown), read at one instant."""
    header, drawn = await page.evaluate("""() => {
        const d = window.dashboard;
        return [Number(document.getElementById('bar-count').textContent.replace(/,/g, '')),
                d.shownSymbols().reduce((n, s) => n + d.drawnCandles(s), 0)];
    }""")
    return header, drawn


async def hover_candle(page: Any, symbol: str, time: int) -> None:
    """Move the mouse over the candle of ``time`` (UTC seconds) on ``symbol``'s chart."""
    x = await page.evaluate(f"window.dashboard.state.charts.get('{symbol}')"
                            f".chart.timeScale().timeToCoordinate({time})")
    box = await page.locator(f'article[data-symbol="{symbol}"] .chart').bounding_box()
    await page.mouse.move(box["x"] + x, box["y"] + box["height"] * 0.4)


def signal_on(manager: StreamManager, direction: SignalDirection, confidence: float,
              back: int = 1) -> Signal:
    bar = manager.get_bars("BTC/USDT", "1m")[-back]
    prediction = Prediction("BTC/USDT", "1m", bar.open_time, 1 - confidence, "test", 0)
    return Signal("BTC/USDT", direction, confidence, bar, prediction, bar.close_time)


async def test_dashboard_on_desktop_and_phone(browser: Any, screenshots: Path) -> None:
    async with streaming(["1m", "5m"], HISTORY_S, tick_buffer_size=TICK_BUFFER) as (sim, manager):
        account = PaperExecutor(manager.bus)
        engine = StreamingTradingEngine(manager, executor=account)
        await engine.start()
        try:
            async with DashboardServer(manager, engine=engine, account=account) as server:
                errors: list[str] = []
                await desktop(browser, server.url, sim, manager, account, screenshots, errors)
                await phone(browser, server.url, screenshots, errors)
        finally:
            await engine.stop()
            account.close()
    assert errors == [], "the pages ran without errors"


async def desktop(browser: Any, url: str, sim: ExchangeSimulator, manager: StreamManager,
                  account: PaperExecutor, screenshots: Path, errors: list[str]) -> None:
    page = await open_page(browser, f"{url}/", 1400, 1000, errors)
    count = "() => window.dashboard.completedCount('BTC/USDT', '1m')"
    await page.wait_for_function(f"({count})() >= 2", timeout=WAIT_MS)
    before = await page.evaluate(count)
    await page.wait_for_function(f"({count})() >= {before + 2}", timeout=WAIT_MS)
    card = page.locator(BTC_CARD)

    # Candles are the exchange's klines, all of them in view; VWAP drawn on each.
    drawn = int(await card.get_attribute("data-candles") or 0)
    assert drawn == await page.evaluate("window.dashboard.drawnCandles('BTC/USDT')")
    visible = await page.evaluate("window.dashboard.state.charts.get('BTC/USDT')"
                                  ".chart.timeScale().getVisibleLogicalRange()")
    assert visible["from"] <= 0 and visible["to"] >= drawn - 1, "every candle is in view"
    candles = await page.evaluate("window.dashboard.candles('BTC/USDT', '1m')")
    complete = set(await page.evaluate(
        "[...window.dashboard.state.series.get('BTC/USDT|1m').completed]"))
    klines = {k.open_time_ns // 10**9: k for k in sim.klines("BTC/USDT", "1m", limit=1000)}
    truth = kline_ohlc_e8(sim, "BTC/USDT", "1m")
    checked = [c for c in candles if c["time"] in complete and not c["flags"]]
    assert len(checked) >= 2
    for c in checked:
        assert e8(c["open"], c["high"], c["low"], c["close"]) == truth[c["time"]]
        k = klines[c["time"]]
        assert c["vwap"] == pytest.approx(k.quote_e16 / 1e8 / k.volume_e8, rel=1e-9)
    with_volume = sum(1 for c in candles if c["volume"] > 0)
    assert await page.evaluate("window.dashboard.drawnVwap('BTC/USDT')") >= with_volume - 1

    # The header counts the bars drawn; trades per minute are the stream's, not the buffer's.
    header, drawn_all = await drawn_bar_count(page)
    assert header == drawn_all and drawn_all >= 2 * (before + 2)
    assert all(s["ticks_last_minute"] <= TICK_BUFFER for s in manager.get_health()["symbols"])
    await page.wait_for_function(
        "Number(document.querySelector('#symbols tbody tr td:nth-child(4)')"
        f".textContent.replace(/,/g, '')) > {TICK_BUFFER}", timeout=WAIT_MS)

    # Signals: arrows without labels; hovering the bar shows the details.
    sold = signal_on(manager, SignalDirection.SELL, 0.8)
    bought = signal_on(manager, SignalDirection.BUY, 0.7, back=2)
    manager.bus.emit(EventType.SIGNAL, sold)
    manager.bus.emit(EventType.SIGNAL, bought)
    sell, buy = (s.bar.open_time // 10**9 for s in (sold, bought))
    await page.wait_for_function(  # the engine may add its own markers
        f"""() => {{
            const m = window.dashboard.drawnMarkers('BTC/USDT');
            return m.some((x) => x.time === {sell} && x.shape === 'arrowDown')
                && m.some((x) => x.time === {buy} && x.shape === 'arrowUp');
        }}""", timeout=WAIT_MS)
    markers = await page.evaluate("window.dashboard.drawnMarkers('BTC/USDT')")
    assert {m["shape"] for m in markers} <= {"arrowUp", "arrowDown"}
    assert all(not m.get("text") for m in markers), "no label to overlap another"
    await hover_candle(page, "BTC/USDT", sell)
    tooltip = card.locator(".tooltip")
    await tooltip.wait_for(state="visible", timeout=WAIT_MS)
    assert "SELL" in await tooltip.text_content() and "80%" in await tooltip.text_content()
    await page.screenshot(path=str(screenshots / "desktop-signal-tooltip.png"))

    # The OHLC legend follows the crosshair.
    legend = card.locator(".legend")
    assert await card.get_attribute("data-legend-time") == str(sell)
    first_text = await legend.text_content()
    earlier = candles[0]["time"]
    assert earlier not in {m["time"] for m in markers}
    await hover_candle(page, "BTC/USDT", earlier)
    await page.wait_for_function(
        f"document.querySelector('{BTC_CARD}').dataset.legendTime === '{earlier}'",
        timeout=WAIT_MS)
    assert await legend.text_content() != first_text
    assert await tooltip.is_hidden(), "no signal on that bar, no tooltip"
    await page.mouse.move(5, 5)

    # The engine's paper position and PnL.
    account.execute(signal_on(manager, SignalDirection.BUY, 0.9))
    await wait_for(lambda: bool(account.positions), 20, "the paper order filled")
    await page.wait_for_function(
        "document.querySelector('#positions tbody tr td')?.textContent === 'BTC/USDT'",
        timeout=WAIT_MS)
    assert await page.locator("#engine").is_visible()
    assert await page.locator("#positions tbody tr td:nth-child(2)").text_content() == "+1.0000"
    assert "PnL" in (await card.locator(".position").text_content() or "")
    assert await page.locator('#engine-figures dd[data-figure="equity"]').is_visible()
    signals = await page.locator('#engine-figures dd[data-figure="signals"]').text_content()
    assert signals is not None and signals.endswith(" sell)")
    # Latency is measured on the exchange's clock (the simulator's runs ahead at speed 60).
    await page.wait_for_function(
        "document.getElementById('latency-exchange').textContent.includes('ms')",
        timeout=WAIT_MS)
    latency = await page.locator("#latency-exchange").text_content() or ""
    assert "-" not in latency.replace(" / ", ""), f"negative latency shown: {latency}"
    await page.screenshot(path=str(screenshots / "desktop.png"), full_page=True)

    # 5m: every bar in view, and the chart not mostly empty.
    await page.click('#timeframes button[data-timeframe="5m"]')
    assert await card.get_attribute("data-timeframe") == "5m"
    fives = await page.evaluate("window.dashboard.drawnCandles('BTC/USDT')")
    span = await page.evaluate("window.dashboard.state.charts.get('BTC/USDT')"
                               ".chart.timeScale().getVisibleLogicalRange()")
    assert fives >= 12
    assert span["from"] <= 0 and span["to"] >= fives - 1, "every 5m bar is in view"
    assert span["to"] - span["from"] <= fives + 4, "the 5m bars fill the chart's width"
    header, drawn_all = await drawn_bar_count(page)
    assert header == drawn_all
    assert await page.locator("#bar-count-label").text_content() == "bars 5m"
    await page.screenshot(path=str(screenshots / "desktop-5m.png"), full_page=True)

    # The symbol switch shows one symbol's chart.
    await page.click('#symbol-switch button[data-symbol="ETH/USDT"]')
    assert await page.locator('article[data-symbol="ETH/USDT"]').is_visible()
    assert await card.is_hidden()
    header, drawn_eth = await drawn_bar_count(page)
    assert header == drawn_eth == await page.evaluate(
        "window.dashboard.drawnCandles('ETH/USDT')")
    await page.click('#symbol-switch button[data-symbol="all"]')
    assert await card.is_visible()
    await page.close()


async def phone(browser: Any, url: str, screenshots: Path, errors: list[str]) -> None:
    page = await open_page(browser, f"{url}/", 390, 844, errors)
    await page.wait_for_function(
        "window.dashboard.completedCount('BTC/USDT', '1m') >= 2", timeout=WAIT_MS)
    await page.wait_for_function(
        "document.getElementById('health').textContent !== 'connecting…'", timeout=WAIT_MS)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    assert await page.evaluate("window.dashboard.shownSymbols()") == ["BTC/USDT"], \
        "a phone shows one chart at a time"
    await page.click('#symbol-switch button[data-symbol="ETH/USDT"]')
    assert await page.locator('article[data-symbol="ETH/USDT"]').is_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(screenshots / "phone.png"), full_page=True)
    await page.close()
    assert (screenshots / "phone.png").stat().st_size > 10_000
