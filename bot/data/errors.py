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

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}={value!r} is invalid: {allowed}")


class UnknownSeriesError(StreamError, KeyError):
    """A symbol or timeframe was asked for that is not subscribed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
