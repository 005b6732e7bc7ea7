"""One writer per store: an exclusive lock on a file in the store's root.

Two recorders writing one tree would interleave their part files and each
believe its numbering; the lock makes the second one fail at once instead.
It is an ``flock`` on ``<root>/.writer.lock``: the kernel releases it when the
holder closes the file or its process dies (even by SIGKILL), so a crashed
writer never leaves the store locked. ``flock`` locks belong to an open file,
not to a process, so a second recorder in the same process is refused too.
The holder writes its pid into the file, for the refusal to name it. Readers
(:class:`~bot.data.store.TradeStore`) never take the lock. On a file system
without locks the writer goes on with a WARNING: the lock cannot be enforced
there, and part files are never overwritten in any case.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path

from bot.data.store.files import StoreError

LOCK_NAME = ".writer.lock"
# errno of a file system that has no locks (some network and FUSE file systems).
_NO_LOCKS = frozenset({errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})

logger = logging.getLogger(__name__)


class StoreLocked(StoreError):
    """Another writer holds the store's lock; names the store and, when known, its pid."""

    def __init__(self, root: Path, holder_pid: int | None) -> None:
        holder = f"process {holder_pid}" if holder_pid is not None else "another process"
        if holder_pid == os.getpid():
            holder = f"another recorder in this process ({holder_pid})"
        super().__init__("lock", root / LOCK_NAME, OSError(
            errno.EWOULDBLOCK, f"store {root} is already being written by {holder}; "
                               "one recorder per store path (stop the other one or choose "
                               "another path)"))
        self.root = root
        self.holder_pid = holder_pid


class WriterLock:
    """The exclusive writer lock of one store root, taken and released explicitly."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now or fail at once; idempotent while held.

        Raises :class:`StoreLocked` when another writer holds it, and
        :class:`StoreError` when the root cannot be created or the lock file
        opened (path is a file, read-only file system, ...).
        """
        if self._fd is not None:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError("create directory", self.root, exc) from exc
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError("create the lock file", self.path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _NO_LOCKS:  # keep writing; part files are never overwritten anyway
                logger.warning("store: %s cannot be locked on this file system (%s); a second "
                               "writer on %s would not be refused", self.path, exc.strerror,
                               self.root)
            else:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise StoreLocked(self.root, holder) from None
                raise StoreError("lock", self.path, exc) from exc
        with contextlib.suppress(OSError):  # the pid is a courtesy to the next writer
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (closing the file releases it); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # no stale pid for the next reader of the file
                os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
