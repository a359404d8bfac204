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
    * Missing parent directories are created with mode 0755.  Directory modes and mtimes are set
      again by :meth:`Unpacker.finish`, deepest first, because adding or removing children changes
      a directory's mtime (and so a non-root run can fill read-only directories).
    * Per entry, in order: create, ``lchown`` (as root), xattrs from PAX ``SCHILY.xattr.*``, ``chmod``
      (after chown, which clears setuid bits; never on symlinks), then atime/mtime (symlinks too).
    * As root, owners come from the tar and device nodes are made with ``mknod``.  Otherwise nothing
      is chowned (entries owned by someone other than uid/gid 0 are counted as "ownership (not root)")
      and device nodes are skipped and counted; :meth:`UnpackReport.warning` sums it up in one line.

Safety decisions (nothing is written outside ``root``, whatever the archive holds)
    * Names are cleaned lexically: leading ``/`` and ``./`` and ``.`` components are dropped (an
      absolute name is read relative to the root, as tar does), ``a/../b`` is ``b``; a name that climbs
      above the root (``../x``, ``a/../../x``) is REFUSED, not clamped.  NUL bytes are refused.
    * The parent of every entry is resolved component by component inside the root, following
      symlinks as if the root were ``/`` (``/etc`` means ``root/etc``; ``..`` stops at the root), at
      most 40 hops (else "symlink loop").  The final component is never followed: what is there is
      unlinked (or removed) and replaced.  A parent that exists but is not a directory is refused.
    * Hard link targets are cleaned and resolved the same way (final component not followed) and
      must exist inside the root and not be a directory; ``link(2)`` never follows a symlink, so a
      link to a symlink is another name for that symlink, never for what it points to.
    * Any path component other than the last that starts with ``.wh.`` is refused, and so is a
      whiteout whose target is empty, ``.`` or ``..``.  Device nodes only as root.
    * A refused entry is skipped and counted under its reason (a hostile layer cannot abort a pull
      half-way); with ``strict=True`` it raises :class:`~regpeek.errors.MalformedError` instead.
      Filesystem errors an entry can provoke (name too long, not a directory, ...) are counted the
      same way; others (disk full, permission denied) propagate.
    * Bombs: ``max_bytes`` caps the file bytes written over all layers
      (:class:`~regpeek.errors.TooLargeError`); PAX/GNU long-name headers over 1 MiB are refused
      (Python's tarfile would hold them in memory); an unreadable or corrupt stream raises
      :class:`~regpeek.errors.MalformedError`.
    * Paths are resolved with ``lstat``/``readlink``, not file descriptors: this defends against the
      archive, not against another process changing the tree while it is being unpacked.
    * Memory is flat in the size of the layers, not in their number of entries: the paths a layer
      created and the directories with a pending mode/mtime are kept in sets (umoci keeps the same).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Sequence
from contextlib import suppress
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
    OPAQUE_WHITEOUT,
    OWNERSHIP_NOT_ROOT,
    PARENT_NOT_DIRECTORY,
    SYMLINK_LOOP,
    UNSAFE_HARDLINK,
    UNSAFE_PATH,
    UNSAFE_WHITEOUT,
    WHITEOUT_PREFIX,
    UnpackReport,
    _check_parents,
    _check_type,
    _clean,
    _key,
    _printable,
    _Refused,
    _whiteout_target,
)
from regpeek.disk.tarstream import (
    CHUNK,
    _content,
    _layer_errors,
    _read_tar,
    declared_compression,
    open_layer,
    sniff_compression,
)
from regpeek.errors import MalformedError, TooLargeError

__all__ = [
    "LayerOpener",
    "UnpackReport",
    "Unpacker",
    "declared_compression",
    "export_tar",
    "open_layer",
    "sniff_compression",
    "unpack_layers",
]

MAX_SYMLINK_HOPS = 40  # Linux's MAXSYMLINKS
_IGNORED_XATTRS = frozenset({"security.selinux"})  # host policy, never taken from an image (umoci too)

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


@dataclass
class _DirMeta:
    mode: int
    atime_ns: int
    mtime_ns: int


# -- unpacking -----------------------------------------------------------------------------------
class Unpacker:
    """Applies layer tars, base first, to ``root`` (created if missing).

    ``as_root`` (default: running as uid 0) chowns entries and creates device nodes (forcing it
    without the privilege fails with PermissionError); ``strict`` raises MalformedError on the first
    refused entry instead of skipping it; ``max_bytes`` caps the file bytes written over all layers
    (TooLargeError).  Call :meth:`apply` once per layer, base first, then :meth:`finish`.
    """

    def __init__(
        self,
        root: Path,
        *,
        as_root: bool | None = None,
        strict: bool = False,
        max_bytes: int | None = None,
    ) -> None:
        Path(root).mkdir(parents=True, exist_ok=True)
        self.root = os.path.realpath(root)
        self.as_root = os.geteuid() == 0 if as_root is None else as_root
        self.strict = strict
        self.max_bytes = max_bytes
        self.report = UnpackReport()
        self._written = 0
        self._privileged = os.geteuid() == 0  # permission bits do not bind us: set dir modes at once
        self._dirs: dict[str, _DirMeta] = {}  # directories with a tar entry: mode and times for finish()
        self._upper: set[str] = set()  # paths the current layer created, with their ancestors

    # public API ---------------------------------------------------------------------------------
    def apply(self, tar_stream: BinaryIO) -> None:
        """Apply one uncompressed layer tar (read as a stream, to its end)."""
        self._upper = set()
        with _layer_errors():
            for tar, info in _read_tar(tar_stream):
                self._entry(tar, info)

    def finish(self) -> UnpackReport:
        """Set directory modes and mtimes (deepest first) and return the report."""
        for key in sorted(self._dirs, key=lambda k: k.count("/") + bool(k), reverse=True):
            meta = self._dirs[key]
            host = self._host(key.split("/") if key else ())
            mode = 0
            with suppress(FileNotFoundError):
                mode = os.lstat(host).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(host, meta.mode)
                self._utime(host, meta.atime_ns, meta.mtime_ns)
        return self.report

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
            self._directory((), info, existed=True)
            return
        *parents, base = parts
        _check_parents(parents)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parents, base)
            return
        _check_type(info)
        real_parent = self._resolve(parents)
        path = (*real_parent, base)
        if (info.ischr() or info.isblk()) and not self.as_root:
            self._make_parents(real_parent)  # as umoci: the tree keeps its shape
            self.report.skip(DEVICE_NOT_ROOT)
            return
        try:
            source = self._link_source(info) if info.islnk() else None
        except _Refused as refusal:
            if refusal.reason in _REPLACING_REFUSALS:
                self._make_parents(real_parent)
                self._clear(path, keep_directory=False)
            raise
        self._make_parents(real_parent)
        if source == path:
            raise _Refused(UNSAFE_HARDLINK)
        existed = self._clear(path, keep_directory=info.isdir())
        self._create(tar, info, path, source, existed)
        for end in range(1, len(path) + 1):
            self._upper.add(_key(path[:end]))

    def _host(self, parts: Sequence[str]) -> str:
        return os.path.join(self.root, *parts)

    def _resolve(self, parts: Sequence[str]) -> tuple[str, ...]:
        """``parts`` with every symlink followed inside the root; the result has no symlinks."""
        resolved: list[str] = []
        pending = list(reversed(parts))
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            host = self._host((*resolved, part))
            try:
                mode = os.lstat(host).st_mode
            except (FileNotFoundError, NotADirectoryError):
                mode = 0  # not there (yet): created later, or refused as "parent not a directory"
            if stat.S_ISLNK(mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise _Refused(SYMLINK_LOOP)
                target = os.readlink(host)
                if target.startswith("/"):
                    resolved.clear()
                pending.extend(reversed(target.split("/")))
            else:
                resolved.append(part)
        return tuple(resolved)

    def _link_source(self, info: tarfile.TarInfo) -> tuple[str, ...]:
        """The resolved path a hard link entry names: inside the root, existing, not a directory."""
        try:
            *parents, base = _clean(info.linkname)
        except (_Refused, ValueError):
            raise _Refused(UNSAFE_HARDLINK) from None
        source = (*self._resolve(parents), base)
        try:
            mode = os.lstat(self._host(source)).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise _Refused(HARDLINK_TARGET_MISSING) from None
        if stat.S_ISDIR(mode):
            raise _Refused(HARDLINK_TO_DIRECTORY)
        return source

    def _make_parents(self, parents: Sequence[str]) -> None:
        for end in range(1, len(parents) + 1):
            host = self._host(parents[:end])
            try:
                mode = os.lstat(host).st_mode
            except FileNotFoundError:
                if parents[end - 1].startswith(WHITEOUT_PREFIX):
                    raise _Refused(UNSAFE_WHITEOUT) from None  # reached through a symlink
                os.mkdir(host, 0o700)
                os.chmod(host, 0o755)
                continue
            if not stat.S_ISDIR(mode):
                raise _Refused(PARENT_NOT_DIRECTORY)

    def _clear(self, path: Sequence[str], *, keep_directory: bool) -> bool:
        """Remove what is at ``path`` unless it is a directory to keep; True when one is kept."""
        host = self._host(path)
        try:
            mode = os.lstat(host).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return False
        if stat.S_ISDIR(mode):
            if keep_directory:
                return True
            self._remove_tree(path)
        else:
            os.unlink(host)
        return False

    def _remove_tree(self, path: Sequence[str]) -> None:
        shutil.rmtree(self._host(path))
        key = _key(path)
        prefix = key + "/"
        for stale in [k for k in self._dirs if k == key or k.startswith(prefix)]:
            del self._dirs[stale]

    # creation -----------------------------------------------------------------------------------
    def _create(
        self,
        tar: tarfile.TarFile,
        info: tarfile.TarInfo,
        path: tuple[str, ...],
        source: tuple[str, ...] | None,
        existed: bool,
    ) -> None:
        host = self._host(path)
        if info.isdir():
            if not existed:
                os.mkdir(host, 0o700)
            self._directory(path, info, existed=existed)
            return
        if source is not None:
            os.link(self._host(source), host, follow_symlinks=False)
            self.report.hardlinks += 1
            return  # a hard link has no metadata of its own
        if info.isreg():
            self._write_file(tar, info, host)
            self.report.files += 1
        elif info.issym():
            os.symlink(info.linkname, host)
            self.report.symlinks += 1
        elif info.isfifo():
            os.mkfifo(host, 0o600)
            self.report.fifos += 1
        else:
            self._make_device(info, host)
            self.report.devices += 1
        self._metadata(host, info, is_symlink=info.issym())

    def _write_file(self, tar: tarfile.TarFile, info: tarfile.TarInfo, host: str) -> None:
        if self.max_bytes is not None and self._written + info.size > self.max_bytes:
            raise TooLargeError(f"layers expand to more than {self.max_bytes} bytes")
        self._written += info.size
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(host, flags, 0o600), "wb") as out:
            content = _content(tar, info)
            if content is not None:
                shutil.copyfileobj(content, out, CHUNK)

    @staticmethod
    def _make_device(info: tarfile.TarInfo, host: str) -> None:
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        try:
            device = os.makedev(info.devmajor, info.devminor)
        except (OverflowError, ValueError):
            raise _Refused(INVALID_ENTRY) from None
        os.mknod(host, kind | 0o600, device)

    def _directory(self, path: Sequence[str], info: tarfile.TarInfo, *, existed: bool) -> None:
        host = self._host(path)
        self._chown(host, info)
        self._set_xattrs(host, info, clear=existed)
        mode = info.mode & 0o7777
        if self._privileged:
            os.chmod(host, mode)
        atime, mtime = _times_ns(info)
        self._dirs[_key(path)] = _DirMeta(mode, atime, mtime)
        self.report.directories += 1

    def _metadata(self, host: str, info: tarfile.TarInfo, *, is_symlink: bool) -> None:
        self._chown(host, info)
        self._set_xattrs(host, info, clear=False)
        if not is_symlink:
            os.chmod(host, info.mode & 0o7777)
        self._utime(host, *_times_ns(info))

    def _chown(self, host: str, info: tarfile.TarInfo) -> None:
        if self.as_root:
            os.chown(host, info.uid, info.gid, follow_symlinks=False)
        elif info.uid or info.gid:
            self.report.skip(OWNERSHIP_NOT_ROOT)

    def _set_xattrs(self, host: str, info: tarfile.TarInfo, *, clear: bool) -> None:
        wanted = _xattrs(info)
        if clear:
            self._clear_xattrs(host, keep=wanted)
        for name, value in wanted.items():
            if name in _IGNORED_XATTRS:
                self.report.skip(f"xattr {name}")
                continue
            try:
                os.setxattr(host, name, value, follow_symlinks=False)
            except (OSError, ValueError):
                self.report.skip(f"xattr {_printable(name)}")

    @staticmethod
    def _clear_xattrs(host: str, keep: dict[str, bytes]) -> None:
        try:
            names = os.listxattr(host, follow_symlinks=False)
        except OSError:
            return
        for name in names:
            if name not in keep and name not in _IGNORED_XATTRS:
                with suppress(OSError):
                    os.removexattr(host, name, follow_symlinks=False)

    def _utime(self, host: str, atime_ns: int, mtime_ns: int) -> None:
        try:
            os.utime(host, ns=(atime_ns, mtime_ns), follow_symlinks=False)
        except (OverflowError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.EINVAL:
                raise
            self.report.skip("mtime out of range")

    # whiteouts ----------------------------------------------------------------------------------
    def _whiteout(self, parents: Sequence[str], base: str) -> None:
        if base.startswith(_AUFS_META_PREFIX) and base != OPAQUE_WHITEOUT:
            return  # AUFS bookkeeping (.wh..wh.plnk, ...): nothing to delete
        target = _whiteout_target(base)
        directory = self._resolve(parents)
        self.report.whiteouts += 1
        try:
            if not stat.S_ISDIR(os.lstat(self._host(directory)).st_mode):
                return
        except (FileNotFoundError, NotADirectoryError):
            return
        if target is None:
            for child in os.listdir(self._host(directory)):
                self._purge((*directory, child))
        else:
            self._purge((*directory, target))

    def _purge(self, top: tuple[str, ...]) -> None:
        """Delete ``top`` as it came from lower layers: keep what this layer created (and its parents)."""
        stack = [top]
        while stack:
            path = stack.pop()
            host = self._host(path)
            try:
                mode = os.lstat(host).st_mode
            except FileNotFoundError:
                continue
            if _key(path) not in self._upper:
                if stat.S_ISDIR(mode):
                    self._remove_tree(path)
                else:
                    os.unlink(host)
            elif stat.S_ISDIR(mode):
                stack.extend((*path, child) for child in os.listdir(host))


def unpack_layers(
    layers: Iterable[tuple[BinaryIO, str]],
    root: Path,
    *,
    as_root: bool | None = None,
    strict: bool = False,
    max_bytes: int | None = None,
) -> UnpackReport:
    """Unpack ``(blob stream, media type)`` pairs, base layer first, into ``root``; see :class:`Unpacker`."""
    unpacker = Unpacker(root, as_root=as_root, strict=strict, max_bytes=max_bytes)
    for fileobj, media_type in layers:
        with open_layer(fileobj, media_type) as stream:
            unpacker.apply(stream)
    return unpacker.finish()
