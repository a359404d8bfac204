"""What the sync and the async client share as is (not generated twice): argument types and their
normalisation, result types, and the bases of the blob streams.

``_async/`` code names :class:`AsyncReadable`; ``scripts/unasync.py`` turns that into
:class:`SyncReadable`, so the generated sync blob stream is an :class:`io.RawIOBase` (a file object
``shutil``, ``tarfile`` and ``io.BufferedReader`` take) while the async one is a plain object.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from regpeek.disk.files import open_regular
from regpeek.disk.layout import LayoutReference
from regpeek.errors import UnsafePathError
from regpeek.formats.digest import Digest
from regpeek.formats.manifest import Descriptor, ImageManifest, Index
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference, Repository
from regpeek.formats.registriesconf import Source
from regpeek.formats.schema1 import Schema1Manifest

__all__ = [
    "AnyReference",
    "AsyncChunks",
    "AsyncRead",
    "AsyncReadable",
    "BlobRef",
    "DownloadedBlob",
    "Resolved",
    "SyncChunks",
    "SyncRead",
    "SyncReadable",
    "as_platform",
    "as_reference",
    "as_repository",
    "blob_descriptor",
    "blob_origin",
    "blob_repository",
    "holds",
]

#: A registry reference, or a local image: ``oci:PATH[:NAME]`` (an OCI layout), ``oci-archive:FILE[:NAME]``,
#: ``docker-archive:FILE[:REPO:TAG]``.
AnyReference = Reference | LayoutReference
#: A blob to read: its descriptor (a :class:`~regpeek.formats.config.Layer` is one), or its digest.
BlobRef = Descriptor | Digest | str
#: The chunks of a blob on their way (the async code's name; unasync makes it :data:`SyncChunks`).
AsyncChunks = AsyncGenerator[bytes, None]
SyncChunks = Generator[bytes, None, None]

T = TypeVar("T")
#: One read from one source of a reference (registries.conf: a mirror, or the primary location): the
#: async code's name; unasync makes it :data:`SyncRead`.
AsyncRead = Callable[[Source], Awaitable[T]]
SyncRead = Callable[[Source], T]


def as_reference(ref: AnyReference | str) -> AnyReference:
    """A registry reference, or a local image (``oci:``, ``oci-archive:``, ``docker-archive:``)."""
    if isinstance(ref, (Reference, LayoutReference)):
        return ref
    return LayoutReference.parse(ref) if LayoutReference.is_local(ref) else Reference.parse(ref)


def as_repository(repo: Repository | AnyReference | str) -> Repository | LayoutReference:
    """The repository (or layout) a reference, repository or text names; text must name a repository
    (``tags("alpine:3.20")`` is a usage error, not the tags of ``alpine``)."""
    if isinstance(repo, (Repository, LayoutReference)):
        return repo
    if isinstance(repo, Reference):
        return repo.repo
    return LayoutReference.parse(repo) if LayoutReference.is_local(repo) else Repository.parse(repo)


def blob_repository(repo: Repository | AnyReference | str) -> Repository | LayoutReference:
    """Where a blob is read: as :func:`as_repository`, but text may also be a whole reference
    (``"alpine:3.20"``, ``"host/app@sha256:…"``), whose repository it is."""
    if isinstance(repo, str) and not LayoutReference.is_local(repo):
        return Reference.parse(repo).repo
    return as_repository(repo)


def blob_origin(repo: Repository | AnyReference | str) -> Repository | AnyReference:
    """What a blob is read for, keeping a :class:`~regpeek.formats.reference.Reference` whole: with a
    registries.conf, the sources of an image's blobs follow its reference (whether it is by digest,
    which source served its manifest); a repository or text is as :func:`blob_repository` gives it."""
    return repo if isinstance(repo, Reference) else blob_repository(repo)


def as_platform(platform: Platform | str | None) -> Platform | None:
    return Platform.parse(platform) if isinstance(platform, str) else platform


def blob_descriptor(blob: BlobRef) -> Descriptor:
    """A descriptor for ``blob``; a bare digest gets size -1 (unknown: only the digest is checked)."""
    if isinstance(blob, Descriptor):
        return blob
    digest = blob if isinstance(blob, Digest) else Digest.parse(blob)
    return Descriptor(media_type="", digest=digest, size=-1)


@dataclass(frozen=True)
class Resolved:
    """An image manifest reached from a reference, with the index it was chosen from (if any)."""

    reference: AnyReference
    manifest: ImageManifest | Schema1Manifest
    index: Index | None = None
    entry: Descriptor | None = None


@dataclass(frozen=True)
class DownloadedBlob:
    """What ``download_blob`` left at ``path``: a verified blob of ``size`` bytes with ``digest``.

    ``downloaded`` is False when ``path`` already held it (hashed to be sure); ``resumed`` counts the
    ``Range`` requests that picked a dropped download up where it stopped.
    """

    path: Path
    digest: Digest
    size: int
    downloaded: bool = True
    resumed: int = 0


def holds(path: Path, descriptor: Descriptor) -> bool:
    """Whether ``path`` is a regular file (not a link) holding the blob: size (when known) and digest."""
    try:
        fd = open_regular(path)
    except (OSError, UnsafePathError):
        return False
    with open(fd, "rb") as existing:
        if descriptor.size >= 0 and os.fstat(fd).st_size != descriptor.size:
            return False
        verifier = descriptor.digest.hasher()
        while chunk := existing.read(1024 * 1024):
            verifier.update(chunk)
    return verifier.digest() == descriptor.digest


class AsyncReadable:
    """The base of the async blob stream (the sync one is a :class:`SyncReadable`)."""

    async def aclose(self) -> None:
        """Nothing to release here; subclasses close their source and call this."""


class SyncReadable(io.RawIOBase):
    """The base of the sync blob stream: a readable, unseekable raw file object."""

    def readable(self) -> bool:
        return True
