"""Append Apptainer's runtime tree (:class:`regpeek.formats.apptainer.TreeEntry` values) to a tar stream.

The entries come from :func:`regpeek.formats.apptainer.sif_metadata`, usually filtered by
:func:`regpeek.formats.apptainer.apply_policies` against the paths the image already has. Written
after the image's own entries, a later entry replaces an earlier one of the same name when the tar is
extracted or turned into a squashfs.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable

from regpeek.formats.apptainer import TreeEntry

__all__ = ["append_entries", "tar_info"]

_TYPES = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE}


def tar_info(entry: TreeEntry) -> tarfile.TarInfo:
    """The tar header of one entry: its relative path, type, mode, owner and mtime."""
    if entry.kind not in _TYPES:
        raise ValueError(f"unknown entry kind {entry.kind!r} for {entry.path}")
    info = tarfile.TarInfo(entry.path.strip("/"))
    info.type = _TYPES[entry.kind]
    info.mode = entry.mode & 0o7777
    info.uid, info.gid = entry.uid, entry.gid
    info.mtime = entry.mtime
    if entry.kind == "file":
        info.size = len(entry.content)
    elif entry.kind == "symlink":
        info.linkname = entry.target
    return info


def append_entries(tar: tarfile.TarFile, entries: Iterable[TreeEntry]) -> int:
    """Write ``entries`` to an open (writing) tar, in order; returns how many were written."""
    count = 0
    for entry in entries:
        info = tar_info(entry)
        tar.addfile(info, io.BytesIO(entry.content) if entry.kind == "file" else None)
        count += 1
    return count
