"""Rate-limited logging, so a fault repeated a million times costs one line a period."""

from __future__ import annotations

import logging
import time


class LogThrottle:
    """Logs the first occurrence of each key at once, then at most once per ``period``.

    Each later line says how many occurrences it stands for, so nothing is hidden,
    only summarised.
    """

    def __init__(self, logger: logging.Logger, period: float = 10.0) -> None:
        self._logger = logger
        self._period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, key: str, level: int, message: str, *args: object,
            exc_info: BaseException | None = None) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._period:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (%d more since the last report)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args, exc_info=exc_info)
