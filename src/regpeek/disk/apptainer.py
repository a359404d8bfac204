"""Append Apptainer's runtime tree (:class:`regpeek.formats.apptainer.TreeEntry` values) to a tar stream.

The entries come from :func:`regpeek.formats.apptainer.sif_metadata`, usually filtered by
:func:`regpeek.formats.apptainer.apply_policies` against the paths the image already has. Written
after the image's own entries, a later entry replaces an earlier one of the same name when the tar is
extracted or turned into a squashfs.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from typing import IO, BinaryIO, cast

from regpeek.disk.flatten import TarSink
from regpeek.formats.apptainer import Existing, TreeEntry, held_paths, merge_tree, watched_paths

__all__ = ["ApptainerSink", "append_entries", "tar_info"]

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


def append_entries(tar: tarfile.TarFile | TarSink, entries: Iterable[TreeEntry]) -> int:
    """Write ``entries`` to an open (writing) tar, in order; returns how many were written."""
    count = 0
    for entry in entries:
        info = tar_info(entry)
        tar.addfile(info, io.BytesIO(entry.content) if entry.kind == "file" else None)
        count += 1
    return count


def _normal(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _existing(info: tarfile.TarInfo) -> Existing:
    if info.isdir():
        kind = "dir"
    elif info.isreg() or info.islnk():
        kind = "file"
    elif info.issym():
        kind = "symlink"
    else:
        kind = "other"
    return Existing(kind, info.mode & 0o7777, info.uid, info.gid)


class ApptainerSink(TarSink):
    """Merges Apptainer's runtime tree into a flattened image while it streams to ``out``.

    The image's entries pass straight through, except the few a tree entry may replace
    (:func:`~regpeek.formats.apptainer.held_paths`: ``/etc/hosts``, ``/singularity``...), which are held
    back (their content spooled, in memory up to 1 MiB, else in ``spool_dir``), and hard links to them,
    which wait.  What the image has at the :func:`~regpeek.formats.apptainer.watched_paths` is noted.
    :meth:`close` then writes the tree entries :func:`~regpeek.formats.apptainer.merge_tree` keeps, the
    held image entries it keeps, and the waiting links, so no path is written twice (squashfs builders
    refuse that) and every link follows its target.  ``root`` records the image's ``./`` entry.
    """

    def __init__(
        self, out: tarfile.TarFile | TarSink, entries: Sequence[TreeEntry], spool_dir: str | None = None
    ) -> None:
        self._out = out
        self._entries = tuple(entries)
        self._watch = watched_paths(self._entries)
        self._hold = held_paths(self._entries)
        self._spool_dir = spool_dir
        self.existing: dict[str, Existing] = {}
        self.root: tarfile.TarInfo | None = None
        self._held: dict[str, tuple[tarfile.TarInfo, IO[bytes] | None]] = {}
        self._waiting: list[tarfile.TarInfo] = []

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: BinaryIO | None = None) -> None:
        name = _normal(tarinfo.name)
        if not name:
            self.root = tarinfo
        if name in self._watch:
            self.existing[name] = _existing(tarinfo)
        if name in self._hold:
            spool: IO[bytes] | None = None
            if tarinfo.isreg() and fileobj is not None:
                spool = tempfile.SpooledTemporaryFile(max_size=1 << 20, dir=self._spool_dir)  # noqa: SIM115 (closed in close())
                shutil.copyfileobj(fileobj, spool, 1 << 20)
                spool.seek(0)
            previous = self._held.pop(name, None)
            if previous is not None and previous[1] is not None:
                previous[1].close()
            self._held[name] = (tarinfo, spool)
            return
        if tarinfo.islnk() and _normal(tarinfo.linkname) in self._hold:
            self._waiting.append(tarinfo)
            return
        self._out.addfile(tarinfo, fileobj)

    def close(self) -> None:
        try:
            merge = merge_tree(self._entries, self.existing)
            append_entries(self._out, merge.write)
            for name, (info, spool) in self._held.items():
                if name in merge.keep_image:
                    self._out.addfile(info, cast(BinaryIO, spool))
            for link in self._waiting:
                self._out.addfile(link)
            self._out.close()
        finally:
            for _, spool in self._held.values():
                if spool is not None:
                    spool.close()
