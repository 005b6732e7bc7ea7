"""Exception types of the streaming package.

Every error names what was wrong and what is allowed, so a user can fix the call
without reading the source.
"""

from __future__ import annotations


class StreamError(Exception):
    """Base class of every error raised by :mod:`bot.data`."""


class ConfigError(StreamError, ValueError):
    """A configuration value or argument is invalid.

    Raised at construction time, never later, so a bad setting cannot surface
    as a silent misbehaviour in the middle of a trading session.
    """

    VALUE_CHARS = 200  # a longer value is shown cut, so the message stays readable

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}={_short_repr(value, self.VALUE_CHARS)} is invalid: {allowed}")


def _short_repr(value: object, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (huge ints have no repr)."""
    try:
        text = repr(value)
    except Exception:  # e.g. ValueError: an int beyond Python's digit limit for str()
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else f"{text[:limit]}..."


class UnknownSeriesError(StreamError, KeyError):
    """A symbol or timeframe was asked for that is not subscribed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MalformedFrame(StreamError, ValueError):
    """A received frame could not be parsed.

    The transport counts it, logs it once and skips it: bad input never stops a
    stream. The message carries a short sample of the frame so the log shows
    what arrived.
    """

    SAMPLE_CHARS = 160

    def __init__(self, reason: str, frame: bytes | str) -> None:
        if isinstance(frame, (bytes, bytearray, memoryview)):
            frame = bytes(frame[: self.SAMPLE_CHARS * 4]).decode("utf-8", "replace")
        self.reason = reason
        self.sample = frame[: self.SAMPLE_CHARS]
        cut = "..." if len(frame) > self.SAMPLE_CHARS else ""
        super().__init__(f"{reason}; frame: {self.sample!r}{cut}")


class ExchangeError(StreamError):
    """An error the exchange reported on the stream, with its own code and text.

    ``fatal`` is True when reconnecting cannot help (bad credentials, connection
    or symbol limits, a subscription the account does not have): the transport
    surfaces it and stops instead of retrying in a tight loop.
    """

    def __init__(self, venue: str, code: int, text: str, fatal: bool) -> None:
        self.venue = venue
        self.code = code
        self.text = text
        self.fatal = fatal
        kind = "fatal error" if fatal else "error"
        super().__init__(f"{venue} {kind} {code}: {text}")


class MissingCredentialsError(StreamError):
    """Credentials a venue needs are not configured; the message names the variables to set."""


class StartTimeout(StreamError, TimeoutError):
    """``start(timeout=...)`` ran out before the stream was up; ``obstacles`` say what it
    waited for (a REST or connection failure per venue, in one line each)."""

    def __init__(self, timeout: float, obstacles: list[str]) -> None:
        self.timeout = timeout
        self.obstacles = obstacles
        waited = "; ".join(obstacles) if obstacles else "connections and warm-up still running"
        super().__init__(f"not streaming within {timeout:g} s: {waited}")
