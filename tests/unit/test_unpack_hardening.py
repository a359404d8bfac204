"""Unpacking against a hostile image and a hostile local process: descriptor-relative paths (openat2 and
the per-component walk), a private root, directory modes applied last, expansion limits, sparse files,
out-of-range owners, bounded descriptors, and cleanup of what a failed unpack wrote."""

from __future__ import annotations

import ctypes
import io
import os
import stat
import subprocess
import sys
import tarfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from regpeek.disk import rootdir
from regpeek.disk.layerentry import DEFAULT_FLOOR, FREE_SPACE_MARGIN, OWNER_OUT_OF_RANGE, Limits
from regpeek.disk.rootdir import RootDir, openat2_available, remove_tree
from regpeek.disk.unpack import Unpacker, export_tar, unpack_layers
from regpeek.errors import TooLargeError, UsageError
from tests.support.layers import Entry, tar_bytes, write_oci_layout
from tests.support.layers import walk as names

IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="needs root (chown, a second user); CI runs as root")
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
GIB = 1 << 30


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Run a test with the kernel's openat2 and with the per-component openat walk."""
    use = request.param == "openat2"
    if use and not openat2_available():
        pytest.fail("this kernel has no openat2: the walk is all that is tested (Linux >= 5.6 expected)")
    yield use


def unpack(root: Path, *layers: list[Entry], use_openat2: bool = True, **options: object) -> object:
    blobs = [(io.BytesIO(tar_bytes(layer)), OCI_TAR) for layer in layers]
    return unpack_layers(blobs, root, use_openat2=use_openat2, **options)  # type: ignore[arg-type]


# -- descriptor-relative resolution --------------------------------------------------------------
def test_symlinks_are_resolved_inside_the_root(tmp_path: Path, resolver: bool) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    unpack(
        root,
        [
            Entry("etc", "dir"),
            Entry("abs", "symlink", linkname=str(outside)),  # /…/outside means root/…/outside
            Entry("up", "symlink", linkname="../../../../.."),  # .. stops at the root
            Entry("loop", "symlink", linkname="loop/x"),
            Entry("abs/a", data=b"a"),
            Entry("up/etc/b", data=b"b"),
            Entry("loop/c", data=b"c"),
        ],
        use_openat2=resolver,
    )
    assert list(outside.iterdir()) == []
    assert (root / str(outside).lstrip("/") / "a").read_bytes() == b"a"
    assert (root / "etc/b").read_bytes() == b"b"
    assert not (root / "c").exists()


def test_root_is_private_and_modes_are_applied_last(tmp_path: Path, resolver: bool) -> None:
    root = tmp_path / "root"
    unpack(
        root,
        [Entry("./", "dir", mode=0o777), Entry("open", "dir", mode=0o777), Entry("ro", "dir", mode=0o555)],
        [Entry("ro/late", data=b"x"), Entry("open/f", data=b"y", mode=0o4755)],
        use_openat2=resolver,
    )
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "open").stat().st_mode) == 0o777
    assert stat.S_IMODE((root / "ro").stat().st_mode) == 0o555
    assert (root / "ro/late").read_bytes() == b"x"


def test_existing_root_must_be_empty_and_is_made_private(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir(mode=0o755)
    unpack(root, [Entry("f", data=b"x")])
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    with pytest.raises(UsageError, match="not an empty directory"):
        unpack(root, [Entry("g", data=b"x")])
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="not a directory"):
        unpack(tmp_path / "link", [Entry("g", data=b"x")])


def test_walk_and_openat2_give_the_same_tree(tmp_path: Path) -> None:
    layers = [
        [
            Entry("a/b/c", "dir"),
            Entry("lnk", "symlink", linkname="a/b"),
            Entry("lnk/../x", data=b"1"),
            Entry("lnk/c/d", data=b"2"),
            Entry("a/hard", "hardlink", linkname="lnk/c/d"),
        ],
        [Entry("a/b/c/d", "whiteout"), Entry("lnk/new", data=b"3")],
    ]
    trees = []
    for use in (True, False):
        root = tmp_path / f"root-{use}"
        unpack(root, *layers, use_openat2=use)
        trees.append({name: (root / name).lstat().st_mode for name in names(root)})
    assert trees[0] == trees[1]
    assert "x" in trees[0] and "a/b/new" in trees[0] and "a/b/c/d" not in trees[0] and "a/hard" in trees[0]


def _renameat2() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    function = ctypes.CDLL(None, use_errno=True).renameat2
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


AT_FDCWD = -100
RENAME_EXCHANGE = 2


def test_a_concurrent_swap_of_directory_and_symlink_never_leads_outside(
    tmp_path: Path, resolver: bool
) -> None:
    """A process of the same user (who can enter the private root) swaps a directory the layer fills
    for a symlink to a directory outside, with renameat2(RENAME_EXCHANGE), as fast as it can."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"original")
    root = tmp_path / "root"
    layer = [Entry("d", "dir", mode=0o777)] + [Entry(f"d/f{i}", data=b"pwned") for i in range(1500)]
    layer.append(Entry("d/victim", data=b"pwned"))
    unpacker = Unpacker(root, use_openat2=resolver)
    os.symlink(outside, root / "swap")
    stop = threading.Event()
    swaps = 0

    def attack() -> None:
        nonlocal swaps
        renameat2 = _renameat2()
        a, b = os.fsencode(root / "d"), os.fsencode(root / "swap")
        while not stop.is_set():
            if renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
                swaps += 1

    attacker = threading.Thread(target=attack)
    try:
        unpacker.apply(io.BytesIO(tar_bytes(layer[:1])))
        attacker.start()
        unpacker.apply(io.BytesIO(tar_bytes(layer[1:])))
    finally:
        stop.set()
        if attacker.is_alive():
            attacker.join()
    unpacker.finish()
    assert swaps > 0
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"original"


def test_remove_tree_holds_few_descriptors_at_any_depth(tmp_path: Path) -> None:
    top = tmp_path / "t"
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir(top)
    current = os.open(top, os.O_RDONLY)
    for _ in range(1500):  # deeper than PATH_MAX allows to name, and than 1024 descriptors
        os.mkdir("d", dir_fd=current)
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=current), "wb") as out:
            out.write(b"x")
        nxt = os.open("d", os.O_RDONLY, dir_fd=current)
        os.close(current)
        current = nxt
    os.close(current)
    before = len(os.listdir("/proc/self/fd"))
    peak = [before]
    real_open = os.open

    def counting_open(*args: object, **kwargs: object) -> int:
        result = real_open(*args, **kwargs)  # type: ignore[arg-type]
        peak[0] = max(peak[0], len(os.listdir("/proc/self/fd")))
        return result

    try:
        os.open = counting_open
        remove_tree(fd, "t")
    finally:
        os.open = real_open
        os.close(fd)
    assert not top.exists()
    assert peak[0] - before <= 3


# -- limits --------------------------------------------------------------------------------------
def _gzip_bomb(size: int) -> bytes:
    """A gzip layer holding one file of ``size`` zero bytes (about 1000:1)."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [squeeze.compress(header)]
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        parts.append(squeeze.compress(chunk))
    parts.append(squeeze.compress(bytes(1024 + (-size % 512))))
    parts.append(squeeze.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    bomb = _gzip_bomb(2 * GIB)
    assert len(bomb) < 3 << 20  # a 2 MB layer...
    return bomb


def test_gzip_bomb_stops_at_the_default_limit(tmp_path: Path, gzip_bomb: bytes) -> None:
    root = tmp_path / "root"
    limits = Limits.default(len(gzip_bomb), None)
    assert limits.max_bytes == DEFAULT_FLOOR
    with pytest.raises(TooLargeError, match=r"layer 1 expands past the 1\.0 GiB limit") as caught:
        unpack_layers([(io.BytesIO(gzip_bomb), "")], root, limits=limits)
    assert caught.value.limit == DEFAULT_FLOOR and caught.value.size == 2 * GIB
    assert not root.exists()  # created by the unpack, removed with what it held


def test_zstd_bomb_stops_at_the_default_limit(tmp_path: Path) -> None:
    info = tarfile.TarInfo("zeros")
    info.size = 2 * GIB
    compressor = zstandard.ZstdCompressor(level=19).compressobj()
    parts = [compressor.compress(info.tobuf(format=tarfile.PAX_FORMAT))]
    chunk = bytes(1 << 20)
    for _ in range(2048):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.compress(bytes(1024)))
    parts.append(compressor.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 128 << 10  # a 64 KB layer...
    out = io.BytesIO()
    with pytest.raises(TooLargeError, match="expands past"):
        export_tar([(lambda: io.BytesIO(bomb), "")], out, limits=Limits.default(len(bomb), None))
    root = tmp_path / "root"
    with pytest.raises(TooLargeError, match="expands past"):
        unpack_layers([(io.BytesIO(bomb), "")], root, limits=Limits.default(len(bomb), None))
    assert not root.exists()


def _sparse_tar(tmp_path: Path, size: int, data_at: list[int]) -> bytes:
    """A GNU tar (``tar --sparse``) of one sparse file of ``size`` bytes with 4 KiB of data at offsets."""
    source = tmp_path / "sparse-source"
    source.mkdir(exist_ok=True)
    path = source / "sparse"
    with open(path, "wb") as out:
        for offset in data_at:
            out.seek(offset)
            out.write(b"D" * 4096)
        out.truncate(size)
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=pax", "-C", source, "-cf", archive, "sparse"], check=True)
    path.unlink()
    return archive.read_bytes()


def test_sparse_entry_counts_its_declared_size(tmp_path: Path) -> None:
    layer = _sparse_tar(tmp_path, 2 * GIB, [0])
    assert len(layer) < 64 << 10
    root = tmp_path / "root"
    with pytest.raises(TooLargeError, match="expands past"):
        unpack_layers([(io.BytesIO(layer), "")], root, limits=Limits.default(len(layer), None))
    assert not root.exists()


def test_sparse_terabyte_is_refused_before_writing(tmp_path: Path) -> None:
    layer = _sparse_tar(tmp_path, 1 << 40, [1 << 39])
    root = tmp_path / "root"
    with pytest.raises(TooLargeError):
        unpack_layers([(io.BytesIO(layer), "")], root, limits=Limits.default(len(layer), None))
    out = io.BytesIO()
    with pytest.raises(TooLargeError):
        export_tar([(lambda: io.BytesIO(layer), "")], out, limits=Limits.default(len(layer), None))
    assert out.tell() < 1 << 20


def test_sparse_files_are_written_sparse(tmp_path: Path) -> None:
    size = 256 << 20
    offsets = [0, 100 << 20, size - 4096]
    layer = _sparse_tar(tmp_path, size, offsets)
    root = tmp_path / "root"
    unpack_layers([(io.BytesIO(layer), "")], root, limits=Limits.default(len(layer), None))
    path = root / "sparse"
    info = path.stat()
    assert info.st_size == size
    assert info.st_blocks * 512 < 4 << 20  # a few data blocks, not 256 MiB
    with open(path, "rb") as data:
        for offset in offsets:
            data.seek(offset)
            assert data.read(4096) == b"D" * 4096
        data.seek(50 << 20)
        assert data.read(4096) == bytes(4096)


def test_entries_per_layer_and_name_length_limits(tmp_path: Path) -> None:
    many = [Entry(f"f{i}") for i in range(11)]
    with pytest.raises(TooLargeError, match="layer 2 has more than 10 entries") as caught:
        unpack(tmp_path / "a", many[:10], many, limits=Limits(max_entries=10))
    assert caught.value.limit == 10
    assert not (tmp_path / "a").exists()
    long_name = "d/" * 2100 + "f"
    with pytest.raises(TooLargeError, match=r"entry name of 4201 bytes \(the limit is 4096\)"):
        unpack(tmp_path / "b", [Entry(long_name)])
    with pytest.raises(TooLargeError, match="entry name"):
        export_tar([(lambda: io.BytesIO(tar_bytes([Entry(long_name)])), "")], io.BytesIO())
    assert Limits().max_entries == 1_000_000
    assert Limits.none() == Limits(None, None, None, "")
    report = unpack(tmp_path / "c", many, [Entry(long_name)], limits=Limits.none())
    assert report.files == 12 and report.skipped == {}  # type: ignore[attr-defined]
    _remove_deep(tmp_path, "c")  # pytest's own clean-up recurses and cannot remove 2100 levels


def _remove_deep(parent: Path, name: str) -> None:
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree(fd, name)
    finally:
        os.close(fd)


def test_default_limit_never_passes_the_free_space() -> None:
    assert Limits.default(10 << 30, None).max_bytes == 1000 << 30
    free = 3 << 30
    limits = Limits.default(10 << 30, free)
    assert limits.max_bytes == free - FREE_SPACE_MARGIN
    assert "free space" in limits.origin
    assert Limits.default(1, free, max_size := 5 << 30).max_bytes == free - FREE_SPACE_MARGIN
    assert Limits.default(1, None, max_size).max_bytes == max_size


def test_failure_empties_an_existing_root_and_keeps_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(TooLargeError):
        unpack(
            root,
            [Entry("d/e/f", data=b"x" * 600), Entry("l", "symlink", linkname="/etc")],
            [Entry("g", data=b"y" * 600)],
            max_bytes=1000,
        )
    assert root.is_dir() and list(root.iterdir()) == []


def test_interrupt_removes_what_was_written(tmp_path: Path) -> None:
    root = tmp_path / "root"

    def layers() -> Iterator[tuple[io.BytesIO, str]]:
        yield io.BytesIO(tar_bytes([Entry("a/b", data=b"x")])), OCI_TAR
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        unpack_layers(layers(), root)
    assert not root.exists()


# -- owners and descriptors ----------------------------------------------------------------------
@root_only
def test_owner_out_of_range_is_skipped_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "root"
    info = tarfile.TarInfo("huge")
    info.size = 1
    info.pax_headers = {"uid": str(2**40), "gid": "-5"}
    normal = tarfile.TarInfo("normal")
    normal.size, normal.uid, normal.gid = 1, 1000, 1000
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"h"))
        tar.addfile(normal, io.BytesIO(b"n"))
    report = unpack_layers([(io.BytesIO(buffer.getvalue()), "")], root)
    assert report.skipped == {OWNER_OUT_OF_RANGE: 1}
    assert (root / "huge").read_bytes() == b"h"
    assert (root / "huge").stat().st_uid == 0
    assert (root / "normal").stat().st_uid == 1000


EMFILE_SCRIPT = """
import io, resource, sys, tarfile
from pathlib import Path
from regpeek.disk.unpack import export_tar, unpack_layers
count, limit = int(sys.argv[2]), int(sys.argv[3])
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w") as tar:
    for i in range(count):
        kind = i % 4
        info = tarfile.TarInfo(f"d{i % 300}/e{i}")
        if kind == 0 and i:
            info.type, info.linkname = tarfile.LNKTYPE, f"d{(i - 1) % 300}/e{i - 1}"
        elif kind == 1:
            info.type = tarfile.DIRTYPE
        elif kind == 2:
            info.type, info.linkname = tarfile.SYMTYPE, f"../d{(i + 1) % 300}"
        tar.addfile(info, io.BytesIO(b"") if info.type == tarfile.REGTYPE else None)
    for i in range(1, count, 10):
        tar.addfile(tarfile.TarInfo(f"d{i % 300}/.wh.e{i}"))
data = buffer.getvalue()
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
report = unpack_layers([(io.BytesIO(data), "")], Path(sys.argv[1]))
export_tar([(lambda: io.BytesIO(data), "")] * 2, io.BytesIO())
print(report.files + report.directories + report.symlinks + report.hardlinks)
"""


def test_descriptors_stay_bounded_whatever_the_number_of_entries(tmp_path: Path) -> None:
    """20,000 entries of every kind (whiteouts, hard links, symlinked parents) under a 48-descriptor limit."""
    done = subprocess.run(
        [sys.executable, "-c", EMFILE_SCRIPT, str(tmp_path / "root"), "20000", "48"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == 20_000


MANY_LAYERS_SCRIPT = """
import io, resource, sys
from pathlib import Path
import regpeek
from regpeek.rootfs import export_image, unpack_image
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
with regpeek.Client() as client:
    result = unpack_image(client, "oci:" + sys.argv[1], sys.argv[2])
    report = export_image(client, "oci:" + sys.argv[1], io.BytesIO())
print(len(result.layers), result.report.files, report.files)
"""


def test_an_image_of_more_layers_than_open_files_unpacks(tmp_path: Path) -> None:
    layers = [[Entry(f"f{n % 50}", data=str(n).encode())] for n in range(1100)]
    write_oci_layout(tmp_path / "layout", layers, compression="none")
    done = subprocess.run(
        [sys.executable, "-c", MANY_LAYERS_SCRIPT, str(tmp_path / "layout"), str(tmp_path / "root")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1100", "1100", "50"]
    assert (tmp_path / "root/f49").read_bytes() == b"1099"


def test_resolution_keeps_two_descriptors_and_one_cached(tmp_path: Path) -> None:
    directory, _ = RootDir.create(tmp_path / "root", use_openat2=False)
    with directory:
        before = len(os.listdir("/proc/self/fd"))
        found = directory.resolve(["a"] * 300, create=True)
        assert found is not None
        os.close(found[0])
        assert len(os.listdir("/proc/self/fd")) == before + 1  # the cached directory
        directory.invalidate()
        assert len(os.listdir("/proc/self/fd")) == before
    assert rootdir.MAX_SYMLINK_HOPS == 40


def test_unpacker_works_without_proc_for_node_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("regpeek.disk.unpack._PROC_FD", str(tmp_path / "no-proc"))
    root = tmp_path / "root"
    unpack(root, [Entry("fifo", "fifo", mode=0o640), Entry("l", "symlink", linkname="fifo")])
    assert stat.S_IMODE((root / "fifo").lstat().st_mode) == 0o640
    assert os.readlink(root / "l") == "fifo"


def test_a_hard_link_through_a_file_is_a_missing_target_and_still_replaces_the_path(tmp_path: Path) -> None:
    """Found by the export/unpack property test: a link whose target's parent is a file names no target
    (as export says), and the path it names is emptied all the same (as umoci does)."""
    root = tmp_path / "root"
    report = unpack(
        root,
        [Entry("a", "dir"), Entry("a/c", data=b"1"), Entry("hb", data=b"old")],
        [Entry("hb", "hardlink", linkname="a/c/f")],
    )
    assert report.skipped == {"hardlink target missing": 1}  # type: ignore[attr-defined]
    assert not (root / "hb").exists()
