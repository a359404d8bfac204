"""The on-disk blob cache: hits and misses, verification, corruption, LRU eviction, prune, processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import stat
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import platformdirs
import pytest

from regpeek.disk.cache import (
    DEFAULT_MAX_BYTES,
    MAX_ENTRY_SIZE,
    RESCAN_EVERY,
    STALE_TEMP_SECONDS,
    BlobCache,
    CacheInfo,
    NullCache,
    PruneResult,
    default_cache_dir,
)
from regpeek.errors import DigestMismatchError, UnsafePathError, UsageError
from regpeek.formats.digest import Digest, compute
from regpeek.formats.manifest import Descriptor


def blob(seed: str, size: int = 100) -> tuple[Digest, bytes]:
    data = (seed.encode() * (size // max(len(seed), 1) + 1))[:size]
    return compute(data), data


def entry_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file() and not p.name.startswith("."))


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tmp"))


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


# -- get and put ------------------------------------------------------------------------------------


def test_miss_then_hit(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest, data = blob("manifest")
    assert cache.get(digest) is None
    assert cache.put(digest, data) is True
    assert cache.get(digest) == data
    assert (tmp_path / "blobs" / "sha256" / digest.hex).read_bytes() == data
    assert temp_files(tmp_path) == []


def test_sha512_entries(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    data = b"config"
    digest = compute(data, "sha512")
    assert cache.put(digest, data)
    assert cache.get(digest) == data
    assert cache.path_for(digest) == tmp_path / "blobs" / "sha512" / digest.hex


def test_put_verifies_before_storing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest, _ = blob("right")
    with pytest.raises(DigestMismatchError):
        cache.put(digest, b"wrong")
    assert cache.get(digest) is None
    assert entry_files(tmp_path) == []


def test_unvalidated_digest_never_becomes_a_path(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    sneaky = Digest("sha256", "../../../etc/passwd")
    with pytest.raises(UsageError):
        cache.path_for(sneaky)
    with pytest.raises(UsageError):
        cache.get(sneaky)


def test_put_of_existing_entry_is_a_use(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest, data = blob("again")
    cache.put(digest, data)
    path = cache.path_for(digest)
    set_mtime(path, 1000)
    inode = path.stat().st_ino
    assert cache.put(digest, data)
    assert path.stat().st_ino == inode
    assert path.stat().st_mtime > 1000


def test_hit_refreshes_recency(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest, data = blob("used")
    cache.put(digest, data)
    set_mtime(cache.path_for(digest), 1000)
    assert cache.get(digest) == data
    assert cache.path_for(digest).stat().st_mtime >= time.time() - 60


def test_oversized_content_is_not_cached(tmp_path: Path) -> None:
    big = b"x" * (MAX_ENTRY_SIZE + 1)
    cache = BlobCache(tmp_path)
    assert cache.put(compute(big), big) is False
    small = BlobCache(tmp_path / "small", max_bytes=50)
    digest, data = blob("over-the-bound", 51)
    assert small.put(digest, data) is False
    assert small.get(digest) is None
    assert entry_files(tmp_path) == []


def test_unwritable_cache_stores_nothing_and_does_not_raise(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    cache = BlobCache(tmp_path / "file")  # the root is a file: nothing can be created under it
    digest, data = blob("nowhere")
    assert cache.put(digest, data) is False
    assert cache.get(digest) is None


# -- corruption -----------------------------------------------------------------------------------


def _flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _grow(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0" * (MAX_ENTRY_SIZE + 10))


@pytest.mark.parametrize("damage", [_flip_byte, _truncate, _empty, _grow])
def test_corrupt_entry_is_discarded_not_served(tmp_path: Path, damage: object) -> None:
    assert callable(damage)
    cache = BlobCache(tmp_path)
    digest, data = blob("precious")
    cache.put(digest, data)
    damage(cache.path_for(digest))
    assert cache.get(digest) is None
    assert not cache.path_for(digest).exists()
    assert cache.put(digest, data)  # and it can be stored again
    assert cache.get(digest) == data


def test_put_over_a_corrupt_entry_of_another_size_repairs_it(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest, data = blob("repair")
    cache.put(digest, data)
    _truncate(cache.path_for(digest))
    assert cache.put(digest, data)
    assert cache.path_for(digest).read_bytes() == data


# -- eviction -------------------------------------------------------------------------------------


def test_lru_evicts_oldest_mtime_first(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=300)
    a, b, c, d, e = (blob(name) for name in "abcde")
    for digest, data in (a, b, c):
        cache.put(digest, data)
    set_mtime(cache.path_for(a[0]), 1000)
    set_mtime(cache.path_for(b[0]), 3000)
    set_mtime(cache.path_for(c[0]), 2000)
    cache.put(*d)  # 400 bytes > 300: the least recently used (a) goes
    assert {p.name for p in entry_files(tmp_path)} == {b[0].hex, c[0].hex, d[0].hex}
    cache.put(*e)  # then c (2000), not b (3000)
    assert {p.name for p in entry_files(tmp_path)} == {b[0].hex, d[0].hex, e[0].hex}


def test_a_hit_protects_an_entry_from_eviction(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=200)
    a, b, c = (blob(name) for name in "abc")
    cache.put(*a)
    cache.put(*b)
    set_mtime(cache.path_for(a[0]), 1000)
    set_mtime(cache.path_for(b[0]), 2000)
    assert cache.get(a[0]) == a[1]  # a is now the most recently used
    cache.put(*c)
    assert cache.get(a[0]) == a[1]
    assert cache.get(b[0]) is None


def test_bound_holds_after_every_put(tmp_path: Path) -> None:
    rng = random.Random(7)
    cache = BlobCache(tmp_path, max_bytes=5000)
    for i in range(300):
        cache.put(*blob(f"entry-{i}", rng.randrange(1, 1000)))
        assert cache.info().bytes <= 5000
    assert cache.info().entries > 0


def test_puts_rescan_at_least_every_n_puts(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=5000)
    cache.put(*blob("first", 10))
    outside = BlobCache(tmp_path, max_bytes=10**9)  # another process with a larger bound
    for i in range(20):
        outside.put(*blob(f"big-{i}", 1000))
    assert cache.info().bytes > 5000
    for i in range(RESCAN_EVERY):
        cache.put(*blob(f"small-{i}", 10))
    assert cache.info().bytes <= 5000


def test_missing_usage_file_forces_a_scan(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=250)
    for name in "abc":
        BlobCache(tmp_path, max_bytes=10**9).put(*blob(name))
    (tmp_path / ".usage").unlink()
    cache.put(*blob("d"))
    assert cache.info().bytes <= 250


# -- info, prune, clear ----------------------------------------------------------------------------


def test_info(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", max_bytes=1000, max_layer_bytes=5000)
    assert cache.info() == CacheInfo(tmp_path / "cache", 0, 0, 1000, 0, 0, 5000)
    assert not (tmp_path / "cache").exists()  # info creates nothing
    cache.put(*blob("a", 10))
    cache.put(*blob("b", 20))
    (tmp_path / "cache" / "blobs" / "sha256" / "README").write_text("not an entry")
    info = cache.info()
    assert info == CacheInfo(tmp_path / "cache", 2, 30, 1000, 0, 0, 5000)
    assert info.to_dict() == {
        "path": str(tmp_path / "cache"),
        "enabled": True,
        "entries": 2,
        "bytes": 30,
        "manifests": {"entries": 2, "bytes": 30, "max_bytes": 1000},
        "layers": {"entries": 0, "bytes": 0, "max_bytes": 5000},
    }


def test_default_bound() -> None:
    assert BlobCache(Path("/nonexistent")).max_bytes == DEFAULT_MAX_BYTES == 256 * 1024 * 1024


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_invalid_bounds(tmp_path: Path, bad: object) -> None:
    with pytest.raises(UsageError):
        BlobCache(tmp_path, max_bytes=bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        BlobCache(tmp_path).prune(bad)  # type: ignore[arg-type]


def test_prune_to_a_bound_and_to_zero(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10_000)
    entries = [blob(name, 100) for name in "abcde"]
    for seconds, (digest, data) in enumerate(entries, 1000):
        cache.put(digest, data)
        set_mtime(cache.path_for(digest), seconds)
    assert cache.prune() == PruneResult(0, 0)
    assert cache.prune(250) == PruneResult(3, 300)
    assert {p.name for p in entry_files(tmp_path)} == {entries[3][0].hex, entries[4][0].hex}
    assert cache.prune(0) == PruneResult(2, 200)
    assert cache.info().entries == 0
    assert cache.prune(0).to_dict() == {"removed": 0, "freed_bytes": 0}


def test_prune_of_a_missing_cache_creates_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "absent")
    assert cache.prune() == PruneResult()
    assert cache.clear() == PruneResult()
    assert not (tmp_path / "absent").exists()


def test_prune_removes_stale_temp_files_only(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest, data = blob("kept")
    cache.put(digest, data)
    directory = cache.path_for(digest).parent
    stale = directory / f".{digest.hex}.123-abcd.tmp"
    fresh = directory / f".{digest.hex}.456-ef01.tmp"
    other = directory / "notes.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"partial")
    old = int(time.time()) - STALE_TEMP_SECONDS - 60
    set_mtime(stale, old)
    set_mtime(other, old)
    assert cache.prune() == PruneResult(1, len(b"partial"))
    assert not stale.exists()
    assert fresh.exists()
    assert other.exists()
    assert cache.get(digest) == data


def test_clear(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    for name in "abc":
        cache.put(*blob(name, 10))
    (tmp_path / "blobs" / "sha256" / ".x.1-2.tmp").write_bytes(b"12345")
    assert cache.clear() == PruneResult(4, 35)
    assert cache.info().entries == 0
    assert temp_files(tmp_path) == []
    cache.put(*blob("after", 10))
    assert cache.info().entries == 1


# -- NullCache and the default directory ------------------------------------------------------------


def test_null_cache_stores_nothing() -> None:
    cache = NullCache()
    digest, data = blob("ignored")
    assert cache.put(digest, data) is False
    assert cache.get(digest) is None
    with pytest.raises(DigestMismatchError):
        cache.put(digest, b"wrong")
    assert cache.info() == CacheInfo(None, 0, 0, 0)
    assert cache.info().to_dict() == {
        "path": None,
        "enabled": False,
        "entries": 0,
        "bytes": 0,
        "manifests": {"entries": 0, "bytes": 0, "max_bytes": 0},
        "layers": {"entries": 0, "bytes": 0, "max_bytes": 0},
    }
    assert cache.layers is None
    assert cache.prune() == PruneResult()
    assert cache.prune(0) == PruneResult()
    assert cache.clear() == PruneResult()


def test_default_cache_dir_from_environment(tmp_path: Path) -> None:
    assert default_cache_dir({"REGPEEK_CACHE_DIR": str(tmp_path)}) == tmp_path
    expected = Path(platformdirs.user_cache_dir("regpeek"))
    assert default_cache_dir({}) == expected
    assert default_cache_dir({"REGPEEK_CACHE_DIR": ""}) == expected


def test_default_cache_dir_reads_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGPEEK_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("REGPEEK_CACHE_DIR")
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("regpeek"))


# -- several processes -----------------------------------------------------------------------------

SHARED_BOUND = 400_000
RUN_SECONDS = 1.0


def _shared_blobs() -> list[tuple[Digest, bytes]]:
    return [blob(f"shared-{i}", 500 + 1999 * i) for i in range(40)]


def _start_together(sync: Path, name: str) -> float:
    """Signal readiness, wait for the go file; returns when to stop."""
    (sync / f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not (sync / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    return time.monotonic() + RUN_SECONDS


def _writer(root: str, seed: int, sync: str) -> tuple[int, int]:
    """Put and get overlapping entries; any entry file seen on disk must be whole."""
    rng = random.Random(seed)
    cache = BlobCache(Path(root), max_bytes=SHARED_BOUND)
    blobs = _shared_blobs()
    hits = rounds = 0
    stop = _start_together(Path(sync), f"writer-{seed}")
    while time.monotonic() < stop:
        rounds += 1
        digest, data = rng.choice(blobs)
        if rng.random() < 0.5:
            cache.put(digest, data)
        else:
            got = cache.get(digest)
            assert got is None or got == data
            hits += got is not None
        try:
            raw = cache.path_for(digest).read_bytes()
        except FileNotFoundError:
            continue
        assert hashlib.sha256(raw).hexdigest() == digest.hex, "a partial entry was visible"
    return rounds, hits


def _pruner(root: str, seed: int, sync: str) -> int:
    """Prune to random bounds, and now and then clear, while the writers run."""
    rng = random.Random(seed)
    cache = BlobCache(Path(root), max_bytes=SHARED_BOUND)
    rounds = 0
    stop = _start_together(Path(sync), "pruner")
    while time.monotonic() < stop:
        choice = rng.random()
        if choice < 0.05:
            cache.clear()
        elif choice < 0.5:
            cache.prune(rng.randrange(SHARED_BOUND))
        else:
            cache.prune()
        rounds += 1
        time.sleep(0.002)
    return rounds


def test_concurrent_processes(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    sync = tmp_path / "sync"
    sync.mkdir()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=5, mp_context=context) as pool:
        pruner = pool.submit(_pruner, str(root), 99, str(sync))
        writers = [pool.submit(_writer, str(root), seed, str(sync)) for seed in range(4)]
        deadline = time.monotonic() + 60
        while len(list(sync.glob("ready-*"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        (sync / "go").touch()
        results = [future.result(timeout=60) for future in writers]
        prunes = pruner.result(timeout=60)
    assert prunes > 0  # not vacuous, even on a loaded machine
    assert all(rounds > 0 for rounds, _ in results)
    assert sum(hits for _, hits in results) > 0
    assert temp_files(root) == []
    for path in entry_files(root):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    cache = BlobCache(root, max_bytes=SHARED_BOUND)
    cache.prune()
    assert cache.info().bytes <= SHARED_BOUND
    for digest, data in _shared_blobs():
        assert cache.get(digest) in (None, data)


# -- hardening: private directories and files, no symbolic link followed -----------------------------

IS_ROOT = os.geteuid() == 0


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_directories_are_0700_and_files_0600(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = BlobCache(root, max_bytes=150)
    for name in "abc":  # the third put passes the bound: a scan writes .usage and the journal
        cache.put(*blob(name, 60))

    def check_modes(expected: set[str]) -> None:
        dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
        files = [p for p in root.rglob("*") if p.is_file()]
        assert {str(p.relative_to(root)) for p in files} >= expected
        assert {p: _mode(p) for p in dirs} == dict.fromkeys(dirs, 0o700)
        assert {p: _mode(p) for p in files} == dict.fromkeys(files, 0o600)

    check_modes({".lock", ".usage", ".journal"})
    digest, data = blob("layer", 1000)
    source = tmp_path / "layer"
    source.write_bytes(data)
    assert cache.layers.add(layer_descriptor(digest, data), source)
    check_modes({".lock", ".usage", ".journal", "layers/.journal"})


def test_an_existing_open_cache_directory_is_made_private(tmp_path: Path) -> None:
    root = tmp_path / "old-cache"
    (root / "blobs" / "sha256").mkdir(parents=True)
    for directory in (root, root / "blobs", root / "blobs" / "sha256"):
        directory.chmod(0o755)
    BlobCache(root).put(*blob("x"))
    assert [_mode(d) for d in (root, root / "blobs", root / "blobs" / "sha256")] == [0o700] * 3


@pytest.mark.parametrize("planted", [".journal", ".usage", ".lock"])
def test_planted_symlinks_in_the_cache_are_never_followed(tmp_path: Path, planted: str) -> None:
    """A symlink in place of a section file: the file it points at is neither created, appended to
    nor truncated (the old cache appended to and truncated ``.journal``'s target, created ``.lock``'s)."""
    root = tmp_path / "cache"
    cache = BlobCache(root, max_bytes=10)  # every put evicts: lock, usage and journal all used
    cache.put(*blob("first", 5))
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    absent = tmp_path / "absent"
    (root / planted).unlink(missing_ok=True)
    (root / planted).symlink_to(victim if planted != ".lock" else absent)
    if planted == ".usage":  # only ever read (refused) and replaced by a rename: the link goes
        cache.put(*blob("second", 6))
        assert not (root / planted).is_symlink()
    else:
        with pytest.raises(UnsafePathError, match="symbolic link"):
            cache.put(*blob("second", 6))
        with pytest.raises(UnsafePathError, match="symbolic link"):
            cache.prune(0)
    assert victim.read_bytes() == b"precious\n"
    assert not absent.exists()


@pytest.mark.parametrize("planted", [".journal", ".lock"])
def test_a_fifo_in_place_of_a_section_file_is_refused_without_blocking(tmp_path: Path, planted: str) -> None:
    root = tmp_path / "cache"
    cache = BlobCache(root, max_bytes=10)
    cache.put(*blob("first", 5))
    (root / planted).unlink()
    os.mkfifo(root / planted)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        cache.put(*blob("second", 6))


def test_a_symlink_entry_is_discarded_not_followed(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    digest, data = blob("target")
    outside = tmp_path / "outside"
    outside.write_bytes(data)  # even with the right content
    cache.put(*blob("makes-the-directories"))
    cache.path_for(digest).symlink_to(outside)
    assert cache.get(digest) is None
    assert not cache.path_for(digest).is_symlink()
    assert outside.read_bytes() == data
    assert cache.put(digest, data) and cache.get(digest) == data


def test_a_hard_linked_journal_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = BlobCache(root, max_bytes=10)
    cache.put(*blob("first", 5))
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    (root / ".journal").unlink()
    os.link(victim, root / ".journal")
    with pytest.raises(UnsafePathError, match="not a private file"):
        cache.prune(0)
    assert victim.read_bytes() == b"precious\n"


@pytest.mark.skipif(not IS_ROOT, reason="needs root to give a directory to another user")
@pytest.mark.parametrize("operation", ["get", "put", "info", "prune", "clear", "fetch", "add", "check"])
def test_a_cache_directory_of_another_user_is_refused(tmp_path: Path, operation: str) -> None:
    root = tmp_path / "theirs"
    root.mkdir(mode=0o755)
    os.chown(root, 65534, 65534)
    cache = BlobCache(root)
    digest, data = blob("x")
    source = tmp_path / "source"
    source.write_bytes(data)
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: cache.get(digest),
        "put": lambda: cache.put(digest, data),
        "info": lambda: cache.info(),
        "prune": lambda: cache.prune(0),
        "clear": lambda: cache.clear(),
        "fetch": lambda: cache.layers.fetch(layer_descriptor(digest, data), tmp_path / "target"),
        "add": lambda: cache.layers.add(layer_descriptor(digest, data), source),
        "check": lambda: cache.check(),
    }
    with pytest.raises(UnsafePathError, match=r"owned by uid 65534, not by you \(uid 0\)") as caught:
        calls[operation]()
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    assert list(root.iterdir()) == []
    assert _mode(root) == 0o755


# -- the layer store --------------------------------------------------------------------------------


def layer_descriptor(digest: Digest, data: bytes) -> Descriptor:
    return Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", digest, len(data))


def layer(tmp_path: Path, seed: str, size: int = 3000) -> tuple[Descriptor, Path, bytes]:
    digest, data = blob(seed, size)
    path = tmp_path / f"src-{seed}"
    path.write_bytes(data)
    return layer_descriptor(digest, data), path, data


def test_layer_store_miss_add_fetch(tmp_path: Path) -> None:
    store = BlobCache(tmp_path / "cache").layers
    descriptor, source, data = layer(tmp_path, "base")
    target = tmp_path / "target"
    assert store.fetch(descriptor, target) is False
    assert not target.exists()
    assert store.add(descriptor, source) is True
    entry = store.path_for(descriptor.digest)
    assert entry == tmp_path / "cache" / "layers" / "blobs" / "sha256" / descriptor.digest.hex
    assert entry.read_bytes() == data
    assert os.stat(entry).st_ino != os.stat(source).st_ino  # a copy: the source may be a user's layout
    assert store.fetch(descriptor, target) is True
    assert target.read_bytes() == data
    assert os.stat(target).st_ino != os.stat(entry).st_ino
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(target) == 0o666 & ~umask  # a layout's file, with the usual mode
    assert _mode(entry) == 0o600
    info = BlobCache(tmp_path / "cache").info()
    assert (info.layer_entries, info.layer_bytes, info.entries) == (1, len(data), 0)


def test_layer_store_links_only_inside_its_work_areas(tmp_path: Path) -> None:
    store = BlobCache(tmp_path / "cache").layers
    descriptor, source, data = layer(tmp_path, "linked")
    assert store.add(descriptor, source)
    entry = store.path_for(descriptor.digest)
    assert store.holds(tmp_path) is False
    with store.work_area() as area:
        assert store.holds(area / "layout" / "blobs")
        assert area.parent == tmp_path / "cache" / "layers" / "work" and _mode(area) == 0o700
        target = area / "staged"
        assert store.fetch(descriptor, target, link=True)
        assert os.stat(target).st_ino == os.stat(entry).st_ino  # no copy at all
        downloaded = area / "downloaded"
        other, _, other_data = layer(tmp_path, "new-layer")
        downloaded.write_bytes(other_data)
        assert store.add(other, downloaded, link=True)
        stored = store.path_for(other.digest)
        assert os.stat(stored).st_ino == os.stat(downloaded).st_ino
        assert _mode(stored) == 0o600
    assert not area.exists()
    assert entry.read_bytes() == data


def test_add_verifies_what_it_copies(tmp_path: Path) -> None:
    store = BlobCache(tmp_path / "cache").layers
    descriptor, source, data = layer(tmp_path, "claimed")
    source.write_bytes(data[:-1] + b"!")  # the same size, another digest
    assert store.add(descriptor, source) is False
    assert not store.path_for(descriptor.digest).exists()
    assert list((tmp_path / "cache" / "layers").rglob("*.tmp")) == []


@pytest.mark.parametrize("link", [False, True], ids=["copy", "link"])
@pytest.mark.parametrize("damage", [_flip_byte, _truncate, _empty], ids=["flipped", "truncated", "empty"])
def test_a_damaged_layer_is_dropped_never_used(tmp_path: Path, damage: object, link: bool) -> None:
    assert callable(damage)
    store = BlobCache(tmp_path / "cache").layers
    descriptor, source, _ = layer(tmp_path, "damaged")
    assert store.add(descriptor, source)
    entry = store.path_for(descriptor.digest)
    damage(entry)
    with store.work_area() as area:
        target = area / "staged"
        assert store.fetch(descriptor, target, link=link) is False
        assert not target.exists()
    assert not entry.exists()
    assert store.add(descriptor, source) and store.fetch(descriptor, tmp_path / "again")


def test_a_symlinked_layer_entry_is_dropped_not_followed(tmp_path: Path) -> None:
    store = BlobCache(tmp_path / "cache").layers
    descriptor, source, data = layer(tmp_path, "elsewhere")
    other, other_source, _ = layer(tmp_path, "makes-dirs")
    store.add(other, other_source)
    store.path_for(descriptor.digest).symlink_to(source)
    assert store.fetch(descriptor, tmp_path / "target") is False
    assert not (tmp_path / "target").exists()
    assert not store.path_for(descriptor.digest).is_symlink()
    assert source.read_bytes() == data


def test_layers_over_the_bound_are_not_stored_and_lru_evicts(tmp_path: Path) -> None:
    store = BlobCache(tmp_path / "cache", max_layer_bytes=7000).layers
    big, big_source, _ = layer(tmp_path, "big", 7001)
    assert store.add(big, big_source) is False
    made = [layer(tmp_path, name) for name in "abc"]
    for seconds, (descriptor, source, _) in enumerate(made[:2], 1000):
        assert store.add(descriptor, source)
        set_mtime(store.path_for(descriptor.digest), seconds)
    assert store.fetch(made[0][0], tmp_path / "use-a")  # a use: b is now the least recently used
    assert store.add(made[2][0], made[2][1])  # 9000 bytes > 7000: b goes
    assert [store.path_for(d.digest).exists() for d, _, _ in made] == [True, False, True]


def test_prune_with_a_bound_covers_layers_and_manifests_least_recently_used_first(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    small = [blob(f"manifest-{i}", 100) for i in range(2)]
    layers = [layer(tmp_path, f"layer-{i}", 1000) for i in range(2)]
    for digest, data in small:
        cache.put(digest, data)
    for descriptor, source, _ in layers:
        cache.layers.add(descriptor, source)
    ages = {
        cache.path_for(small[0][0]): 1000,
        cache.layers.path_for(layers[0][0].digest): 2000,
        cache.path_for(small[1][0]): 3000,
        cache.layers.path_for(layers[1][0].digest): 4000,
    }
    for path, seconds in ages.items():
        set_mtime(path, seconds)
    assert cache.prune(1100) == PruneResult(2, 1100)  # the oldest manifest, then the oldest layer
    assert [path.exists() for path in ages] == [False, False, True, True]
    assert cache.prune() == PruneResult(0, 0)  # each within its own bound
    assert cache.prune(0) == PruneResult(2, 1100)
    assert cache.info().layer_entries == cache.info().entries == 0


def test_abandoned_work_areas_are_removed_live_ones_kept(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    work = tmp_path / "cache" / "layers" / "work"
    with cache.layers.work_area() as live:
        abandoned = work / "12345-abandoned"
        abandoned.mkdir()
        (abandoned / ".owner").write_bytes(b"")  # nobody holds its lock: its process died
        (abandoned / "blobs").mkdir()
        fresh = work / ".new-999-being-made"
        fresh.mkdir()
        old = work / ".new-998-left-behind"
        old.mkdir()
        set_mtime(old, int(time.time()) - STALE_TEMP_SECONDS - 60)
        cache.prune()
        assert live.exists() and fresh.exists()
        assert not abandoned.exists() and not old.exists()
        cache.clear()
        assert live.exists()
    assert sorted(p.name for p in work.iterdir()) == [fresh.name]


def test_null_cache_has_no_layer_store() -> None:
    assert NullCache().layers is None


# -- several processes share the layer store ----------------------------------------------------------


def _layer_user(root: str, seed: int, sync: str) -> tuple[int, int]:
    """Add and fetch shared layers (linked and copied) while another process prunes and clears: every
    fetch that succeeds leaves a whole, verified file that is the fetcher's own."""
    rng = random.Random(seed)
    store = BlobCache(Path(root), max_layer_bytes=SHARED_BOUND).layers
    blobs = [(layer_descriptor(d, data), data) for d, data in _shared_blobs()]
    work = Path(sync) / f"work-{seed}"
    work.mkdir()
    rounds = hits = 0
    stop = _start_together(Path(sync), f"layer-user-{seed}")
    with store.work_area() as area:
        while time.monotonic() < stop:
            rounds += 1
            descriptor, data = rng.choice(blobs)
            link = rng.random() < 0.5
            place = area if link else work
            target = place / f"t-{rounds}"
            if rng.random() < 0.4:
                source = place / f"s-{rounds}"
                source.write_bytes(data)
                store.add(descriptor, source, link=link)
                source.unlink()
            elif store.fetch(descriptor, target, link=link):
                hits += 1
                held = target.read_bytes()
                time.sleep(0.001)  # a prune may remove the entry now: the fetched file stays whole
                assert held == target.read_bytes() == data, "a fetched layer changed or was partial"
                target.unlink()
            else:
                assert not target.exists()
    return rounds, hits


def test_concurrent_processes_share_layers(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    sync = tmp_path / "sync"
    sync.mkdir()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        pruner = pool.submit(_pruner, str(root), 98, str(sync))
        users = [pool.submit(_layer_user, str(root), seed, str(sync)) for seed in range(3)]
        deadline = time.monotonic() + 60
        while len(list(sync.glob("ready-*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        (sync / "go").touch()
        results = [future.result(timeout=60) for future in users]
        assert pruner.result(timeout=60) > 0
    assert all(rounds > 0 for rounds, _ in results)
    assert sum(hits for _, hits in results) > 0
    layers = root / "layers"
    assert list(layers.rglob("*.tmp")) == []
    for path in (layers / "blobs").rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    assert list((layers / "work").iterdir()) == []


# -- prune by age, use refreshing an entry, sizes at the limit -------------------------------------------
def test_prune_older_than_removes_what_was_not_used_for_that_long(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10_000)
    now = int(time.time())
    entries = {name: blob(name, 100) for name in ("old", "older", "recent")}
    for digest, data in entries.values():
        cache.put(digest, data)
    set_mtime(cache.path_for(entries["old"][0]), now - 3_000)
    set_mtime(cache.path_for(entries["older"][0]), now - 10_000)
    set_mtime(cache.path_for(entries["recent"][0]), now - 100)
    with pytest.raises(UsageError) as info:
        cache.prune(older_than=-1)
    assert str(info.value) == "an age to prune must not be negative"
    assert cache.prune(older_than=5_000) == PruneResult(1, 100)  # only 'older' (10,000 s unused)
    assert {p.name for p in entry_files(tmp_path)} == {entries["old"][0].hex, entries["recent"][0].hex}
    assert cache.prune(older_than=0.5 * 3600) == PruneResult(1, 100)  # 1,800 s: 'old' goes too
    assert [p.name for p in entry_files(tmp_path)] == [entries["recent"][0].hex]
    assert cache.info().bytes == 100  # the estimate follows what is left
    assert cache.prune(older_than=0) == PruneResult(1, 100)  # 0: everything not used this instant
    assert cache.info().entries == 0


def test_prune_older_than_then_to_a_bound(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10_000)
    now = int(time.time())
    entries = [blob(name, 100) for name in "abcd"]
    for age, (digest, data) in zip((9_000, 300, 200, 100), entries, strict=True):
        cache.put(digest, data)
        set_mtime(cache.path_for(digest), now - age)
    # 'a' is too old; of the rest, the least recently used go until 150 bytes are left
    assert cache.prune(150, older_than=3_600) == PruneResult(3, 300)
    assert [p.name for p in entry_files(tmp_path)] == [entries[3][0].hex]
    assert cache.info().bytes == 100


def test_a_get_is_a_use_that_keeps_the_entry_from_lru_eviction(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10_000)
    first, second = blob("first", 100), blob("second", 100)
    cache.put(*first)
    cache.put(*second)
    set_mtime(cache.path_for(first[0]), 1000)
    set_mtime(cache.path_for(second[0]), 2000)
    assert cache.get(first[0]) == first[1]  # now the most recently used
    assert cache.prune(100) == PruneResult(1, 100)
    assert cache.get(first[0]) == first[1] and cache.get(second[0]) is None


def test_putting_an_entry_again_is_a_use(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=10_000)
    first, second = blob("first", 100), blob("second", 100)
    cache.put(*first)
    cache.put(*second)
    set_mtime(cache.path_for(first[0]), 1000)
    set_mtime(cache.path_for(second[0]), 2000)
    assert cache.put(*first) is True
    assert cache.prune(100) == PruneResult(1, 100)
    assert cache.get(first[0]) == first[1]


def test_entry_size_limits_are_inclusive(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=100)
    exactly, over = blob("x", 100), blob("y", 101)
    assert cache.put(*exactly) is True and cache.get(exactly[0]) == exactly[1]
    assert cache.put(*over) is False and cache.get(over[0]) is None
    with pytest.raises(DigestMismatchError) as info:
        cache.put(exactly[0], over[1])
    assert info.value.what == f"cache entry {exactly[0]}"


def test_a_corrupt_entry_is_discarded_on_get(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest, data = blob("entry", 100)
    cache.put(digest, data)
    cache.path_for(digest).write_bytes(b"X" + data[1:])
    assert cache.get(digest) is None
    assert not cache.path_for(digest).exists()
    assert cache.get(blob("never", 10)[0]) is None and not (tmp_path / "blobs" / "sha256" / "never").exists()
