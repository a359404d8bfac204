"""A content-addressed on-disk cache of manifests and configs.

Content fetched by digest never changes, so once verified it can be served from disk for ever. Layout::

    ROOT/blobs/<algorithm>/<hex>              one entry: exactly the bytes that hash to the digest
    ROOT/blobs/<algorithm>/.<hex>.<id>.tmp    an entry being written (renamed into place when complete)
    ROOT/.lock                                flock'ed exclusively by eviction, prune and clear
    ROOT/.usage                               total entry bytes found by the last scan (decimal)
    ROOT/.journal                             16-byte records, one per put since that scan: its size

Paths are built only from re-validated :class:`~regpeek.formats.digest.Digest` values. Reads verify the hash
every time: a corrupt or truncated entry is deleted and reported as a miss, never served. Writes go to a
temp file in the entry's directory and are renamed into place, so concurrent readers and writers (in
any number of processes) see a whole entry or none. Entries over :data:`MAX_ENTRY_SIZE` are not cached.
A hit sets the entry's mtime to now, so mtime is the time of last use.

Eviction (least recently used first, i.e. oldest mtime first, ties by name) keeps the entries' total at
or under ``max_bytes``. Rescanning the tree on every put would cost a ``stat`` per entry in every CLI run
that stores something, so puts keep a cross-process running estimate instead: ``.usage`` holds the
exact total from the last scan and every put appends one fixed-width record of its size to ``.journal``
(an ``O_APPEND`` write, atomic on a local file system). After a put the estimate is ``.usage`` plus the
journal; the tree is rescanned and evicted under the lock when the estimate passes ``max_bytes``, when
the journal holds :data:`RESCAN_EVERY` records, or when ``.usage`` is missing or unreadable. A scan
rewrites ``.usage`` and empties the journal. The estimate never undercounts what this process stored,
so the bound holds after each put; a put racing with another process's scan can be missed by that scan
(the next rescan corrects it). :meth:`BlobCache.prune` always rescans, so the bound is exact after it.

``get`` and ``put`` take no lock: an entry evicted while being read is a miss, and a temp file removed
by :meth:`BlobCache.clear` while being written is an entry not stored. The cache is an optimisation, so
``get`` and ``put`` turn I/O errors into misses and unstored entries; ``info``, ``prune`` and ``clear``
raise them. :class:`NullCache` has the same interface and stores nothing (``--no-cache``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from regpeek.disk.files import exclusive_lock, write_file_atomically
from regpeek.errors import UsageError
from regpeek.formats.digest import Digest, compute, verify_bytes
from regpeek.formats.manifest import MAX_MANIFEST_SIZE

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_ENTRY_SIZE",
    "RESCAN_EVERY",
    "STALE_TEMP_SECONDS",
    "BlobCache",
    "Cache",
    "CacheInfo",
    "NullCache",
    "PruneResult",
    "default_cache_dir",
]

#: The default bound on the total size of the entries.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Larger content is not cached: regpeek refuses manifests and configs over this size anyway.
MAX_ENTRY_SIZE = MAX_MANIFEST_SIZE
#: Puts (by all processes) between two rescans of the tree, whatever the estimate says.
RESCAN_EVERY = 64
#: Temp files older than this belong to writers that died; :meth:`BlobCache.prune` removes them.
STALE_TEMP_SECONDS = 3600

_TEMP_SUFFIX = ".tmp"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$REGPEEK_CACHE_DIR`` when set and not empty, else the user cache directory for regpeek."""
    env = os.environ if environ is None else environ
    configured = env.get("REGPEEK_CACHE_DIR")
    if configured:
        return Path(configured)
    import platformdirs  # only when no directory is given

    return Path(platformdirs.user_cache_dir("regpeek"))


@dataclass(frozen=True)
class CacheInfo:
    """What the cache holds: ``path`` is None for a :class:`NullCache`."""

    path: Path | None
    entries: int
    bytes: int
    max_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path is not None else None,
            "enabled": self.path is not None,
            "entries": self.entries,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
        }


@dataclass(frozen=True)
class PruneResult:
    """Files removed by a prune or clear (stray temp files included) and the bytes they held."""

    removed: int = 0
    freed_bytes: int = 0

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(self.removed + other.removed, self.freed_bytes + other.freed_bytes)

    def to_json(self) -> dict[str, Any]:
        return {"removed": self.removed, "freed_bytes": self.freed_bytes}


class Cache(Protocol):
    """The interface shared by :class:`BlobCache` and :class:`NullCache`."""

    def get(self, digest: Digest) -> bytes | None: ...

    def put(self, digest: Digest, data: bytes) -> bool: ...

    def info(self) -> CacheInfo: ...

    def prune(self, max_bytes: int | None = None) -> PruneResult: ...

    def clear(self) -> PruneResult: ...


@dataclass(frozen=True, order=True)
class _File:
    """A file found by a scan; the ordering is eviction order (least recently used first)."""

    mtime_ns: int
    name: str
    size: int
    path: Path = field(compare=False)


@dataclass
class _Scan:
    entries: list[_File] = field(default_factory=list)
    temps: list[_File] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(entry.size for entry in self.entries)


def _checked(max_bytes: int) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise UsageError(f"invalid cache size bound {max_bytes!r}: expected a non-negative integer")
    return max_bytes


def _remove(files: list[_File]) -> PruneResult:
    """Unlink ``files``; ones already gone (a concurrent eviction or discard) are not counted."""
    result = PruneResult()
    for file in files:
        try:
            file.path.unlink()
        except FileNotFoundError:
            continue
        result += PruneResult(1, file.size)
    return result


class BlobCache:
    """Verified manifests and configs under ``root``, bounded to ``max_bytes`` (see the module doc)."""

    def __init__(self, root: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = _checked(max_bytes)
        self._blobs = self.root / "blobs"
        self._usage = self.root / ".usage"
        self._journal = self.root / ".journal"

    def path_for(self, digest: Digest) -> Path:
        """Where the entry for ``digest`` lives (the digest is re-validated first)."""
        valid = Digest.parse(str(digest))
        return self._blobs / valid.algorithm / valid.hex

    # -- get and put: no lock -------------------------------------------------------------------

    def get(self, digest: Digest) -> bytes | None:
        """The cached bytes for ``digest``, verified; None on a miss or a (discarded) corrupt entry."""
        path = self.path_for(digest)
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_ENTRY_SIZE + 1)
                inode = os.fstat(file.fileno()).st_ino
        except OSError:  # FileNotFoundError above all: a miss, or evicted a moment ago
            return None
        if len(data) > MAX_ENTRY_SIZE or compute(data, digest.algorithm) != digest:
            self._discard(path, inode)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # mtime = last use, for LRU eviction
        return data

    def put(self, digest: Digest, data: bytes) -> bool:
        """Store ``data`` as the entry for ``digest``; True when stored (or already there).

        Raises :class:`~regpeek.errors.DigestMismatchError` when ``data`` does not hash to ``digest``.
        Content over :data:`MAX_ENTRY_SIZE` or ``max_bytes`` is not stored (False).
        """
        verify_bytes(f"cache entry {digest}", data, digest)
        if len(data) > min(MAX_ENTRY_SIZE, self.max_bytes):
            return False
        path = self.path_for(digest)
        try:
            if path.stat().st_size == len(data):
                os.utime(path)  # already there: a use
                return True
        except FileNotFoundError:
            pass
        except OSError:
            return False
        try:
            self._write(path, data)
        except OSError:  # FileNotFoundError: a concurrent clear() removed the temp file
            return False
        with contextlib.suppress(OSError):
            self._after_put(len(data))
        return True

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with write_file_atomically(path, durable=False, suffix=_TEMP_SUFFIX) as out:
            out.write(data)

    def _discard(self, path: Path, inode: int) -> None:
        """Delete a corrupt entry, unless a writer has just renamed a fresh file over it."""
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:
                path.unlink()

    # -- the running estimate -------------------------------------------------------------------

    def _after_put(self, size: int) -> None:
        fd = os.open(self._journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"%15d\n" % size)
        finally:
            os.close(fd)
        estimate = self._estimate()
        if estimate is None or estimate > self.max_bytes:
            self._evict_to(self.max_bytes)

    def _estimate(self) -> int | None:
        """``.usage`` plus the journal, or None when a rescan is due (or the files are unreadable)."""
        try:
            usage = int(self._usage.read_bytes())
            journal = self._journal.read_bytes()
        except (OSError, ValueError):
            return None
        records = journal.splitlines()
        if len(records) >= RESCAN_EVERY:
            return None
        try:
            return usage + sum(int(record) for record in records)
        except ValueError:
            return None

    def _reset_estimate(self, total: int) -> None:
        """Record an exact total (under the lock): ``.usage`` replaced atomically, journal emptied."""
        with write_file_atomically(self._usage, durable=False, suffix=_TEMP_SUFFIX) as out:
            out.write(b"%d\n" % total)
        with open(self._journal, "wb"):
            pass

    # -- scanning and eviction: under the lock ----------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.root / ".lock"):
            yield

    def _scan(self) -> _Scan:
        """Every entry and temp file; files with other names are left alone and not counted."""
        scan = _Scan()
        self._scan_dir(self.root, None, scan)  # temp files of .usage
        try:
            algorithms = list(os.scandir(self._blobs))
        except FileNotFoundError:
            return scan
        for algorithm in algorithms:
            if algorithm.is_dir(follow_symlinks=False):
                self._scan_dir(Path(algorithm.path), algorithm.name, scan)
        return scan

    def _scan_dir(self, directory: Path, algorithm: str | None, scan: _Scan) -> None:
        try:
            names = list(os.scandir(directory))
        except FileNotFoundError:
            return
        for item in names:
            try:
                stat = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found = _File(stat.st_mtime_ns, item.name, stat.st_size, Path(item.path))
            if item.name.startswith(".") and item.name.endswith(_TEMP_SUFFIX):
                scan.temps.append(found)
            elif algorithm and item.is_file(follow_symlinks=False) and _is_entry_name(algorithm, item.name):
                scan.entries.append(found)

    def _evict_to(self, max_bytes: int, *, stale_temps: bool = False) -> PruneResult:
        """Remove least recently used entries until their total is at most ``max_bytes``."""
        with self._locked():
            scan = self._scan()
            total = scan.total
            victims: list[_File] = []
            for entry in sorted(scan.entries):
                if total <= max_bytes:
                    break
                victims.append(entry)
                total -= entry.size
            if stale_temps:
                cutoff = time.time_ns() - STALE_TEMP_SECONDS * 1_000_000_000
                victims += [temp for temp in scan.temps if temp.mtime_ns < cutoff]
            result = _remove(victims)
            self._reset_estimate(total)
            return result

    # -- maintenance ----------------------------------------------------------------------------

    def info(self) -> CacheInfo:
        scan = self._scan()
        return CacheInfo(self.root, len(scan.entries), scan.total, self.max_bytes)

    def prune(self, max_bytes: int | None = None) -> PruneResult:
        """Evict down to ``max_bytes`` (default: the cache's bound; 0 empties it) and remove temp files
        older than :data:`STALE_TEMP_SECONDS`."""
        bound = self.max_bytes if max_bytes is None else _checked(max_bytes)
        if not self.root.is_dir():
            return PruneResult()
        return self._evict_to(bound, stale_temps=True)

    def clear(self) -> PruneResult:
        """Remove every entry and every temp file (a put in flight then stores nothing)."""
        if not self.root.is_dir():
            return PruneResult()
        with self._locked():
            scan = self._scan()
            result = _remove(scan.entries + scan.temps)
            self._reset_estimate(0)
            return result


def _is_entry_name(algorithm: str, name: str) -> bool:
    try:
        Digest.parse(f"{algorithm}:{name}")
    except UsageError:
        return False
    return True


class NullCache:
    """A cache that stores nothing (``--no-cache``); ``put`` still verifies, as :class:`BlobCache` does."""

    max_bytes = 0

    def get(self, digest: Digest) -> bytes | None:
        return None

    def put(self, digest: Digest, data: bytes) -> bool:
        verify_bytes(f"cache entry {digest}", data, digest)
        return False

    def info(self) -> CacheInfo:
        return CacheInfo(None, 0, 0, 0)

    def prune(self, max_bytes: int | None = None) -> PruneResult:
        if max_bytes is not None:
            _checked(max_bytes)
        return PruneResult()

    def clear(self) -> PruneResult:
        return PruneResult()
