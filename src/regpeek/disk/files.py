"""Small file operations shared by the layout and the cache: safe opens, atomic writes, a lock, copies.

Every open here refuses to follow a symbolic link in the last component (``O_NOFOLLOW``) and will not
block on a FIFO planted in place of a file (``O_NONBLOCK``, then the file must be a regular file);
files are created with an explicit mode, temporary files exclusively (``O_EXCL``). A path that is a
symbolic link, or not a regular file where one is expected, raises :class:`UnsafePathError` (exit 2):
regpeek runs as root in many pipelines, and a link planted by another user must never make it
create, truncate or append to a file elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from regpeek.errors import UnsafePathError

__all__ = [
    "UnsafePathError",
    "clone_file",
    "exclusive_lock",
    "fsync_dir",
    "held_claim",
    "open_regular",
    "private_directory",
    "write_file_atomically",
]

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
#: ``ioctl(dest, FICLONE, source)``: share the source's extents (btrfs, XFS with reflink, ...).
_FICLONE = 0x40049409


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename into it, say) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_regular(path: Path | str, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """``os.open`` with ``O_NOFOLLOW``: the file descriptor of a regular file, never of what a symbolic
    link points at. Raises :class:`UnsafePathError` for a link or a non-regular file, ``OSError``
    (``FileNotFoundError`` above all) otherwise. The descriptor is blocking again when returned."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafePathError(f"refusing to use {path}: it is a symbolic link") from None
        if error.errno == errno.ENXIO:  # a FIFO without a reader, a socket, a device without its driver
            raise UnsafePathError(f"refusing to use {path}: it is not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(f"refusing to use {path}: it is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def write_file_atomically(
    path: Path | str, *, durable: bool = True, suffix: str = ".tmp", mode: int = 0o666
) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file beside it, renamed into place only on success.

    A reader never sees a partial file; the temporary file (``.NAME.<pid>-<random><suffix>``, created
    with ``O_EXCL`` and ``mode`` less the umask) is removed on failure. ``durable`` fsyncs the content
    before the rename (a cache does not need that). The rename replaces whatever ``path`` was, a
    symbolic link included, and never writes through one.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}{suffix}")
    try:
        fd = open_regular(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with open(fd, "wb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive_lock(path: Path, *, mode: int = 0o644, private: bool = False) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created with ``mode`` if missing) for the ``with`` block.

    The lock file is opened read-only (``flock`` needs no more) and never through a symbolic link;
    ``private`` also requires it to be the user's own file with a single link.
    """
    fd = open_regular(path, os.O_RDONLY | os.O_CREAT, mode)
    try:
        if private:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or info.st_nlink != 1:
                raise UnsafePathError(f"refusing to use {path}: it is not a private file of this user")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def held_claim(path: Path, *, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` for the ``with`` block, and remove the file at
    the end (so claims leave nothing behind).

    The classic race of removing a lock file is closed by checking, once the lock is held, that the
    file locked is still the one at ``path`` (same inode); a waiter that locked a file removed
    meanwhile opens ``path`` again. The kernel drops the lock of a process that dies, so a claim
    never outlives its holder. Opened with ``O_NOFOLLOW`` (a symbolic link there is refused).
    """
    while True:
        fd = open_regular(path, os.O_RDONLY | os.O_CREAT, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # releases the lock, after the name is gone


def private_directory(path: Path, *, create: bool, follow: bool = False) -> bool:
    """Check (and with ``create``, make) a directory only the current user may use, as ssh does.

    The directory must be owned by the effective user; it is made mode 0700 if it is not already.
    ``follow`` allows ``path`` itself to be a symbolic link to such a directory (a cache root the user
    named); otherwise a link is refused. Returns False when it is missing and ``create`` is False.
    Raises :class:`UnsafePathError` for a directory owned by someone else or a symbolic link, and
    ``OSError`` when it cannot be created or is not a directory.
    """
    look = os.stat if follow else os.lstat
    try:
        info = look(path)
    except FileNotFoundError:
        if not create:
            return False
        if follow:
            path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # a concurrent regpeek made it: checked below
            os.mkdir(path, 0o700)
        info = look(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePathError(f"refusing to use {path}: it is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    me = os.geteuid()
    if info.st_uid != me:
        raise UnsafePathError(
            f"refusing to use {path}: it is owned by uid {info.st_uid}, not by you (uid {me}); "
            "give another --cache-dir, or --no-cache"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return True


def clone_file(source: int, dest: int) -> bool:
    """Make ``dest`` share ``source``'s data with a reflink (``FICLONE``); False where unsupported
    (ext4, tmpfs, another filesystem), and ``dest`` is then untouched."""
    try:
        fcntl.ioctl(dest, _FICLONE, source)
    except OSError:
        return False
    return True
