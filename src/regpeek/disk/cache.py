"""The content-addressed on-disk cache: manifests and configs, and a store of layer blobs beside them.

Content fetched by digest never changes, so once verified it can be kept and used again. One cache
directory holds two sections, each bounded on its own with least-recently-used eviction::

    ROOT/                                     0700, owned by the user (else refused, as ssh does)
    ROOT/blobs/<algorithm>/<hex>              a manifest or config: exactly the bytes of the digest
    ROOT/.lock .usage .journal                that section's lock and running size estimate
    ROOT/layers/blobs/<algorithm>/<hex>       a layer (or other blob pull downloaded), streamed in
    ROOT/layers/.lock .usage .journal         the layer section's lock and estimate
    ROOT/layers/work/<random>/                private OCI layouts of unpack and export (see below)
    ROOT/layers/claims/<algorithm>-<hex>      a blob being fetched by some process (a flock; see claim)
    ROOT/tags/<hex>  ROOT/auth/<hex>          the tag memo and the registries' auth state
                                              (:mod:`regpeek.disk.state`: small records, 0600)
    .../.<hex>.<id>.tmp                       an entry being written, renamed into place when complete

**Manifests and configs** (:class:`BlobCache`, bound :data:`DEFAULT_MAX_BYTES`) are read into memory
and verified on every read: a corrupt or truncated entry is deleted and reported as a miss, never
served. Entries over :data:`MAX_ENTRY_SIZE` are not cached.

**Layers** (:class:`LayerStore`, ``BlobCache(...).layers``, bound :data:`DEFAULT_MAX_LAYER_BYTES`) are
never held in memory. :meth:`LayerStore.add` stores a verified file, copied (or reflinked) into a temp
file while it is hashed again, or hard-linked when the file lives in one of the store's private work
areas; :meth:`LayerStore.fetch` puts a stored blob at a path of the caller's (hard link inside a work
area, else a reflink or a copy) and then hashes *what it put there*: only a copy whose size and digest
match is kept, and a mismatch removes the entry (a miss, and the blob is downloaded). Because the copy
is made before it is verified and the copy is the caller's own file, an eviction or a clear in
another process can never take a blob away from under a reader: the entry's name may go, the
caller's link or open file keeps the data. A layer hard-linked into a user's destination would share
the entry's mode and inode, so that is done only in work areas (``unpack``/``export`` of a registry
image pull into one, which makes a cache hit cost no copy at all).

Paths are built only from re-validated :class:`~regpeek.formats.digest.Digest` values. Writes go to a
temp file (``O_EXCL``, mode 0600) in the entry's directory and are renamed into place, so concurrent
readers and writers (in any number of processes) see a whole entry or none. Every file is opened with
``O_NOFOLLOW`` (:func:`~regpeek.disk.files.open_regular`); the section files (lock, journal, usage)
must also be the user's own, with one link. Directories are 0700 and must belong to the effective
user: :class:`~regpeek.errors.UnsafePathError` (exit 2) otherwise. A use (a hit) sets the entry's
mtime to now, so mtime is the time of last use.

Eviction (least recently used first, i.e. oldest mtime first, ties by name) keeps a section's entries
at or under its bound. Rescanning the tree on every put would cost a ``stat`` per entry in every CLI
run that stores something, so puts keep a cross-process running estimate instead: ``.usage`` holds
the exact total from the last scan and every put appends one fixed-width record of its size to
``.journal`` (an ``O_APPEND`` write, atomic on a local file system). After a put the estimate is
``.usage`` plus the journal; the tree is rescanned and evicted under the lock when the estimate passes
the bound, when the journal holds :data:`RESCAN_EVERY` records, or when ``.usage`` is missing or
unreadable. A scan rewrites ``.usage`` and empties the journal. The estimate never undercounts what
this process stored, so the bound holds after each put; a put racing with another process's scan can
be missed by that scan (the next rescan corrects it). :meth:`BlobCache.prune` always rescans.

Gets, puts, fetches and adds take no lock: an entry evicted while being read is a miss, and a temp
file removed by :meth:`BlobCache.clear` while being written is an entry not stored. The cache is an
optimisation, so they turn I/O errors into misses and unstored entries (an unsafe directory is still
an error); ``info``, ``prune`` and ``clear`` raise them. :class:`NullCache` has the same interface and
stores nothing (``--no-cache``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from regpeek.disk.files import (
    clone_file,
    exclusive_lock,
    held_claim,
    open_regular,
    private_directory,
    write_file_atomically,
)
from regpeek.disk.state import AuthState, Records, TagMemo
from regpeek.errors import UnsafePathError, UsageError
from regpeek.formats.digest import Digest, DigestVerifier, compute, verify_bytes
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import MAX_MANIFEST_SIZE, Descriptor

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_LAYER_BYTES",
    "MAX_ENTRY_SIZE",
    "RESCAN_EVERY",
    "STALE_TEMP_SECONDS",
    "BlobCache",
    "Cache",
    "CacheInfo",
    "LayerStore",
    "NullCache",
    "PruneResult",
    "default_cache_dir",
]

#: The default bound on the total size of the manifests and configs.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: The default bound on the total size of the layers: room for a few images of some GiB each.
DEFAULT_MAX_LAYER_BYTES = 10 * 1024 * 1024 * 1024
#: Larger content is not cached: regpeek refuses manifests and configs over this size anyway.
MAX_ENTRY_SIZE = MAX_MANIFEST_SIZE
#: Puts (by all processes) between two rescans of a section, whatever the estimate says.
RESCAN_EVERY = 64
#: Temp files older than this belong to writers that died; :meth:`BlobCache.prune` removes them.
STALE_TEMP_SECONDS = 3600

_TEMP_SUFFIX = ".tmp"
_CHUNK = 1024 * 1024
_OWNER_FILE = ".owner"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$REGPEEK_CACHE_DIR`` when set and not empty, else the user cache directory for regpeek."""
    env = os.environ if environ is None else environ
    configured = env.get("REGPEEK_CACHE_DIR")
    if configured:
        return Path(configured)
    import platformdirs  # only when no directory is given

    return Path(platformdirs.user_cache_dir("regpeek"))


@dataclass(frozen=True)
class CacheInfo(JsonResult):
    """What the cache holds: manifests and configs (``entries``, ``bytes``, ``max_bytes``) and layers
    (``layer_*``); ``path`` is None for a :class:`NullCache`."""

    path: Path | None
    entries: int
    bytes: int
    max_bytes: int
    layer_entries: int = 0
    layer_bytes: int = 0
    max_layer_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path is not None else None,
            "enabled": self.path is not None,
            "entries": self.entries + self.layer_entries,
            "bytes": self.bytes + self.layer_bytes,
            "manifests": {"entries": self.entries, "bytes": self.bytes, "max_bytes": self.max_bytes},
            "layers": {
                "entries": self.layer_entries,
                "bytes": self.layer_bytes,
                "max_bytes": self.max_layer_bytes,
            },
        }


@dataclass(frozen=True)
class PruneResult(JsonResult):
    """Files removed by a prune or clear (stray temp files included) and the bytes they held."""

    removed: int = 0
    freed_bytes: int = 0

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(self.removed + other.removed, self.freed_bytes + other.freed_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "freed_bytes": self.freed_bytes}


class Cache(Protocol):
    """The interface shared by :class:`BlobCache` and :class:`NullCache`."""

    @property
    def layers(self) -> LayerStore | None: ...

    @property
    def tags(self) -> TagMemo | None: ...

    @property
    def auth(self) -> AuthState | None: ...

    def get(self, digest: Digest) -> bytes | None: ...

    def put(self, digest: Digest, data: bytes) -> bool: ...

    def info(self) -> CacheInfo: ...

    def prune(self, max_bytes: int | None = None, *, older_than: float | None = None) -> PruneResult: ...

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


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}{_TEMP_SUFFIX}")


def _hash_fd(fd: int, algorithm: str) -> DigestVerifier:
    verifier = DigestVerifier(algorithm)
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, _CHUNK):
        verifier.update(chunk)
    return verifier


def _matches(verifier: DigestVerifier, descriptor: Descriptor) -> bool:
    return verifier.size == descriptor.size and verifier.digest() == descriptor.digest


class _Section:
    """One bounded section of the cache: entries under ``directory/blobs``, its lock and estimate.

    ``root`` is the cache directory (it may be a symbolic link the user chose); ``directory`` is
    ``root`` itself or a directory below it. Every directory from ``root`` down is checked once per
    instance (owned by the user, 0700, no symbolic links below ``root``).
    """

    def __init__(self, root: Path, directory: Path, max_bytes: int) -> None:
        self.root = root
        self.directory = directory
        self.max_bytes = _checked(max_bytes)
        self._blobs = directory / "blobs"
        self._usage = directory / ".usage"
        self._journal = directory / ".journal"
        self._safe: set[Path] = set()

    def path_for(self, digest: Digest) -> Path:
        """Where the entry for ``digest`` lives (the digest is re-validated first)."""
        valid = Digest.parse(str(digest))
        return self._blobs / valid.algorithm / valid.hex

    # -- the directories --------------------------------------------------------------------------

    def _ensure(self, path: Path, *, create: bool) -> bool:
        """``path`` (``root`` or below it) and every directory above it up to ``root`` are private
        directories of the user; False when one is missing and ``create`` is False."""
        if path in self._safe:
            return True
        if path == self.root:
            ready = private_directory(path, create=create, follow=True)
        else:
            ready = self._ensure(path.parent, create=create) and private_directory(path, create=create)
        if ready:
            self._safe.add(path)
        return ready

    def _ready(self, *, create: bool) -> bool:
        return self._ensure(self.directory, create=create)

    def check(self) -> None:
        """Refuse (:class:`~regpeek.errors.UnsafePathError`) a cache directory (or a directory of this
        section in it) that is not the user's own; a missing or unusable one is left for the
        operations to skip."""
        with contextlib.suppress(OSError):
            self._ensure(self._blobs, create=False)

    def _discard(self, path: Path, inode: int | None) -> None:
        """Delete a bad entry, unless a writer has just renamed a fresh file over it."""
        with contextlib.suppress(OSError):
            info = os.lstat(path)
            if inode is None or info.st_ino == inode:
                path.unlink()

    # -- the running estimate -------------------------------------------------------------------

    def _after_put(self, size: int) -> None:
        fd = open_regular(self._journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _own(fd, self._journal)
            os.write(fd, b"%15d\n" % size)
        finally:
            os.close(fd)
        estimate = self._estimate()
        if estimate is None or estimate > self.max_bytes:
            self._evict_to(self.max_bytes)

    def _read_small(self, path: Path) -> bytes:
        fd = open_regular(path)
        try:
            _own(fd, path)
            return os.read(fd, 1024 * 1024)
        finally:
            os.close(fd)

    def _estimate(self) -> int | None:
        """``.usage`` plus the journal, or None when a rescan is due (or the files are unreadable)."""
        try:
            usage = int(self._read_small(self._usage))
            journal = self._read_small(self._journal)
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
        with write_file_atomically(self._usage, durable=False, suffix=_TEMP_SUFFIX, mode=0o600) as out:
            out.write(b"%d\n" % total)
        fd = open_regular(self._journal, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            _own(fd, self._journal)
            os.ftruncate(fd, 0)  # in place: a record appended meanwhile is kept
        finally:
            os.close(fd)

    # -- scanning and eviction: under the lock ----------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ready(create=True)
        with exclusive_lock(self.directory / ".lock", mode=0o600, private=True):
            yield

    def _scan(self) -> _Scan:
        """Every entry and temp file; files with other names are left alone and not counted."""
        scan = _Scan()
        self._scan_dir(self.directory, None, scan)  # temp files of .usage
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
                info = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found = _File(info.st_mtime_ns, item.name, info.st_size, Path(item.path))
            if item.name.startswith(".") and item.name.endswith(_TEMP_SUFFIX):
                scan.temps.append(found)
            elif algorithm and item.is_file(follow_symlinks=False) and _is_entry_name(algorithm, item.name):
                scan.entries.append(found)

    def _evict_to(self, max_bytes: int, *, stale_temps: bool = False) -> PruneResult:
        """Remove least recently used entries until their total is at most ``max_bytes``."""
        with self._locked():
            scan = self._scan()
            victims, total = _lru_victims(scan.entries, max_bytes)
            if stale_temps:
                victims += _stale(scan.temps)
            result = _remove(victims)
            self._reset_estimate(total)
            return result

    def _clear_locked(self) -> PruneResult:
        scan = self._scan()
        result = _remove(scan.entries + scan.temps)
        self._reset_estimate(0)
        return result


def _own(fd: int, path: Path) -> None:
    """A section file must be the user's own, with no other name (no hard link planted elsewhere)."""
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_nlink != 1:
        raise UnsafePathError(f"refusing to use {path}: it is not a private file of this user")


def _lru_victims(entries: list[_File], max_bytes: int) -> tuple[list[_File], int]:
    total = sum(entry.size for entry in entries)
    victims: list[_File] = []
    for entry in sorted(entries):
        if total <= max_bytes:
            break
        victims.append(entry)
        total -= entry.size
    return victims, total


def _stale(temps: list[_File]) -> list[_File]:
    cutoff = time.time_ns() - STALE_TEMP_SECONDS * 1_000_000_000
    return [temp for temp in temps if temp.mtime_ns < cutoff]


class LayerStore(_Section):
    """Verified layer blobs under ``root/layers``, bounded to ``max_bytes`` (see the module doc)."""

    def __init__(self, root: Path | str, max_bytes: int = DEFAULT_MAX_LAYER_BYTES) -> None:
        root = Path(root)
        super().__init__(root, root / "layers", max_bytes)
        self._work = self.directory / "work"

    # -- using an entry -------------------------------------------------------------------------

    def fetch(self, descriptor: Descriptor, target: Path, *, link: bool = False) -> bool:
        """Put the stored blob for ``descriptor`` at ``target`` (which must not exist), verified.

        ``link`` allows a hard link (``target`` is in a work area of this store). Returns False on a
        miss, leaving nothing at ``target``; a stored blob whose size or digest is wrong is removed.
        """
        entry = self.path_for(descriptor.digest)
        try:
            if not self._ensure(entry.parent, create=False):
                return False
            source = open_regular(entry)
        except UnsafePathError:
            if entry.parent in self._safe:  # a link or a FIFO at the entry's name: not an entry
                self._discard(entry, None)
                return False
            raise
        except OSError:  # FileNotFoundError above all: a miss, or evicted a moment ago
            return False
        try:
            inode = os.fstat(source).st_ino
            if os.fstat(source).st_size != descriptor.size:
                self._discard(entry, inode)
                return False
            placed = self._place(source, entry, target, descriptor, link=link)
        except OSError:
            target.unlink(missing_ok=True)
            return False
        finally:
            os.close(source)
        if not placed:
            target.unlink(missing_ok=True)
            self._discard(entry, inode)
            return False
        with contextlib.suppress(OSError):
            os.utime(entry, follow_symlinks=False)  # mtime = last use, for LRU eviction
        return True

    def _place(self, source: int, entry: Path, target: Path, descriptor: Descriptor, *, link: bool) -> bool:
        """Make ``target`` a link, reflink or copy of the entry; True when what is there verifies."""
        algorithm = descriptor.digest.algorithm
        if link:
            try:
                os.link(entry, target, follow_symlinks=False)
            except OSError:
                pass  # evicted since it was opened, or another filesystem: copy from the open file
            else:
                fd = open_regular(target)
                try:
                    return _matches(_hash_fd(fd, algorithm), descriptor)
                finally:
                    os.close(fd)
        out = open_regular(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            if clone_file(source, out):
                return _matches(_hash_fd(out, algorithm), descriptor)
            return _matches(_copy(source, out, algorithm), descriptor)
        finally:
            os.close(out)

    @contextlib.contextmanager
    def claim(self, digest: Digest) -> Iterator[None]:
        """Be the one process (or thread) fetching ``digest`` into the store while the block runs.

        A ``flock`` on ``layers/claims/<algorithm>-<hex>`` (removed when released): another pull of
        the same blob, in this process or any other sharing the store, waits here and then finds it
        stored, so a base layer that many builds share is downloaded once. Where the claim cannot be
        taken (an unusable store) the block simply runs unclaimed.
        """
        valid = Digest.parse(str(digest))
        claims = self.directory / "claims"
        try:
            usable = self._ensure(claims, create=True)
        except OSError:
            usable = False
        if not usable:
            yield
            return
        with held_claim(claims / f"{valid.algorithm}-{valid.hex}"):
            yield

    # -- adding an entry ------------------------------------------------------------------------

    def add(self, descriptor: Descriptor, source: Path, *, link: bool = False) -> bool:
        """Store the verified file ``source`` as the blob of ``descriptor``; True when stored (or
        already there). ``link`` stores a hard link to it (``source`` is in a work area of this store).

        A copy is hashed as it is written and stored only when it matches. Blobs over ``max_bytes``
        are not stored (False).
        """
        if descriptor.size > self.max_bytes:
            return False
        entry = self.path_for(descriptor.digest)
        if not self._ensure(entry.parent, create=True):
            return False
        try:
            existing = os.lstat(entry)
            if stat.S_ISREG(existing.st_mode) and existing.st_size == descriptor.size:
                os.utime(entry, follow_symlinks=False)  # already there: a use
                return True
        except FileNotFoundError:
            pass
        except OSError:
            return False
        temp = _temp_name(entry)
        try:
            if not (link and _link_private(source, temp)) and not _copy_in(source, temp, descriptor):
                return False
            os.replace(temp, entry)
        except OSError:  # FileNotFoundError: a concurrent clear() removed the temp file
            return False
        finally:
            temp.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._after_put(descriptor.size)
        return True

    # -- work areas -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def work_area(self) -> Iterator[Path]:
        """A private directory in the store, for a layout whose blobs may be hard links to entries;
        removed at the end.

        While it lives it holds a shared ``flock`` on its ``.owner`` file, taken before the area gets
        its final name (it is made as ``.new-<random>`` and renamed), so a prune or clear in any
        process removes only areas whose owner has gone: those whose lock it can take exclusively.
        """
        self._ensure(self._work, create=True)
        name = f"{os.getpid()}-{os.urandom(6).hex()}"
        fresh = self._work / f".new-{name}"
        area = self._work / name
        os.mkdir(fresh, 0o700)
        try:
            owner = open_regular(fresh / _OWNER_FILE, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                fcntl.flock(owner, fcntl.LOCK_SH)
                os.rename(fresh, area)
                yield area
            finally:
                os.close(owner)
        finally:
            shutil.rmtree(area, ignore_errors=True)
            shutil.rmtree(fresh, ignore_errors=True)

    def holds(self, path: Path | str) -> bool:
        """True when ``path`` is inside one of this store's work areas."""
        try:
            Path(os.path.realpath(path)).relative_to(os.path.realpath(self._work))
        except ValueError:
            return False
        return True

    def _remove_abandoned_work(self) -> None:
        """Remove work areas whose owner has gone (their ``.owner`` lock can be taken), and areas
        still being made (``.new-*``) once they are older than :data:`STALE_TEMP_SECONDS`."""
        try:
            areas = list(os.scandir(self._work))
        except (FileNotFoundError, NotADirectoryError):
            return
        cutoff = time.time() - STALE_TEMP_SECONDS
        for area in areas:
            if not area.is_dir(follow_symlinks=False):
                continue
            if area.name.startswith("."):
                with contextlib.suppress(OSError):
                    if area.stat(follow_symlinks=False).st_mtime < cutoff:
                        shutil.rmtree(area.path, ignore_errors=True)
                continue
            try:
                owner = open_regular(Path(area.path) / _OWNER_FILE)
            except OSError:
                continue
            try:
                fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(owner)
                continue  # its owner is alive
            try:
                shutil.rmtree(area.path, ignore_errors=True)
            finally:
                os.close(owner)


def _link_private(source: Path, temp: Path) -> bool:
    """Hard-link ``source`` (a private work-area file) at ``temp``, made 0600; False when impossible."""
    try:
        os.link(source, temp, follow_symlinks=False)
    except OSError:
        return False
    try:
        fd = open_regular(temp)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError:
        temp.unlink(missing_ok=True)
        return False
    return True


def _copy_in(source: Path, temp: Path, descriptor: Descriptor) -> bool:
    """Copy (or reflink) ``source`` into the new file ``temp`` (0600); True when the copy verifies."""
    src = open_regular(source)
    try:
        out = open_regular(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if clone_file(src, out):
                verifier = _hash_fd(out, descriptor.digest.algorithm)
            else:
                verifier = _copy(src, out, descriptor.digest.algorithm)
        finally:
            os.close(out)
    finally:
        os.close(src)
    return _matches(verifier, descriptor)


def _copy(source: int, out: int, algorithm: str) -> DigestVerifier:
    """Copy ``source`` into ``out`` from the start, hashing what is written."""
    verifier = DigestVerifier(algorithm)
    os.lseek(source, 0, os.SEEK_SET)
    while chunk := os.read(source, _CHUNK):
        view = memoryview(chunk)
        while view:
            written = os.write(out, view)
            view = view[written:]
        verifier.update(chunk)
    return verifier


class BlobCache(_Section):
    """Verified manifests and configs under ``root``, bounded to ``max_bytes``, and the layer store
    ``layers`` beside them, bounded to ``max_layer_bytes`` (see the module doc)."""

    def __init__(
        self,
        root: Path | str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES,
    ) -> None:
        root = Path(root)
        super().__init__(root, root, max_bytes)
        self._layers = LayerStore(root, max_layer_bytes)
        self._tags = TagMemo(Records(root / "tags", self._ensure))
        self._auth = AuthState(Records(root / "auth", self._ensure))

    @property
    def layers(self) -> LayerStore:
        return self._layers

    @property
    def tags(self) -> TagMemo:
        """The tag memo (``ROOT/tags``): the digest each tag named when last fetched."""
        return self._tags

    @property
    def auth(self) -> AuthState:
        """Registries' auth challenges and Bearer tokens (``ROOT/auth``), kept until they expire."""
        return self._auth

    def __repr__(self) -> str:
        return f"BlobCache({str(self.root)!r}, max_bytes={self.max_bytes}, max_layer_bytes={self._layers.max_bytes})"

    # -- get and put: no lock -------------------------------------------------------------------

    def get(self, digest: Digest) -> bytes | None:
        """The cached bytes for ``digest``, verified; None on a miss or a (discarded) corrupt entry."""
        path = self.path_for(digest)
        try:
            if not self._ensure(path.parent, create=False):
                return None
            fd = open_regular(path)
        except UnsafePathError:
            if path.parent in self._safe:
                self._discard(path, None)
                return None
            raise
        except OSError:  # FileNotFoundError above all: a miss, or evicted a moment ago
            return None
        try:
            with open(fd, "rb") as file:
                data = file.read(MAX_ENTRY_SIZE + 1)
                inode = os.fstat(file.fileno()).st_ino
        except OSError:
            return None
        if len(data) > MAX_ENTRY_SIZE or compute(data, digest.algorithm) != digest:
            self._discard(path, inode)
            return None
        with contextlib.suppress(OSError):
            os.utime(path, follow_symlinks=False)  # mtime = last use, for LRU eviction
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
            if not self._ensure(path.parent, create=True):
                return False
            existing = os.lstat(path)
            if stat.S_ISREG(existing.st_mode) and existing.st_size == len(data):
                os.utime(path, follow_symlinks=False)  # already there: a use
                return True
        except FileNotFoundError:
            pass
        except OSError:
            return False
        try:
            with write_file_atomically(path, durable=False, suffix=_TEMP_SUFFIX, mode=0o600) as out:
                out.write(data)
        except OSError:  # FileNotFoundError: a concurrent clear() removed the temp file
            return False
        with contextlib.suppress(OSError):
            self._after_put(len(data))
        return True

    # -- maintenance: both sections ---------------------------------------------------------------

    def check(self) -> None:
        """Refuse (:class:`~regpeek.errors.UnsafePathError`) a cache directory, or a section
        directory in it, that is not the user's own."""
        super().check()
        self._layers.check()

    def info(self) -> CacheInfo:
        if not self._ensure(self.root, create=False):
            return CacheInfo(self.root, 0, 0, self.max_bytes, 0, 0, self._layers.max_bytes)
        self._ready(create=False)
        self._layers._ready(create=False)
        manifests = self._scan()
        layers = self._layers._scan()
        return CacheInfo(
            self.root,
            len(manifests.entries),
            manifests.total,
            self.max_bytes,
            len(layers.entries),
            layers.total,
            self._layers.max_bytes,
        )

    def prune(self, max_bytes: int | None = None, *, older_than: float | None = None) -> PruneResult:
        """Evict least recently used entries and remove temp files older than :data:`STALE_TEMP_SECONDS`
        and abandoned work areas.

        Without ``max_bytes`` or ``older_than`` each section is brought under its own bound. With
        ``older_than`` (seconds), entries not used for that long go, whatever the section; with
        ``max_bytes``, the whole cache (manifests, configs and layers together) is then brought to at
        most ``max_bytes``, least recently used first whatever the section; 0 empties it.
        """
        bound = None if max_bytes is None else _checked(max_bytes)
        if older_than is not None and older_than < 0:
            raise UsageError("an age to prune must not be negative")
        if not self._ensure(self.root, create=False):
            return PruneResult()
        if bound is None and older_than is None:
            result = self._evict_to(self.max_bytes, stale_temps=True)
            result += self._layers._evict_to(self._layers.max_bytes, stale_temps=True)
        else:
            with self._locked(), self._layers._locked():
                manifests, layers = self._scan(), self._layers._scan()
                entries = manifests.entries + layers.entries
                victims = []
                if older_than is not None:
                    cutoff = time.time_ns() - int(older_than * 1_000_000_000)
                    victims = [entry for entry in entries if entry.mtime_ns < cutoff]
                    entries = [entry for entry in entries if entry.mtime_ns >= cutoff]
                if bound is not None:
                    victims += _lru_victims(entries, bound)[0]
                result = _remove(victims + _stale(manifests.temps) + _stale(layers.temps))
                gone = {victim.path for victim in victims}
                self._reset_estimate(sum(e.size for e in manifests.entries if e.path not in gone))
                self._layers._reset_estimate(sum(e.size for e in layers.entries if e.path not in gone))
        self._layers._remove_abandoned_work()
        if bound == 0:  # emptied: the tag memo and the auth state go too
            self._tags.records.clear()
            self._auth.records.clear()
        return result

    def clear(self) -> PruneResult:
        """Remove every entry and every temp file of both sections, abandoned work areas, the tag memo
        and the auth state (challenges and tokens) (a put
        in flight then stores nothing)."""
        if not self._ensure(self.root, create=False):
            return PruneResult()
        with self._locked(), self._layers._locked():
            result = self._clear_locked() + self._layers._clear_locked()
        self._layers._remove_abandoned_work()
        self._tags.records.clear()
        self._auth.records.clear()
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

    @property
    def layers(self) -> None:
        return None

    @property
    def tags(self) -> None:
        return None

    @property
    def auth(self) -> None:
        return None

    def get(self, digest: Digest) -> bytes | None:
        return None

    def put(self, digest: Digest, data: bytes) -> bool:
        verify_bytes(f"cache entry {digest}", data, digest)
        return False

    def info(self) -> CacheInfo:
        return CacheInfo(None, 0, 0, 0)

    def prune(self, max_bytes: int | None = None, *, older_than: float | None = None) -> PruneResult:
        if max_bytes is not None:
            _checked(max_bytes)
        return PruneResult()

    def clear(self) -> PruneResult:
        return PruneResult()
