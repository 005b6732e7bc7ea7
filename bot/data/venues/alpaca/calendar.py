"""When US stocks trade: NYSE's regular sessions, holidays and early closes included.

Read from the maintained ``exchange_calendars`` XNYS calendar rather than
hand-written hours; loaded on first use (it is heavy).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=1)
def _nyse() -> Any:
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS")


def nyse_open(now_ns: int) -> bool:
    """True while NYSE's regular session is open at ``now_ns`` (holidays and half days known)."""
    import pandas as pd

    cal = _nyse()
    minute = pd.Timestamp(now_ns, unit="ns", tz="UTC").floor("min")
    if minute < cal.first_minute or minute > cal.last_minute:
        return False
    return bool(cal.is_open_on_minute(minute))
