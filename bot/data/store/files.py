"""Crash-safe file operations of the store: atomic Parquet writes and partition retention.

A data file appears under its final name only once it is complete and on disk:
it is written to a hidden temporary file in the same directory, fsynced, linked
to the final name (atomic on POSIX within one file system, and refused when the
name is taken, so no file is ever replaced), and the directory is fsynced so
the link itself survives a power cut. A crash at any point leaves either no
file or a whole one; what it can leave behind is a hidden ``.part-*.tmp`` file,
which readers never match and :func:`remove_temp_files` clears.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bot.data.errors import StreamError
from bot.data.store.layout import date_partitions, part_files, part_number

TEMP_GLOB = ".part-*.tmp"
QUARANTINE_DIR = "quarantine"  # under the root: damaged files moved out of the tree
_MAX_NAME_TRIES = 1000
# errno of a link(2) refused because the file system has no hard links.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


class StoreError(StreamError, OSError):
    """Writing to or reading from the store failed; names the path and the cause.

    An :class:`OSError` (errno and filename are those of the cause), so code that
    handles disk errors handles it too.
    """

    def __init__(self, action: str, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot {action} {path}: {cause.strerror or cause}",
                         str(path))
        self.action = action
        self.path = path
        self.cause = cause

    def __str__(self) -> str:
        return str(self.strerror)


def next_part_number(directory: Path) -> int:
    """One more than the highest ``part-<n>`` in ``directory`` (0 when there is none)."""
    numbers = [n for p in part_files(directory) if (n := part_number(p)) is not None]
    return max(numbers, default=-1) + 1


def write_part(table: pa.Table, directory: Path, number: int,
               compression: str = "zstd") -> Path:
    """Write ``table`` as ``directory/part-<n>.parquet``, never seen incomplete; returns the path.

    ``n`` is the first free number from ``number`` on: the file is published
    with a hard link, which fails rather than replace a file of that name, so a
    part file is never overwritten, whoever else writes beside this writer.
    Raises :class:`StoreError` (an OSError) naming the file when the directory
    cannot be created or the disk refuses the write; no temporary file is left.
    """
    target = directory / f"part-{number}.parquet"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError("create directory", directory, exc) from exc
    temp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".part-{number}.", suffix=".tmp", dir=directory)
        temp = Path(name)
        with open(fd, "wb") as fh:
            pq.write_table(table, fh, compression=compression)
            fh.flush()
            os.fsync(fh.fileno())
        target = _publish(temp, directory, number)
        temp.unlink(missing_ok=True)  # linked: drop the temporary name (renamed: gone)
        _fsync_directory(directory)
    except OSError as exc:
        raise StoreError("write", target, exc) from exc
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return target


def _publish(temp: Path, directory: Path, number: int) -> Path:
    """Give ``temp`` the name ``part-<n>.parquet`` of the first free ``n >= number``."""
    for _ in range(_MAX_NAME_TRIES):
        target = directory / f"part-{number}.parquet"
        try:
            _link_without_replacing(temp, target)
            return target
        except FileExistsError:  # another writer took the name: list again, take the next
            number = max(number + 1, next_part_number(directory))
    raise FileExistsError(errno.EEXIST, f"no free part file name after {_MAX_NAME_TRIES} tries",
                          str(directory))


def _link_without_replacing(temp: Path, target: Path) -> None:
    try:
        os.link(temp, target)
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # A file system without hard links: check, then rename (the writer lock keeps
        # other writers out, so nothing comes between the two).
        if target.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from exc
        os.rename(temp, target)


def move_aside(root: Path, path: Path) -> Path:
    """Move a damaged file under ``root/quarantine/``, keeping its path below ``root``.

    A file already there of that name is kept: the new one gets a ``.<n>``
    suffix. Returns where the file went; raises OSError when it cannot move.
    """
    target = root / QUARANTINE_DIR / path.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = 0
    while target.exists():
        suffix += 1
        target = target.with_name(f"{path.name}.{suffix}")
    os.rename(path, target)
    return target


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temp_files(root: Path) -> int:
    """Delete temporary files a crashed writer left under ``root``; returns how many.

    Only safe while no other writer works under ``root``: call it holding the writer lock.
    """
    removed = 0
    for temp in root.glob(f"kind=*/*/*/*/{TEMP_GLOB}"):
        temp.unlink(missing_ok=True)
        removed += 1
    return removed


def remove_partitions_before(root: Path, cutoff: date) -> list[Path]:
    """Delete every date partition older than ``cutoff``; returns the deleted directories."""
    removed = []
    for series in root.glob("kind=*/venue=*/symbol=*"):
        for day, directory in date_partitions(series):
            if day < cutoff:
                shutil.rmtree(directory)
                removed.append(directory)
    return removed
