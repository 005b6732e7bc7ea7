"""The dashboard in headless Chromium against the simulator: candles appear, grow and equal the
exchange's klines; signals become markers; a screenshot is kept under test-artifacts/."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.data.dashboard import DashboardServer
from bot.data.events import EventType
from bot.data.models import Prediction, Signal, SignalDirection
from tests.dashboard.support import e8, kline_ohlc_e8, streaming

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 30_000


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


async def test_dashboard_draws_the_exchanges_candles_live_with_signal_markers(
        browser: Any) -> None:
    async with streaming(["1m", "5m"]) as (sim, manager), DashboardServer(manager) as server:
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        await page.goto(f"{server.url}/")
        count = "() => window.dashboard.completedCount('BTC/USDT', '1m')"
        await page.wait_for_function(f"({count})() >= 2", timeout=WAIT_MS)
        before = await page.evaluate(count)
        await page.wait_for_function(f"({count})() >= {before + 2}", timeout=WAIT_MS)
        card = page.locator('article[data-symbol="BTC/USDT"]')
        drawn = int(await card.get_attribute("data-candles") or 0)
        assert drawn == await page.evaluate(
            "window.dashboard.drawnCandles('BTC/USDT')"), "the chart holds every candle"
        assert drawn >= before + 2
        visible = await page.evaluate("window.dashboard.state.charts.get('BTC/USDT')"
                                      ".chart.timeScale().getVisibleLogicalRange()")
        assert visible["from"] <= 0 and visible["to"] >= drawn - 1, "every candle is in view"

        candles = await page.evaluate("window.dashboard.candles('BTC/USDT', '1m')")
        complete = set(await page.evaluate(
            "[...window.dashboard.state.series.get('BTC/USDT|1m').completed]"))
        truth = kline_ohlc_e8(sim, "BTC/USDT", "1m")
        checked = [c for c in candles if c["time"] in complete and not c["flags"]]
        assert len(checked) >= 2
        for c in checked:
            assert e8(c["open"], c["high"], c["low"], c["close"]) == truth[c["time"]]

        bar = manager.get_bars("BTC/USDT", "1m")[-1]
        prediction = Prediction("BTC/USDT", "1m", bar.open_time, 0.2, "test", 0)
        manager.bus.emit(EventType.SIGNAL, Signal("BTC/USDT", SignalDirection.SELL, 0.8, bar,
                                                  prediction, bar.close_time))
        await page.wait_for_function(
            "document.querySelector('article[data-symbol=\"BTC/USDT\"]').dataset.markers === '1'",
            timeout=WAIT_MS)
        await page.wait_for_function(
            "document.getElementById('health').textContent === 'healthy'", timeout=WAIT_MS)

        await page.click('#timeframes button[data-timeframe="5m"]')
        assert await card.get_attribute("data-timeframe") == "5m"
        await page.click('#timeframes button[data-timeframe="1m"]')
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == [], "the page ran without errors"
