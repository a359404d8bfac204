"""``regpeek.disk.unpack`` against umoci: the same hand-built OCI layout unpacked by both must be the same tree.

umoci (``umoci unpack --rootless``) is the oracle for the OCI changeset rules: whiteouts, opaque
directories, replacement of files by directories and back, hard links that keep an old inode, modes
(setuid included) and mtimes.  Known, intended differences are asserted explicitly:

* device nodes: umoci --rootless writes an empty regular file in their place; regpeek (not root) skips
  them and counts them in the report;
* the root directory's mtime: umoci leaves it at the unpack time, regpeek applies the ``./`` entry's;
* owners: umoci --rootless records non-root owners in a ``user.rootlesscontainers`` xattr; regpeek
  counts them as "ownership (not root)";
* directory mtimes: umoci restores a directory's mtime after each entry written directly in it, but
  not after creating an implicit subdirectory in it (``srv`` gets ``srv/www/index.html``) nor after an
  opaque whiteout deleted a subdirectory of it (``var/log/sub``): those keep the unpack time there,
  while regpeek sets every directory entry's mtime last, as the tar says.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from regpeek.disk.unpack import UnpackReport, export_tar, unpack_layers
from tests.support.fixtures import require_tool
from tests.support.images import Compression
from tests.support.layers import Entry, describe_tar, describe_tree, walk, write_oci_layout

UMOCI = shutil.which("umoci")


@pytest.fixture(autouse=True)
def _umoci() -> None:
    """umoci is this module's oracle: missing, every test fails (REGPEEK_SKIP_MISSING_TOOLS=1 skips)."""
    require_tool("umoci")


ROOTLESS_XATTR = "user.rootlesscontainers"

LAYERS: list[list[Entry]] = [
    [
        Entry("./", "dir", mode=0o755, mtime=1_000),
        Entry("etc", "dir", mode=0o755, mtime=1_100),
        Entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n", mtime=1_200),
        Entry("etc/shadow", data=b"root:*:1::::::\n", mode=0o640, gid=42, mtime=1_201),
        Entry("etc/motd", data=b"welcome\n"),
        Entry("etc/localtime", "symlink", linkname="/usr/share/zoneinfo/UTC", mtime=1_300),
        Entry("etc/commented", data=b"x", xattrs={"user.comment": b"kept"}),
        Entry("bin", "dir", mode=0o755, mtime=1_400),
        Entry("bin/busybox", data=b"busybox v1", mode=0o755, mtime=1_401),
        Entry("bin/sh", "hardlink", linkname="bin/busybox"),
        Entry("bin/ls", "hardlink", linkname="/bin/busybox"),
        Entry("usr/bin/passwd", data=b"passwd", mode=0o4755, mtime=1_500),
        Entry("usr/bin/wall", data=b"wall", mode=0o2755, mtime=1_501),
        Entry("tmp", "dir", mode=0o1777, mtime=1_600),
        Entry("var", "dir", mtime=1_700),
        Entry("var/log", "dir", mode=0o750, mtime=1_701),
        Entry("var/log/old.log", data=b"old"),
        Entry("var/log/sub/deep.log", data=b"deep"),
        Entry("opt/app", "dir", mtime=1_800),
        Entry("opt/app/config", data=b"cfg"),
        Entry("opt/app/data", "dir"),
        Entry("opt/app/data/db", data=b"db"),
        Entry("lib", "dir", mtime=1_900),
        Entry("lib/libfoo.so.1", data=b"\x7fELF foo", mode=0o755),
        Entry("lib/libfoo.so", "symlink", linkname="libfoo.so.1", mtime=1_901),
        Entry("was_file", data=b"i was a file"),
        Entry("was_dir", "dir", mtime=1_950),
        Entry("was_dir/child", data=b"child"),
        Entry("home/user", "dir", mode=0o700, uid=1000, gid=1000, mtime=1_960),
        Entry("home/user/.profile", data=b"export PS1=$", uid=1000, gid=1000),
        Entry("run/pipe", "fifo", mode=0o620, mtime=1_970),
        Entry("dev/null", "chardev", major=1, minor=3, mode=0o666),
    ],
    [
        Entry("etc", "dir", mode=0o755, mtime=2_100),
        Entry("etc/motd", "whiteout"),
        Entry("var/log/new.log", data=b"same layer, before the opaque marker"),
        Entry("var/log", "opaque"),
        Entry("var/log/newer.log", data=b"after the opaque marker"),
        Entry("was_file", "dir", mode=0o750, mtime=2_200),
        Entry("was_file/inside", data=b"inside"),
        Entry("was_dir", data=b"i was a directory", mode=0o600, mtime=2_300),
        Entry("bin/busybox", data=b"busybox v2", mode=0o755, mtime=2_400),
        Entry("usr/bin/passwd", data=b"passwd v2", mode=0o4711, mtime=2_500),
        Entry("lib64", "symlink", linkname="lib"),
        Entry("opt/app/data", "whiteout"),
    ],
    [
        Entry("opt", "whiteout"),
        Entry("opt/new/file", data=b"opt is back"),
        Entry("home/user/.profile", "whiteout"),
        Entry("tmp", "dir", mode=0o1777, mtime=3_000),
        Entry("tmp/x", data=b"x"),
        Entry("bin/sh2", "hardlink", linkname="bin/busybox"),
        Entry("etc/hostname", data=b"box\n", mtime=3_100),
        Entry("etc/hostname.bak", "hardlink", linkname="etc/hostname"),
    ],
    [
        Entry("lib/libfoo.so.1", "whiteout"),  # leaves lib/libfoo.so dangling
        Entry("etc/localtime", data=b"UTC\n", mode=0o644, mtime=4_000),
        Entry("srv", "dir", mode=0o711, mtime=4_100),
        Entry("srv/www/index.html", data=b"<html/>", mtime=4_200),
    ],
]


def umoci_unpack(layout: Path, bundle: Path) -> Path:
    assert UMOCI is not None
    result = subprocess.run(
        [UMOCI, "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"umoci unpack failed:\n{result.stderr}"
    return bundle / "rootfs"


def regpeek_unpack(blobs: Sequence[tuple[bytes, str]], root: Path) -> UnpackReport:
    streams = [(io.BytesIO(blob), media_type) for blob, media_type in blobs]
    return unpack_layers(streams, root, as_root=False)


def user_xattrs(path: Path) -> dict[str, bytes]:
    if path.is_symlink():
        return {}
    names = [n for n in os.listxattr(path) if n.startswith("user.") and n != ROOTLESS_XATTR]
    return {name: os.getxattr(path, name) for name in sorted(names)}


def mtimes(root: Path, started: float) -> dict[str, int | None]:
    """mtime_ns of every path; None for directories whose mtime is the unpack time (no tar entry's)."""
    result: dict[str, int | None] = {}
    for name in walk(root):
        info = (root / name).lstat()
        recent = stat.S_ISDIR(info.st_mode) and info.st_mtime >= started
        result[name] = None if recent else info.st_mtime_ns
    return result


@dataclass(frozen=True)
class Unpacked:
    """One image unpacked by umoci (``theirs``) and by regpeek (``ours``)."""

    theirs: Path
    ours: Path
    report: UnpackReport
    started: float
    blobs: list[tuple[bytes, str]]


@pytest.fixture(scope="module", params=["gzip", "none"])
def unpacked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    compression: Compression = request.param
    top = tmp_path_factory.mktemp(f"umoci-{compression}")
    blobs = write_oci_layout(top / "layout", LAYERS, compression=compression)
    started = time.time() - 1
    theirs = umoci_unpack(top / "layout", top / "bundle")
    report = regpeek_unpack(blobs, top / "ours")
    return Unpacked(theirs, top / "ours", report, started, blobs)


def test_same_tree_as_umoci(unpacked: Unpacked) -> None:
    theirs, ours = unpacked.theirs, unpacked.ours
    their_tree, their_links = describe_tree(theirs)
    our_tree, our_links = describe_tree(ours)
    # the one intended difference in content: umoci --rootless fakes device nodes with empty files
    assert their_tree.pop("dev/null") == ("file", b"", 0o666, None)
    assert "dev/null" not in our_tree
    assert our_tree == their_tree
    assert our_links == their_links
    assert our_links == {
        frozenset({"bin/sh", "bin/ls"}),
        frozenset({"bin/busybox", "bin/sh2"}),
        frozenset({"etc/hostname", "etc/hostname.bak"}),
    }
    # the root's own mode: ours is a private 0700 directory; umoci gets the same effect from the 0700
    # bundle around its 0755 rootfs
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o755
    assert stat.S_IMODE(theirs.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(ours.stat().st_mode) == 0o700


def test_same_mtimes_as_umoci(unpacked: Unpacked) -> None:
    their_times = mtimes(unpacked.theirs, unpacked.started)
    our_times = mtimes(unpacked.ours, unpacked.started)
    their_times.pop("dev/null")
    # umoci leaves these at the unpack time (see the module docstring); regpeek follows the tar
    assert {name for name, mtime in their_times.items() if mtime != our_times[name]} == {"srv", "var/log"}
    assert their_times["srv"] is None and our_times["srv"] == 4_100 * 10**9
    assert their_times["var/log"] is None
    their_times.update(srv=our_times["srv"], **{"var/log": our_times["var/log"]})
    assert our_times == their_times
    assert our_times["etc"] == 2_100 * 10**9 and our_times["var/log"] == 1_701 * 10**9
    assert our_times["etc/localtime"] == 4_000 * 10**9


def test_same_xattrs_as_umoci(unpacked: Unpacked) -> None:
    theirs, ours = unpacked.theirs, unpacked.ours
    for name in walk(ours):
        assert user_xattrs(ours / name) == user_xattrs(theirs / name), name
    assert user_xattrs(ours / "etc/commented") == {"user.comment": b"kept"}
    assert os.getxattr(theirs / "home/user", ROOTLESS_XATTR)  # umoci's record of the owner we count


def test_report_explains_the_differences(unpacked: Unpacked) -> None:
    report = unpacked.report
    assert report.skipped == {"device node (not root)": 1, "ownership (not root)": 3}
    assert report.warning() == "skipped: 1 device node (not root), 3 ownership (not root)"
    assert (report.whiteouts, report.hardlinks, report.symlinks, report.fifos) == (6, 4, 3, 1)


def test_export_matches_the_unpacked_tree(unpacked: Unpacked) -> None:
    out = io.BytesIO()
    layers = [(partial(io.BytesIO, blob), media_type) for blob, media_type in unpacked.blobs]
    report = export_tar(layers, out)
    exported, exported_links = describe_tar(out.getvalue())
    assert exported.pop("dev/null") == ("chardev", None, 0o666, None)  # a tar can hold it without root
    assert (exported, exported_links) == describe_tree(unpacked.ours)
    assert report.skipped == {}
