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
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["UnpackReport"]

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
