"""One entry of a layer tar as unpacking and flattening both check it, and the report of what they did.

* :func:`_clean` reads a name lexically below the root (leading ``/``, ``./`` and ``.`` components
  dropped, ``a/../b`` is ``b``) and refuses a name that climbs above it or holds a NUL byte.
* ``.wh.NAME`` whites out ``NAME`` and ``.wh..wh..opq`` everything in its directory
  (:func:`_whiteout_target`); other ``.wh..wh.*`` names are AUFS metadata.  A ``.wh.`` component
  other than the last, and a whiteout of ``""``, ``.`` or ``..``, are refused.
* :func:`_check_type` admits regular files, directories, symlinks, hard links, FIFOs and device
  nodes; a link needs a target without NUL bytes.
* A refusal raises :class:`_Refused` with one of the skip reasons below; the caller counts it in its
  :class:`UnpackReport` (or, when strict, raises :class:`~regpeek.errors.MalformedError`).
* :class:`Limits` bounds what a layer may make us write (bytes, entries, name length); :class:`Budget`
  applies them and raises :class:`~regpeek.errors.TooLargeError` naming the layer and the limit.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from regpeek.errors import TooLargeError
from regpeek.formats.units import format_size

__all__ = ["Budget", "Limits", "UnpackReport"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_AUFS_META_PREFIX = ".wh..wh."
_XATTR_PREFIX = "SCHILY.xattr."

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
OWNER_OUT_OF_RANGE = "ownership (uid/gid out of range)"
MAX_ID = 2**32 - 2  # uid_t/gid_t; 2**32 - 1 is (uid_t) -1, "leave unchanged" to chown(2)

# Hard links that cannot be made still replace what was at their path (umoci removes it first).
_REPLACING_REFUSALS = frozenset({HARDLINK_TARGET_MISSING, HARDLINK_TO_DIRECTORY})
_SUPPORTED_TYPES = frozenset(
    {*tarfile.REGULAR_TYPES, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE}
    | {tarfile.CHRTYPE, tarfile.BLKTYPE}
)


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


# -- limits --------------------------------------------------------------------------------------
#: Bytes a layer set may expand to by default: this many times its compressed size...
DEFAULT_RATIO = 100
#: ...but never less than this (small images with a few large zero-filled files stay possible)...
DEFAULT_FLOOR = 1 << 30
#: ...and never closer than this to filling the target filesystem.
FREE_SPACE_MARGIN = 64 << 20
DEFAULT_MAX_ENTRIES = 1_000_000  # entries in one layer (the largest real layers hold a few hundred thousand)
DEFAULT_MAX_PATH = 4096  # bytes in an entry's name or link target (Linux's PATH_MAX)


@dataclass(frozen=True)
class Limits:
    """What unpacking or exporting may write.

    ``max_bytes`` bounds the file content written over all layers (a sparse file counts at its full
    declared size), ``max_entries`` the entries of one layer, ``max_path`` the bytes of one entry name
    or link target; None means no limit.  ``origin`` says where ``max_bytes`` came from, for messages.
    """

    max_bytes: int | None = None
    max_entries: int | None = DEFAULT_MAX_ENTRIES
    max_path: int | None = DEFAULT_MAX_PATH
    origin: str = "--max-size"

    @classmethod
    def none(cls) -> Limits:
        """No limit at all (``--no-size-limit``)."""
        return cls(None, None, None, "")

    @classmethod
    def default(cls, compressed: int | None, free: int | None, max_bytes: int | None = None) -> Limits:
        """The default limits for layers of ``compressed`` bytes written where ``free`` bytes are free.

        ``max_bytes``, when given, replaces the ratio rule; the free-space cap applies either way.

        >>> Limits.default(2 << 20, None).max_bytes == DEFAULT_FLOOR
        True
        >>> Limits.default(100 << 20, 500 << 20).max_bytes == (500 << 20) - FREE_SPACE_MARGIN
        True
        """
        if max_bytes is not None:
            limit, origin = max_bytes, "--max-size"
        else:
            limit = max(DEFAULT_FLOOR, DEFAULT_RATIO * (compressed or 0))
            origin = f"{DEFAULT_RATIO}x the compressed size, at least {format_size(DEFAULT_FLOOR)}"
        if free is not None and free - FREE_SPACE_MARGIN < limit:
            limit = max(0, free - FREE_SPACE_MARGIN)
            origin = f"the free space of the target filesystem less {format_size(FREE_SPACE_MARGIN)}"
        return cls(limit, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_PATH, origin)


class Budget:
    """Applies :class:`Limits` as entries are read; raises TooLargeError naming the layer and the limit."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.written = 0
        self.entries = 0
        self.layer = "layer"

    def start_layer(self, name: str) -> None:
        self.layer = name
        self.entries = 0

    def entry(self, info: tarfile.TarInfo) -> None:
        """Count one entry of the current layer and check its name and link target lengths."""
        limits = self.limits
        self.entries += 1
        if limits.max_entries is not None and self.entries > limits.max_entries:
            raise TooLargeError(
                f"{self.layer} has more than {limits.max_entries} entries (the limit per layer)",
                size=self.entries,
                limit=limits.max_entries,
            )
        if limits.max_path is not None:
            for text in (info.name, info.linkname):
                length = len(text.encode("utf-8", "surrogateescape"))
                if length > limits.max_path:
                    raise TooLargeError(
                        f"{self.layer} has an entry name of {length} bytes "
                        f"(the limit is {limits.max_path}): {_printable(text)}",
                        size=length,
                        limit=limits.max_path,
                    )

    def write(self, size: int) -> None:
        """Account for ``size`` more bytes of file content before they are written."""
        limit = self.limits.max_bytes
        if limit is not None and self.written + size > limit:
            raise TooLargeError(
                f"{self.layer} expands past the {format_size(limit)} limit on what the image may write "
                f"({self.limits.origin}; --max-size SIZE or --no-size-limit to change it)",
                size=self.written + size,
                limit=limit,
            )
        self.written += size
