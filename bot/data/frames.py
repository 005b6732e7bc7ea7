"""The one pandas shape of bars and ticks, live or stored, and what counts as a time.

A bar DataFrame, from :meth:`StreamManager.get_bar_dataframe` or
:meth:`TradeStore.bars <bot.data.store.TradeStore.bars>`, is indexed by the bars' UTC
open time (``DatetimeIndex`` named ``open_time``, ``datetime64[ns, UTC]``) and has the
columns :data:`BAR_COLUMNS`; a tick DataFrame is indexed by the trades' UTC exchange
time (named ``timestamp``) and has the columns :data:`TICK_COLUMNS`. Building both
here keeps live and stored data interchangeable in a strategy's code.

pandas is imported when a frame is built, not with this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

BAR_COLUMNS = (
    "open", "high", "low", "close", "volume", "quote_volume", "vwap", "buy_volume",
    "sell_volume", "trade_count", "buy_quote_volume", "first_trade_id", "last_trade_id", "flags",
)
"""Columns of a bar DataFrame, in order; ``vwap`` is ``quote_volume / volume`` (NaN when 0)."""

TICK_COLUMNS = ("venue", "symbol", "trade_id", "price", "volume", "side", "receive_timestamp",
                "conditions", "exchange", "updates")
"""Columns of a tick DataFrame, in order; ``receive_timestamp`` is a UTC datetime too."""

TimeBound = int | str | datetime | date | np.datetime64 | None
"""A time as pandas reads one: ``"2025-01-01"``, a ``datetime`` or ``pd.Timestamp`` (naive
is UTC), a ``date``, a ``numpy.datetime64``, or nanoseconds since the epoch as an ``int``."""

_ALLOWED = ("a date or time string ('2025-01-01', '2025-01-01T12:30:00Z'), a datetime or "
            "pandas Timestamp (naive is UTC), a date, a numpy datetime64, or nanoseconds "
            "since the epoch as an int")


def time_bound_ns(value: object, argument: str) -> int | None:
    """``value`` as nanoseconds since the epoch (UTC); None stays None (no bound).

    Anything else than a :data:`TimeBound` (a float, a bool, a string pandas cannot
    read, NaT) raises ``TypeError`` or ``ValueError`` naming ``argument`` and what is
    allowed: a float of seconds taken for nanoseconds would silently read 1970.
    """
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer | str | datetime
                                                 | date | np.datetime64):
        raise TypeError(f"{argument}={value!r} ({type(value).__name__}) is not a time; "
                        f"give {_ALLOWED}")
    if isinstance(value, int | np.integer):
        return int(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{argument}={value!r} is not a time pandas can read ({exc}); "
                         f"give {_ALLOWED}") from None
    if stamp is pd.NaT:
        raise ValueError(f"{argument}={value!r} is not a time (NaT); give {_ALLOWED}")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def utc_index(nanoseconds: Any, name: str) -> pd.DatetimeIndex:
    """A ``datetime64[ns, UTC]`` index of nanosecond timestamps."""
    import pandas as pd

    values = np.asarray(nanoseconds, dtype="int64")
    return pd.DatetimeIndex(pd.to_datetime(values, unit="ns", utc=True), name=name)


def bar_frame(columns: Mapping[str, Any] | np.ndarray) -> pd.DataFrame:
    """Bars as a DataFrame of :data:`BAR_COLUMNS` indexed by UTC ``open_time``.

    ``columns`` maps ``open_time`` and every bar column but ``vwap`` to arrays (a
    NumPy structured array or a dict of columns both do).
    """
    import pandas as pd

    volume = np.asarray(columns["volume"], dtype="float64")
    quote = np.asarray(columns["quote_volume"], dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(volume > 0, quote / volume, np.nan)
    data = {name: vwap if name == "vwap" else np.asarray(columns[name]) for name in BAR_COLUMNS}
    data["flags"] = data["flags"].astype("uint8")
    return pd.DataFrame(data, index=utc_index(columns["open_time"], "open_time"))


def tick_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """Ticks as a DataFrame of :data:`TICK_COLUMNS` indexed by UTC exchange ``timestamp``."""
    import pandas as pd

    frame = pd.DataFrame({name: _positional(columns[name]) for name in TICK_COLUMNS},
                         index=utc_index(columns["timestamp"], "timestamp"))
    frame["receive_timestamp"] = pd.to_datetime(frame["receive_timestamp"].astype("int64"),
                                                unit="ns", utc=True)
    return frame


def _positional(values: Any) -> Any:
    """Column values pandas places by position (a Series would be aligned by its index)."""
    return values.to_numpy() if hasattr(values, "to_numpy") else values
