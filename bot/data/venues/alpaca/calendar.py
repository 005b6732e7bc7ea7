"""NYSE's regular session: when US stocks are expected to trade.

9:30 to 16:00 New York time on weekdays, except the exchange's holidays, and to
13:00 on its early-close days. The holidays and early closes follow NYSE Rule
7.2's fixed rules, plus the closures the exchange announced on its own
(:data:`UNSCHEDULED_CLOSURES`: national days of mourning, storms), which no rule
foresees: a new one must be added there. A small table rather than a calendar
library, because health needs one yes/no per check and nothing of a general
calendar; ``tests/test_nyse.py`` checks every session from 2005 to 2035 against
the ``exchange_calendars`` XNYS calendar.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
JUNETEENTH_FIRST_YEAR = 2022

UNSCHEDULED_CLOSURES = frozenset({
    date(2001, 9, 11), date(2001, 9, 12), date(2001, 9, 13), date(2001, 9, 14),  # 9/11
    date(2004, 6, 11),  # President Reagan's funeral
    date(2007, 1, 2),  # President Ford's national day of mourning
    date(2012, 10, 29), date(2012, 10, 30),  # Hurricane Sandy
    date(2018, 12, 5),  # President George H. W. Bush's national day of mourning
    date(2025, 1, 9),  # President Carter's national day of mourning
})


def nyse_open(now_ns: int) -> bool:
    """True while NYSE's regular session is open at ``now_ns`` (ns since the epoch, UTC)."""
    local = datetime.fromtimestamp(now_ns // 10**9, NEW_YORK)
    day = local.date()
    if day.weekday() >= 5 or day in holidays(day.year):
        return False
    close = EARLY_CLOSE if day in early_closes(day.year) else CLOSE
    return OPEN <= local.time() < close


@functools.lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """The weekdays of ``year`` on which NYSE is closed."""
    days = {
        _new_years_day(year),
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day: third Monday of January
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday: third Monday of February
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day: last Monday of May
        _observed(date(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day: first Monday of September
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving: fourth Thursday of November
        _observed(date(year, 12, 25)),  # Christmas
    }
    if year >= JUNETEENTH_FIRST_YEAR:
        days.add(_observed(date(year, 6, 19)))
    days |= {d for d in UNSCHEDULED_CLOSURES if d.year == year}
    return frozenset(d for d in days if d is not None and d.year == year)


@functools.lru_cache(maxsize=64)
def early_closes(year: int) -> frozenset[date]:
    """The days of ``year`` on which NYSE closes at 13:00: the day before Independence
    Day, the day after Thanksgiving and Christmas Eve, each when it is a trading day."""
    days = {date(year, 7, 3), _nth_weekday(year, 11, 3, 4) + timedelta(days=1),
            date(year, 12, 24)}
    return frozenset(d for d in days if d.weekday() < 5 and d not in holidays(year))


def _new_years_day(year: int) -> date | None:
    """January 1, or Monday the 2nd for a Sunday; a Saturday's is not observed (Rule 7.2)."""
    day = date(year, 1, 1)
    if day.weekday() == 5:
        return None
    return day + timedelta(days=1) if day.weekday() == 6 else day


def _observed(day: date) -> date:
    """A fixed holiday on a weekend moves to the Friday before or the Monday after."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    return day + timedelta(days=1) if day.weekday() == 6 else day


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    last = following - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)
