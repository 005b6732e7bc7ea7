"""Exact RFC 3339 timestamps to integer nanoseconds since the epoch.

Alpaca sends trade times as RFC 3339 strings with up to nine fractional digits
(``"2024-03-12T10:27:48.858228144Z"``). ``datetime`` keeps only microseconds
and a float cannot hold nanoseconds since 1970 exactly, so the fraction is
parsed as an integer and added to whole seconds computed with integer
arithmetic. Whole seconds are cached: trades of one second share them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_DATE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)", re.ASCII)
_OFFSET = re.compile(r"([+-])(\d\d):(\d\d)", re.ASCII)
_NS_DIGITS = 9


def parse_rfc3339_ns(text: str) -> int:
    """``"2021-10-13T08:00:01.024327168Z"`` -> nanoseconds since the UTC epoch, exactly.

    Accepts a fraction of 1 to 9 digits and a ``Z`` or ``±HH:MM`` offset.
    Raises ValueError for anything else, including leap seconds (``:60``) and
    fractions finer than a nanosecond, which cannot be represented exactly.
    """
    seconds = _whole_seconds(text[:19])
    tail = text[19:]
    if tail[-1:] in ("Z", "z"):
        tail = tail[:-1]
    else:
        offset = _OFFSET.fullmatch(tail[-6:])
        if offset is None:
            raise ValueError(f"{text!r} has no 'Z' or '+HH:MM' offset (RFC 3339)")
        sign, hours, minutes = offset.groups()
        if int(hours) > 23 or int(minutes) > 59:
            raise ValueError(f"{text!r} has an invalid UTC offset")
        shift = int(hours) * 3600 + int(minutes) * 60
        seconds -= shift if sign == "+" else -shift
        tail = tail[:-6]
    if not tail:
        return seconds * 1_000_000_000
    digits = tail[1:]
    if tail[0] != "." or not 1 <= len(digits) <= _NS_DIGITS or not (
            digits.isascii() and digits.isdigit()):
        raise ValueError(f"{text!r} has an invalid fraction of a second (1 to 9 digits)")
    return seconds * 1_000_000_000 + int(digits) * 10 ** (_NS_DIGITS - len(digits))


@lru_cache(maxsize=4096)
def _whole_seconds(date_time: str) -> int:
    """``"YYYY-MM-DDTHH:MM:SS"`` (as UTC) -> seconds since the epoch; validates the calendar."""
    match = _DATE_TIME.fullmatch(date_time)
    if match is None:
        raise ValueError(f"{date_time!r} does not start with YYYY-MM-DDTHH:MM:SS (RFC 3339)")
    year, month, day, hour, minute, second = map(int, match.groups())
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return (moment - _EPOCH) // _SECOND
