"""Layer tars with full control (duplicates, any name, owners, mtimes, xattrs) and OCI layouts on disk.

:func:`tests.support.images.make_tar` takes a mapping with one fixed mtime and owner; the unpack tests
need hostile names (``../x``, ``/etc/passwd``), repeated paths, whiteouts, per-entry metadata and raw
PAX headers, so entries here are an ordered list of :class:`Entry`.  :func:`write_oci_layout` writes an
image layout that ``umoci unpack`` and ``skopeo`` read (``index.json`` names the image ``latest``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .images import FIXED_MTIME, Compression, compress

Kind = Literal["file", "dir", "symlink", "hardlink", "fifo", "chardev", "blockdev", "whiteout", "opaque"]

_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
    "whiteout": tarfile.REGTYPE,
    "opaque": tarfile.REGTYPE,
}
_DEFAULT_MODES = {"dir": 0o755, "symlink": 0o777, "chardev": 0o600, "blockdev": 0o600}

OCI_LAYER_MEDIA_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


@dataclass(frozen=True)
class Entry:
    """One tar member.  ``whiteout``/``opaque`` are conveniences: ``name`` is then the path whited out
    (``a/b`` gives ``a/.wh.b``) or the opaque directory (``a`` gives ``a/.wh..wh..opq``)."""

    name: str
    kind: Kind = "file"
    data: bytes = b""
    mode: int | None = None
    mtime: float = FIXED_MTIME
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    major: int = 0
    minor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)

    def tarinfo(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.member_name())
        info.type = _TYPES[self.kind]
        info.mode = self.mode if self.mode is not None else _DEFAULT_MODES.get(self.kind, 0o644)
        info.mtime = self.mtime
        info.uid, info.gid = self.uid, self.gid
        info.uname = info.gname = ""
        info.linkname = self.linkname
        info.devmajor, info.devminor = self.major, self.minor
        if self.kind == "file":
            info.size = len(self.data)
        info.pax_headers = {
            f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
            for key, value in self.xattrs.items()
        }
        return info

    def member_name(self) -> str:
        if self.kind == "whiteout":
            parent, _, base = self.name.rpartition("/")
            return f"{parent}/.wh.{base}" if parent else f".wh.{base}"
        if self.kind == "opaque":
            return f"{self.name}/.wh..wh..opq" if self.name else ".wh..wh..opq"
        return self.name


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """An uncompressed PAX tar of ``entries`` in order (repeats allowed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            data = io.BytesIO(entry.data) if entry.kind == "file" else None
            tar.addfile(entry.tarinfo(), data)
    return buffer.getvalue()


def layer_blob(entries: Iterable[Entry], compression: Compression = "gzip") -> bytes:
    return compress(tar_bytes(entries), compression)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = _sha256(data)
    (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def write_oci_layout(
    layout: Path,
    layers: Sequence[Sequence[Entry]],
    compression: Compression = "gzip",
    tag: str = "latest",
) -> list[tuple[bytes, str]]:
    """Write an OCI image layout holding one linux/amd64 image of ``layers`` (base first).

    Returns the layer blobs with their media types, as a puller would hand them to the unpacker.
    """
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    media_type = OCI_LAYER_MEDIA_TYPES[compression]
    blobs: list[tuple[bytes, str]] = []
    descriptors = []
    diff_ids = []
    for entries in layers:
        raw = tar_bytes(entries)
        blob = compress(raw, compression)
        blobs.append((blob, media_type))
        descriptors.append({"mediaType": media_type, **_write_blob(layout, blob)})
        diff_ids.append(_sha256(raw))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2020-09-13T12:26:40Z"} for _ in layers],
    }
    config_desc = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        **_write_blob(layout, json.dumps(config).encode()),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": descriptors,
    }
    manifest_desc = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **_write_blob(layout, json.dumps(manifest).encode()),
        "annotations": {"org.opencontainers.image.ref.name": tag},
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return blobs


# -- describing results --------------------------------------------------------------------------
#: (type, content of a file, permission bits (None for symlinks), symlink target)
Description = tuple[str, "bytes | None", "int | None", "str | None"]


def kind_of(mode: int) -> str:
    """The entry type of an ``st_mode``: file, dir, symlink, fifo, chardev, blockdev."""
    for name, test in (("symlink", stat.S_ISLNK), ("dir", stat.S_ISDIR), ("file", stat.S_ISREG)):
        if test(mode):
            return name
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "chardev" if stat.S_ISCHR(mode) else "blockdev"


def walk(root: Path) -> set[str]:
    """Every path below ``root``, relative, without following symlinks."""
    found = set()
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


def describe_tree(root: Path) -> tuple[dict[str, Description], set[frozenset[str]]]:
    """Each path of a directory as a :data:`Description`, and the hard link groups (by inode)."""
    tree: dict[str, Description] = {}
    inodes: dict[tuple[int, int], set[str]] = {}
    for name in walk(root):
        path = root / name
        info = path.lstat()
        kind = kind_of(info.st_mode)
        content = path.read_bytes() if kind == "file" else None
        target = os.readlink(path) if kind == "symlink" else None
        mode = None if kind == "symlink" else stat.S_IMODE(info.st_mode)
        tree[name] = (kind, content, mode, target)
        if kind != "dir":
            inodes.setdefault((info.st_dev, info.st_ino), set()).add(name)
    return tree, {frozenset(group) for group in inodes.values() if len(group) > 1}


_TAR_KINDS = {
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "chardev",
    tarfile.BLKTYPE: "blockdev",
}


def describe_tar(data: bytes) -> tuple[dict[str, Description], set[frozenset[str]]]:
    """The same description of a flattened tar.  Asserts that no name is written twice and that every
    hard link follows its target; a link takes its target's description."""
    tree: dict[str, Description] = {}
    group_of: dict[str, set[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            name = member.name.rstrip("/")
            if name in (".", ""):
                continue
            assert name not in tree, f"{name} written twice"
            if member.islnk():
                assert member.linkname in tree, f"hard link {name} before its target {member.linkname}"
                tree[name] = tree[member.linkname]
                group = group_of.setdefault(member.linkname, {member.linkname})
                group.add(name)
                group_of[name] = group
                continue
            content = None
            if member.isreg():
                extracted = tar.extractfile(member)
                assert extracted is not None
                content = extracted.read()
            mode = None if member.issym() else member.mode
            target = member.linkname if member.issym() else None
            tree[name] = (_TAR_KINDS.get(member.type, "file"), content, mode, target)
    return tree, {frozenset(group) for group in group_of.values()}
