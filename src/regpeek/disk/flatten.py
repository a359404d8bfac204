"""Flatten an image's layers into one root-filesystem tar (:func:`export_tar`), like ``crane export``.

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

Entry names, types and whiteouts are checked as when unpacking (:mod:`regpeek.disk.layerentry`): a refused
entry is skipped and counted, or with ``strict=True`` raises :class:`~regpeek.errors.MalformedError`.
The same :class:`~regpeek.disk.layerentry.Limits` apply: file bytes written to the output (a sparse file at
its declared size), entries per layer, name length.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from regpeek.disk.layerentry import (
    _AUFS_META_PREFIX,
    _REPLACING_REFUSALS,
    _XATTR_PREFIX,
    HARDLINK_TARGET_MISSING,
    HARDLINK_TO_DIRECTORY,
    OPAQUE_WHITEOUT,
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
from regpeek.disk.tarstream import TarSink, _content, _layer_errors, _read_tar, _tar_writer, open_layer
from regpeek.errors import MalformedError

__all__ = ["LayerOpener", "TarSink", "export_tar"]

#: Opens one layer blob for reading; :func:`export_tar` may call it more than once.
LayerOpener = Callable[[], BinaryIO]


def _ancestors(parts: Sequence[str]) -> Iterator[str]:
    """Keys of the proper ancestors, root (``""``) first."""
    for end in range(len(parts)):
        yield _key(parts[:end])


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
    def __init__(self, out: BinaryIO | TarSink, strict: bool, limits: Limits) -> None:
        self._out: TarSink = out if isinstance(out, TarSink) else _tar_writer(out)
        self.strict = strict
        self.budget = Budget(limits)
        self.report = UnpackReport()
        self._seen: set[str] = set()
        self._non_directories: set[str] = set()
        self._whiteouts: set[str] = set()
        self._opaque: set[str] = set()
        self._emitted: set[str] = set()
        self._below: dict[str, _Inode] = {}  # link targets upper layers wait for, by path

    def export(self, layers: Sequence[tuple[LayerOpener, str]], names: Sequence[str]) -> UnpackReport:
        for number in reversed(range(len(layers))):
            opener, media_type = layers[number]
            self.budget.start_layer(names[number] if number < len(names) else f"layer {number + 1}")
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
                self.budget.entry(info)
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
            self.budget.write(info.size)
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
    layers: Sequence[tuple[LayerOpener, str]],
    out: BinaryIO | TarSink,
    *,
    strict: bool = False,
    limits: Limits | None = None,
    names: Sequence[str] = (),
) -> UnpackReport:
    """Write one flattened root-filesystem tar of the image to ``out`` (sequentially, stdout-friendly).

    ``layers`` are ``(opener, media type)`` pairs, base layer FIRST as in the manifest; they are read
    top first, each opener called once (twice for a layer whose shadowed file a visible hard link of
    the same layer needs).  Whiteouts are applied and never written.  Returns what was written and
    skipped (refusals as in :class:`~regpeek.disk.unpack.Unpacker`; ``strict`` raises on them).
    ``limits`` (default: :class:`Limits` without a byte limit) raise TooLargeError naming the layer
    (from ``names``, base first).  ``out`` may also be a :class:`TarSink`, which then receives every
    entry (``addfile``) and is closed.
    """
    return _Exporter(out, strict, limits if limits is not None else Limits()).export(layers, names)
