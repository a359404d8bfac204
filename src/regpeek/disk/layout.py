"""OCI image layouts on disk: read them, and add to them without ever leaving them half-written.

A layout is a directory with ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``), ``index.json`` (an OCI
index whose entries name images with the ``org.opencontainers.image.ref.name`` annotation) and
``blobs/<algorithm>/<hex>``.

Writing goes through a :class:`Staging` area inside the layout (``.regpeek-staging-<random>``, on the same
filesystem): blobs are streamed there, verified, and only when every blob of a pull is verified are they
renamed into ``blobs/`` and ``index.json`` replaced atomically (temp file, fsync, rename) under an
exclusive lock. A failure or Ctrl-C removes the staging area, so the layout is as it was before.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from regpeek.disk.files import exclusive_lock, fsync_dir, write_file_atomically
from regpeek.errors import MalformedError, NotFoundError, SizeMismatchError, UsageError, VerificationError
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import BlobCheck, Digest, DigestVerifier
from regpeek.formats.manifest import MAX_MANIFEST_SIZE, Descriptor

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["REF_NAME", "TRANSPORTS", "ImageStore", "Layout", "LayoutReference", "NotRegularError", "Staging"]

REF_NAME = "org.opencontainers.image.ref.name"
_LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}
_STAGING_PREFIX = ".regpeek-staging-"
_CHUNK = 1024 * 1024


#: The local transports, as skopeo names them: an OCI layout directory, a tar of one, and the archive
#: ``docker save`` writes and ``docker load`` reads.
TRANSPORTS = ("oci", "oci-archive", "docker-archive")


@dataclass(frozen=True)
class LayoutReference:
    """An image stored locally, named as skopeo names it.

    ``oci:PATH[:NAME]`` is an OCI layout directory and ``oci-archive:FILE[:NAME]`` a tar of one (NAME is
    the ``org.opencontainers.image.ref.name`` of an ``index.json`` entry, or empty for the only image);
    ``docker-archive:FILE[:REPO:TAG]`` is a ``docker save`` archive (REPO:TAG one of its ``RepoTags``).
    """

    path: Path
    name: str | None = None
    transport: str = "oci"

    @classmethod
    def parse(cls, text: str) -> LayoutReference:
        """Parse ``oci:PATH[:NAME]``, ``oci-archive:FILE[:NAME]`` or ``docker-archive:FILE[:REPO:TAG]``.

        In a layout NAME may itself hold colons only after the last path separator; a docker archive's
        path ends at its first colon (as in skopeo), the rest being an image reference.
        """
        transport, sep, rest = text.partition(":")
        if not sep or transport not in TRANSPORTS:
            raise UsageError(
                f"not a local image reference: {text!r} "
                "(expected oci:PATH[:NAME], oci-archive:FILE[:NAME] or docker-archive:FILE[:REPO:TAG])"
            )
        if transport == "docker-archive":
            path, _, name = rest.partition(":")
        else:
            head, sep, tail = rest.rpartition(":")
            path, name = (head, tail) if sep and "/" not in tail and head else (rest, "")
        if not path:
            raise UsageError(f"invalid {transport} reference {text!r}: no path")
        return cls(Path(path), name or None, transport)

    @staticmethod
    def is_local(text: str) -> bool:
        """Whether ``text`` names a local image (``oci:``, ``oci-archive:``, ``docker-archive:``)."""
        return text.partition(":")[0] in TRANSPORTS and ":" in text

    def open(self) -> ImageStore:
        """The store this reference reads from: a :class:`Layout`, or an archive reader."""
        if self.transport == "oci":
            return Layout(self.path)
        from regpeek.disk.archive import DockerArchive, OciArchive

        return OciArchive(self.path) if self.transport == "oci-archive" else DockerArchive(self.path)

    @property
    def registry(self) -> None:
        """No registry: the same shape as :class:`~regpeek.formats.reference.Reference` for reports."""
        return None

    @property
    def repository(self) -> str:
        return str(self.path)

    @property
    def tag(self) -> str | None:
        return self.name

    def __str__(self) -> str:
        return f"{self.transport}:{self.path}" + (f":{self.name}" if self.name else "")


def _write_atomically(path: Path, data: bytes) -> None:
    with write_file_atomically(path) as out:
        out.write(data)
    fsync_dir(path.parent)


def read_json(source: BinaryIO, where: object) -> Any:
    """The JSON document in ``source`` (closed afterwards), refused past 4 MiB or when not JSON."""
    with source:
        data = source.read(MAX_MANIFEST_SIZE + 1)
    if len(data) > MAX_MANIFEST_SIZE:
        raise VerificationError(f"{where} is over the {MAX_MANIFEST_SIZE}-byte limit")
    try:
        return json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise MalformedError(f"{where} is not valid JSON") from None


class ImageStore:
    """Images stored on this machine, read as an OCI layout is: ``index.json`` entries named by
    ``org.opencontainers.image.ref.name``, and blobs by digest, each read through a check of its digest
    and size. :class:`Layout` is a directory; :mod:`regpeek.disk.archive` reads archives the same way."""

    kind = "OCI layout"  # for messages
    hint = "oci:PATH:NAME"  # how to name one image of several

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def _open_file(self, name: str) -> BinaryIO:
        """Open ``name`` (``index.json``, ``blobs/<algorithm>/<hex>``) for reading.

        Raises FileNotFoundError when it is missing, :class:`NotRegularError` when it is not a regular
        file; the returned file's ``size`` is :meth:`_size` of it.
        """
        raise NotImplementedError

    def _size(self, blob: BinaryIO) -> int:
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------------

    def exists(self) -> bool:
        raise NotImplementedError

    def index(self) -> dict[str, Any]:
        """``index.json`` as a document (an empty index when there is none yet)."""
        where = self.path / "index.json"
        try:
            source = self._open_file("index.json")
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
        except NotRegularError as exc:
            raise VerificationError(f"{where} is not a regular file ({exc})") from None
        document = read_json(source, where)
        if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
            raise MalformedError(f"{where} is not an OCI index")
        return document

    def entries(self) -> list[Descriptor]:
        return [
            Descriptor.from_json(entry, f"index.json entry {i}")
            for i, entry in enumerate(self.index()["manifests"])
        ]

    def find(self, name: str | None) -> Descriptor:
        """The index entry called ``name`` (or the only entry, when ``name`` is None)."""
        if not self.exists():
            raise NotFoundError(f"no {self.kind} at {self.path}", what="repository")
        entries = self.entries()
        if name is None:
            if len(entries) != 1:
                names = ", ".join(sorted(e.annotations.get(REF_NAME, "?") for e in entries)) or "none"
                raise UsageError(
                    f"{self.path} holds {len(entries)} images ({names}): name one as {self.hint}"
                )
            return entries[0]
        for entry in entries:
            if entry.annotations.get(REF_NAME) == name:
                return entry
        raise NotFoundError(f"no image named {name!r} in {self.path}", what="manifest")

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the blob is present with the right size and digest (it is hashed to be sure).

        A blob that is not a regular file (a symlink, a FIFO, a device) is not there.
        """
        try:
            blob = self.open_blob(descriptor.digest, descriptor.size)
        except (NotFoundError, VerificationError):
            return False
        verifier = DigestVerifier(descriptor.digest.algorithm)
        with blob:
            while chunk := blob.read(_CHUNK):
                verifier.update(chunk)
        return verifier.digest() == descriptor.digest

    def read_blob(self, descriptor: Descriptor, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """A small blob (manifest or config), verified against its descriptor."""
        if descriptor.size > max_size:
            raise VerificationError(f"blob {descriptor.digest} is over the {max_size}-byte limit")
        with self.open_blob(descriptor.digest, descriptor.size) as blob:
            data = blob.read(descriptor.size + 1)
        verifier = DigestVerifier(descriptor.digest.algorithm)
        verifier.update(data)
        verifier.verify(f"blob {descriptor.digest} in {self.path}", descriptor.digest, descriptor.size)
        return data

    def open_blob(self, digest: Digest, size: int | None = None) -> BinaryIO:
        """Open a blob for reading, refusing anything but a regular file of ``size`` bytes (when given).

        In a layout the file is opened with ``O_NOFOLLOW`` (a blob that is a symlink, to ``/dev/zero``
        say, is refused, not followed) and first as an ``O_PATH`` descriptor, so that a FIFO or a device
        node is refused without being opened (no blocking, no side effect).  Reading it does not verify
        it: see :meth:`open_verified`.
        """
        what = f"blob {digest} in {self.path}"
        try:
            blob = self._open_file(f"blobs/{digest.algorithm}/{digest.hex}")
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} missing from {self.path}", what="blob") from None
        except NotRegularError as exc:
            raise VerificationError(f"{what} is not a regular file ({exc})") from None
        try:
            actual = self._size(blob)
            if size is not None and actual != size:
                raise SizeMismatchError(what, size, actual)
        except BaseException:
            blob.close()
            raise
        return blob

    def open_verified(self, descriptor: Descriptor) -> BinaryIO:
        """:meth:`open_blob`, read through a check of the descriptor's digest and size at the end.

        The last read raises :class:`~regpeek.errors.DigestMismatchError` (or SizeMismatchError) when the
        content does not match, so a blob changed after an earlier check is still caught.
        """
        blob = self.open_blob(descriptor.digest, descriptor.size)
        return cast(BinaryIO, VerifyingReader(blob, descriptor, f"blob {descriptor.digest} in {self.path}"))


class Layout(ImageStore):
    """An OCI image layout directory (which need not exist yet)."""

    def blob_path(self, digest: Digest) -> Path:
        return self.path / "blobs" / digest.algorithm / digest.hex

    def exists(self) -> bool:
        return (self.path / "oci-layout").is_file() and (self.path / "index.json").is_file()

    def _open_file(self, name: str) -> BinaryIO:
        return open(_open_regular(self.path / name), "rb")

    def _size(self, blob: BinaryIO) -> int:
        return os.fstat(blob.fileno()).st_size

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        """A staging area; on a clean exit nothing happens by itself: call :meth:`Staging.commit`."""
        self.path.mkdir(parents=True, exist_ok=True)
        area = self.path / f"{_STAGING_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
        area.mkdir()
        try:
            yield Staging(self, area)
        finally:
            shutil.rmtree(area, ignore_errors=True)

    def _commit(self, staged: Mapping[Digest, Path], entries: list[dict[str, Any]]) -> None:
        with exclusive_lock(self.path / ".regpeek.lock"):
            for digest, source in staged.items():
                target = self.blob_path(digest)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            for algorithm in {digest.algorithm for digest in staged}:
                fsync_dir(self.path / "blobs" / algorithm)
            layout_file = self.path / "oci-layout"
            if not layout_file.exists():
                _write_atomically(layout_file, json.dumps(_LAYOUT_FILE).encode())
            index = self.index()
            names = {entry.get("annotations", {}).get(REF_NAME) for entry in entries} - {None}
            kept = [e for e in index["manifests"] if (e.get("annotations") or {}).get(REF_NAME) not in names]
            index["manifests"] = kept + entries
            _write_atomically(self.path / "index.json", json.dumps(index, indent=2).encode() + b"\n")


class NotRegularError(Exception):
    """A blob path holding something other than a regular file."""


_O_PATH = getattr(os, "O_PATH", 0)
_PROC_FD = Path("/proc/self/fd")


def _open_regular(path: Path) -> int:
    """A read descriptor of ``path`` if it is a regular file (last component never followed)."""
    if _O_PATH and _PROC_FD.is_dir():
        try:
            handle = os.open(path, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotRegularError("a symlink") from None
            raise
        try:
            mode = os.fstat(handle).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegularError(_kind(mode))
            return os.open(_PROC_FD / str(handle), os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(handle)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularError("a symlink") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularError(_kind(mode))
    return fd


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class VerifyingReader(io.RawIOBase):
    """Reads ``source`` while checking it (:class:`~regpeek.formats.digest.BlobCheck`): the read that
    brings in the last byte verifies the digest and size before it returns, so a consumer never gets
    the end of unverified content; a source longer than the descriptor raises as soon as it is.
    """

    def __init__(self, source: BinaryIO, descriptor: Descriptor, what: str) -> None:
        super().__init__()
        self._source = source
        self._check = BlobCheck(descriptor.digest, descriptor.known_size, what)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read(len(view))
        if data:
            self._check.add(data)
            view[: len(data)] = data
            return len(data)
        self._check.finish()
        return 0

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


class Staging:
    """Blobs being written for one pull; :meth:`commit` publishes them with their index entries."""

    def __init__(self, layout: Layout, area: Path) -> None:
        self.layout = layout
        self.area = area
        self.staged: dict[Digest, Path] = {}

    def temp_path(self, digest: Digest) -> Path:
        return self.area / f"{digest.algorithm}-{digest.hex}.part"

    def add_file(self, digest: Digest, path: Path) -> None:
        """Record a verified file for ``digest`` (written by the caller at :meth:`temp_path`)."""
        self.staged[digest] = path

    def add_bytes(self, descriptor: Descriptor, data: bytes) -> None:
        """Stage small content (manifests, configs) after checking it against its descriptor."""
        verifier = DigestVerifier(descriptor.digest.algorithm)
        verifier.update(data)
        verifier.verify(f"blob {descriptor.digest}", descriptor.digest, descriptor.size)
        path = self.temp_path(descriptor.digest)
        with open(path, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        self.staged[descriptor.digest] = path

    def commit(self, entries: list[dict[str, Any]]) -> None:
        """Move every staged blob into ``blobs/`` and add ``entries`` to ``index.json`` (same names replaced)."""
        self.layout._commit(self.staged, entries)
        self.staged.clear()


def remove_stale_staging(layout: Layout) -> None:
    """Remove staging areas left by processes that were killed (never one of a live process)."""
    if not layout.path.is_dir():
        return
    for area in layout.path.glob(f"{_STAGING_PREFIX}*"):
        pid_text = area.name[len(_STAGING_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            shutil.rmtree(area, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
