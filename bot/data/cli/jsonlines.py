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
import functools
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
    if not fraction:
        return f"{_second(seconds)}Z"
    if not fraction % 1_000_000:
        return f"{_second(seconds)}.{fraction // 1_000_000:03d}Z"
    if not fraction % 1_000:
        return f"{_second(seconds)}.{fraction // 1_000:06d}Z"
    return f"{_second(seconds)}.{fraction:09d}Z"


@functools.lru_cache(maxsize=1024)
def _second(seconds: int) -> str:
    """The whole-second part of :func:`iso_utc` (a stream writes the same second many times)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def rounded(value: float) -> float | None:
    """``value`` to :data:`SIGNIFICANT_DIGITS` significant digits; None for NaN or infinity."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data written as the module docstring says."""
    convert = _CONVERTERS.get(type(value))
    if convert is None:
        convert = _CONVERTERS[type(value)] = _converter(type(value))
    return convert(value)


def _same(value: Any) -> Any:
    return value


def _items(values: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [plain(item) for item in values]


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in INSTANT_FIELDS and (value is None or type(value) is int):
            out[name] = None if value is None else iso_utc(value)
            out[f"{name}_ns"] = value
        elif name in _INSTANT_NS_FIELDS and type(value) is int:
            out.setdefault(name[:-3], iso_utc(value))
            out[name] = value
        else:
            out[name] = plain(value)
    return out


def _bar(bar: Bar) -> dict[str, Any]:
    return _fields({**msgspec.structs.asdict(bar), "vwap": bar.vwap})


def _struct(record: msgspec.Struct) -> dict[str, Any]:
    return _fields(msgspec.structs.asdict(record))


def _flag_names(flags: enum.IntFlag) -> list[str]:
    return [flag.name for flag in type(flags) if flag in flags and flag.name is not None]


def _enum_value(member: enum.Enum) -> Any:
    return member.value


def _converter(kind: type) -> Callable[[Any], Any]:
    """How values of ``kind`` are written; found once per type, then looked up."""
    if issubclass(kind, Bar):
        return _bar
    if issubclass(kind, msgspec.Struct):
        return _struct
    if issubclass(kind, enum.IntFlag):
        return _flag_names
    if issubclass(kind, enum.Enum):
        return _enum_value
    if issubclass(kind, float):
        return rounded
    if issubclass(kind, dict):
        return _fields
    if issubclass(kind, (list, tuple)):
        return _items
    return _same


_INSTANT_NS_FIELDS = frozenset(f"{name}_ns" for name in INSTANT_FIELDS)
_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    float: rounded, int: _same, str: _same, bool: _same, type(None): _same, dict: _fields,
    list: _items, tuple: _items}


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
