"""Copy images between registries, OCI layouts and archives: every byte verified, nothing half-written.

Locations are named as skopeo names them: a registry reference (``docker://`` optional),
``oci:PATH[:NAME]``, ``oci-archive:FILE[:NAME]`` or ``docker-archive:FILE[:REPO:TAG]``
(:func:`parse_location`). Without a platform, a multi-platform image is copied whole (the index and
every child, attestations included, byte for byte, so the index digest is kept); with one, that
platform's image manifest is copied (its digest kept).

**To a registry** (any source), the engine here:

1. plans: the manifests, children before their index (:func:`_plan`); the blobs, each once however
   many platforms share it; with ``with_referrers``, the artifacts whose ``subject`` is one of the
   copied manifests (referrers API, or the ``sha256-<hex>`` tag), recursively;
2. copies the blobs ``jobs`` at a time (threads over the sync clients, as :mod:`regpeek.pull`): a
   ``HEAD`` first (present: nothing to send); on the same registry a cross-repository mount
   (``POST ?mount=&from=``), falling back to an upload when the registry opens a session instead;
   otherwise an upload streamed from the source (another registry's response body, or a local file)
   without touching the disk: one ``PUT`` for a blob up to ``chunk_size``, else ``PATCH`` chunks of
   ``max(chunk_size, OCI-Chunk-Min-Length)`` bytes with ``Content-Range`` and a last ``PUT``. The bytes
   are hashed as they pass and the blob's digest checked *before its last byte is sent*, so a
   corrupted source never completes an upload (and the registry checks ``?digest=`` too). A
   connection that fails mid-upload is resumed: ``GET`` on the session says how much the registry
   holds (``Range``), the source is read again from the last hash state at or below that offset,
   and the upload goes on from there; when the registry has lost the session (distribution cancels
   one that received a partial chunk) the blob starts over in a new one. A failed upload is
   cancelled (``DELETE``);
3. puts the manifests, each byte as read (with the source's media type as ``Content-Type``),
   children before their index, a ``HEAD`` first; referrers, and the fallback tag index when the
   registry does not answer ``OCI-Subject``; the tag last, so a copy that fails never leaves a tag
   pointing at an incomplete image. Every ``Docker-Content-Digest`` is checked against what was sent.

A second copy of the same image sends ``HEAD`` requests only.

**To a layout or an archive** the source is pulled (:func:`regpeek.pull.pull`: concurrent, verified,
resumable, the layer cache): into ``oci:PATH`` directly, or into a private temporary layout beside the
archive, which is then written (:mod:`regpeek.disk.archive`) under a temporary name and renamed. A
schema1 image is converted on the way, as ``pull`` does (its digest changes, and the result says so);
to a registry it goes as it is.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, overload

from regpeek.disk.layout import REF_NAME, Layout, LayoutReference
from regpeek.errors import (
    AuthError,
    LocalError,
    NotFoundError,
    RegistryUnavailableError,
    RegpeekError,
    SizeMismatchError,
    UnsupportedError,
    UsageError,
)
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest, DigestVerifier
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import Descriptor, ImageManifest, Index, Manifest, parse
from regpeek.formats.platform import Platform, only
from regpeek.formats.reference import Reference, Repository
from regpeek.formats.schema1 import Schema1Manifest
from regpeek.network._sync import push
from regpeek.network._sync.registry import Client
from regpeek.network.transport import Attempts, retry_delay
from regpeek.pull import PullProgress, PullResult, Stopped, pull, run_jobs

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from regpeek.network._async.registry import AsyncClient

__all__ = ["CopiedBlob", "CopiedManifest", "CopyOptions", "CopyResult", "Location", "copy", "parse_location"]

log = logging.getLogger("regpeek.copy")

#: Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_READ_AHEAD = 4  # pieces of about _READ_CHUNK bytes read from a registry ahead of the upload

Location = Reference | LayoutReference


def parse_location(text: str | Location) -> Location:
    """A registry reference (``docker://`` optional) or a local one (``oci:``, ``oci-archive:``,
    ``docker-archive:``); invalid ones raise :class:`~regpeek.errors.UsageError`."""
    if isinstance(text, (Reference, LayoutReference)):
        return text
    return LayoutReference.parse(text) if LayoutReference.is_local(text) else Reference.parse(text)


def _tag_given(text: str) -> bool:
    """Whether a registry reference names a tag or a digest (``host/repo`` alone does not)."""
    bare = text.removeprefix("docker://")
    return "@" in bare or ":" in bare.rpartition("/")[2]


# -- results ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CopiedBlob:
    """One blob of the copy. ``action``: ``copied`` (uploaded, or written to a layout or archive),
    ``mounted`` (from another repository of the same registry), ``present`` (the destination had it),
    ``skipped`` (a non-distributable layer left out). In a dry run, what would happen."""

    digest: Digest
    size: int
    media_type: str
    action: str
    resumed: int = 0  # uploads resumed from the registry's Range after a failure
    restarted: int = 0  # uploads started over in a new session

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": str(self.digest),
            "size": self.size,
            "media_type": self.media_type,
            "action": self.action,
            "resumed": self.resumed,
            "restarted": self.restarted,
        }


@dataclass(frozen=True)
class CopiedManifest:
    """One manifest put to a registry (``pushed``), or already there (``present``), under ``target``
    (a tag or its digest)."""

    digest: Digest
    media_type: str
    size: int
    action: str
    target: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": str(self.digest),
            "media_type": self.media_type,
            "size": self.size,
            "action": self.action,
            "target": self.target,
        }


@dataclass
class CopyResult(JsonResult):
    """What :func:`copy` did (or, with ``dry_run``, would do); ``to_dict()`` is the ``--json`` object."""

    source: str
    destination: str
    digest: Digest  # what the destination names: the index, or the platform's image manifest
    source_digest: Digest  # what the source reference named
    media_type: str
    platforms: list[str]
    blobs: list[CopiedBlob] = field(default_factory=list)
    manifests: list[CopiedManifest] = field(default_factory=list)
    referrers: list[Digest] = field(default_factory=list)
    tag: str | None = None
    converted_from_schema1: bool = False
    dry_run: bool = False
    seconds: float = 0.0

    def count(self, action: str) -> int:
        return sum(1 for blob in self.blobs if blob.action == action)

    @property
    def copied_bytes(self) -> int:
        return sum(blob.size for blob in self.blobs if blob.action == "copied")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "digest": str(self.digest),
            "source_digest": str(self.source_digest),
            "media_type": self.media_type,
            "platforms": self.platforms,
            "tag": self.tag,
            "converted_from_schema1": self.converted_from_schema1,
            "dry_run": self.dry_run,
            "blobs": [blob.to_dict() for blob in self.blobs],
            "manifests": [manifest.to_dict() for manifest in self.manifests],
            "referrers": [str(digest) for digest in self.referrers],
            "copied": self.count("copied"),
            "mounted": self.count("mounted"),
            "present": self.count("present"),
            "skipped": self.count("skipped"),
            "copied_bytes": self.copied_bytes,
            "seconds": round(self.seconds, 3),
        }


# -- planning --------------------------------------------------------------------------------------
@dataclass
class _Node:
    """A manifest to copy: its bytes as read, and for a referrer the digest it refers to."""

    manifest: Manifest
    media_type: str
    subject: Digest | None = None
    listed: Descriptor | None = None  # a referrer's entry in its subject's referrers list

    @property
    def digest(self) -> Digest:
        return self.manifest.digest

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.manifest.digest, len(self.manifest.raw))


@dataclass
class _Plan:
    top: _Node
    source_digest: Digest
    nodes: list[_Node] = field(default_factory=list)  # children before their index, the top last
    referrers: list[_Node] = field(default_factory=list)  # each after the manifests it refers to
    blobs: dict[Digest, Descriptor] = field(default_factory=dict)
    platforms: list[str] = field(default_factory=list)


def _plan(client: Client, source: Location, platform: Platform | None, with_referrers: bool) -> _Plan:
    top = client.fetch_manifest(source)
    node = _Node(top, top.media_type)
    if platform is not None:
        if isinstance(top, Index):
            entry = top.select(only(platform))
            child = client.fetch_manifest(source, descriptor=entry)
            if isinstance(child, Index):
                raise UnsupportedError(f"index {source} points at another index for {entry.platform}")
            node = _Node(child, child.media_type)
        else:
            client.config(source, platform)  # a single-platform image must match (exit 3 otherwise)
    plan = _Plan(node, top.digest)
    seen: set[Digest] = set()
    _walk(client, source, node, plan, plan.nodes, seen, count_platforms=True)
    if isinstance(node.manifest, ImageManifest) and not plan.platforms:
        plan.platforms.append(platform.describe() if platform is not None else "")
    if with_referrers:
        if not isinstance(source, Reference):
            raise UsageError("--with-referrers needs a registry source (referrers live in registries)")
        pending = [n.digest for n in plan.nodes]
        while pending:
            subject = pending.pop(0)
            for entry in client.referrers(source.with_digest(subject)).manifests:
                if entry.digest in seen:
                    continue
                referrer = client.fetch_manifest(source, descriptor=entry)
                found = _Node(referrer, referrer.media_type, subject, entry)
                before = len(plan.referrers)
                _walk(client, source, found, plan, plan.referrers, seen, count_platforms=False)
                pending += [n.digest for n in plan.referrers[before:]]
    return plan


def _walk(
    client: Client,
    source: Location,
    node: _Node,
    plan: _Plan,
    into: list[_Node],
    seen: set[Digest],
    *,
    count_platforms: bool,
) -> None:
    """Add ``node``'s blobs and (first) its children to the plan; ``node`` goes into ``into`` last."""
    if node.digest in seen:
        return
    seen.add(node.digest)
    manifest = node.manifest
    if isinstance(manifest, Index):
        for entry in manifest.manifests:
            child = client.fetch_manifest(source, descriptor=entry)
            _walk(client, source, _Node(child, child.media_type), plan, into, seen, count_platforms=False)
            if count_platforms and entry.platform is not None and not entry.is_attestation:
                plan.platforms.append(entry.platform.describe())
    elif isinstance(manifest, ImageManifest):
        for blob in (manifest.config, *manifest.layers):
            plan.blobs.setdefault(blob.digest, blob)
    else:
        if not isinstance(source, Reference):
            raise UnsupportedError(f"{source} holds a schema1 manifest, which a local image cannot")
        for layer in manifest.layers:
            if layer.blob_sum not in plan.blobs:
                size = client.blob_size(source, layer.blob_sum)
                plan.blobs[layer.blob_sum] = Descriptor(mt.DOCKER_LAYER, layer.blob_sum, size)
    into.append(node)


# -- reading blobs from the source -----------------------------------------------------------------
class _SourceFailed(Exception):
    """A failure of the source while its bytes were going up: not the destination's to resume."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Source:
    """Reads the blobs of the source, from any offset; the bytes are hashed by the caller."""

    def __init__(self, client: Client, location: Location, allow_nondistributable: bool) -> None:
        self.client = client
        self.location = location
        self.store = location.open() if isinstance(location, LayoutReference) else None
        self.allow_nondistributable = allow_nondistributable

    @property
    def repository(self) -> Repository | None:
        return self.location.repo if isinstance(self.location, Reference) else None

    def chunks(self, descriptor: Descriptor, start: int) -> Iterator[bytes]:
        if self.store is not None:
            with self.store.open_blob(descriptor.digest, descriptor.size) as blob:
                blob.seek(start)
                while chunk := blob.read(_READ_CHUNK):
                    yield chunk
            return
        assert isinstance(self.location, Reference)
        transfer = self.client._blob_transfer(  # the whole reference: registries.conf sources apply
            self.location, descriptor, use_urls=self.allow_nondistributable
        )
        yield from transfer.chunks(start)


class _ReadAhead:
    """The source's chunks, read ahead by a thread of its own and handed on joined into pieces of about
    ``_READ_CHUNK`` bytes, at most ``depth`` pieces in advance: receiving from the source and sending to
    the destination overlap (the GIL is released in both), and the upload makes one request-body write
    per piece rather than per network read. A failure of the source comes out where its bytes would
    have."""

    def __init__(self, chunks: Iterator[bytes], depth: int) -> None:
        self._chunks = chunks
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(depth)
        self._closed = threading.Event()
        self._done = False
        threading.Thread(target=self._read, name="regpeek-read", daemon=True).start()

    def _read(self) -> None:
        item: bytes | BaseException | None = None
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in self._chunks:
                parts.append(chunk)
                size += len(chunk)
                if size >= _READ_CHUNK:
                    if not self._put(b"".join(parts)):
                        return
                    parts, size = [], 0
            if parts and not self._put(b"".join(parts)):
                return
            item = None
        except BaseException as error:  # handed to the reader after what arrived before it
            if parts and not self._put(b"".join(parts)):
                return
            item = error
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        self._put(item)

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._closed.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is None or isinstance(item, BaseException):
            self._done = True
            if item is None:
                raise StopIteration
            raise item
        return item

    def close(self) -> None:
        """Stop reading (the thread ends at its next chunk and closes the source)."""
        self._closed.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


class _Feed:
    """One blob's bytes from the source, from an offset whose hash state is known: hashed as they pass,
    the blob verified *before* its last piece is handed on. Hash states are kept at each chunk start,
    so an upload can resume from whatever offset the registry reports."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        descriptor: Descriptor,
        verifier: DigestVerifier,
        snapshots: dict[int, DigestVerifier],
        stop: threading.Event,
        advanced: Callable[[int], None] | None,  # called with the position after each piece
        what: str,
    ) -> None:
        self._chunks = chunks
        self._pending = b""
        self.descriptor = descriptor
        self.verifier = verifier
        self.snapshots = snapshots
        self.stop = stop
        self.advanced = advanced
        self.what = what

    @property
    def position(self) -> int:
        return self.verifier.size

    def _piece(self, most: int) -> bytes:
        if not self._pending:
            try:
                self._pending = next(self._chunks, b"")
            except RegpeekError as error:
                raise _SourceFailed(error) from error
            except OSError as error:  # a local source that cannot be read
                raise _SourceFailed(
                    LocalError(f"cannot read {self.what}: {error.strerror or error}")
                ) from error
            if not self._pending:
                raise _SourceFailed(SizeMismatchError(self.what, self.descriptor.size, self.position))
        piece, self._pending = self._pending[:most], self._pending[most:]
        self.verifier.update(piece)
        if self.position == self.descriptor.size:
            try:
                self.verifier.verify(self.what, self.descriptor.digest, self.descriptor.size)
            except RegpeekError as error:
                raise _SourceFailed(error) from error
        return piece

    def skip(self, count: int) -> None:
        """Hash and drop ``count`` bytes (the registry holds them already)."""
        while count > 0:
            count -= len(self._piece(count))

    def take(self, count: int) -> Iterator[bytes]:
        """The next ``count`` bytes, as a request body."""
        self.snapshots.setdefault(self.position, self.verifier.copy())
        while count > 0:
            if self.stop.is_set():
                raise Stopped
            piece = self._piece(min(count, _READ_CHUNK))
            count -= len(piece)
            if self.advanced is not None:
                self.advanced(self.position)
            yield piece

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


# -- writing to a registry -------------------------------------------------------------------------
class _RegistryCopy:
    """Copies a planned image into a registry repository (see the module doc)."""

    def __init__(
        self,
        source: _Source,
        client: Client,
        destination: Reference,
        *,
        jobs: int,
        chunk_size: int,
        dry_run: bool,
        progress: PullProgress | None,
    ) -> None:
        self.source = source
        self.client = client
        self.repo = destination.repo
        self.jobs = jobs
        self.chunk_size = chunk_size
        self.dry_run = dry_run
        self.progress = progress
        self.stop = threading.Event()
        source_repo = source.repository
        same_registry = source_repo is not None and source_repo.api_host == self.repo.api_host
        self.mount_from = source_repo if same_registry and source_repo != self.repo else None
        client.auth.allow_push(self.repo.api_host, self.repo.name)

    # -- blobs ------------------------------------------------------------------------------------
    def blobs(self, descriptors: list[Descriptor]) -> list[CopiedBlob]:
        ordered = sorted(descriptors, key=lambda d: d.size, reverse=True)  # the longest start first
        done = run_jobs([functools.partial(self._blob, d) for d in ordered], self.jobs, self.stop)
        by_digest = {blob.digest: blob for blob in done}
        return [by_digest[d.digest] for d in descriptors]

    def _blob(self, descriptor: Descriptor) -> CopiedBlob:
        if self.stop.is_set():
            raise Stopped
        digest = descriptor.digest

        def result(action: str, resumed: int = 0, restarted: int = 0) -> CopiedBlob:
            if self.progress is not None:
                self.progress.blob_finished(digest, downloaded=action == "copied")
            return CopiedBlob(digest, descriptor.size, descriptor.media_type, action, resumed, restarted)

        if descriptor.urls and not self.source.allow_nondistributable:
            return result("skipped")
        if push.blob_exists(self.client, self.repo, digest):
            return result("present")
        if self.dry_run:
            return result("mounted" if self.mount_from is not None else "copied")
        session: push.Upload | None
        if self.mount_from is not None:
            try:
                session = push.start_upload(self.client, self.repo, mount=digest, mount_from=self.mount_from)
            except AuthError:  # no pull on the other repository with these credentials: upload instead
                session = push.start_upload(self.client, self.repo)
            if session is None:
                return result("mounted")
        else:
            session = push.start_upload(self.client, self.repo)
        assert session is not None
        resumed, restarted = self._upload(descriptor, session)
        return result("copied", resumed, restarted)

    def _upload(self, descriptor: Descriptor, session: push.Upload) -> tuple[int, int]:
        """Send one blob through ``session``, resuming or restarting after failures (see module doc)."""
        digest, size = descriptor.digest, descriptor.size
        what = f"blob {self.source.location}@{digest}" if self.source.store is None else f"blob {digest}"
        if self.progress is not None:
            self.progress.blob_started(digest, size, descriptor.media_type)
        shown = 0  # a resumed upload sends some bytes again: progress shows each byte once

        def advanced(position: int) -> None:
            nonlocal shown
            if self.progress is not None and position > shown:
                self.progress.blob_advanced(digest, position - shown)
                shown = position

        snapshots = {0: DigestVerifier(digest.algorithm)}
        if size == 0:  # nothing will pass through a feed: check the digest of no bytes here
            try:
                snapshots[0].verify(what, digest, 0)
            except RegpeekError:
                self._cancel(session)
                raise
        attempts = Attempts(self.client.options.retries)
        resumed = restarted = 0
        while True:
            base = max(offset for offset in snapshots if offset <= session.offset)
            chunks = self.source.chunks(descriptor, base)
            feed = _Feed(
                _ReadAhead(chunks, _READ_AHEAD) if self.source.store is None else chunks,
                descriptor,
                snapshots[base].copy(),
                snapshots,
                self.stop,
                advanced,
                what,
            )
            try:
                feed.skip(session.offset - base)
                chunk = max(self.chunk_size, session.min_chunk)
                while size - session.offset > chunk:
                    session = push.send_chunk(self.client, session, feed.take(chunk), chunk)
                last = size - session.offset
                push.finish_upload(self.client, session, digest, feed.take(last), last)
                return resumed, restarted
            except RegistryUnavailableError as error:
                attempts.start()
                if attempts.last:
                    self._cancel(session)
                    raise
                time.sleep(retry_delay(self.client.options, attempts.made, None))
                try:
                    recovered, lost = self._recover(session, digest, size)
                except BaseException:
                    self._cancel(session)
                    raise
                if recovered is None:
                    return resumed, restarted  # the last request had arrived after all
                session = recovered
                restarted, resumed = (restarted + 1, resumed) if lost else (restarted, resumed + 1)
                log.debug(
                    "upload of %s failed (%s): %s at %d",
                    digest,
                    error,
                    "restarting" if lost else "resuming",
                    session.offset,
                )
            except _SourceFailed as failure:
                self._cancel(session)
                raise failure.error from None
            except BaseException:
                self._cancel(session)
                raise
            finally:
                feed.close()

    def _recover(self, session: push.Upload, digest: Digest, size: int) -> tuple[push.Upload | None, bool]:
        """After a failed request: the session as the registry has it (True when it was lost and a
        new one opened instead), or None when the blob turns out to be complete."""
        try:
            status = push.upload_status(self.client, session)
            if 0 <= status.offset <= size:
                return status, False
        except (NotFoundError, UsageError):
            pass  # the registry dropped the session (distribution does, after a partial chunk)
        if push.blob_exists(self.client, self.repo, digest):
            return None, False
        return push.start_upload(self.client, self.repo), True

    def _cancel(self, session: push.Upload) -> None:
        with contextlib.suppress(RegpeekError):
            push.cancel_upload(self.client, session)

    # -- manifests --------------------------------------------------------------------------------
    def manifest(self, node: _Node, target: str) -> CopiedManifest:
        raw, digest = node.manifest.raw, node.digest
        present = push.manifest_digest(self.client, self.repo, target) == digest
        action = "present" if present else "pushed"
        if not present and not self.dry_run:
            try:
                push.put_manifest(self.client, self.repo, target, raw, node.media_type, digest)
            except (UsageError, UnsupportedError, RegistryUnavailableError) as error:
                if not isinstance(node.manifest, Schema1Manifest):
                    raise
                raise UnsupportedError(
                    f"{self.repo.registry} does not take schema1 manifests ({error}): copy the image to "
                    "an oci: layout (it is converted, as pull does) and copy that"
                ) from None
        return CopiedManifest(digest, node.media_type, len(raw), action, target)

    def referrer(self, node: _Node) -> CopiedManifest:
        """Put a referrer by digest; where the registry has no referrers API, add it to the index under
        the subject's fallback tag ``<algorithm>-<hex>``."""
        raw, digest = node.manifest.raw, node.digest
        target = str(digest)
        if push.manifest_digest(self.client, self.repo, target) == digest:
            action, subject_header = "present", None
        else:
            action = "pushed"
            subject_header = None
            if not self.dry_run:
                subject_header = push.put_manifest(
                    self.client, self.repo, target, raw, node.media_type, digest
                )
        if node.subject is not None and not self.dry_run and not subject_header:
            self._add_to_fallback(node)
        return CopiedManifest(digest, node.media_type, len(raw), action, target)

    def _add_to_fallback(self, node: _Node) -> None:
        assert node.subject is not None
        tag = f"{node.subject.algorithm}-{node.subject.hex}"
        where = Reference(self.repo.registry, self.repo.name, tag)
        try:
            current = self.client.fetch_manifest(where)
        except NotFoundError:
            entries: list[dict[str, Any]] = []
        else:
            if not isinstance(current, Index):
                raise UnsupportedError(f"{where} holds something other than a referrers index")
            entries = [entry.to_oci() for entry in current.manifests]
        if any(entry["digest"] == str(node.digest) for entry in entries):
            return
        listed = node.listed or node.descriptor
        entries.append({**listed.to_oci(), "mediaType": node.media_type})
        raw = json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}, separators=(",", ":")
        ).encode()
        index = parse(raw, mt.OCI_INDEX)
        push.put_manifest(self.client, self.repo, tag, raw, mt.OCI_INDEX, index.digest)


# -- the operation ---------------------------------------------------------------------------------
class CopyOptions(TypedDict, total=False):
    """The keyword arguments of :func:`copy` besides the clients."""

    platform: Platform | str | None
    all_platforms: bool
    jobs: int
    with_referrers: bool
    allow_nondistributable: bool
    dry_run: bool
    progress: PullProgress | None
    chunk_size: int


@overload
def copy(
    client: Client,
    source: str | Location,
    destination: str | Location,
    *,
    dest_client: Client | None = None,
    **options: Unpack[CopyOptions],
) -> CopyResult: ...


@overload
def copy(
    client: AsyncClient,
    source: str | Location,
    destination: str | Location,
    *,
    dest_client: AsyncClient | None = None,
    **options: Unpack[CopyOptions],
) -> Coroutine[Any, Any, CopyResult]: ...


def copy(
    client: Client | AsyncClient,
    source: str | Location,
    destination: str | Location,
    *,
    dest_client: Client | AsyncClient | None = None,
    **options: Unpack[CopyOptions],
) -> CopyResult | Coroutine[Any, Any, CopyResult]:
    """Copy ``source`` to ``destination`` (see the module doc); ``client`` reads the source, and
    writes the destination too unless ``dest_client`` is given (other credentials, say).

    Options: ``platform`` (copy that platform's image manifest) or ``all_platforms`` (the default:
    the whole index); ``jobs`` blobs at once (default 4); ``with_referrers``; ``allow_nondistributable``;
    ``dry_run`` (only ``HEAD`` requests to the destination: what would be copied, mounted or is
    present); ``progress`` (a :class:`~regpeek.pull.PullProgress`); ``chunk_size`` (default 32 MiB).

    With a :class:`regpeek.Client` this returns a :class:`CopyResult`. With an
    :class:`regpeek.AsyncClient` it returns a coroutine: the same engine runs in a worker thread on sync
    twins of the async clients (:func:`regpeek.aio.sync_twin`: their settings, credentials, tokens and
    cache), as :mod:`regpeek.aio` runs ``pull`` (blobs stream through httpx's sync stack at about half
    the CPU of its async one), so the event loop stays free.
    """
    if isinstance(client, Client):
        if dest_client is not None and not isinstance(dest_client, Client):
            raise TypeError("dest_client must be a Client like client")
        return _copy(client, source, destination, dest_client=dest_client, **options)
    if dest_client is not None and isinstance(dest_client, Client):
        raise TypeError("dest_client must be an AsyncClient like client")
    return _copy_async(client, source, destination, dest_client, options)


async def _copy_async(
    client: AsyncClient,
    source: str | Location,
    destination: str | Location,
    dest_client: AsyncClient | None,
    options: CopyOptions,
) -> CopyResult:
    import asyncio  # only for an AsyncClient: the CLI never loads it

    from regpeek.aio import sync_twin

    readers = sync_twin(client)
    writers = sync_twin(dest_client) if dest_client is not None else None
    try:
        return await asyncio.to_thread(_copy, readers, source, destination, dest_client=writers, **options)
    finally:
        readers.close()
        if writers is not None:
            writers.close()


def _copy(
    client: Client,
    source: str | Location,
    destination: str | Location,
    *,
    dest_client: Client | None = None,
    platform: Platform | str | None = None,
    all_platforms: bool = False,
    jobs: int = 4,
    with_referrers: bool = False,
    allow_nondistributable: bool = False,
    dry_run: bool = False,
    progress: PullProgress | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> CopyResult:
    started = time.monotonic()
    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    if chunk_size < 1:
        raise UsageError("chunk size must be at least 1 byte")
    if all_platforms and platform is not None:
        raise UsageError("give --platform or --all-platforms, not both")
    src, dst = parse_location(source), parse_location(destination)
    wanted = Platform.parse(platform) if isinstance(platform, str) else platform
    if isinstance(dst, Reference):
        tag_given = _tag_given(destination) if isinstance(destination, str) else True
        result = _to_registry(
            client,
            dest_client or client,
            src,
            dst,
            tag_given=tag_given,
            platform=wanted,
            jobs=jobs,
            with_referrers=with_referrers,
            allow_nondistributable=allow_nondistributable,
            dry_run=dry_run,
            progress=progress,
            chunk_size=chunk_size,
        )
    else:
        if with_referrers:
            raise UsageError("--with-referrers copies into registries only")
        result = _to_local(
            client,
            src,
            dst,
            platform=wanted,
            jobs=jobs,
            allow_nondistributable=allow_nondistributable,
            dry_run=dry_run,
            progress=progress,
        )
    result.seconds = time.monotonic() - started
    return result


def _source_tag(source: Location) -> str | None:
    """The tag a destination without one takes: the source's tag (a local image's name when it is a
    tag, or the tag of the reference it is named after)."""
    if isinstance(source, Reference):
        return source.tag
    name = _stored_name(source)
    if name is None:
        return None
    with contextlib.suppress(UsageError):
        return Reference.parse(f"x:{name}").tag
    with contextlib.suppress(UsageError):
        return Reference.parse(name).tag
    return None


def _stored_name(source: LayoutReference) -> str | None:
    """A local image's name: the one the reference gives, else that of the only image stored."""
    if source.name is not None:
        return source.name
    name: str | None = source.open().find(None).annotations.get(REF_NAME)
    return name


def _to_registry(
    client: Client,
    writer: Client,
    src: Location,
    dst: Reference,
    *,
    tag_given: bool,
    platform: Platform | None,
    jobs: int,
    with_referrers: bool,
    allow_nondistributable: bool,
    dry_run: bool,
    progress: PullProgress | None,
    chunk_size: int,
) -> CopyResult:
    plan = _plan(client, src, platform, with_referrers)
    tag = dst.tag if tag_given else _source_tag(src)
    if dst.digest is not None:
        if dst.digest != plan.top.digest:
            raise UsageError(f"{dst} names {dst.digest}, but the source is {plan.top.digest}")
        target, tag = str(dst.digest), None
    elif tag is None:
        raise UsageError(f"{src} is named by digest only: give the destination a tag ({dst.repo}:TAG)")
    else:
        target = tag
    engine = _RegistryCopy(
        _Source(client, src, allow_nondistributable),
        writer,
        dst,
        jobs=jobs,
        chunk_size=chunk_size,
        dry_run=dry_run,
        progress=progress,
    )
    blobs = engine.blobs(list(plan.blobs.values()))
    manifests = [engine.manifest(node, str(node.digest)) for node in plan.nodes[:-1]]
    if plan.referrers:  # the subject first, then what refers to it, the tag still last
        manifests.append(engine.manifest(plan.top, str(plan.top.digest)))
        manifests += [engine.referrer(node) for node in plan.referrers]
    manifests.append(engine.manifest(plan.top, target))
    return CopyResult(
        source=str(src),
        destination=str(Reference(dst.registry, dst.repository, tag, dst.digest)),
        digest=plan.top.digest,
        source_digest=plan.source_digest,
        media_type=plan.top.media_type,
        platforms=[p for p in plan.platforms if p],
        blobs=blobs,
        manifests=manifests,
        referrers=[node.digest for node in plan.referrers if node.subject is not None],
        tag=tag,
        dry_run=dry_run,
    )


def _to_local(
    client: Client,
    src: Location,
    dst: LayoutReference,
    *,
    platform: Platform | None,
    jobs: int,
    allow_nondistributable: bool,
    dry_run: bool,
    progress: PullProgress | None,
) -> CopyResult:
    if dst.transport == "docker-archive":
        platform = platform or client.default_platform  # one platform, the host's by default
    name = dst.name or _local_name(src, dst.transport)
    if dry_run:
        return _local_dry_run(client, src, dst, platform, allow_nondistributable)
    common: dict[str, Any] = {
        "platform": platform,
        "all_platforms": platform is None,
        "jobs": jobs,
        "allow_nondistributable": allow_nondistributable,
        "progress": progress,
    }
    if dst.transport == "oci":
        pulled = pull(client, src, dst.path, ref_name=name, **common)
        return _from_pull(pulled, src, dst, pulled.digest)
    from regpeek.disk.archive import DockerArchive, write_docker_archive, write_oci_archive

    with _work_layout(dst.path) as work:
        layout = Layout(work)
        if dst.transport == "oci-archive":
            pulled = pull(client, src, work, ref_name=name, **common)
            write_oci_archive(layout, dst.path)
            return _from_pull(pulled, src, dst, pulled.digest)
        pulled = pull(client, src, work, ref_name="image", **common)
        image = parse(layout.read_blob(layout.find("image")))
        if not isinstance(image, ImageManifest):
            raise UnsupportedError(f"{src} is not an image manifest for {platform}")
        tags = [name] if name and _is_reference(name) else []
        write_docker_archive(layout, image, [str(Reference.parse(t)) for t in tags], dst.path)
        archived = DockerArchive(dst.path).find(tags[0] if tags else None)
        return _from_pull(pulled, src, dst, archived.digest)


def _is_reference(text: str) -> bool:
    try:
        Reference.parse(text)
    except UsageError:
        return False
    return "@" not in text


def _local_name(source: Location, transport: str) -> str | None:
    """The name an image gets in a layout or archive that names none: as ``pull`` names it (the
    source's tag, or its whole reference when it has none), and in a docker archive the whole
    ``REPO:TAG`` (its ``RepoTags``), none for a source without a tag."""
    if isinstance(source, LayoutReference):
        return _stored_name(source)
    if transport == "docker-archive":
        return str(source.with_digest(None)) if source.tag else None
    return source.tag or str(source)


def _from_pull(pulled: PullResult, src: Location, dst: LayoutReference, digest: Digest) -> CopyResult:
    actions = []
    for blob in pulled.blobs:
        action = "skipped" if blob.skipped else "copied" if blob.downloaded or blob.cached else "present"
        actions.append(CopiedBlob(blob.digest, blob.size, blob.media_type, action, blob.resumed))
    name = pulled.ref_name if dst.transport != "docker-archive" else dst.name
    return CopyResult(
        source=str(src),
        destination=str(LayoutReference(dst.path, name, dst.transport)),
        digest=digest,
        source_digest=pulled.source_digest or pulled.digest,
        media_type=mt.DOCKER_MANIFEST if dst.transport == "docker-archive" else pulled.media_type,
        platforms=pulled.platforms,
        blobs=actions,
        tag=name,
        converted_from_schema1=pulled.converted_from_schema1,
    )


def _local_dry_run(
    client: Client,
    src: Location,
    dst: LayoutReference,
    platform: Platform | None,
    allow_nondistributable: bool,
) -> CopyResult:
    plan = _plan(client, src, platform, False)
    layout = Layout(dst.path) if dst.transport == "oci" else None
    blobs = []
    for descriptor in plan.blobs.values():
        if descriptor.urls and not allow_nondistributable:
            action = "skipped"
        elif layout is not None and layout.has_blob(descriptor):
            action = "present"
        else:
            action = "copied"
        blobs.append(CopiedBlob(descriptor.digest, descriptor.size, descriptor.media_type, action))
    return CopyResult(
        source=str(src),
        destination=str(dst),
        digest=plan.top.digest,
        source_digest=plan.source_digest,
        media_type=plan.top.media_type,
        platforms=[p for p in plan.platforms if p],
        blobs=blobs,
        tag=dst.name,
        converted_from_schema1=isinstance(plan.top.manifest, Schema1Manifest),
        dry_run=True,
    )


@contextlib.contextmanager
def _work_layout(archive: Path) -> Iterator[Path]:
    """A private temporary layout beside ``archive`` (same filesystem), removed afterwards."""
    parent = archive.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".regpeek-copy-", dir=parent))
    except OSError as error:
        raise LocalError(f"cannot write beside {archive}: {error.strerror or error}") from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
