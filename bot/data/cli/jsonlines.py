"""Events as JSON lines, for ``bot-stream live --json`` and anything that reads a pipe.

One line per event: ``{"type", "timestamp" (ns), "source", "data"}``. A bar's
``data`` carries its ``vwap`` as well (null for a bar without volume), like
:meth:`Bar.to_dict`; ticks, signals and predictions are their fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

import msgspec

from bot.data.events import StreamEvent
from bot.data.models import Bar

_encoder = msgspec.json.Encoder(enc_hook=str)  # a payload type msgspec does not know: its text


def encode_event(event: StreamEvent) -> bytes:
    """One event as a JSON line (newline included)."""
    data = event.data.to_dict() if isinstance(event.data, Bar) else event.data
    return _encoder.encode({"type": event.type.value, "timestamp": event.timestamp,
                            "source": event.source, "data": data}) + b"\n"


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
