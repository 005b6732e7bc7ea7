"""Damaged part files: found while reading, reported once, skipped, or moved aside.

A part file the recorder wrote is whole (see :mod:`bot.data.store.files`), but a
store also meets disks that fail, copies cut short and hands that edit it: an
empty, truncated or garbage ``part-*.parquet`` would otherwise make every read
of its series raise. Readers skip such a file and go on with the rest; the
first time it is met a WARNING names it and the error, and it stays listed.

Moving it aside (to ``<root>/quarantine/`` with its path below the root kept)
is a write to the store, so only the store's writer does it: a
:class:`~bot.data.store.TradeStore` moves files only when asked to
(``move_unreadable``), which the recorder's own store is while it holds the
writer lock. A plain reader may be read-only, or someone else's, and a file
vanishing under its owner's feet would be a surprise; it skips and reports.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.data.store.files import move_aside

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnreadableFile:
    """A part file that could not be read: where it was, why, and where it went if moved."""

    path: str
    error: str
    moved_to: str | None = None


class UnreadableFiles:
    """The damaged files one reader has met, skipped on every later read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.move = False
        self._found: dict[str, UnreadableFile] = {}
        # Files left in place, by (size, mtime): a file written later under the same
        # name (after the damaged one was moved away or replaced) is read again.
        self._skipped: dict[Path, tuple[int, int]] = {}

    def usable(self, files: list[Path]) -> list[Path]:
        """``files`` without those known to be damaged (stat only while some are known)."""
        if not self._skipped:
            return files
        return [f for f in files if f not in self._skipped or _signature(f) != self._skipped[f]]

    @property
    def any_skipped(self) -> bool:
        """Whether a damaged file is still in the tree (so globs over it would fail)."""
        return bool(self._skipped)

    def report(self, path: Path, error: BaseException) -> None:
        """Record a damaged file: WARNING once, then skipped; moved aside when ``move`` is set."""
        reason = f"{type(error).__name__}: {' '.join(str(error).split())}"  # one line
        moved_to = None
        # A file this process may not read is not damaged: it stays where its owner put it.
        if self.move and not isinstance(error, PermissionError):
            try:
                moved_to = move_aside(self.root, path)
            except OSError as exc:
                logger.warning("store: cannot move unreadable file %s aside: %s", path, exc)
        if moved_to is None:
            signature = _signature(path)
            if signature is not None:
                self._skipped[path] = signature
        entry = UnreadableFile(str(path), reason, None if moved_to is None else str(moved_to))
        self._found[entry.path] = entry
        if moved_to is not None:
            logger.warning("store: unreadable file %s (%s) moved to %s; reading goes on "
                           "without it", path, reason, moved_to)
        else:
            logger.warning("store: unreadable file %s (%s) skipped; reading goes on "
                           "without it", path, reason)

    def to_list(self) -> list[dict[str, str | None]]:
        """Every damaged file met, as plain dicts (for health and the CLI)."""
        return [asdict(entry) for entry in self._found.values()]


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
