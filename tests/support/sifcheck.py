"""Oracles for ``regpeek sif``: root file systems described the way ``unsquashfs -lln`` lists them.

A :class:`Tree` maps each path (relative, ``""`` for the root) to a :class:`Node`: the ``ls``-style
mode string (type, permissions, setuid/setgid/sticky), ``uid/gid``, the size (None for directories,
whose squashfs size is the tool's business; ``major,minor`` for device nodes), the mtime to the
minute (UTC, as ``unsquashfs -lln`` prints it with ``TZ=UTC``) and the symlink target; plus the
sha256 of every regular file and the hard link groups.

- :func:`squashfs_tree` lists a squashfs with ``unsquashfs -lln`` (an independent reader) and hashes
  its files from an ``unsquashfs -d`` extraction (as root: hard links come back as links) or, without
  root, ``unsquashfs -cat``;
- :func:`export_tree` reads the tar ``regpeek export`` writes (each name once, links after targets);
- :func:`with_runtime_tree` adds to it what :mod:`regpeek.formats.apptainer` says Apptainer's
  conversion adds, after its merge policies against the image's own paths: what the SIF must hold;
- :func:`directory_tree` describes an unpacked directory (a sandbox).

Also :func:`push_layers_image`: an OCI image of hand-made layers (:class:`tests.support.layers.Entry`)
with any config, pushed with the test pusher.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from regpeek.formats.apptainer import Existing, TreeEntry, held_paths, merge_tree, watched_paths

from .images import Blob, Compression, compact_json, compress
from .layers import OCI_LAYER_MEDIA_TYPES, Entry, tar_bytes
from .push import Pusher
from .util import sha256_digest

TIMEOUT = 120
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Node:
    """One path as ``unsquashfs -lln`` shows it."""

    mode: str  # "drwxr-xr-x", "-rwsr-xr-x", "crw-rw-rw-"...
    owner: str  # "uid/gid"
    size: str | None  # bytes; "major,minor" for devices; None for directories
    mtime: str  # "YYYY-MM-DD HH:MM", UTC
    target: str | None = None  # symlinks

    @property
    def kind(self) -> str:
        return self.mode[0]


@dataclass
class Tree:
    nodes: dict[str, Node] = field(default_factory=dict)
    contents: dict[str, str] = field(default_factory=dict)  # regular files: sha256 hex
    links: dict[str, str] = field(default_factory=dict)  # hard link member -> the group's first name

    def groups(self) -> set[frozenset[str]]:
        """Hard link groups (names sharing an inode), each of two names or more."""
        found: dict[str, set[str]] = {}
        for name, head in self.links.items():
            found.setdefault(head, {head}).add(name)
        return {frozenset(group) for group in found.values() if len(group) > 1}

    def without(self, *fields: str) -> dict[str, Node]:
        """The nodes with some fields blanked (``"owner"``, ``"mtime"``, ``"size"``)."""
        return {name: replace(node, **dict.fromkeys(fields, "")) for name, node in self.nodes.items()}


def minute(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(seconds)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- squashfs --------------------------------------------------------------------------------------
_LISTED = re.compile(
    rb"^(?P<mode>[-dlcbps][-rwxsStT]{9}) (?P<uid>\d+)/(?P<gid>\d+) +(?P<size>\d+|\d+, *\d+) "
    rb"(?P<mtime>\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(?P<rest>.*)$"
)


def run(*args: str | Path, input: bytes | None = None, env: Mapping[str, str] | None = None) -> bytes:
    done = subprocess.run(
        [str(a) for a in args],
        input=input,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, "TZ": "UTC", **(env or {})},
    )
    assert done.returncode == 0, f"{[str(a) for a in args]}: {done.stderr.decode(errors='replace')}"
    return done.stdout


def unsquashfs_listing(image: Path) -> dict[str, Node]:
    """``unsquashfs -lln IMAGE`` parsed (no path may contain `` -> ``; a symlink's target may)."""
    nodes: dict[str, Node] = {}
    for line in run("unsquashfs", "-lln", image).split(b"\n"):
        if not line:
            continue
        match = _LISTED.match(line)
        assert match is not None, f"unexpected unsquashfs line {line!r}"
        mode = match["mode"].decode()
        rest = match["rest"].decode("utf-8", "surrogateescape")
        target = None
        if mode[0] == "l":
            rest, target = rest.split(" -> ", 1)
        name = rest.removeprefix("/")
        assert name not in nodes, f"{name!r} listed twice"
        size: str | None = re.sub(r"\s+", "", match["size"].decode())
        if mode[0] == "d":
            size = None
        nodes[name] = Node(
            mode, f"{int(match['uid'])}/{int(match['gid'])}", size, match["mtime"].decode(), target
        )
    return nodes


def squashfs_tree(image: Path, scratch: Path) -> Tree:
    """The listing of ``image``, with file hashes and (as root) hard link groups from an extraction."""
    tree = Tree(nodes=unsquashfs_listing(image))
    files = [name for name, node in tree.nodes.items() if node.kind == "-"]
    if os.geteuid() == 0:
        target = scratch / "extracted"
        run("unsquashfs", "-q", "-n", "-d", target, image)
        extracted = directory_tree(target)
        assert set(extracted.nodes) == set(tree.nodes), "unsquashfs -d and -lln disagree"
        tree.contents = extracted.contents
        tree.links = extracted.links
    else:  # one -cat of every file, cut by the listed sizes
        data = run("unsquashfs", "-cat", image, *files) if files else b""
        offset = 0
        for name in files:
            size = int(tree.nodes[name].size or 0)
            tree.contents[name] = _sha256(data[offset : offset + size])
            offset += size
        assert offset == len(data)
    return tree


# -- directories ------------------------------------------------------------------------------------
def _node(info: os.stat_result, target: str | None) -> Node:
    kind = info.st_mode
    if stat.S_ISDIR(kind):
        size: str | None = None
    elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
        size = f"{os.major(info.st_rdev)},{os.minor(info.st_rdev)}"
    else:
        size = str(info.st_size)
    return Node(
        stat.filemode(info.st_mode), f"{info.st_uid}/{info.st_gid}", size, minute(info.st_mtime), target
    )


def directory_tree(root: Path) -> Tree:
    """A directory described like a squashfs listing (root included), hard links grouped by inode."""
    tree = Tree()
    inodes: dict[tuple[int, int], str] = {}
    tree.nodes[""] = _node(os.lstat(root), None)
    for directory, dirnames, filenames in os.walk(root):
        for entry in sorted(dirnames + filenames):
            path = os.path.join(directory, entry)
            name = os.path.relpath(path, root)
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
            tree.nodes[name] = _node(info, target)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    tree.contents[name] = _sha256(handle.read())
            if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
                tree.links[name] = inodes.setdefault((info.st_dev, info.st_ino), name)
    return tree


# -- the export tar and the runtime tree ----------------------------------------------------------
_TAR_MODE = {
    tarfile.DIRTYPE: stat.S_IFDIR,
    tarfile.SYMTYPE: stat.S_IFLNK,
    tarfile.FIFOTYPE: stat.S_IFIFO,
    tarfile.CHRTYPE: stat.S_IFCHR,
    tarfile.BLKTYPE: stat.S_IFBLK,
}


def _normal(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _tar_node(member: tarfile.TarInfo) -> Node:
    file_type = _TAR_MODE.get(member.type, stat.S_IFREG)
    mode = stat.filemode(file_type | (0o777 if member.issym() else member.mode & 0o7777))
    if member.isdir():
        size: str | None = None
    elif member.ischr() or member.isblk():
        size = f"{member.devmajor},{member.devminor}"
    elif member.issym():
        size = str(len(member.linkname.encode("utf-8", "surrogateescape")))
    else:
        size = str(member.size)
    target = member.linkname if member.issym() else None
    return Node(mode, f"{member.uid}/{member.gid}", size, minute(member.mtime), target)


def export_tree(data: bytes) -> Tree:
    """The tar ``regpeek export`` wrote, without its root entry. Asserts each name appears once and
    every hard link follows its target."""
    tree = Tree()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            name = _normal(member.name)
            if not name:
                continue
            assert name not in tree.nodes, f"{name} written twice"
            if member.islnk():
                target = _normal(member.linkname)
                assert target in tree.nodes, f"hard link {name} before its target {target}"
                tree.nodes[name] = tree.nodes[target]
                tree.contents[name] = tree.contents[target]
                head = tree.links.setdefault(target, target)
                tree.links[name] = head
                continue
            tree.nodes[name] = _tar_node(member)
            if member.isreg():
                extracted = tar.extractfile(member)
                assert extracted is not None
                tree.contents[name] = _sha256(extracted.read())
    return tree


def _existing(node: Node) -> Existing:
    kind = {"d": "dir", "-": "file", "l": "symlink"}.get(node.kind, "other")
    uid, gid = map(int, node.owner.split("/"))
    mode = stat.S_IMODE(_mode_bits(node.mode))
    return Existing(kind, mode, uid, gid)


def _mode_bits(text: str) -> int:
    """The permission bits of an ``ls`` mode string."""
    bits = 0
    for index, (char, value) in enumerate(zip(text[1:], (0o400, 0o200, 0o100) * 3, strict=True)):
        if char in "rwxst":
            bits |= value
        if char in "sS" and index == 2:
            bits |= 0o4000
        if char in "sS" and index == 5:
            bits |= 0o2000
        if char in "tT":
            bits |= 0o1000
    return bits


def with_runtime_tree(image: Tree, entries: Sequence[TreeEntry], build_time: int) -> Tree:
    """What the SIF's root file system must hold: the image (an :func:`export_tree`), joined by the
    runtime tree ``entries`` after :func:`regpeek.formats.apptainer.merge_tree` (a replaced path leaves
    its hard link group; the links written to it follow the new file), under a root 0755, 0:0, built
    at ``build_time``."""
    watched = watched_paths(entries)
    existing = {name: _existing(node) for name, node in image.nodes.items() if name in watched}
    merge = merge_tree(entries, existing)
    replaced = (held_paths(entries) & set(image.nodes)) - merge.keep_image
    tree = Tree(dict(image.nodes), dict(image.contents), dict(image.links))
    for entry in merge.write:
        name = _normal(entry.path)
        file_type = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK}[entry.kind]
        size = (
            None
            if entry.kind == "dir"
            else str(len(entry.content if entry.kind == "file" else entry.target.encode()))
        )
        node = Node(
            stat.filemode(file_type | (0o777 if entry.kind == "symlink" else entry.mode & 0o7777)),
            f"{entry.uid}/{entry.gid}",
            size,
            minute(entry.mtime),
            entry.target if entry.kind == "symlink" else None,
        )
        followers = [n for n, head in image.links.items() if head == name and n != name]
        if name in replaced:
            tree.links.pop(name, None)
        for member in followers:  # links written to the replaced path now share the new file
            tree.nodes[member] = node
            tree.links[member] = name
        if followers:
            tree.links[name] = name
        tree.nodes[name] = node
        tree.contents.pop(name, None)
        for member in [name, *followers]:
            if entry.kind == "file":
                tree.contents[member] = _sha256(entry.content)
    tree.nodes[""] = Node("drwxr-xr-x", "0/0", None, minute(build_time))
    return tree


# -- pushing hand-made images ---------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    """A pushed single-platform image: its reference parts, digest and blobs."""

    host: str
    repo: str
    tag: str
    digest: str
    config: bytes
    layers: tuple[str, ...]  # layer digests, base first

    @property
    def ref(self) -> str:
        return f"{self.host}/{self.repo}:{self.tag}"

    @property
    def blobs(self) -> list[str]:
        return sorted([sha256_digest(self.config), *self.layers])


def push_layers_image(
    pusher: Pusher,
    host: str,
    repo: str,
    tag: str,
    layers: Sequence[Iterable[Entry]],
    *,
    compression: Compression = "gzip",
    config: Mapping[str, Any] | None = None,
    platform: Mapping[str, str] | None = None,
) -> Image:
    """Push an OCI image whose layers hold exactly ``layers`` (base first) and whose config's
    ``config`` member is ``config``."""
    blobs, diff_ids = [], []
    for entries in layers:
        raw = tar_bytes(entries)
        blob = compress(raw, compression)
        blobs.append(blob)
        diff_ids.append(sha256_digest(raw))
    document = {
        "created": "2020-09-13T12:26:40Z",
        **(platform or {"architecture": "amd64", "os": "linux"}),
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_blob = Blob.of(OCI_CONFIG, compact_json(document))
    for blob in blobs:
        pusher.push_blob(repo, blob)
    pusher.push_blob(repo, config_blob.data)
    manifest = compact_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_blob.descriptor(),
            "layers": [
                {"mediaType": OCI_LAYER_MEDIA_TYPES[compression], "digest": sha256_digest(b), "size": len(b)}
                for b in blobs
            ],
        }
    )
    digest = pusher.push_manifest(repo, tag, manifest, OCI_MANIFEST)
    return Image(host, repo, tag, digest, config_blob.data, tuple(sha256_digest(b) for b in blobs))


def config_member(config: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(config)
    return dict(document.get("config") or {})


__all__ = [
    "Image",
    "Node",
    "Tree",
    "config_member",
    "directory_tree",
    "export_tree",
    "minute",
    "push_layers_image",
    "run",
    "squashfs_tree",
    "unsquashfs_listing",
    "with_runtime_tree",
]
