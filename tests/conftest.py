"""Suite-wide guard: no test may leave venue endpoints or keys in the environment.

Configs read BINANCE_* / ALPACA_* variables at construction, so a leaked value
silently points every later test at a server that no longer exists.

Also: the fault catalogue's run summaries end the pytest output (collected from the
test reports, so they arrive from the workers of a parallel run too).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.fakex import FakeBinance

FAULT_SUMMARY_PROPERTY = "fault_catalogue"  # the property tests/test_fault_catalogue.py records
_fault_summaries: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _fault_summaries.extend(str(value) for name, value in report.user_properties
                                if name == FAULT_SUMMARY_PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _fault_summaries:
        terminalreporter.write_sep("-", "fault catalogue")
        for text in _fault_summaries:
            terminalreporter.write_line(text)

WATCHED = ("BINANCE_WS_URL", "BINANCE_REST_URL", "ALPACA_WS_URL", "ALPACA_REST_URL",
           "ALPACA_TRADING_URL",
           "ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY")


@pytest.fixture(autouse=True)
def _environment_left_as_found() -> Iterator[None]:
    before = {key: os.environ.get(key) for key in WATCHED}
    yield
    leaked = {key for key in WATCHED if os.environ.get(key) != before[key]}
    for key in leaked:  # restore, so one leak does not fail every later test too
        if before[key] is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before[key]  # type: ignore[assignment]
    assert not leaked, f"the test changed the environment: {sorted(leaked)}"


@pytest.fixture(autouse=True)
def _fresh_symbol_listings() -> Iterator[None]:
    """Each test starts without cached venue listings: simulators of earlier tests may have
    listed other symbols on the same port."""
    from bot.data.listing import LISTINGS

    LISTINGS.clear()
    yield
    LISTINGS.clear()


@pytest.fixture
async def fx(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBinance]:
    """The independent scripted fake Binance, started, with the environment pointed at it."""
    fake = FakeBinance()
    await fake.start()
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    yield fake
    await fake.stop()
