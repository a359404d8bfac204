"""Apply image layers to a directory, or flatten them into one tar, without ever writing outside the root.

No network here: layers come in as readable byte streams (blobs already fetched and, by the caller,
verified) with their media types.

Decompression (:func:`open_layer`)
    gzip, zstd and plain tar are read as streams (flat memory for any layer size).  The content
    decides: the gzip (``1f 8b``) and zstd (``28 b5 2f fd``) magic numbers are sniffed, so a layer
    whose media type is unknown or wrong still opens; anything else is read as an uncompressed tar.

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

Flattening (:func:`export_tar`), like ``crane export``
    Layers are read TOP to BOTTOM, no disk used: a lower entry is dropped when an upper layer has an
    entry at its path, a non-directory at an ancestor, a whiteout of it or an ancestor, or an opaque
    whiteout on an ancestor.  The names are not resolved through symlinks (tar consumers write
    ``a/x`` through a symlinked ``a`` themselves).  Hard links whose target lies in a lower layer
    are held back until that target has been written, so every link in the output follows its
    target; when the target itself is shadowed the first link is written with its content instead.
    Parent directories no layer holds are added at the end (0755, mtime 0).  Known limits of a
    single streaming pass: a path repeated within ONE layer is written each time (a tar extractor keeps
    the last, as unpacking does), and a layer that whites out a directory and adds children to it
    without a directory entry gets a 0755 parent where unpacking may keep the lower directory's mode.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import zstandard

from regpeek import mediatypes
from regpeek.errors import MalformedError, TooLargeError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from typing_extensions import Self

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

#: Opens one layer blob for reading; :func:`export_tar` may call it more than once.
LayerOpener = Callable[[], BinaryIO]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_SYMLINK_HOPS = 40  # Linux's MAXSYMLINKS
MAX_SPECIAL_HEADER = 1 << 20  # PAX and GNU long-name headers, as Go's archive/tar
CHUNK = 1 << 20

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_AUFS_META_PREFIX = ".wh..wh."
_XATTR_PREFIX = "SCHILY.xattr."
_IGNORED_XATTRS = frozenset({"security.selinux"})  # host policy, never taken from an image (umoci too)

# Reasons an entry (or part of one) is skipped.  The first group are refusals: ``strict`` raises.
UNSAFE_PATH = "unsafe path"
UNSAFE_HARDLINK = "unsafe hardlink"
UNSAFE_WHITEOUT = "unsafe whiteout"
SYMLINK_LOOP = "symlink loop"
PARENT_NOT_DIRECTORY = "parent not a directory"
HARDLINK_TARGET_MISSING = "hardlink target missing"
HARDLINK_TO_DIRECTORY = "hardlink to directory"
INVALID_ENTRY = "invalid entry"
UNSUPPORTED_TYPE = "unsupported entry type"
DEVICE_NOT_ROOT = "device node (not root)"
OWNERSHIP_NOT_ROOT = "ownership (not root)"

# Hard links that cannot be made still replace what was at their path (umoci removes it first).
_REPLACING_REFUSALS = frozenset({HARDLINK_TARGET_MISSING, HARDLINK_TO_DIRECTORY})

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
_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    zstandard.ZstdError,
)
_SUPPORTED_TYPES = frozenset(
    {*tarfile.REGULAR_TYPES, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE}
    | {tarfile.CHRTYPE, tarfile.BLKTYPE}
)
# Headers whose whole body tarfile reads into memory.
_SPECIAL_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


# -- decompression -------------------------------------------------------------------------------
def declared_compression(media_type: str) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``"none"`` as the media type says; None when it names no tar layer.

    >>> declared_compression("application/vnd.docker.image.rootfs.diff.tar.gzip")
    'gzip'
    """
    kind = mediatypes.normalize(media_type)
    if mediatypes.is_gzip_layer(kind):
        return "gzip"
    if mediatypes.is_zstd_layer(kind):
        return "zstd"
    if kind.endswith(".tar"):
        return "none"
    return None


def sniff_compression(head: bytes) -> str:
    """``"gzip"`` or ``"zstd"`` when ``head`` starts with their magic number, else ``"none"``."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``source``: lets us sniff a stream that cannot seek."""

    def __init__(self, prefix: bytes, source: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._source.read(len(view)) or b""
        view[: len(data)] = data
        return len(data)


def _read_head(fileobj: BinaryIO, size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = fileobj.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def open_layer(fileobj: BinaryIO, media_type: str) -> BinaryIO:
    """A streaming reader of the uncompressed tar inside a layer blob.

    The magic bytes decide (see :func:`sniff_compression`); ``media_type`` is advisory, so an unknown or
    wrong one does not matter (compare with :func:`declared_compression` to warn about it).  Closing the
    reader does not close ``fileobj``.  Corrupt data raises while reading (:meth:`Unpacker.apply` turns it
    into :class:`~regpeek.errors.MalformedError`).
    """
    head = _read_head(fileobj, len(ZSTD_MAGIC))
    source = io.BufferedReader(_Prefixed(head, fileobj), buffer_size=CHUNK)
    compression = sniff_compression(head)
    if compression == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=source, mode="rb"))
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)
        return cast(BinaryIO, reader)
    return cast(BinaryIO, source)


# -- reading tars --------------------------------------------------------------------------------
class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses PAX and GNU long-name headers over 1 MiB before tarfile reads them into memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _SPECIAL_TYPES and info.size > MAX_SPECIAL_HEADER:
            raise TooLargeError(f"tar extended header of {info.size} bytes (limit {MAX_SPECIAL_HEADER})")
        return info


class _StreamingTarFile(tarfile.TarFile):
    """A TarFile whose header list is declared, so that stream reading can forget the headers."""

    members: list[tarfile.TarInfo]


def _tar_writer(out: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, errors="surrogateescape")


def _members(tar: _StreamingTarFile) -> Iterator[tarfile.TarInfo]:
    """The members in stream order; tarfile would otherwise keep every header in ``tar.members``."""
    while (info := tar.next()) is not None:
        yield info
        tar.members.clear()


def _drain(stream: BinaryIO) -> None:
    """Read to the end (padding after the tar): checks the gzip trailer, lets a digest wrapper see it all."""
    while stream.read(CHUNK):
        pass


def _read_tar(stream: BinaryIO) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Each member with its tar (for ``extractfile``), then the stream is drained.

    Run the loop inside :func:`_layer_errors`: read errors also surface while the caller reads content.
    """
    with _StreamingTarFile.open(
        fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo, errors="surrogateescape"
    ) as tar:
        for info in _members(tar):
            yield tar, info
    _drain(stream)


@contextmanager
def _layer_errors() -> Iterator[None]:
    """Turns the errors of a corrupt stream (tar, gzip, zstd) into MalformedError."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise MalformedError(f"unreadable layer: {exc}") from exc


def _content(tar: tarfile.TarFile, info: tarfile.TarInfo) -> BinaryIO | None:
    return cast(BinaryIO, tar.extractfile(info)) if info.isreg() else None


# -- paths ---------------------------------------------------------------------------------------
class _Refused(Exception):
    """An entry that is skipped (counted under ``reason``), or raised as MalformedError when strict."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _clean(name: str) -> tuple[str, ...]:
    """The components of an archive name below the root; refuses names that climb above it."""
    if "\x00" in name:
        raise _Refused(INVALID_ENTRY)
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise _Refused(UNSAFE_PATH)
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


def _key(parts: Sequence[str]) -> str:
    return "/".join(parts)


def _ancestors(parts: Sequence[str]) -> Iterator[str]:
    """Keys of the proper ancestors, root (``""``) first."""
    for end in range(len(parts)):
        yield _key(parts[:end])


def _whiteout_target(base: str) -> str | None:
    """The name a ``.wh.`` entry deletes, None for an opaque whiteout; refuses ``.wh.``, ``.wh..``..."""
    if base == OPAQUE_WHITEOUT:
        return None
    target = base[len(WHITEOUT_PREFIX) :]
    if target in ("", ".", ".."):
        raise _Refused(UNSAFE_WHITEOUT)
    return target


def _check_parents(parents: Sequence[str]) -> None:
    if any(part.startswith(WHITEOUT_PREFIX) for part in parents):
        raise _Refused(UNSAFE_WHITEOUT)


def _check_type(info: tarfile.TarInfo) -> None:
    if info.type not in _SUPPORTED_TYPES:
        raise _Refused(UNSUPPORTED_TYPE)
    if (info.issym() or info.islnk()) and (not info.linkname or "\x00" in info.linkname):
        raise _Refused(INVALID_ENTRY)


def _printable(text: str) -> str:
    return text if text.isprintable() and len(text) <= 80 else ascii(text)[:80]


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


# -- report --------------------------------------------------------------------------------------
@dataclass
class UnpackReport:
    """What an unpack (or export) did: entries applied by type, whiteouts, and what it skipped.

    Counts are of tar entries (implicitly created parent directories are not counted).  ``skipped``
    maps a reason (``"unsafe path"``, ``"device node (not root)"``, ``"xattr security.capability"``,
    ``"ownership (not root)"``...) to how many entries it affected.
    """

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    devices: int = 0
    fifos: int = 0
    whiteouts: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def warning(self) -> str | None:
        """One line summing up what was skipped, or None when nothing was.

        >>> UnpackReport(skipped={"unsafe path": 2, "device node (not root)": 1}).warning()
        'skipped: 1 device node (not root), 2 unsafe path'
        """
        if not self.skipped:
            return None
        return "skipped: " + ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))


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


# -- flattening ----------------------------------------------------------------------------------
class _Inode:
    """A file that hard links share: where its content went, and the links waiting for it."""

    __slots__ = ("member", "name", "waiting")

    def __init__(self) -> None:
        self.name: str | None = None  # output name holding the content, once written
        self.member: int | None = None  # index of the shadowed member in the current layer holding it
        self.waiting: list[tuple[str, tarfile.TarInfo]] = []  # visible links not written yet

    def absorb(self, other: _Inode) -> None:
        self.waiting.extend(other.waiting)
        other.waiting = []


@dataclass
class _LayerState:
    """What one layer holds, merged into the exporter's state once the whole layer has been read."""

    seen: set[str] = field(default_factory=set)
    directories: set[str] = field(default_factory=set)
    non_directories: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    inodes: dict[str, _Inode] = field(default_factory=dict)  # non-directories of this layer
    below: dict[str, _Inode] = field(default_factory=dict)  # link targets in lower layers
    rereads: dict[int, _Inode] = field(default_factory=dict)


class _Exporter:
    def __init__(self, out: BinaryIO, strict: bool) -> None:
        self._out = _tar_writer(out)
        self.strict = strict
        self.report = UnpackReport()
        self._seen: set[str] = set()
        self._non_directories: set[str] = set()
        self._whiteouts: set[str] = set()
        self._opaque: set[str] = set()
        self._emitted: set[str] = set()
        self._below: dict[str, _Inode] = {}  # link targets upper layers wait for, by path

    def export(self, layers: Sequence[tuple[LayerOpener, str]]) -> UnpackReport:
        for opener, media_type in reversed(layers):
            layer = _LayerState()
            self._read_layer(opener, media_type, layer)
            if layer.rereads:
                self._reread(opener, media_type, layer.rereads)
            self._merge(layer)
        for inode in self._below.values():
            for name, _ in inode.waiting:
                self._refuse(name, HARDLINK_TARGET_MISSING)
        self._add_missing_parents()
        self._out.close()
        return self.report

    # reading ------------------------------------------------------------------------------------
    def _read_layer(self, opener: LayerOpener, media_type: str, layer: _LayerState) -> None:
        with opener() as blob, open_layer(blob, media_type) as stream, _layer_errors():
            for index, (tar, info) in enumerate(_read_tar(stream)):
                try:
                    self._entry(tar, info, index, layer)
                except _Refused as refusal:
                    self._refuse(info.name, refusal.reason)

    def _refuse(self, name: str, reason: str) -> None:
        if self.strict:
            raise MalformedError(f"refusing layer entry {_printable(name)}: {reason}")
        self.report.skip(reason)

    def _entry(self, tar: tarfile.TarFile, info: tarfile.TarInfo, index: int, layer: _LayerState) -> None:
        parts = _clean(info.name)
        key = _key(parts)
        if parts:
            _check_parents(parts[:-1])
            if parts[-1].startswith(WHITEOUT_PREFIX):
                self._record_whiteout(parts, layer)
                return
        elif not info.isdir():
            raise _Refused(UNSAFE_PATH)
        _check_type(info)
        try:
            link_inode = self._link_inode(info, key, layer) if info.islnk() else None
        except _Refused as refusal:
            if refusal.reason in _REPLACING_REFUSALS:
                layer.seen.add(key)  # as in Unpacker: the path is emptied all the same
                layer.non_directories.add(key)
            raise
        hidden = self._hidden(parts)
        layer.seen.add(key)
        if info.isdir():
            self._directory(info, key, hidden, layer)
            return
        inode = link_inode if link_inode is not None else _Inode()
        layer.non_directories.add(key)
        layer.directories.discard(key)
        upper = self._below.pop(key, None)
        if upper is not None:
            inode.absorb(upper)  # upper layers' links to this path share this inode
        layer.inodes[key] = inode
        if info.islnk():
            if not hidden:
                inode.waiting.append((key, info))
        elif not hidden:
            self._emit(info, key, _content(tar, info))
            inode.name = key
        elif inode.waiting:
            name, _ = inode.waiting.pop(0)
            self._emit(info, name, _content(tar, info))
            inode.name = name
        else:
            inode.member = index
        self._flush(inode, layer)

    def _hidden(self, parts: Sequence[str]) -> bool:
        key = _key(parts)
        if key in self._seen or key in self._whiteouts:
            return True
        for ancestor in _ancestors(parts):
            if ancestor in self._opaque or ancestor in self._whiteouts or ancestor in self._non_directories:
                return True
        return False

    def _record_whiteout(self, parts: Sequence[str], layer: _LayerState) -> None:
        *parents, base = parts
        if base.startswith(_AUFS_META_PREFIX) and base != OPAQUE_WHITEOUT:
            return
        target = _whiteout_target(base)
        self.report.whiteouts += 1
        if target is None:
            layer.opaque.add(_key(parents))
        else:
            layer.whiteouts.add(_key((*parents, target)))

    def _directory(self, info: tarfile.TarInfo, key: str, hidden: bool, layer: _LayerState) -> None:
        layer.inodes.pop(key, None)
        layer.directories.add(key)
        upper = self._below.pop(key, None)
        if upper is not None:
            for name, _ in upper.waiting:
                self._refuse(name, HARDLINK_TO_DIRECTORY)
        if not hidden:
            self._emit(info, key or ".", None)

    def _link_inode(self, info: tarfile.TarInfo, key: str, layer: _LayerState) -> _Inode:
        try:
            target = _key(_clean(info.linkname))
        except _Refused:
            raise _Refused(UNSAFE_HARDLINK) from None
        if not target or target == key:
            raise _Refused(UNSAFE_HARDLINK)
        if target in layer.directories:
            raise _Refused(HARDLINK_TO_DIRECTORY)
        inode = layer.inodes.get(target)
        if inode is not None:
            return inode
        if self._hidden_below(target.split("/"), layer):
            raise _Refused(HARDLINK_TARGET_MISSING)  # removed by this layer before the link
        return layer.below.setdefault(target, _Inode())

    def _flush(self, inode: _Inode, layer: _LayerState) -> None:
        """Write the links waiting for ``inode`` once its content is out (or plan a re-read)."""
        if inode.name is None:
            if inode.member is not None and inode.waiting:
                layer.rereads[inode.member] = inode
            return
        for name, info in inode.waiting:
            self._emit(info, name, None, link=inode.name)
        inode.waiting = []

    def _reread(self, opener: LayerOpener, media_type: str, rereads: dict[int, _Inode]) -> None:
        """Read a layer again for shadowed files that visible links of the same layer share."""
        with opener() as blob, open_layer(blob, media_type) as stream, _layer_errors():
            for index, (tar, info) in enumerate(_read_tar(stream)):
                inode = rereads.pop(index, None)
                if inode is not None and inode.waiting:
                    name, _ = inode.waiting.pop(0)
                    self._emit(info, name, _content(tar, info))
                    inode.name = name
                    for link_name, link in inode.waiting:
                        self._emit(link, link_name, None, link=name)
                    inode.waiting = []
                if not rereads:
                    break

    def _merge(self, layer: _LayerState) -> None:
        # Links of upper layers to a path this layer removed (in any order) lose their target; this
        # layer's own links were checked against what it had removed when they were read.
        for target in [t for t in self._below if self._hidden_below(t.split("/"), layer)]:
            for name, _ in self._below.pop(target).waiting:
                self._refuse(name, HARDLINK_TARGET_MISSING)
        for target, inode in layer.below.items():
            if target in self._below:
                self._below[target].absorb(inode)
            else:
                self._below[target] = inode
        self._seen |= layer.seen
        self._non_directories |= layer.non_directories
        self._whiteouts |= layer.whiteouts
        self._opaque |= layer.opaque

    @staticmethod
    def _hidden_below(parts: Sequence[str], layer: _LayerState) -> bool:
        """Whether this layer's whiteouts or non-directories remove ``parts`` from the layers below."""
        if _key(parts) in layer.whiteouts:
            return True
        return any(
            a in layer.whiteouts or a in layer.opaque or a in layer.non_directories for a in _ancestors(parts)
        )

    # writing ------------------------------------------------------------------------------------
    def _emit(
        self, info: tarfile.TarInfo, name: str, content: BinaryIO | None, *, link: str | None = None
    ) -> None:
        out = tarfile.TarInfo(name)
        out.mode = info.mode & 0o7777
        out.uid, out.gid, out.uname, out.gname = info.uid, info.gid, info.uname, info.gname
        out.mtime = info.mtime
        out.pax_headers = {k: v for k, v in info.pax_headers.items() if k.startswith(_XATTR_PREFIX)}
        if link is not None:
            out.type, out.linkname = tarfile.LNKTYPE, link
            self.report.hardlinks += 1
        elif info.isreg():
            out.type, out.size = tarfile.REGTYPE, info.size
            self.report.files += 1
        else:
            out.type, out.linkname = info.type, info.linkname
            out.devmajor, out.devminor = info.devmajor, info.devminor
            self._count(info)
        self._out.addfile(out, content if out.type == tarfile.REGTYPE else None)
        self._emitted.add("" if name == "." else name)

    def _count(self, info: tarfile.TarInfo) -> None:
        if info.isdir():
            self.report.directories += 1
        elif info.issym():
            self.report.symlinks += 1
        elif info.isfifo():
            self.report.fifos += 1
        else:
            self.report.devices += 1

    def _add_missing_parents(self) -> None:
        missing = {a for name in self._emitted for a in _ancestors(name.split("/")) if a} - self._emitted
        for name in sorted(missing):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            self._out.addfile(info)


def export_tar(
    layers: Sequence[tuple[LayerOpener, str]], out: BinaryIO, *, strict: bool = False
) -> UnpackReport:
    """Write one flattened root-filesystem tar of the image to ``out`` (sequentially, stdout-friendly).

    ``layers`` are ``(opener, media type)`` pairs, base layer FIRST as in the manifest; they are read
    top first, each opener called once (twice for a layer whose shadowed file a visible hard link of
    the same layer needs).  Whiteouts are applied and never written.  Returns what was written and
    skipped (refusals as in :class:`Unpacker`; ``strict`` raises on them).
    """
    return _Exporter(out, strict).export(layers)
