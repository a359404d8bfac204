"""Apply image layers to a directory without ever writing outside the root.

No network here: layers come in as readable byte streams (blobs already fetched and, by the caller,
verified) with their media types.  :mod:`regpeek.disk.tarstream` decompresses and reads them,
:mod:`regpeek.disk.layerentry` holds the entry checks and skip reasons shared with flattening
(:mod:`regpeek.disk.flatten`).  This module also re-exports the public names of those three, so
``from regpeek.disk.unpack import export_tar, open_layer, UnpackReport`` keeps working.

Layer rules (:class:`Unpacker`), the OCI image-spec changeset rules as umoci applies them
    * An entry replaces whatever is at its path (a file over a directory removes the directory and
      its children); a directory over a directory keeps the children and updates mode, owner,
      xattrs and mtime.  Hard links get no metadata of their own (they share the inode's).
    * ``.wh.NAME`` deletes ``NAME`` (recursively) and ``.wh..wh..opq`` in ``D`` deletes everything in
      ``D``, but only what came from LOWER layers: each layer tracks the paths it created (with their
      ancestors), and a whiteout never deletes those, whatever the order inside the layer.  Whiteouts
      are never created.  Other ``.wh..wh.*`` names (AUFS metadata) are ignored.
    * Missing parent directories are created with mode 0755.  Every directory is created 0700 and its
      mode (and mtimes) from the image are applied by :meth:`Unpacker.finish`, deepest first, once all
      entries are written, as root too: adding or removing children changes a directory's mtime, a
      non-root run can fill read-only directories, and no directory the image makes world-writable is
      open to other users while the unpack runs.
    * Per entry, in order: create, ``lchown`` (as root), xattrs from PAX ``SCHILY.xattr.*``, ``chmod``
      (after chown, which clears setuid bits; never on symlinks), then atime/mtime (symlinks too).
    * As root, owners come from the tar and device nodes are made with ``mknod``.  Otherwise nothing
      is chowned (entries owned by someone other than uid/gid 0 are counted as "ownership (not root)")
      and device nodes are skipped and counted; :meth:`UnpackReport.warning` sums it up in one line.

The root itself is created 0700 (an existing one must be empty and the caller's, and is made 0700):
no other user can reach inside it, during the unpack or after, so setuid binaries and device nodes from
the image are not theirs to use.  The image's entry for ``/`` gives the root its times only, never its
owner or mode.

Safety decisions (nothing is written outside ``root``, whatever the archive holds)
    * Names are cleaned lexically: leading ``/`` and ``./`` and ``.`` components are dropped (an
      absolute name is read relative to the root, as tar does), ``a/../b`` is ``b``; a name that climbs
      above the root (``../x``, ``a/../../x``) is REFUSED, not clamped.  NUL bytes are refused.
    * The parent of every entry is resolved component by component inside the root, following
      symlinks as if the root were ``/`` (``/etc`` means ``root/etc``; ``..`` stops at the root), at
      most 40 hops (else "symlink loop"), on directory file descriptors (:mod:`regpeek.disk.rootdir`):
      every ``open``/``mkdir``/``symlink``/``link``/``mknod``/``unlink``/``rename``/``chown``/``utime``
      is the ``*at`` call on the parent's descriptor, metadata of files and directories is set on
      their own descriptors (``fchown``, ``fchmod``, ``futimens``, ``fsetxattr``), and nothing re-walks a
      path string, so another process changing the tree meanwhile cannot redirect a write outside.
      The final component is never followed: what is there is unlinked (or removed) and replaced.
      A parent that exists but is not a directory is refused.
    * Hard link targets are cleaned and resolved the same way (final component not followed) and
      must exist inside the root and not be a directory; ``link(2)`` never follows a symlink, so a
      link to a symlink is another name for that symlink, never for what it points to.
    * Any path component other than the last that starts with ``.wh.`` is refused, and so is a
      whiteout whose target is empty, ``.`` or ``..``.  Device nodes only as root.
    * A refused entry is skipped and counted under its reason (a hostile layer cannot abort a pull
      half-way); with ``strict=True`` it raises :class:`~regpeek.errors.MalformedError` instead.
      Filesystem errors an entry can provoke (name too long, not a directory, ...) are counted the
      same way; others (disk full, permission denied) propagate.
    * Bombs: :class:`~regpeek.disk.layerentry.Limits` cap the file bytes written over all layers
      (sparse files count at their declared size and are written sparse), the entries of one layer and
      the length of a name (:class:`~regpeek.errors.TooLargeError` naming the layer and the limit);
      PAX/GNU long-name headers over 1 MiB are refused (Python's tarfile would hold them in memory);
      an unreadable or corrupt stream raises :class:`~regpeek.errors.MalformedError`.  On any error
      :meth:`Unpacker.abort` removes what was written (the root too, when the unpacker created it).
    * A uid or gid outside ``0..2**32-2`` is not applied (counted, the entry is kept).
    * Memory is flat in the size of the layers, not in their number of entries: the paths a layer
      created and the directories with a pending mode/mtime are kept in sets (umoci keeps the same).
      Open descriptors are bounded (a handful, whatever the number of entries or the depth).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO

from regpeek.disk.flatten import LayerOpener, export_tar
from regpeek.disk.layerentry import (
    _AUFS_META_PREFIX,
    _REPLACING_REFUSALS,
    _XATTR_PREFIX,
    DEVICE_NOT_ROOT,
    HARDLINK_TARGET_MISSING,
    HARDLINK_TO_DIRECTORY,
    INVALID_ENTRY,
    MAX_ID,
    OPAQUE_WHITEOUT,
    OWNER_OUT_OF_RANGE,
    OWNERSHIP_NOT_ROOT,
    PARENT_NOT_DIRECTORY,
    UNSAFE_HARDLINK,
    UNSAFE_PATH,
    WHITEOUT_PREFIX,
    Budget,
    Limits,
    UnpackReport,
    _check_parents,
    _check_type,
    _clean,
    _key,
    _printable,
    _Refused,
    _whiteout_target,
)
from regpeek.disk.rootdir import DIR_FLAGS, RootDir
from regpeek.disk.tarstream import (
    CHUNK,
    _layer_errors,
    _read_tar,
    declared_compression,
    open_layer,
    sniff_compression,
)
from regpeek.errors import MalformedError

__all__ = [
    "LayerOpener",
    "Limits",
    "UnpackReport",
    "Unpacker",
    "declared_compression",
    "export_tar",
    "open_layer",
    "sniff_compression",
    "unpack_layers",
]

_IGNORED_XATTRS = frozenset({"security.selinux"})  # host policy, never taken from an image (umoci too)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC
_PROC_FD = "/proc/self/fd"

# errno values a hostile entry can provoke on its own; counted like refusals instead of aborting.
_ENTRY_ERRNOS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENOENT,
        errno.EMLINK,
        errno.EINVAL,
        errno.ENOTEMPTY,
    }
)


def _ns(value: str | float | None) -> int | None:
    """Seconds (a PAX decimal string, exactly, or a number) as nanoseconds; None when unusable."""
    if value is None:
        return None
    try:
        return int(Decimal(value) * 1_000_000_000)
    except (InvalidOperation, ValueError, OverflowError):
        return None


def _times_ns(info: tarfile.TarInfo) -> tuple[int, int]:
    """(atime, mtime) in nanoseconds; atime defaults to mtime, as umoci does."""
    mtime = _ns(info.pax_headers.get("mtime"))
    if mtime is None:
        mtime = _ns(info.mtime) or 0
    atime = _ns(info.pax_headers.get("atime"))
    return (mtime if atime is None else atime), mtime


def _xattrs(info: tarfile.TarInfo) -> dict[str, bytes]:
    return {
        key[len(_XATTR_PREFIX) :]: value.encode("utf-8", "surrogateescape")
        for key, value in info.pax_headers.items()
        if key.startswith(_XATTR_PREFIX)
    }


def _valid_owner(info: tarfile.TarInfo) -> bool:
    return (
        isinstance(info.uid, int)
        and isinstance(info.gid, int)
        and 0 <= info.uid <= MAX_ID
        and 0 <= info.gid <= MAX_ID
    )


@dataclass
class _DirMeta:
    mode: int | None  # None: leave the mode alone (the root)
    atime_ns: int | None  # None: leave the times alone (directories made for missing parents)
    mtime_ns: int | None


_IMPLICIT = _DirMeta(0o755, None, None)


class _Source:
    """The existing entry a hard link names: its directory's descriptor, its name, its resolved path."""

    __slots__ = ("dir_fd", "name", "path")

    def __init__(self, dir_fd: int, name: str, path: tuple[str, ...]) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.path = path


# -- unpacking -----------------------------------------------------------------------------------
class Unpacker:
    """Applies layer tars, base first, to ``root`` (created 0700 if missing; else it must be empty).

    ``as_root`` (default: running as uid 0) chowns entries and creates device nodes (forcing it
    without the privilege fails with PermissionError); ``strict`` raises MalformedError on the first
    refused entry instead of skipping it; ``limits`` bound what the layers may write (TooLargeError;
    ``max_bytes`` alone is a shortcut for ``Limits(max_bytes=...)``); ``use_openat2=False`` forces the
    per-component path walk where the kernel has ``openat2``; ``owner_access`` keeps every entry
    readable and writable (directories searchable) by the owner whatever its mode, for a tree another
    tool reads next.  Call :meth:`apply` once per layer, base first, then :meth:`finish`; on an error,
    :meth:`abort` removes what was written.
    """

    def __init__(
        self,
        root: Path,
        *,
        as_root: bool | None = None,
        strict: bool = False,
        limits: Limits | None = None,
        max_bytes: int | None = None,
        use_openat2: bool | None = None,
        owner_access: bool = False,
    ) -> None:
        if limits is None:
            limits = Limits(max_bytes=max_bytes)
        self.dir, self.created = RootDir.create(root, use_openat2=use_openat2)
        self.root = os.path.realpath(root)
        self.as_root = os.geteuid() == 0 if as_root is None else as_root
        self.strict = strict
        self._access = (0o700, 0o600) if owner_access else (0, 0)
        self.report = UnpackReport()
        self.budget = Budget(limits)
        self._proc = os.path.isdir(_PROC_FD)
        self._layers = 0
        self._dirs: dict[str, _DirMeta] = {}  # directories with a pending mode and times, by resolved path
        self._upper: set[str] = set()  # paths the current layer created, with their ancestors

    # public API ---------------------------------------------------------------------------------
    def apply(self, tar_stream: BinaryIO, *, name: str | None = None) -> None:
        """Apply one uncompressed layer tar (read as a stream, to its end); ``name`` labels errors."""
        self._layers += 1
        self.budget.start_layer(name or f"layer {self._layers}")
        self._upper = set()
        with _layer_errors():
            for tar, info in _read_tar(tar_stream):
                self.budget.entry(info)
                self._entry(tar, info)

    def finish(self) -> UnpackReport:
        """Set directory modes and times (deepest first), release the root, and return the report."""
        for key in sorted(self._dirs, key=lambda k: k.count("/") + bool(k), reverse=True):
            self._finish_directory(key, self._dirs[key])
        self.dir.close()
        return self.report

    def abort(self) -> None:
        """Remove everything written: the root itself when this unpacker created it, else its content."""
        if self.dir.fd < 0:
            return
        if self.created:
            self.dir.destroy()
        else:
            self.dir.clear()
            self.dir.close()

    def _finish_directory(self, key: str, meta: _DirMeta) -> None:
        fd = self.dir.open_resolved(key.split("/") if key else ())
        if fd is None:
            return  # replaced or removed since
        try:
            if meta.mode is not None:
                os.chmod(fd, meta.mode | self._access[0])
            if meta.atime_ns is not None and meta.mtime_ns is not None:
                self._utime(fd, meta.atime_ns, meta.mtime_ns)
        finally:
            os.close(fd)

    # one entry ----------------------------------------------------------------------------------
    def _entry(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        try:
            self._apply_entry(tar, info)
        except _Refused as refusal:
            self._refuse(info, refusal.reason)
        except OSError as exc:
            if exc.errno not in _ENTRY_ERRNOS:
                raise
            self._refuse(info, f"filesystem error ({errno.errorcode.get(exc.errno or 0, exc.errno)})")

    def _refuse(self, info: tarfile.TarInfo, reason: str) -> None:
        if self.strict:
            raise MalformedError(f"refusing layer entry {_printable(info.name)}: {reason}")
        self.report.skip(reason)

    def _apply_entry(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        parts = _clean(info.name)
        if not parts:
            if not info.isdir():
                raise _Refused(UNSAFE_PATH)  # never change the type of the root
            atime, mtime = _times_ns(info)
            self._dirs[""] = _DirMeta(None, atime, mtime)  # the root keeps its owner and its 0700
            self.report.directories += 1
            return
        *parents, base = parts
        _check_parents(parents)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parents, base)
            return
        _check_type(info)
        if (info.ischr() or info.isblk()) and not self.as_root:
            found = self.dir.resolve(parents, create=True, made=self._made)  # the tree keeps its shape
            if found is not None:
                os.close(found[0])
            self.report.skip(DEVICE_NOT_ROOT)
            return
        with contextlib.ExitStack() as fds:
            source = None
            if info.islnk():
                try:
                    source = self._link_source(info)
                except _Refused as refusal:
                    if refusal.reason in _REPLACING_REFUSALS:
                        parent_fd, real_parent = self._parent(parents, fds)
                        self._clear(parent_fd, (*real_parent, base), keep_directory=False)
                    raise
                fds.callback(os.close, source.dir_fd)
            parent_fd, real_parent = self._parent(parents, fds)
            path = (*real_parent, base)
            if source is not None and source.path == path:
                raise _Refused(UNSAFE_HARDLINK)
            existed = self._clear(parent_fd, path, keep_directory=info.isdir())
            self._create(tar, info, parent_fd, path, source, existed)
        for end in range(1, len(path) + 1):
            self._upper.add(_key(path[:end]))

    def _parent(self, parents: list[str], fds: contextlib.ExitStack) -> tuple[int, tuple[str, ...]]:
        found = self.dir.resolve(parents, create=True, made=self._made)
        assert found is not None  # create=True: made or refused
        fds.callback(os.close, found[0])
        return found

    def _made(self, path: tuple[str, ...]) -> None:
        """A missing parent directory was created: 0755 at the end (unless an entry sets it)."""
        self._dirs.setdefault(_key(path), _IMPLICIT)

    def _link_source(self, info: tarfile.TarInfo) -> _Source:
        """The entry a hard link names: inside the root, existing, not a directory."""
        try:
            *parents, base = _clean(info.linkname)
        except (_Refused, ValueError):
            raise _Refused(UNSAFE_HARDLINK) from None
        try:
            found = self.dir.resolve(parents, create=False)
        except _Refused as refusal:
            if refusal.reason != PARENT_NOT_DIRECTORY:
                raise
            found = None  # a file where a directory of the target's path should be: no such target
        if found is None:
            raise _Refused(HARDLINK_TARGET_MISSING)
        fd, real_parent = found
        try:
            mode = os.stat(base, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            os.close(fd)
            raise _Refused(HARDLINK_TARGET_MISSING) from None
        except BaseException:
            os.close(fd)
            raise
        if stat.S_ISDIR(mode):
            os.close(fd)
            raise _Refused(HARDLINK_TO_DIRECTORY)
        return _Source(fd, base, (*real_parent, base))

    def _clear(self, parent_fd: int, path: tuple[str, ...], *, keep_directory: bool) -> bool:
        """Remove what is at ``path`` unless it is a directory to keep; True when one is kept."""
        try:
            mode = os.stat(path[-1], dir_fd=parent_fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(mode) and keep_directory:
            return True
        self._remove(parent_fd, path)
        return False

    def _remove(self, parent_fd: int, path: tuple[str, ...]) -> None:
        self.dir.remove(parent_fd, path[-1])
        key = _key(path)
        prefix = key + "/"
        for stale in [k for k in self._dirs if k == key or k.startswith(prefix)]:
            del self._dirs[stale]

    # creation -----------------------------------------------------------------------------------
    def _create(
        self,
        tar: tarfile.TarFile,
        info: tarfile.TarInfo,
        parent_fd: int,
        path: tuple[str, ...],
        source: _Source | None,
        existed: bool,
    ) -> None:
        name = path[-1]
        if info.isdir():
            if not existed:
                os.mkdir(name, 0o700, dir_fd=parent_fd)
            fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
            try:
                self._directory(fd, path, info, existed=existed)
            finally:
                os.close(fd)
            return
        if source is not None:
            os.link(source.name, name, src_dir_fd=source.dir_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
            self.report.hardlinks += 1
            return  # a hard link has no metadata of its own
        if info.isreg():
            self.budget.write(info.size)
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent_fd)
            try:
                self._write_file(tar, info, fd)
                self._fd_metadata(fd, info)
            finally:
                os.close(fd)
            self.report.files += 1
            return
        if info.issym():
            os.symlink(info.linkname, name, dir_fd=parent_fd)
            self.report.symlinks += 1
        elif info.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent_fd)
            self.report.fifos += 1
        else:
            self._make_device(info, parent_fd, name)
            self.report.devices += 1
        self._node_metadata(parent_fd, name, info)

    @staticmethod
    def _write_file(tar: tarfile.TarFile, info: tarfile.TarInfo, fd: int) -> None:
        sparse = getattr(info, "sparse", None)
        with os.fdopen(fd, "wb", closefd=False) as out:
            if not sparse:
                content = tar.extractfile(info)
                if content is not None:
                    shutil.copyfileobj(content, out, CHUNK)
                return
            # A sparse member: its data blocks are stored one after the other; write each where it
            # belongs and seek over the holes (read from the archive stream directly: tarfile's
            # member reader cannot seek on a stream).
            stream = tar.fileobj
            assert stream is not None
            stream.seek(info.offset_data)
            for offset, length in sparse:
                if offset < 0 or length < 0 or offset + length > info.size:
                    raise MalformedError(f"sparse entry {_printable(info.name)} has a block outside its size")
                out.seek(offset)
                remaining = length
                while remaining > 0:
                    chunk = stream.read(min(CHUNK, remaining))
                    if not chunk:
                        raise MalformedError(f"sparse entry {_printable(info.name)} ends early")
                    out.write(chunk)
                    remaining -= len(chunk)
            out.flush()
            os.ftruncate(fd, info.size)

    @staticmethod
    def _make_device(info: tarfile.TarInfo, parent_fd: int, name: str) -> None:
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        try:
            device = os.makedev(info.devmajor, info.devminor)
        except (OverflowError, ValueError):
            raise _Refused(INVALID_ENTRY) from None
        os.mknod(name, kind | 0o600, device, dir_fd=parent_fd)

    def _directory(self, fd: int, path: tuple[str, ...], info: tarfile.TarInfo, *, existed: bool) -> None:
        self._chown(info, fd)
        self._set_xattrs(fd, info, clear=existed)
        atime, mtime = _times_ns(info)
        self._dirs[_key(path)] = _DirMeta(info.mode & 0o7777, atime, mtime)
        self.report.directories += 1

    def _fd_metadata(self, fd: int, info: tarfile.TarInfo) -> None:
        """Owner, xattrs, mode (after chown, which clears setuid bits), then times, on the file's descriptor."""
        self._chown(info, fd)
        self._set_xattrs(fd, info, clear=False)
        os.chmod(fd, info.mode & 0o7777 | self._access[1])
        self._utime(fd, *_times_ns(info))

    def _node_metadata(self, parent_fd: int, name: str, info: tarfile.TarInfo) -> None:
        """The same for a symlink, FIFO or device node, which cannot be opened for writing.

        Owner and times go through ``fchownat``/``utimensat`` with ``AT_SYMLINK_NOFOLLOW`` on the parent's
        descriptor; xattrs and the mode through an ``O_PATH`` descriptor of the node (via ``/proc/self/fd``,
        which reaches that very inode), never through a path that could be a symlink.
        """
        is_symlink = info.issym()
        self._chown(info, parent_fd, name)
        with contextlib.ExitStack() as stack:
            node = -1
            if self._proc and (_xattrs(info) or not is_symlink):
                node = os.open(name, _PATH_FLAGS, dir_fd=parent_fd)
                stack.callback(os.close, node)
                if stat.S_ISLNK(os.fstat(node).st_mode) != is_symlink:
                    raise _Refused(INVALID_ENTRY)  # replaced under us
            if node >= 0:
                self._set_xattrs(f"{_PROC_FD}/{node}", info, clear=False)
            elif _xattrs(info):
                self.report.skip("xattrs (no /proc)")
            if not is_symlink:
                mode = info.mode & 0o7777 | self._access[1]
                if node >= 0:
                    os.chmod(f"{_PROC_FD}/{node}", mode)
                else:
                    os.chmod(name, mode, dir_fd=parent_fd)
        try:
            atime, mtime = _times_ns(info)
            os.utime(name, ns=(atime, mtime), dir_fd=parent_fd, follow_symlinks=False)
        except (OverflowError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.EINVAL:
                raise
            self.report.skip("mtime out of range")

    def _chown(self, info: tarfile.TarInfo, fd: int, name: str | None = None) -> None:
        if not _valid_owner(info):
            self.report.skip(OWNER_OUT_OF_RANGE)
            return
        if not self.as_root:
            if info.uid or info.gid:
                self.report.skip(OWNERSHIP_NOT_ROOT)
            return
        if name is None:
            os.chown(fd, info.uid, info.gid)
        else:
            os.chown(name, info.uid, info.gid, dir_fd=fd, follow_symlinks=False)

    def _set_xattrs(self, target: int | str, info: tarfile.TarInfo, *, clear: bool) -> None:
        wanted = _xattrs(info)
        if clear:
            self._clear_xattrs(target, keep=wanted)
        for name, value in wanted.items():
            if name in _IGNORED_XATTRS:
                self.report.skip(f"xattr {name}")
                continue
            try:
                os.setxattr(target, name, value)
            except (OSError, ValueError):
                self.report.skip(f"xattr {_printable(name)}")

    @staticmethod
    def _clear_xattrs(target: int | str, keep: dict[str, bytes]) -> None:
        try:
            names = os.listxattr(target)
        except OSError:
            return
        for name in names:
            if name not in keep and name not in _IGNORED_XATTRS:
                with contextlib.suppress(OSError):
                    os.removexattr(target, name)

    def _utime(self, fd: int, atime_ns: int, mtime_ns: int) -> None:
        try:
            os.utime(fd, ns=(atime_ns, mtime_ns))
        except (OverflowError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.EINVAL:
                raise
            self.report.skip("mtime out of range")

    # whiteouts ----------------------------------------------------------------------------------
    def _whiteout(self, parents: list[str], base: str) -> None:
        if base.startswith(_AUFS_META_PREFIX) and base != OPAQUE_WHITEOUT:
            return  # AUFS bookkeeping (.wh..wh.plnk, ...): nothing to delete
        target = _whiteout_target(base)
        self.report.whiteouts += 1
        found = self.dir.resolve(parents, create=False)
        if found is None:
            return
        fd, directory = found
        try:
            children = os.listdir(fd) if target is None else [target]
        finally:
            os.close(fd)
        for child in children:
            self._purge((*directory, child))

    def _purge(self, top: tuple[str, ...]) -> None:
        """Delete ``top`` as it came from lower layers: keep what this layer created (and its parents).

        Each directory is reopened from the root by its resolved path, so descriptors stay bounded.
        """
        stack = [top]
        while stack:
            path = stack.pop()
            fd = self.dir.open_resolved(path[:-1])
            if fd is None:
                continue
            try:
                try:
                    mode = os.stat(path[-1], dir_fd=fd, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue
                if _key(path) not in self._upper:
                    self._remove(fd, path)
                elif stat.S_ISDIR(mode):
                    child = self.dir.open_resolved(path)
                    if child is not None:
                        try:
                            stack.extend((*path, name) for name in os.listdir(child))
                        finally:
                            os.close(child)
            finally:
                os.close(fd)


def unpack_layers(
    layers: Iterable[tuple[BinaryIO, str]],
    root: Path,
    *,
    as_root: bool | None = None,
    strict: bool = False,
    limits: Limits | None = None,
    max_bytes: int | None = None,
    names: Iterable[str] | None = None,
    use_openat2: bool | None = None,
    then: Callable[[Unpacker], None] | None = None,
) -> UnpackReport:
    """Unpack ``(blob stream, media type)`` pairs, base layer first, into ``root``; see :class:`Unpacker`.

    ``names`` label the layers in error messages; ``then`` is called with the unpacker after the last
    layer, before directory modes are set (to apply one more layer of one's own).  On any error (and
    on Ctrl-C) what was written is removed before the exception propagates: the root too, when it did
    not exist before.
    """
    unpacker = Unpacker(
        root, as_root=as_root, strict=strict, limits=limits, max_bytes=max_bytes, use_openat2=use_openat2
    )
    labels = iter(names or ())
    try:
        for fileobj, media_type in layers:
            with open_layer(fileobj, media_type) as stream:
                unpacker.apply(stream, name=next(labels, None))
        if then is not None:
            then(unpacker)
        return unpacker.finish()
    except BaseException:
        unpacker.abort()
        raise
