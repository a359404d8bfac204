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
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from regpeek.disk.files import exclusive_lock, fsync_dir, write_file_atomically
from regpeek.errors import MalformedError, NotFoundError, UsageError, VerificationError
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest, DigestVerifier
from regpeek.formats.manifest import MAX_MANIFEST_SIZE, Descriptor

__all__ = ["REF_NAME", "Layout", "LayoutReference", "Staging"]

REF_NAME = "org.opencontainers.image.ref.name"
_LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}
_STAGING_PREFIX = ".regpeek-staging-"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LayoutReference:
    """``oci:PATH[:NAME]``: an image in a local OCI layout, by ref name (or the only image there)."""

    path: Path
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> LayoutReference:
        """Parse ``oci:PATH[:NAME]``; a NAME may itself hold colons only after the last path separator."""
        if not text.startswith("oci:"):
            raise UsageError(f"not a layout reference: {text!r} (expected oci:PATH[:NAME])")
        rest = text[len("oci:") :]
        head, sep, tail = rest.rpartition(":")
        if sep and "/" not in tail and head:
            path, name = head, tail or None
        else:
            path, name = rest, None
        if not path:
            raise UsageError(f"invalid layout reference {text!r}: no path")
        return cls(Path(path), name)

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
        return f"oci:{self.path}" + (f":{self.name}" if self.name else "")


def _write_atomically(path: Path, data: bytes) -> None:
    with write_file_atomically(path) as out:
        out.write(data)
    fsync_dir(path.parent)


class Layout:
    """An OCI image layout directory (which need not exist yet)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    # -- reading ------------------------------------------------------------------------------

    def blob_path(self, digest: Digest) -> Path:
        return self.path / "blobs" / digest.algorithm / digest.hex

    def exists(self) -> bool:
        return (self.path / "oci-layout").is_file() and (self.path / "index.json").is_file()

    def index(self) -> dict[str, Any]:
        """``index.json`` as a document (an empty index when the layout does not exist yet)."""
        path = self.path / "index.json"
        if not path.exists():
            return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
        try:
            document = json.loads(path.read_bytes())
        except (ValueError, RecursionError):
            raise MalformedError(f"{path} is not valid JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
            raise MalformedError(f"{path} is not an OCI index")
        return document

    def entries(self) -> list[Descriptor]:
        return [
            Descriptor.from_json(entry, f"index.json entry {i}")
            for i, entry in enumerate(self.index()["manifests"])
        ]

    def find(self, name: str | None) -> Descriptor:
        """The index entry called ``name`` (or the only entry, when ``name`` is None)."""
        if not self.exists():
            raise NotFoundError(f"no OCI layout at {self.path}")
        entries = self.entries()
        if name is None:
            if len(entries) != 1:
                names = ", ".join(sorted(e.annotations.get(REF_NAME, "?") for e in entries)) or "none"
                raise UsageError(
                    f"{self.path} holds {len(entries)} images ({names}): name one as oci:PATH:NAME"
                )
            return entries[0]
        for entry in entries:
            if entry.annotations.get(REF_NAME) == name:
                return entry
        raise NotFoundError(f"no image named {name!r} in {self.path}")

    def has_blob(self, descriptor: Descriptor) -> bool:
        """True when the blob is present with the right size and digest (it is hashed to be sure)."""
        path = self.blob_path(descriptor.digest)
        try:
            if path.stat().st_size != descriptor.size:
                return False
        except FileNotFoundError:
            return False
        verifier = DigestVerifier(descriptor.digest.algorithm)
        with open(path, "rb") as blob:
            while chunk := blob.read(_CHUNK):
                verifier.update(chunk)
        return verifier.digest() == descriptor.digest

    def read_blob(self, descriptor: Descriptor, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """A small blob (manifest or config), verified against its descriptor."""
        if descriptor.size > max_size:
            raise VerificationError(f"blob {descriptor.digest} is over the {max_size}-byte limit")
        try:
            data = self.blob_path(descriptor.digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {descriptor.digest} missing from {self.path}") from None
        verifier = DigestVerifier(descriptor.digest.algorithm)
        verifier.update(data)
        verifier.verify(f"blob {descriptor.digest} in {self.path}", descriptor.digest, descriptor.size)
        return data

    def open_blob(self, digest: Digest) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} missing from {self.path}") from None

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        """A staging area; on a clean exit nothing happens by itself: call :meth:`Staging.commit`."""
        self.path.mkdir(parents=True, exist_ok=True)
        area = self.path / f"{_STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
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
