"""NYSE's regular session from the built-in rule table equals the exchange_calendars XNYS
calendar (an independent, maintained source), session by session, 2005 to 2035."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.data.venues.alpaca.calendar import early_closes, holidays, nyse_open

xcals = pytest.importorskip("exchange_calendars")
pytestmark = pytest.mark.filterwarnings("ignore:Series.values returning")
FIRST, LAST = date(2005, 1, 1), date(2035, 12, 31)
MINUTE = timedelta(minutes=1)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9


@pytest.fixture(scope="module")
def xnys() -> object:
    return xcals.get_calendar("XNYS", start=FIRST.isoformat(), end=LAST.isoformat())


def test_trading_days_are_the_calendars_sessions(xnys: object) -> None:
    sessions = {ts.date() for ts in xnys.sessions}  # type: ignore[attr-defined]
    ours = set()
    day = FIRST
    while day <= LAST:
        if day.weekday() < 5 and day not in holidays(day.year):
            ours.add(day)
        day += timedelta(days=1)
    assert sorted(ours - sessions) == [] and sorted(sessions - ours) == []


def test_early_closes_are_the_calendars(xnys: object) -> None:
    schedule = xnys.schedule  # type: ignore[attr-defined]
    theirs = {session.date() for session, close in schedule["close"].items()
              if close.tz_convert("America/New_York").hour < 16}
    ours = {d for year in range(FIRST.year, LAST.year + 1) for d in early_closes(year)}
    assert sorted(ours - theirs) == [] and sorted(theirs - ours) == []


def test_open_exactly_from_the_open_to_the_close_of_every_session(xnys: object) -> None:
    wrong = []
    for _session, row in xnys.schedule.iterrows():  # type: ignore[attr-defined]
        opens, closes = row["open"].to_pydatetime(), row["close"].to_pydatetime()
        for moment, expected in ((opens - MINUTE, False), (opens, True),
                                 (closes - MINUTE, True), (closes, False)):
            if nyse_open(_ns(moment)) is not expected:
                wrong.append((moment.isoformat(), expected))
    assert wrong == []


def test_weekends_holidays_and_nights_are_closed() -> None:
    assert not nyse_open(_ns(datetime(2026, 12, 25, 15, 0, tzinfo=UTC)))  # Christmas
    assert not nyse_open(_ns(datetime(2026, 11, 28, 15, 0, tzinfo=UTC)))  # a Saturday
    assert not nyse_open(_ns(datetime(2026, 11, 30, 3, 0, tzinfo=UTC)))  # a Monday night
    assert nyse_open(_ns(datetime(2026, 11, 30, 15, 0, tzinfo=UTC)))  # Monday 10:00 New York
    assert not nyse_open(_ns(datetime(2025, 1, 9, 15, 0, tzinfo=UTC)))  # day of mourning
