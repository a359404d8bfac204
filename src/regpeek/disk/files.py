"""Small file operations shared by the layout and the cache: atomic writes and an exclusive lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["exclusive_lock", "fsync_dir", "write_file_atomically"]


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename into it, say) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def write_file_atomically(
    path: Path | str, *, durable: bool = True, suffix: str = ".tmp"
) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file beside it, renamed into place only on success.

    A reader never sees a partial file; the temporary file (``.NAME.<pid>-<random><suffix>``) is removed
    on failure. ``durable`` fsyncs the content before the rename (a cache does not need that).
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")
    try:
        with open(temp, "wb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block."""
    with open(path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
