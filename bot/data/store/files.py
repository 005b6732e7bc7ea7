"""Crash-safe file operations of the store: atomic Parquet writes and partition retention.

A data file appears under its final name only once it is complete and on disk:
it is written to a hidden temporary file in the same directory, fsynced, renamed
over the final name with ``os.replace`` (atomic on POSIX within one file
system), and the directory is fsynced so the rename itself survives a power
cut. A crash at any point leaves either no file or a whole one; what it can
leave behind is a hidden ``.part-*.tmp`` file, which readers never match and
:func:`remove_temp_files` clears.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bot.data.errors import StreamError
from bot.data.store.layout import date_partitions, part_files, part_number

TEMP_GLOB = ".part-*.tmp"


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


def write_parquet_atomic(table: pa.Table, path: Path, compression: str = "zstd") -> None:
    """Write ``table`` to ``path`` so that ``path`` is never seen incomplete.

    Raises :class:`StoreError` (an OSError) naming ``path`` when the directory
    cannot be created or the disk refuses the write; the temporary file is
    removed in that case.
    """
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError("create directory", directory, exc) from exc
    temp = directory / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(temp, "wb") as fh:
            pq.write_table(table, fh, compression=compression)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
        _fsync_directory(directory)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise StoreError("write", path, exc) from exc


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temp_files(root: Path) -> int:
    """Delete temporary files a crashed writer left under ``root``; returns how many.

    Only safe while no other writer works under ``root`` (one recorder per root).
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
