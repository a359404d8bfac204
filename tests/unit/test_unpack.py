"""Layer unpacking and flattening: entry types, metadata, whiteouts, compression, hostile archives.

Every hostile case unpacks into ``sandbox/root`` next to a sentinel file and checks that nothing in
the sandbox outside ``root`` changed (names, types, contents, modes, mtimes, link counts).
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import regpeek
from regpeek.disk.unpack import (
    Unpacker,
    UnpackReport,
    declared_compression,
    export_tar,
    open_layer,
    sniff_compression,
    unpack_layers,
)
from regpeek.errors import MalformedError, TooLargeError
from tests.support.images import Compression, compress
from tests.support.layers import Entry, Kind, describe_tar, describe_tree, kind_of, tar_bytes
from tests.support.layers import walk as names

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="needs root (chown, mknod)")

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Layer = Sequence[Entry]


# -- helpers -------------------------------------------------------------------------------------
def blobs(*layers: Layer, media_type: str = OCI_TAR) -> list[tuple[BinaryIO, str]]:
    return [(io.BytesIO(tar_bytes(layer)), media_type) for layer in layers]


def opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def unpack(root: Path, *layers: Layer, **options: object) -> UnpackReport:
    return unpack_layers(blobs(*layers), root, **options)  # type: ignore[arg-type]


def kind(path: Path) -> str:
    return kind_of(path.lstat().st_mode)


def snapshot(top: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Everything under ``top`` except ``skip``: type, mode, mtime, link count, content or target."""
    state: dict[str, tuple[object, ...]] = {}
    for directory, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if Path(directory, d) != skip]
        for name in dirnames + filenames:
            path = Path(directory, name)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                body: object = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                body = path.read_bytes()
            else:
                body = None
            state[str(path.relative_to(top))] = (info.st_mode, info.st_mtime_ns, info.st_nlink, body)
    return state


@dataclass
class Sandbox:
    """``top/root`` is unpacked into; ``top/sentinel`` and ``top/outside/`` must never change."""

    top: Path

    @property
    def root(self) -> Path:
        return self.top / "root"

    @property
    def sentinel(self) -> Path:
        return self.top / "sentinel"

    def prepare(self) -> Sandbox:
        self.root.mkdir()
        self.sentinel.write_bytes(b"precious")
        (self.top / "outside").mkdir()
        (self.top / "outside" / "file").write_bytes(b"also precious")
        self.before = snapshot(self.top, self.root)
        return self

    def assert_untouched(self) -> None:
        assert snapshot(self.top, self.root) == self.before
        assert self.sentinel.read_bytes() == b"precious"
        assert not any(part.startswith(".wh.") for name in names(self.root) for part in name.split("/"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path).prepare()
    yield box
    box.assert_untouched()


def xattrs_supported(path: Path) -> bool:
    probe = path / "xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return False
        raise
    finally:
        probe.unlink()
    return True


# -- entry types and metadata --------------------------------------------------------------------
def test_every_entry_type_with_modes_and_mtimes(sandbox: Sandbox) -> None:
    report = unpack(
        sandbox.root,
        [
            Entry("bin", "dir", mode=0o755, mtime=1_000),
            Entry("bin/su", data=b"#!su", mode=0o4755, mtime=2_000),
            Entry("bin/wall", data=b"wall", mode=0o2711, mtime=2_001),
            Entry("tmp", "dir", mode=0o1777, mtime=3_000),
            Entry("ro", "dir", mode=0o555, mtime=3_500),
            Entry("ro/inside", data=b"x", mode=0o400),
            Entry("bin/sh", "symlink", linkname="/bin/su", mtime=4_000),
            Entry("bin/rel", "symlink", linkname="../tmp", mtime=4_001),
            Entry("bin/su2", "hardlink", linkname="bin/su"),
            Entry("pipe", "fifo", mode=0o640, mtime=5_000),
            Entry("empty", data=b"", mode=0o600),
        ],
    )
    root = sandbox.root
    assert (root / "bin/su").read_bytes() == b"#!su"
    assert stat.S_IMODE((root / "bin/su").stat().st_mode) == 0o4755
    assert stat.S_IMODE((root / "bin/wall").stat().st_mode) == 0o2711
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "ro").stat().st_mode) == 0o555
    assert stat.S_IMODE((root / "ro/inside").stat().st_mode) == 0o400
    assert (root / "bin/su").stat().st_mtime == 2_000
    assert os.readlink(root / "bin/sh") == "/bin/su"
    assert os.readlink(root / "bin/rel") == "../tmp"
    assert (root / "bin/sh").lstat().st_mtime == 4_000
    assert (root / "bin/su2").stat().st_ino == (root / "bin/su").stat().st_ino
    assert (root / "bin/su").stat().st_nlink == 2
    assert kind(root / "pipe") == "fifo"
    assert stat.S_IMODE((root / "pipe").lstat().st_mode) == 0o640
    assert (root / "pipe").lstat().st_mtime == 5_000
    # directory mtimes are set last, after children were added
    assert (root / "bin").stat().st_mtime == 1_000
    assert (root / "ro").stat().st_mtime == 3_500
    assert report == UnpackReport(files=4, directories=3, symlinks=2, hardlinks=1, fifos=1)
    assert report.warning() is None


def test_fractional_pax_mtime_is_kept_to_the_nanosecond(tmp_path: Path) -> None:
    unpack(
        tmp_path, [Entry("f", data=b"x", mtime=1_600_000_000.25), Entry("d", "dir", mtime=1_500_000_000.5)]
    )
    assert (tmp_path / "f").stat().st_mtime_ns == 1_600_000_000_250_000_000
    assert (tmp_path / "d").stat().st_mtime_ns == 1_500_000_000_500_000_000


def test_missing_parents_are_created_0755(tmp_path: Path) -> None:
    report = unpack(tmp_path, [Entry("a/b/c/file", data=b"deep", mode=0o600)])
    for parent in ("a", "a/b", "a/b/c"):
        assert kind(tmp_path / parent) == "dir"
        assert stat.S_IMODE((tmp_path / parent).stat().st_mode) == 0o755
    assert report.directories == 0 and report.files == 1


def test_root_entry_sets_the_root_times_but_never_loosens_its_mode_or_owner(tmp_path: Path) -> None:
    root = tmp_path / "root"
    unpack(
        root,
        [
            Entry("./", "dir", mode=0o777, mtime=7, uid=1000, gid=1000),
            Entry("./etc/", "dir"),
            Entry("./etc/x", data=b"x"),
        ],
    )
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert (root.stat().st_uid, root.stat().st_gid) == (os.geteuid(), os.getegid())
    assert root.stat().st_mtime == 7
    assert (root / "etc/x").read_bytes() == b"x"


@root_only
def test_ownership_and_devices_as_root(tmp_path: Path) -> None:
    report = unpack(
        tmp_path,
        [
            Entry("owned", data=b"x", uid=1000, gid=2000, mode=0o4750),
            Entry("link", "symlink", linkname="owned", uid=1001, gid=2001),
            Entry("dir", "dir", uid=1002, gid=2002, mode=0o2775),
            Entry("null", "chardev", major=1, minor=3, mode=0o666, mtime=9),
            Entry("loop", "blockdev", major=7, minor=0, mode=0o660),
        ],
        as_root=True,
    )
    owned = (tmp_path / "owned").stat()
    assert (owned.st_uid, owned.st_gid) == (1000, 2000)
    assert stat.S_IMODE(owned.st_mode) == 0o4750  # chmod after chown keeps setuid
    link = (tmp_path / "link").lstat()
    assert (link.st_uid, link.st_gid) == (1001, 2001)
    directory = (tmp_path / "dir").stat()
    assert (directory.st_uid, directory.st_gid, stat.S_IMODE(directory.st_mode)) == (1002, 2002, 0o2775)
    null = (tmp_path / "null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666 and null.st_mtime == 9
    assert stat.S_ISBLK((tmp_path / "loop").lstat().st_mode)
    assert report.devices == 2 and report.warning() is None


def test_not_root_skips_devices_and_ownership_with_one_warning_line(sandbox: Sandbox) -> None:
    report = unpack(
        sandbox.root,
        [
            Entry("dev/null", "chardev", major=1, minor=3),
            Entry("dev/sda", "blockdev", major=8, minor=0),
            Entry("home/user/file", data=b"x", uid=1000, gid=1000),
            Entry("etc/passwd", data=b"root"),
        ],
        as_root=False,
    )
    assert not (sandbox.root / "dev/null").exists() and not (sandbox.root / "dev/sda").exists()
    assert (sandbox.root / "home/user/file").stat().st_uid == os.geteuid()
    assert report.devices == 0
    assert report.skipped == {"device node (not root)": 2, "ownership (not root)": 1}
    warning = report.warning()
    assert warning == "skipped: 2 device node (not root), 1 ownership (not root)"
    assert "\n" not in warning


UNPRIVILEGED_SCRIPT = """
import io, json, os, sys
from pathlib import Path
from regpeek.disk.unpack import unpack_layers
layers = [bytes.fromhex(h) for h in json.loads(sys.argv[2])]
report = unpack_layers([(io.BytesIO(layer), "") for layer in layers], Path(sys.argv[1]))
print(json.dumps(report.skipped))
"""


@pytest.mark.skipif(
    not IS_ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv to drop to nobody"
)
def test_unprivileged_user_fills_read_only_directories() -> None:
    layers = [
        [
            Entry("ro", "dir", mode=0o555, mtime=100),
            Entry("ro/f", data=b"x", mode=0o444),
            Entry("ro/sub", "dir", mode=0o500),
            Entry("ro/sub/g", data=b"g", mode=0),
            Entry("cap", data=b"c", xattrs={"security.capability": b"\x01\x00\x00\x02" + bytes(16)}),
        ],
        [
            Entry("ro/new", data=b"n"),
            Entry("ro/.wh.f"),
            Entry("ro/sub/h", data=b"h"),
            Entry("ro/sub", "dir", mode=0o500),
        ],
    ]
    top = Path(tempfile.mkdtemp(prefix="regpeek-unpriv-"))
    try:
        top.chmod(0o777)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        # nobody may not be able to enter the checkout or the virtualenv (a fresh clone in a 0700
        # temporary directory, say): give it copies of the packages and the base interpreter
        lib = top / "lib"
        for package in (regpeek, zstandard):
            shutil.copytree(Path(str(package.__file__)).parent, lib / package.__name__)
        lib.chmod(0o755)
        env = {**os.environ, "PYTHONPATH": str(lib)}
        hexed = json.dumps([tar_bytes(layer).hex() for layer in layers])
        result = subprocess.run(
            [*nobody, os.path.realpath(sys.executable), "-c", UNPRIVILEGED_SCRIPT, str(top / "root"), hexed],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"xattr security.capability": 1}
        root = top / "root"
        assert (root / "ro").stat().st_uid == 65534
        assert names(root) == {"cap", "ro", "ro/new", "ro/sub", "ro/sub/g", "ro/sub/h"}
        assert stat.S_IMODE((root / "ro").stat().st_mode) == 0o555
        assert stat.S_IMODE((root / "ro/sub").stat().st_mode) == 0o500
        assert (root / "ro").stat().st_mtime == 100
    finally:
        shutil.rmtree(top)


def test_xattrs_from_pax_headers(tmp_path: Path) -> None:
    if not xattrs_supported(tmp_path):
        pytest.skip("filesystem without user xattrs")
    root = tmp_path / "root"
    report = unpack(
        root,
        [
            Entry("f", data=b"x", xattrs={"user.comment": b"hello", "user.bin": b"\xff\x00\x01"}),
            Entry("d", "dir", xattrs={"user.old": b"1"}),
            Entry("selinux", data=b"", xattrs={"security.selinux": b"system_u:object_r:etc_t:s0"}),
        ],
        [Entry("d", "dir", xattrs={"user.new": b"2"})],
    )
    assert os.getxattr(root / "f", "user.comment") == b"hello"
    assert os.getxattr(root / "f", "user.bin") == b"\xff\x00\x01"
    # a directory entry over a directory replaces its xattrs, as umoci does
    assert os.listxattr(root / "d") == ["user.new"]
    assert report.skipped == {"xattr security.selinux": 1}


def test_xattr_the_filesystem_refuses_is_counted(tmp_path: Path) -> None:
    report = unpack(tmp_path, [Entry("link", "symlink", linkname="x", xattrs={"user.nope": b"1"})])
    assert kind(tmp_path / "link") == "symlink"  # user.* xattrs are not allowed on symlinks
    assert report.skipped == {"xattr user.nope": 1}


# -- replacing -----------------------------------------------------------------------------------
def test_file_replaces_directory_and_directory_replaces_file(tmp_path: Path) -> None:
    unpack(
        tmp_path,
        [
            Entry("a", "dir"),
            Entry("a/child", data=b"c"),
            Entry("b", data=b"file b"),
            Entry("c", "symlink", linkname="a"),
        ],
        [
            Entry("a", data=b"now a file"),
            Entry("b", "dir", mode=0o700),
            Entry("b/inner", data=b"i"),
            Entry("c", "dir"),
        ],
    )
    assert (tmp_path / "a").read_bytes() == b"now a file"
    assert kind(tmp_path / "b") == "dir" and stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o700
    assert (tmp_path / "b/inner").read_bytes() == b"i"
    assert kind(tmp_path / "c") == "dir"
    assert list((tmp_path / "c").iterdir()) == []  # the symlink was replaced, not followed


def test_directory_over_directory_keeps_children_and_updates_metadata(tmp_path: Path) -> None:
    unpack(
        tmp_path,
        [Entry("d", "dir", mode=0o755, mtime=100), Entry("d/old", data=b"o")],
        [Entry("d", "dir", mode=0o711, mtime=200), Entry("d/new", data=b"n")],
    )
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["new", "old"]
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o711
    assert (tmp_path / "d").stat().st_mtime == 200


def test_lower_directory_keeps_its_mtime_when_an_upper_layer_adds_children(tmp_path: Path) -> None:
    unpack(tmp_path, [Entry("d", "dir", mtime=100)], [Entry("d/new", data=b"n")], [Entry("d/.wh.new")])
    assert (tmp_path / "d").stat().st_mtime == 100


def test_hardlink_keeps_old_content_when_target_is_replaced(tmp_path: Path) -> None:
    unpack(
        tmp_path,
        [Entry("a", data=b"one"), Entry("b", "hardlink", linkname="a")],
        [Entry("a", data=b"two")],
    )
    assert (tmp_path / "a").read_bytes() == b"two"
    assert (tmp_path / "b").read_bytes() == b"one"
    assert (tmp_path / "b").stat().st_nlink == 1


def test_later_entry_in_same_layer_wins(tmp_path: Path) -> None:
    unpack(tmp_path, [Entry("f", data=b"first"), Entry("f", data=b"second", mode=0o600)])
    assert (tmp_path / "f").read_bytes() == b"second"


# -- whiteouts -----------------------------------------------------------------------------------
def test_whiteouts_delete_lower_files_and_directories(tmp_path: Path) -> None:
    report = unpack(
        tmp_path,
        [
            Entry("etc/keep", data=b"k"),
            Entry("etc/gone", data=b"g"),
            Entry("var/lib/x/y", data=b"y"),
            Entry("l", "symlink", linkname="etc"),
        ],
        [
            Entry("etc/gone", "whiteout"),
            Entry("var/lib", "whiteout"),
            Entry("l", "whiteout"),
            Entry("never/was", "whiteout"),
        ],
    )
    assert names(tmp_path) == {"etc", "etc/keep", "var"}
    assert report.whiteouts == 4


def test_opaque_directory_hides_lower_children_but_keeps_same_layer_ones(tmp_path: Path) -> None:
    unpack(
        tmp_path,
        [Entry("d", "dir", mode=0o750, mtime=50), Entry("d/a", data=b"a"), Entry("d/sub/b", data=b"b")],
        [Entry("d/early", data=b"e"), Entry("d", "opaque"), Entry("d/late", data=b"l")],
    )
    assert names(tmp_path) == {"d", "d/early", "d/late"}
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o750  # the directory itself stays
    assert (tmp_path / "d").stat().st_mtime == 50


def test_opaque_root(tmp_path: Path) -> None:
    unpack(
        tmp_path,
        [Entry("a", data=b"a"), Entry("b/c", data=b"c")],
        [Entry("new", data=b"n"), Entry("", "opaque")],
    )
    assert names(tmp_path) == {"new"}


def test_same_layer_whiteout_does_not_delete_what_the_layer_added(tmp_path: Path) -> None:
    unpack(
        tmp_path,
        [Entry("x/lower", data=b"l"), Entry("f", data=b"lower f")],
        [
            Entry("f", data=b"upper f"),
            Entry("f", "whiteout"),  # after the entry: the entry stays
            Entry("x/upper", data=b"u"),
            Entry("x", "whiteout"),  # x itself stays (an ancestor of x/upper), its lower child goes
            Entry("g", "whiteout"),
            Entry("g", data=b"after whiteout"),
        ],
    )
    assert (tmp_path / "f").read_bytes() == b"upper f"
    assert names(tmp_path) == {"f", "g", "x", "x/upper"}


def test_whiteout_entries_are_never_created_and_aufs_metadata_is_ignored(tmp_path: Path) -> None:
    report = unpack(
        tmp_path,
        [Entry("a", data=b"a")],
        [Entry(".wh..wh.plnk", "dir"), Entry(".wh..wh.plnk/123.4", data=b"x"), Entry("d/.wh.nothing", "dir")],
    )
    assert names(tmp_path) == {"a"}  # a whiteout creates no parents either
    assert report.skipped == {"unsafe whiteout": 1}  # .wh..wh.plnk/123.4: a whiteout used as a directory


# -- compression ---------------------------------------------------------------------------------
LAYER = [Entry("etc", "dir"), Entry("etc/os-release", data=b"ID=test\n" * 100)]


@pytest.mark.parametrize(
    ("compression", "media_type"),
    [
        pytest.param("gzip", OCI_GZIP, id="oci-gzip"),
        pytest.param("gzip", DOCKER_GZIP, id="docker-gzip"),
        pytest.param("gzip", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", id="foreign"),
        pytest.param(
            "gzip", "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", id="nondistributable"
        ),
        pytest.param("zstd", OCI_ZSTD, id="oci-zstd"),
        pytest.param("none", OCI_TAR, id="oci-tar"),
        pytest.param("gzip", OCI_ZSTD, id="gzip-labelled-zstd"),
        pytest.param("zstd", OCI_GZIP, id="zstd-labelled-gzip"),
        pytest.param("none", OCI_GZIP, id="tar-labelled-gzip"),
        pytest.param("gzip", "application/octet-stream", id="gzip-unknown-type"),
        pytest.param("zstd", "", id="zstd-no-type"),
    ],
)
def test_open_layer_decompresses_and_sniffs(
    compression: Compression, media_type: str, tmp_path: Path
) -> None:
    blob = compress(tar_bytes(LAYER), compression)
    report = unpack_layers([(io.BytesIO(blob), media_type)], tmp_path)
    assert (tmp_path / "etc/os-release").read_bytes() == b"ID=test\n" * 100
    assert report.files == 1


def test_compression_helpers() -> None:
    assert declared_compression(DOCKER_GZIP) == "gzip"
    assert declared_compression(OCI_ZSTD + "; charset=x") == "zstd"
    assert declared_compression(OCI_TAR) == "none"
    assert declared_compression("application/json") is None
    assert sniff_compression(b"\x1f\x8b\x08") == "gzip"
    assert sniff_compression(b"\x28\xb5\x2f\xfd") == "zstd"
    assert sniff_compression(b"etc/") == "none"
    assert sniff_compression(b"") == "none"


class Trickle(io.RawIOBase):
    """A one-way stream that hands out at most ``step`` bytes per read (like a slow socket)."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self._step, len(self._data))
        view[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_open_layer_reads_non_seekable_short_read_streams(compression: Compression) -> None:
    raw = tar_bytes(LAYER)
    stream = cast(BinaryIO, Trickle(compress(raw, compression), step=3))
    with open_layer(stream, OCI_GZIP) as reader:
        assert reader.read() == raw


def test_concatenated_gzip_members_and_zstd_frames(tmp_path: Path) -> None:
    raw = tar_bytes([Entry("a", data=b"A" * 5000), Entry("b", data=b"B" * 5000)])
    half = len(raw) // 2
    as_gzip = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    as_zstd = zstandard.ZstdCompressor().compress(raw[:half]) + zstandard.ZstdCompressor().compress(
        raw[half:]
    )
    for blob in (as_gzip, as_zstd):
        with open_layer(io.BytesIO(blob), "") as reader:
            assert reader.read() == raw


def test_memory_stays_flat_for_a_large_layer(tmp_path: Path) -> None:
    size = 32 << 20
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    blob = gzip.compress(raw.getvalue(), compresslevel=1)
    del raw
    tracemalloc.start()
    try:
        unpack_layers([(io.BytesIO(blob), OCI_GZIP)], tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "big").stat().st_size == size
    assert peak < 8 << 20, f"peak {peak} bytes while unpacking a {size}-byte layer"


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(gzip.compress(tar_bytes(LAYER))[:-30], id="truncated-gzip"),
        pytest.param(b"\x1f\x8b" + b"garbage" * 50, id="corrupt-gzip"),
        pytest.param(b"\x28\xb5\x2f\xfd" + b"garbage" * 50, id="corrupt-zstd"),
        pytest.param(tar_bytes([Entry("f", data=b"x" * 5000)])[:2048], id="truncated-tar"),
        pytest.param(b"this is not a tar archive at all" * 40, id="not-a-tar"),
        pytest.param(b"", id="empty"),
    ],
)
def test_unreadable_layers_raise_malformed(blob: bytes, tmp_path: Path) -> None:
    with pytest.raises(MalformedError):
        unpack_layers([(io.BytesIO(blob), OCI_GZIP)], tmp_path)


# -- hostile archives ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["../escape", "../../escape", "a/../../escape", "./../escape", "/../escape", "a/b/../../../escape", ".."],
)
def test_names_climbing_above_root_are_refused(name: str, sandbox: Sandbox) -> None:
    report = unpack(sandbox.root, [Entry(name, data=b"evil"), Entry("ok", data=b"ok")])
    assert names(sandbox.root) == {"ok"}
    assert sum(report.skipped.values()) == 1
    assert not (sandbox.top / "escape").exists()


def test_absolute_names_land_inside_root(sandbox: Sandbox) -> None:
    unpack(sandbox.root, [Entry(str(sandbox.sentinel), data=b"evil"), Entry("/etc/passwd", data=b"evil")])
    assert (sandbox.root / str(sandbox.sentinel).lstrip("/")).read_bytes() == b"evil"
    assert (sandbox.root / "etc/passwd").read_bytes() == b"evil"


def test_lexical_dotdot_inside_root_is_fine(tmp_path: Path) -> None:
    unpack(tmp_path, [Entry("a/../b/./c", data=b"c")])
    assert (tmp_path / "b/c").read_bytes() == b"c"


@pytest.mark.parametrize("target", ["/", "..", "../..", "../../..", "/..", "a/../../..", "SANDBOX"])
def test_symlink_in_parent_is_resolved_inside_root(target: str, sandbox: Sandbox) -> None:
    target = target.replace("SANDBOX", str(sandbox.top))
    unpack(
        sandbox.root,
        [Entry("a", "dir"), Entry("link", "symlink", linkname=target)],
        [Entry("link/sentinel", data=b"evil"), Entry("link/outside/file", data=b"evil")],
    )
    written = {name for name in names(sandbox.root) if name.endswith(("sentinel", "outside/file"))}
    assert len(written) == 2  # somewhere inside root
    assert os.readlink(sandbox.root / "link") == target


def test_symlink_in_parent_within_one_layer(sandbox: Sandbox) -> None:
    unpack(
        sandbox.root,
        [
            Entry("up", "symlink", linkname="../../.."),
            Entry("up/sentinel", data=b"evil"),
            Entry("etc", "symlink", linkname="/"),
        ],
        [Entry("etc/etc/passwd", data=b"x")],
    )
    assert (sandbox.root / "sentinel").read_bytes() == b"evil"
    assert (sandbox.root / "passwd").read_bytes() == b"x"  # etc -> / means root, twice


def test_final_symlink_component_is_replaced_not_followed(sandbox: Sandbox) -> None:
    unpack(
        sandbox.root,
        [
            Entry("s", "symlink", linkname=str(sandbox.sentinel)),
            Entry("d", "symlink", linkname=str(sandbox.top / "outside")),
        ],
        [Entry("s", data=b"evil", mode=0o777), Entry("d", "dir", mode=0o700)],
    )
    assert (sandbox.root / "s").read_bytes() == b"evil"
    assert kind(sandbox.root / "d") == "dir"


def test_symlink_loops_are_refused(sandbox: Sandbox) -> None:
    report = unpack(
        sandbox.root,
        [
            Entry("l1", "symlink", linkname="l2"),
            Entry("l2", "symlink", linkname="/l1"),
            Entry("self", "symlink", linkname="./self"),
            Entry("l1/x", data=b"x"),
            Entry("self/y", data=b"y"),
            Entry("l2/.wh.z"),
        ],
    )
    assert report.skipped == {"symlink loop": 3}
    assert names(sandbox.root) == {"l1", "l2", "self"}


def test_long_symlink_chain_within_the_hop_limit_works(tmp_path: Path) -> None:
    chain = [Entry(f"s{i}", "symlink", linkname=f"s{i + 1}") for i in range(30)]
    unpack(tmp_path, [Entry("s30", "dir"), *chain, Entry("s0/file", data=b"f")])
    assert (tmp_path / "s30/file").read_bytes() == b"f"


@pytest.mark.parametrize(
    ("linkname", "reason"),
    [
        ("../outside/file", "unsafe hardlink"),
        ("a/../../sentinel", "unsafe hardlink"),
        ("/etc/passwd", "hardlink target missing"),
        ("SENTINEL", "hardlink target missing"),
        ("up/sentinel", "hardlink target missing"),
        ("dir", "hardlink to directory"),
        ("loop/x", "symlink loop"),
    ],
)
def test_hardlinks_outside_root_are_refused(linkname: str, reason: str, sandbox: Sandbox) -> None:
    linkname = linkname.replace("SENTINEL", str(sandbox.sentinel))
    report = unpack(
        sandbox.root,
        [
            Entry("up", "symlink", linkname="../.."),
            Entry("dir", "dir"),
            Entry("loop", "symlink", linkname="loop"),
        ],
        [Entry("h", "hardlink", linkname=linkname)],
    )
    assert report.skipped == {reason: 1}
    assert not (sandbox.root / "h").exists()


def test_hardlink_to_a_symlink_pointing_outside_links_the_symlink(sandbox: Sandbox) -> None:
    unpack(
        sandbox.root,
        [Entry("evil", "symlink", linkname=str(sandbox.sentinel)), Entry("h", "hardlink", linkname="evil")],
        [Entry("h", data=b"overwrite", mode=0o666)],
        [Entry("h2", "hardlink", linkname="evil")],
    )
    assert kind(sandbox.root / "h2") == "symlink"
    assert (sandbox.root / "h2").lstat().st_ino == (sandbox.root / "evil").lstat().st_ino
    assert (sandbox.root / "h").read_bytes() == b"overwrite"


def test_hardlink_through_symlinked_parent_stays_inside(sandbox: Sandbox) -> None:
    unpack(
        sandbox.root,
        [Entry("real/file", data=b"inside"), Entry("alias", "symlink", linkname="/real")],
        [Entry("h", "hardlink", linkname="alias/file")],
    )
    assert (sandbox.root / "h").stat().st_ino == (sandbox.root / "real/file").stat().st_ino


@pytest.mark.parametrize(
    "name",
    [".wh..", ".wh...", ".wh.", "a/.wh..", "a/.wh...", ".wh.../x", "a/.wh.x/y", "../.wh.x", ".wh.x/.wh.y"],
)
def test_hostile_whiteout_names_are_refused(name: str, sandbox: Sandbox) -> None:
    report = unpack(
        sandbox.root, [Entry("a/keep", data=b"k"), Entry("x", data=b"x")], [Entry(name, data=b"")]
    )
    assert names(sandbox.root) == {"a", "a/keep", "x"}
    assert sum(report.skipped.values()) == 1 and report.whiteouts == 0


def test_whiteout_through_symlinked_parent_stays_inside(sandbox: Sandbox) -> None:
    unpack(
        sandbox.root,
        [Entry("up", "symlink", linkname="../../.."), Entry("abs", "symlink", linkname=str(sandbox.top))],
        [Entry("up/.wh.sentinel"), Entry("abs/.wh.sentinel"), Entry("up/outside", "opaque")],
    )
    assert names(sandbox.root) == {"up", "abs"}


def test_symlink_to_whiteout_name_does_not_create_whiteout_directories(sandbox: Sandbox) -> None:
    report = unpack(sandbox.root, [Entry("s", "symlink", linkname=".wh.evil"), Entry("s/file", data=b"x")])
    assert report.skipped == {"unsafe whiteout": 1}


def test_root_entry_of_another_type_is_refused(sandbox: Sandbox) -> None:
    report = unpack(
        sandbox.root, [Entry(".", "symlink", linkname="/"), Entry("/", data=b"x"), Entry("ok", data=b"")]
    )
    assert report.skipped == {"unsafe path": 2}
    assert names(sandbox.root) == {"ok"}


def test_entry_below_a_file_is_refused(sandbox: Sandbox) -> None:
    report = unpack(sandbox.root, [Entry("f", data=b"f")], [Entry("f/x", data=b"x")])
    assert report.skipped == {"parent not a directory": 1}
    assert (sandbox.root / "f").read_bytes() == b"f"


def test_overlong_name_is_counted_not_fatal(sandbox: Sandbox) -> None:
    report = unpack(sandbox.root, [Entry("n" * 300, data=b"x"), Entry("ok", data=b"")])
    assert report.skipped == {"filesystem error (ENAMETOOLONG)": 1}
    assert names(sandbox.root) == {"ok"}


def test_unsupported_entry_type_is_skipped(sandbox: Sandbox) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("volume")
        info.type = b"V"
        tar.addfile(info)
        tar.addfile(tarfile.TarInfo("ok"), io.BytesIO(b""))
    report = unpack_layers([(io.BytesIO(data.getvalue()), OCI_TAR)], sandbox.root)
    assert report.skipped == {"unsupported entry type": 1}
    assert names(sandbox.root) == {"ok"}


def test_device_node_as_non_root_is_skipped(sandbox: Sandbox) -> None:
    report = unpack(sandbox.root, [Entry("sda", "blockdev", major=8, minor=0)], as_root=False)
    assert report.skipped == {"device node (not root)": 1}
    assert names(sandbox.root) == set()


@pytest.mark.parametrize(
    "layer",
    [
        pytest.param([Entry("../x", data=b"")], id="dotdot"),
        pytest.param([Entry("h", "hardlink", linkname="../x")], id="hardlink"),
        pytest.param([Entry(".wh..")], id="whiteout"),
        pytest.param([Entry("l", "symlink", linkname="l"), Entry("l/x", data=b"")], id="loop"),
    ],
)
def test_strict_raises_instead_of_skipping(layer: Layer, sandbox: Sandbox) -> None:
    with pytest.raises(MalformedError, match="refusing layer entry"):
        unpack(sandbox.root, layer, strict=True)


def test_strict_does_not_raise_for_privilege_skips(sandbox: Sandbox) -> None:
    report = unpack(sandbox.root, [Entry("null", "chardev", major=1, minor=3)], strict=True, as_root=False)
    assert report.skipped == {"device node (not root)": 1}


def test_max_bytes_stops_a_decompression_bomb(sandbox: Sandbox) -> None:
    bomb = gzip.compress(tar_bytes([Entry("small", data=b"s" * 1000), Entry("bomb", data=bytes(4 << 20))]))
    assert len(bomb) < 10_000
    with pytest.raises(TooLargeError):
        unpack_layers([(io.BytesIO(bomb), OCI_GZIP)], sandbox.root, max_bytes=1 << 20)
    assert not (sandbox.root / "bomb").exists()


def test_max_bytes_counts_all_layers(sandbox: Sandbox) -> None:
    with pytest.raises(TooLargeError):
        unpack(sandbox.root, [Entry("a", data=bytes(600))], [Entry("b", data=bytes(600))], max_bytes=1000)
    report = unpack(
        sandbox.root, [Entry("c", data=bytes(600))], [Entry("d", data=bytes(400))], max_bytes=1000
    )
    assert report.files == 2


def test_huge_extended_header_is_refused(sandbox: Sandbox) -> None:
    layer = tar_bytes([Entry("ok", data=b""), Entry("f", data=b"", xattrs={"user.big": b"x" * (2 << 20)})])
    with pytest.raises(TooLargeError, match="extended header"):
        unpack_layers([(io.BytesIO(layer), OCI_TAR)], sandbox.root)


def test_unpacker_api_and_repeated_apply(tmp_path: Path) -> None:
    unpacker = Unpacker(tmp_path / "new" / "root", as_root=False)
    unpacker.apply(io.BytesIO(tar_bytes([Entry("d", "dir", mtime=10), Entry("d/a", data=b"a")])))
    unpacker.apply(io.BytesIO(tar_bytes([Entry("d/b", data=b"b"), Entry("d/.wh.a")])))
    report = unpacker.finish()
    assert names(tmp_path / "new/root") == {"d", "d/b"}
    assert (tmp_path / "new/root/d").stat().st_mtime == 10
    assert (report.files, report.whiteouts) == (2, 1)


# -- hypothesis: arbitrary hostile archives ------------------------------------------------------
_COMPONENTS = ["a", "b", "..", ".", "", ".wh.a", ".wh..wh..opq", ".wh..", ".wh...", "c"]
_TARGETS = [
    "/",
    "..",
    "../..",
    "../../..",
    "a",
    "a/b",
    "/a",
    "b/../..",
    "SANDBOX",
    "SANDBOX/outside",
    "c",
    ".",
]


@st.composite
def hostile_entries(draw: st.DrawFn) -> Entry:
    parts = draw(st.lists(st.sampled_from(_COMPONENTS), min_size=1, max_size=4))
    name = ("/" if draw(st.booleans()) else "") + "/".join(parts)
    entry_kind: Kind = draw(st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"]))
    linkname = draw(st.sampled_from(_TARGETS)) if entry_kind in ("symlink", "hardlink") else ""
    return Entry(name, entry_kind, data=b"x" if entry_kind == "file" else b"", linkname=linkname, mode=0o755)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(hostile_entries(), max_size=8), min_size=1, max_size=3), st.booleans())
def test_property_nothing_outside_root_changes(layers: list[list[Entry]], as_root: bool) -> None:
    with tempfile.TemporaryDirectory() as top:
        box = Sandbox(Path(top)).prepare()
        resolved = [
            [
                Entry(e.name, e.kind, data=e.data, linkname=e.linkname.replace("SANDBOX", top), mode=e.mode)
                for e in layer
            ]
            for layer in layers
        ]
        unpack(box.root, *resolved, as_root=as_root)
        box.assert_untouched()
        out = io.BytesIO()
        export_tar([(opener(tar_bytes(layer)), OCI_TAR) for layer in resolved], out)
        out.seek(0)
        with tarfile.open(fileobj=out) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                assert ".." not in parts and not member.name.startswith("/")
                assert not any(part.startswith(".wh.") for part in parts)


# -- export_tar ----------------------------------------------------------------------------------
def export_and_unpack(layers: Sequence[Layer], root: Path) -> tuple[bytes, UnpackReport, UnpackReport]:
    out = io.BytesIO()
    exported = export_tar([(opener(tar_bytes(layer)), OCI_TAR) for layer in layers], out)
    unpacked = unpack(root, *layers)
    return out.getvalue(), exported, unpacked


EXPORT_LAYERS: list[Layer] = [
    [
        Entry("etc", "dir"),
        Entry("etc/passwd", data=b"root:x:0:0"),
        Entry("etc/shadow", data=b"secret", mode=0o600),
        Entry("etc/gone", data=b"g"),
        Entry("opt", "dir", mode=0o750),
        Entry("opt/lower", data=b"lower"),
        Entry("opt/sub/deep", data=b"deep"),
        Entry("lib", "dir"),
        Entry("lib/libc.so", data=b"libc"),
        Entry("lib/libc.so.6", "hardlink", linkname="lib/libc.so"),
        Entry("bin/tool", data=b"tool v1", mode=0o755),
        Entry("was_dir", "dir"),
        Entry("was_dir/child", data=b"c"),
        Entry("was_file", data=b"file"),
        Entry("usr/shared", data=b"shared by links"),
        Entry("usr/old", data=b"old"),
        Entry("usr/old-link", "hardlink", linkname="usr/old"),
        Entry("dev/pipe", "fifo", mode=0o600),
    ],
    [
        Entry("etc/.wh.gone"),
        Entry("opt", "opaque"),
        Entry("opt/upper", data=b"upper"),
        Entry("bin/tool", data=b"tool v2", mode=0o4755),
        Entry("bin/tool-link", "hardlink", linkname="bin/tool"),
        Entry("was_dir", data=b"now a file"),
        Entry("was_file", "dir", mode=0o700),
        Entry("was_file/inner", data=b"inner"),
        Entry("usr/link-to-lower", "hardlink", linkname="usr/shared"),
        Entry("sbin", "symlink", linkname="bin"),
        Entry("abs", "symlink", linkname="/etc/passwd"),
        Entry("usr/old", data=b"replaced"),
    ],
    [
        Entry("lib/libc.so", data=b"new libc"),  # the lower libc.so.6 keeps the old inode
        Entry("usr/.wh.shared"),  # usr/link-to-lower stays, still holding the content
        Entry("etc/passwd", data=b"root:x:0:0:new"),
        Entry("was_file/.wh.inner"),
    ],
]


def test_export_matches_unpack(tmp_path: Path) -> None:
    data, exported, unpacked = export_and_unpack(EXPORT_LAYERS, tmp_path)
    assert describe_tar(data) == describe_tree(tmp_path)
    assert exported.skipped == unpacked.skipped == {}
    tree, groups = describe_tar(data)
    assert tree["lib/libc.so.6"][1] == b"libc" and tree["lib/libc.so"][1] == b"new libc"
    assert tree["usr/link-to-lower"][1] == b"shared by links" and "usr/shared" not in tree
    assert tree["usr/old-link"][1] == b"old"
    assert frozenset({"bin/tool", "bin/tool-link"}) in groups
    # the report counts what the tar holds, by type (directories apart), and the whiteouts applied
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    by_type = {
        "files": sum(m.isreg() for m in members),
        "symlinks": sum(m.issym() for m in members),
        "hardlinks": sum(m.islnk() for m in members),
        "fifos": sum(m.isfifo() for m in members),
        "devices": sum(m.ischr() or m.isblk() for m in members),
    }
    assert {key: getattr(exported, key) for key in by_type} == by_type
    assert (exported.whiteouts, unpacked.whiteouts) == (4, 4)
    assert (exported.fifos, exported.symlinks) == (1, 2)
    # directories the layers name (etc, opt, lib, was_file); parents the tar needs are not counted
    assert exported.directories == 4


def test_export_never_writes_whiteouts_and_is_a_stream() -> None:
    class WriteOnly(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.data += b
            return len(b)

    out = WriteOnly()
    export_tar([(opener(tar_bytes(layer)), OCI_TAR) for layer in EXPORT_LAYERS], cast(BinaryIO, out))
    with tarfile.open(fileobj=io.BytesIO(bytes(out.data))) as tar:
        assert not [m.name for m in tar.getmembers() if ".wh." in m.name]


def test_export_reads_compressed_layers_top_first() -> None:
    order: list[int] = []

    def tracked(index: int, data: bytes) -> Callable[[], BinaryIO]:
        def open_() -> BinaryIO:
            order.append(index)
            return io.BytesIO(data)

        return open_

    layers = [
        (tracked(0, gzip.compress(tar_bytes([Entry("f", data=b"base")]))), OCI_GZIP),
        (tracked(1, zstandard.ZstdCompressor().compress(tar_bytes([Entry("f", data=b"top")]))), OCI_ZSTD),
    ]
    out = io.BytesIO()
    report = export_tar(layers, out)
    assert order == [1, 0]
    tree, _ = describe_tar(out.getvalue())
    assert tree == {"f": ("file", b"top", 0o644, None)}
    assert report.files == 1


def test_export_rereads_a_layer_for_a_shadowed_link_target(tmp_path: Path) -> None:
    layers: list[Layer] = [
        [Entry("a", data=b"A1"), Entry("b", "hardlink", linkname="a"), Entry("c", "hardlink", linkname="b")],
        [Entry("a", data=b"A2")],
    ]
    data, _, _ = export_and_unpack(layers, tmp_path)
    assert describe_tar(data) == describe_tree(tmp_path)
    assert describe_tar(data)[0]["c"][1] == b"A1"


def test_export_refuses_like_unpack(tmp_path: Path) -> None:
    layers: list[Layer] = [
        [Entry("../evil", data=b""), Entry("h", "hardlink", linkname="../x"), Entry(".wh..")]
    ]
    out = io.BytesIO()
    report = export_tar([(opener(tar_bytes(layer)), OCI_TAR) for layer in layers], out)
    assert report.skipped == {"unsafe path": 1, "unsafe hardlink": 1, "unsafe whiteout": 1}
    with pytest.raises(MalformedError):
        export_tar(
            [(opener(tar_bytes(layer)), OCI_TAR) for layer in layers],
            io.BytesIO(),
            strict=True,
        )


# Well-formed layers as image builders write them: parents listed before children, no symlinked parents.
_TREE_NAMES = ["a", "b", "a/c", "a/d", "b/e", "a/c/f", "b/e/g"]


@st.composite
def wellformed_layer(draw: st.DrawFn) -> list[Entry]:
    """Paths from a small tree, each parent a directory entry of the layer listed first; symlinks and
    hard links get names of their own (``s...``, ``h...``) so no entry is written through a symlink."""
    chosen: dict[str, Kind] = draw(
        st.dictionaries(
            st.sampled_from(_TREE_NAMES),
            st.sampled_from(["file", "dir", "symlink", "hardlink", "whiteout", "opaque"]),
            max_size=6,
        )
    )
    kinds = dict(chosen)
    for name in chosen:
        parts = name.split("/")
        for end in range(1, len(parts)):
            kinds["/".join(parts[:end])] = "dir"
    entries: list[Entry] = []
    for name in sorted(kinds):
        entry_kind = kinds[name]
        mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o600]))
        alias = name.replace("/", "_")
        if entry_kind == "opaque":
            entries += [Entry(name, "dir", mode=mode), Entry(name, "opaque")]
        elif entry_kind == "whiteout":
            entries.append(Entry(name, "whiteout"))
        elif entry_kind in ("symlink", "hardlink"):
            target = draw(st.sampled_from(_TREE_NAMES))
            entries.append(Entry(entry_kind[0] + alias, entry_kind, linkname=target))
        else:
            data = draw(st.sampled_from([b"1", b"22", b"333"]))
            entries.append(Entry(name, entry_kind, data=data, mode=mode))
    return entries


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(wellformed_layer(), min_size=1, max_size=4))
def test_property_export_matches_unpack(layers: list[list[Entry]]) -> None:
    with tempfile.TemporaryDirectory() as top:
        data, exported, unpacked = export_and_unpack(layers, Path(top))
        assert describe_tar(data) == describe_tree(Path(top))
        # export never looks at shadowed entries, so it may count fewer problems, never others
        assert set(exported.skipped) <= set(unpacked.skipped)
