"""Events as JSON lines, for ``bot-stream live --json`` and anything that reads a pipe.

One line per event: ``{"type", "timestamp", "timestamp_ns", "source", "data"}``.
The format is written for people and for programs alike:

* an instant is an ISO 8601 UTC string with as many fractional digits as it
  needs (``"2025-01-01T00:00:00.123Z"``), and the exact nanoseconds beside it
  under the same name plus ``_ns`` (``timestamp``/``timestamp_ns``,
  ``open_time``/``open_time_ns``, ...);
* a float is rounded to :data:`SIGNIFICANT_DIGITS` significant digits, so a
  price reads as the exchange printed it (``0.13089``, not
  ``0.13089000000000015``) and a sum of volumes without binary noise; NaN is
  null (the ``vwap`` of a bar without volume);
* a bar's ``flags`` is the list of its flag names (``["PARTIAL"]``, ``[]``),
  and it carries its ``vwap``;
* ticks, signals, predictions and ticker updates are their fields, nested
  records (a signal's bar and prediction) written the same way.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO

import msgspec

from bot.data.events import StreamEvent
from bot.data.models import Bar
from bot.data.timeframes import NS_PER_SECOND

SIGNIFICANT_DIGITS = 12
# Integer fields holding an instant in ns since the epoch; written as ISO text plus ``NAME_ns``.
INSTANT_FIELDS = frozenset({"timestamp", "receive_timestamp", "open_time", "close_time",
                            "bar_open_time"})

_encoder = msgspec.json.Encoder(enc_hook=str)  # a payload type msgspec does not know: its text


def iso_utc(ns: int) -> str:
    """``ns`` since the epoch as ISO 8601 UTC, with 0, 3, 6 or 9 fractional digits (exact)."""
    seconds, fraction = divmod(ns, NS_PER_SECOND)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        digits = f"{fraction:09d}"
        while digits.endswith("000"):
            digits = digits[:-3]
        text += "." + digits
    return text + "Z"


def rounded(value: float) -> float | None:
    """``value`` to :data:`SIGNIFICANT_DIGITS` significant digits; None for NaN or infinity."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data written as the module docstring says."""
    if isinstance(value, enum.IntFlag):
        return [flag.name for flag in type(value) if flag in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return rounded(value)
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, Bar):
        return _fields({**msgspec.structs.asdict(value), "vwap": value.vwap})
    if isinstance(value, msgspec.Struct):
        return _fields(msgspec.structs.asdict(value))
    if isinstance(value, dict):
        return _fields(value)
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in INSTANT_FIELDS and (value is None or type(value) is int):
            out[name] = None if value is None else iso_utc(value)
            out[f"{name}_ns"] = value
        elif name.endswith("_ns") and name[:-3] in INSTANT_FIELDS and type(value) is int:
            out.setdefault(name[:-3], iso_utc(value))
            out[name] = value
        else:
            out[name] = plain(value)
    return out


def encode_event(event: StreamEvent) -> bytes:
    """One event as a JSON line (newline included)."""
    return _encoder.encode({"type": event.type.value, "timestamp": iso_utc(event.timestamp),
                            "timestamp_ns": event.timestamp, "source": event.source,
                            "data": plain(event.data)}) + b"\n"


class JsonLinesWriter:
    """A bus handler writing each event to ``out`` and flushing it.

    When the reader goes away (``| head``), ``on_closed`` is called once and
    later events are dropped, so the command can stop cleanly.
    """

    def __init__(self, out: BinaryIO, on_closed: Callable[[], None]) -> None:
        self._out = out
        self._on_closed = on_closed
        self.closed = False

    def __call__(self, event: StreamEvent) -> None:
        if self.closed:
            return
        try:
            self._out.write(encode_event(event))
            self._out.flush()
        except (BrokenPipeError, ValueError):  # ValueError: write to a closed file
            self.closed = True
            self._on_closed()
