"""A directory tree changed only through file descriptors, so that no path can lead outside it.

:class:`RootDir` holds an open descriptor of the root and resolves every path below it one component at
a time, relative to descriptors it holds, never by handing a path string to the kernel to walk:

* :meth:`RootDir.resolve` follows symlinks *inside* the root, as if the root were ``/`` (an absolute
  target starts again at the root, ``..`` stops there), reading each link with ``readlinkat`` and
  opening each directory with ``openat(O_NOFOLLOW | O_DIRECTORY)`` on its parent's descriptor.  It
  returns the directory's descriptor together with its resolved (symlink-free) components; missing
  directories are created (mode 0700) when asked.
* :meth:`RootDir.open_resolved` reopens a symlink-free path, refusing any symlink on the way: with
  ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`` in one system call where
  the kernel has it (Linux 5.6+), else with the same per-component walk.
* :meth:`RootDir.remove` deletes an entry (a whole tree for a directory) with ``unlinkat``/``rmdir`` on
  descriptors, never following a symlink, holding at most two directory descriptors at a time
  whatever the depth (it climbs back with ``..``, checked against the device and inode it came from).

Descriptors stay bounded: a resolution holds two at a time, and one resolved directory is cached
(:meth:`RootDir.invalidate` drops it; the caller does so whenever it removes a directory or a symlink).

The creation of the root itself (:meth:`RootDir.create`) makes it mode 0700, so that while (and after)
an image is unpacked into it no other user can reach what is inside: setuid binaries, device nodes,
directories the image makes world-writable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from regpeek.disk.layerentry import (
    PARENT_NOT_DIRECTORY,
    SYMLINK_LOOP,
    UNSAFE_WHITEOUT,
    WHITEOUT_PREFIX,
    _Refused,
)
from regpeek.errors import UsageError

__all__ = ["DIR_FLAGS", "RootDir", "openat2_available"]

MAX_SYMLINK_HOPS = 40  # Linux's MAXSYMLINKS
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_A_DIRECTORY = (errno.ELOOP, errno.ENOTDIR)

# linux/openat2.h
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437
_OPENAT2_PATH_MAX = 4000  # longer paths (PATH_MAX is 4096 with its NUL) take the walk  # the same number on every architecture since Linux 5.6 (the unified syscall table)

_Openat2 = Callable[[int, str, int, int], int]
_openat2_cache: list[_Openat2 | None] = []


def _load_openat2() -> _Openat2 | None:
    """``openat2(2)`` through libc's ``syscall``, or None when this system does not have it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long

    class OpenHow(ctypes.Structure):
        _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))

    def openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
        how = OpenHow(flags, 0, resolve)
        fd = int(
            syscall(
                ctypes.c_long(_SYS_OPENAT2),
                ctypes.c_int(dir_fd),
                ctypes.c_char_p(os.fsencode(path)),
                ctypes.byref(how),
                ctypes.c_size_t(ctypes.sizeof(how)),
            )
        )
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        return fd

    # Probe: seccomp filters (containers) and old kernels answer ENOSYS or EPERM.
    try:
        os.close(openat2(os.open("/", DIR_FLAGS), ".", DIR_FLAGS, _RESOLVE_IN_ROOT))
    except OSError:
        return None
    return openat2


def _openat2() -> _Openat2 | None:
    if not _openat2_cache:
        _openat2_cache.append(_load_openat2())
    return _openat2_cache[0]


def openat2_available() -> bool:
    """Whether this kernel (and any seccomp filter around us) offers ``openat2(2)``."""
    return _openat2() is not None


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class RootDir:
    """An open directory that every operation stays inside (see the module docstring).

    ``use_openat2`` = False forces the per-component walk even where the kernel has ``openat2`` (the
    tests run both).  Close it (or use it as a context manager) to release its descriptors.
    """

    def __init__(self, fd: int, path: Path, *, use_openat2: bool | None = None) -> None:
        self.fd = fd
        self.path = path
        self._stat = os.fstat(fd)
        self._openat2 = _openat2() if use_openat2 is not False else None
        self._cached: tuple[tuple[str, ...], int, tuple[str, ...]] | None = None  # (asked, fd, resolved)

    # -- the root itself --------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path | str, *, use_openat2: bool | None = None) -> tuple[RootDir, bool]:
        """Make ``path`` a private (0700) directory and open it; True when it did not exist before.

        An existing directory must be empty; it is made 0700 too.  As root, an existing directory must
        also belong to root: its owner could otherwise change the tree while root fills it.
        """
        target = Path(path)
        created = False
        try:
            os.mkdir(target, 0o700)
            created = True
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(target, 0o700)
            created = True
        except FileExistsError:
            pass
        try:
            fd = os.open(target, DIR_FLAGS)
        except OSError as exc:
            if exc.errno in _NOT_A_DIRECTORY:
                raise UsageError(f"{target} exists and is not a directory") from None
            raise
        try:
            info = os.fstat(fd)
            if not created:
                if os.listdir(fd):
                    raise UsageError(f"{target} exists and is not an empty directory")
                if info.st_uid != os.geteuid():
                    raise UsageError(f"{target} belongs to uid {info.st_uid}, not to the user unpacking")
            if stat.S_IMODE(info.st_mode) != 0o700:
                os.fchmod(fd, 0o700)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, target, use_openat2=use_openat2), created

    def close(self) -> None:
        self.invalidate()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution -------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget the cached directory (call after removing a directory or a symlink)."""
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def resolve(
        self,
        parts: Sequence[str],
        *,
        create: bool,
        made: Callable[[tuple[str, ...]], None] | None = None,
    ) -> tuple[int, tuple[str, ...]] | None:
        """The directory ``parts`` names, symlinks followed inside the root: ``(fd, resolved parts)``.

        The caller owns (and closes) the descriptor.  A missing directory is created (0700, reported to
        ``made``) when ``create``, else the answer is None.  Refusals: a symlink loop, a component that
        is not a directory, a new directory whose name starts with ``.wh.`` (reached through a link).
        """
        asked = tuple(parts)
        cached = self._cached
        if cached is not None and cached[0] == asked:
            return os.dup(cached[1]), cached[2]
        fast = self._openat2 is not None and asked and sum(map(len, asked)) + len(asked) < _OPENAT2_PATH_MAX
        found = self._fast(asked) if fast else None
        if found is None:
            found = self._walk(asked, create=create, made=made)
        if found is None:
            return None
        fd, resolved = found
        self.invalidate()
        self._cached = (asked, os.dup(fd), resolved)
        return fd, resolved

    def _fast(self, parts: tuple[str, ...]) -> tuple[int, tuple[str, ...]] | None:
        """One ``openat2`` for a path with no symlink on the way (the common case); None otherwise."""
        assert self._openat2 is not None
        try:
            fd = self._openat2(
                self.fd,
                "/".join(parts),
                DIR_FLAGS,
                _RESOLVE_IN_ROOT | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS,
            )
        except OSError:
            return None  # a symlink (ELOOP), a missing or non-directory component: walk it
        return fd, parts

    def _walk(
        self,
        parts: tuple[str, ...],
        *,
        create: bool,
        made: Callable[[tuple[str, ...]], None] | None,
    ) -> tuple[int, tuple[str, ...]] | None:
        resolved: list[str] = []
        fd = os.dup(self.fd)
        pending = list(reversed(parts))
        hops = 0
        try:
            while pending:
                part = pending.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    if resolved:
                        resolved.pop()
                        os.close(fd)
                        fd = -1
                        fd = self._reopen(resolved)
                    continue
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        return None
                    if part.startswith(WHITEOUT_PREFIX):
                        raise _Refused(UNSAFE_WHITEOUT) from None  # reached through a symlink
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                        if made is not None:
                            made((*resolved, part))
                    pending.append(part)  # open what is there now
                    continue
                except OSError as exc:
                    if exc.errno not in _NOT_A_DIRECTORY:
                        raise
                    target = self._link_target(fd, part)
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise _Refused(SYMLINK_LOOP) from None
                    if target.startswith("/"):
                        resolved.clear()
                        os.close(fd)
                        fd = -1
                        fd = os.dup(self.fd)
                    pending.extend(reversed(target.split("/")))
                    continue
                os.close(fd)
                fd = child
                resolved.append(part)
            result = (fd, tuple(resolved))
            fd = -1
            return result
        finally:
            if fd >= 0:
                os.close(fd)

    @staticmethod
    def _link_target(dir_fd: int, name: str) -> str:
        """The target of the symlink ``name``; refuses anything else that is not a directory."""
        try:
            return os.readlink(name, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # not a symlink: a file, a device...
                raise _Refused(PARENT_NOT_DIRECTORY) from None
            if exc.errno == errno.ENOENT:
                raise _Refused(PARENT_NOT_DIRECTORY) from None  # vanished between two calls
            raise

    def _reopen(self, resolved: Sequence[str]) -> int:
        """Open a symlink-free path again from the root (after ``..``), never following a link."""
        fd = self.open_resolved(resolved)
        if fd is None:
            raise _Refused(PARENT_NOT_DIRECTORY)
        return fd

    def open_resolved(self, parts: Sequence[str]) -> int | None:
        """Open the symlink-free directory ``parts``; None when it is missing, not a directory or a link."""
        if not parts:
            return os.dup(self.fd)
        joined = "/".join(parts)
        if self._openat2 is not None and len(joined) < _OPENAT2_PATH_MAX:
            try:
                return self._openat2(
                    self.fd,
                    joined,
                    DIR_FLAGS,
                    _RESOLVE_IN_ROOT | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS,
                )
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
                    return None
                if exc.errno != errno.ENAMETOOLONG:
                    raise
        fd = os.dup(self.fd)
        try:
            for part in parts:
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, *_NOT_A_DIRECTORY):
                        return None
                    raise
                os.close(fd)
                fd = child
            result, fd = fd, -1
            return result
        finally:
            if fd >= 0:
                os.close(fd)

    # -- removal ----------------------------------------------------------------------------------
    def remove(self, dir_fd: int, name: str) -> None:
        """Delete ``name`` in ``dir_fd``: unlink it, or remove the directory tree it is (no symlink followed)."""
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            remove_tree(dir_fd, name)
        else:
            os.unlink(name, dir_fd=dir_fd)
        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
            self.invalidate()

    def clear(self) -> None:
        """Remove everything inside the root (the root stays)."""
        self.invalidate()
        for name in os.listdir(self.fd):
            self.remove(self.fd, name)

    def destroy(self) -> None:
        """Remove the root directory and all it holds, then close it."""
        self.clear()
        parent = os.open(self.path.parent, DIR_FLAGS)
        try:
            with contextlib.suppress(FileNotFoundError):
                if _same_file(os.stat(self.path.name, dir_fd=parent, follow_symlinks=False), self._stat):
                    os.rmdir(self.path.name, dir_fd=parent)
        finally:
            os.close(parent)
            self.close()


def _entries(fd: int) -> Iterator[tuple[str, bool]]:
    """(name, is a real directory) for each entry of the open directory ``fd``."""
    with os.scandir(fd) as listing:
        for entry in listing:
            yield entry.name, entry.is_dir(follow_symlinks=False)


def remove_tree(parent_fd: int, name: str) -> None:
    """Remove the directory ``name`` of ``parent_fd`` and everything below it.

    Depth-first, holding two descriptors at most: it goes down with ``openat(O_NOFOLLOW)`` and back up
    with ``..``, checking that ``..`` is the directory it came from (device and inode), and keeps only the
    names of the subdirectories still to visit (no descriptor) per level.
    """
    top = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    fd = top
    # per level below the top: (the name we went down by, the parent's identity, subdirectories left)
    path: list[tuple[str, os.stat_result, list[str]]] = []
    try:
        pending = _clear_files(fd)
        while True:
            if pending:
                child_name = pending.pop()
                try:
                    child = os.open(child_name, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if exc.errno not in _NOT_A_DIRECTORY:
                        raise
                    os.unlink(child_name, dir_fd=fd)  # replaced by a non-directory meanwhile
                    continue
                path.append((child_name, os.fstat(fd), pending))
                os.close(fd)
                fd = child
                pending = _clear_files(fd)
                continue
            if not path:
                break
            child_name, parent_stat, pending = path.pop()
            up = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            if not _same_file(os.fstat(fd), parent_stat):
                raise OSError(errno.EXDEV, "directory moved while it was being removed", child_name)
            os.rmdir(child_name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


def _clear_files(fd: int) -> list[str]:
    """Unlink every non-directory in ``fd``; the names of its subdirectories."""
    subdirectories = []
    for name, is_dir in list(_entries(fd)):
        if is_dir:
            subdirectories.append(name)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
    return subdirectories
