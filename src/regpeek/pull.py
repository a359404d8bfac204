"""Pull images into OCI layouts: concurrent, verified, resumable, and all-or-nothing.

:func:`pull` resolves a reference with the client, plans the manifests and blobs to store, and
downloads the blobs concurrently (``jobs`` threads over the client's one connection pool) into a
staging area inside the layout. Each blob is hashed as it streams to disk and checked against its
descriptor's digest and size; a connection that drops mid-blob is resumed with ``Range`` when the
registry answers 206, else the blob is read again with what was already received skipped. That is
the client's blob machinery (:mod:`regpeek.network._async.blobs`), the same as ``open_blob`` and
``download_blob``, so registries.conf mirrors serve blobs too (the source that served the manifest
first, the primary location last). A blob the layout already holds (verified by hashing) is not
downloaded again. Only when everything is verified are the blobs moved into ``blobs/`` and the image
added to ``index.json`` (see :mod:`regpeek.disk.layout`); any failure, or Ctrl-C or SIGTERM, leaves
the layout as it was, and a destination directory the pull created is removed.

When the client has a cache (``Client(cache=BlobCache(...))``, the CLI's default), its layer store
(:class:`regpeek.disk.cache.LayerStore`) is shared by every pull, in every process (a blob is fetched
under the store's claim on its digest, so concurrent pulls of one base layer download it once): a blob the store holds is put in the
staging area from there (hard-linked when the layout is one of the store's work areas, as for
``unpack`` and ``export``; else reflinked or copied) and hashed there before it is used, so a damaged
entry is dropped and the blob downloaded instead; every blob downloaded and verified is added to it.

Docker schema2 and OCI images keep their manifest bytes and digests. A schema1 image, which a layout
cannot hold, is converted like skopeo does: an OCI manifest whose config is synthesized from the
history (with ``rootfs.diff_ids`` computed from the downloaded layers) and whose gzip layers are the
non-throwaway ones, base first.

Why threads and the sync client: streaming a blob through httpx's sync stack costs about half the CPU of
its async stack (measured with ``bench/pull.py``), and hashing, socket reads and file writes all release
the GIL, so a few threads keep the link and the disk busy.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from regpeek.disk.cache import LayerStore
from regpeek.disk.layout import REF_NAME, Layout, LayoutReference, Staging, remove_stale_staging
from regpeek.errors import LocalError, NotFoundError, UnsupportedError, UsageError
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest, DigestVerifier, compute
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import Descriptor, ImageManifest, Index, Manifest
from regpeek.formats.platform import Platform, only
from regpeek.formats.reference import Reference
from regpeek.formats.schema1 import Schema1Manifest, config_bytes
from regpeek.network._sync.registry import Client

__all__ = ["PullProgress", "PullResult", "PulledBlob", "pull"]

_CHUNK = 1024 * 1024


class PullProgress(Protocol):
    """Receives progress events, from the download threads (rich's Progress is thread-safe)."""

    def blob_started(self, digest: Digest, size: int, label: str) -> None: ...

    def blob_advanced(self, digest: Digest, count: int) -> None: ...

    def blob_finished(self, digest: Digest, downloaded: bool) -> None: ...


@dataclass(frozen=True)
class PulledBlob:
    digest: Digest
    size: int
    media_type: str
    downloaded: bool  # False when the layout or the layer cache already had it
    resumed: int = 0  # how many times a broken download was resumed with Range
    skipped: bool = False  # a non-distributable layer left out (see allow_nondistributable)
    cached: bool = False  # taken (verified) from the client's layer cache

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": str(self.digest),
            "size": self.size,
            "media_type": self.media_type,
            "downloaded": self.downloaded,
            "resumed": self.resumed,
            "skipped": self.skipped,
            "cached": self.cached,
        }


@dataclass
class PullResult(JsonResult):
    """What :func:`pull` did; ``reference`` is the :class:`~regpeek.formats.reference.Reference` pulled
    (a :class:`~regpeek.disk.layout.LayoutReference` for a local image)."""

    reference: Reference | LayoutReference
    destination: Path
    ref_name: str
    digest: Digest  # of what index.json now names: an image manifest, or the index with --all-platforms
    media_type: str
    platforms: list[str]
    converted_from_schema1: bool = False
    blobs: list[PulledBlob] = field(default_factory=list)
    seconds: float = 0.0
    source_digest: Digest | None = (
        None  # of what the reference named in the registry (index, manifest, schema1)
    )
    index_digest: Digest | None = None  # the source_digest when it is an index's

    @property
    def downloaded_bytes(self) -> int:
        return sum(blob.size for blob in self.blobs if blob.downloaded)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": str(self.reference),
            "destination": str(self.destination),
            "ref_name": self.ref_name,
            "digest": str(self.digest),
            "media_type": self.media_type,
            "platforms": self.platforms,
            "converted_from_schema1": self.converted_from_schema1,
            "source_digest": str(self.source_digest) if self.source_digest else None,
            "index_digest": str(self.index_digest) if self.index_digest else None,
            "blobs": [blob.to_dict() for blob in self.blobs],
            "downloaded_bytes": self.downloaded_bytes,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Plan:
    """What one pull stores: manifests and configs as bytes, layers to download."""

    small: dict[Digest, tuple[Descriptor, bytes]] = field(default_factory=dict)
    blobs: dict[Digest, Descriptor] = field(default_factory=dict)
    platforms: list[str] = field(default_factory=list)

    def add_manifest(self, descriptor: Descriptor, raw: bytes) -> None:
        self.small[descriptor.digest] = (descriptor, raw)

    def add_image(self, manifest: ImageManifest, platform: str) -> None:
        self.platforms.append(platform)
        for blob in (manifest.config, *manifest.layers):
            self.blobs.setdefault(blob.digest, blob)


def _descriptor_of(manifest: Manifest) -> Descriptor:
    return Descriptor(media_type=manifest.media_type, digest=manifest.digest, size=len(manifest.raw))


class Stopped(Exception):
    """Raised in a worker thread when another job failed or the user interrupted."""


T = TypeVar("T")


def run_jobs(jobs: list[Callable[[], T]], workers: int, stop: threading.Event) -> list[T]:
    """Run ``jobs`` on ``workers`` threads and return their results in order.

    The first failure sets ``stop`` (jobs check it between chunks and raise :class:`Stopped`), waits
    for the others to end and is raised. Ctrl-C sets ``stop`` and returns at once: a job blocked on
    the network is not waited for (its files go with their staging area, and the CLI ends the
    process without joining threads).
    """
    if not jobs:
        return []
    executor = ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="regpeek-job")
    try:
        futures = [executor.submit(job) for job in jobs]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and not isinstance(future.exception(), (Stopped, type(None))):
                future.result()  # raises the first real failure
        results = [future.result() for future in futures]
    except KeyboardInterrupt:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    except BaseException:
        stop.set()  # the other jobs stop at their next chunk
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return results


class _Puller:
    def __init__(
        self,
        client: Client,
        reference: Reference | LayoutReference,
        layout: Layout,
        staging: Staging,
        *,
        jobs: int,
        allow_nondistributable: bool,
        progress: PullProgress | None,
    ) -> None:
        self.client = client
        self.store: LayerStore | None = (
            getattr(client.cache, "layers", None) if isinstance(reference, Reference) else None
        )  # a cache of one's own may have none; a local source needs none
        self.link = self.store is not None and self.store.holds(layout.path)
        self.reference = reference
        self.layout = layout
        self.staging = staging
        self.jobs = jobs
        self.stop = threading.Event()
        self.allow_nondistributable = allow_nondistributable
        self.progress = progress

    def fetch_all(self, blobs: Iterable[Descriptor]) -> list[PulledBlob]:
        """Fetch every blob, ``jobs`` at a time; the first failure stops the others and is raised."""
        return run_jobs([functools.partial(self._fetch, blob) for blob in blobs], self.jobs, self.stop)

    def _fetch(self, descriptor: Descriptor) -> PulledBlob:
        if self.stop.is_set():
            raise Stopped
        if self.layout.has_blob(descriptor):
            if self.progress:
                self.progress.blob_finished(descriptor.digest, downloaded=False)
            return PulledBlob(descriptor.digest, descriptor.size, descriptor.media_type, downloaded=False)
        if descriptor.urls and not self.allow_nondistributable:
            return PulledBlob(descriptor.digest, descriptor.size, descriptor.media_type, False, skipped=True)
        if self.store is None:
            return self._download(descriptor)
        # One fetcher per blob across every process sharing the store: the others wait, then find it
        with self.store.claim(descriptor.digest):
            if self.stop.is_set():
                raise Stopped
            path = self.staging.temp_path(descriptor.digest)
            if self.store.fetch(descriptor, path, link=self.link):  # verified where it now lies
                self.staging.add_file(descriptor.digest, path)
                if self.progress:
                    self.progress.blob_finished(descriptor.digest, downloaded=False)
                return PulledBlob(
                    descriptor.digest, descriptor.size, descriptor.media_type, downloaded=False, cached=True
                )
            return self._download(descriptor)

    def _download(self, descriptor: Descriptor) -> PulledBlob:
        """Stream the blob into the staging area with the client's verified, resumable blob reader
        (a non-distributable layer's URLs first, when allowed); the file counts once verified."""
        digest = descriptor.digest
        path = self.staging.temp_path(digest)
        if self.progress:
            self.progress.blob_started(digest, descriptor.size, descriptor.media_type)

        def advanced(count: int) -> None:
            if self.stop.is_set():
                raise Stopped
            if self.progress:
                self.progress.blob_advanced(digest, count)

        try:  # a registry image's whole Reference: its blobs come from the source that served it
            _, resumed = self.client._write_blob(
                self.reference, descriptor, path, use_urls=self.allow_nondistributable, on_progress=advanced
            )
        except NotFoundError:
            if not descriptor.urls or isinstance(self.reference, Reference):
                raise
            # a local image may leave a non-distributable layer out, as pull does
            return PulledBlob(digest, descriptor.size, descriptor.media_type, False, skipped=True)
        self.staging.add_file(digest, path)
        if self.store is not None:
            self.store.add(descriptor, path, link=self.link)
        if self.progress:
            self.progress.blob_finished(digest, downloaded=True)
        return PulledBlob(digest, descriptor.size, descriptor.media_type, downloaded=True, resumed=resumed)


def _diff_id(path: Path) -> str:
    """The digest of a gzip layer's uncompressed tar."""
    verifier = DigestVerifier("sha256")
    with gzip.open(path, "rb") as layer:
        while chunk := layer.read(_CHUNK):
            verifier.update(chunk)
    return str(verifier.digest())


def _convert_schema1(puller: _Puller, manifest: Schema1Manifest) -> tuple[Descriptor, list[PulledBlob]]:
    """Download a schema1 image's layers and stage an OCI manifest and synthesized config for it."""
    layers = [layer for layer in manifest.layers if not layer.throwaway]
    unknown = [Descriptor(mt.DOCKER_LAYER, layer.blob_sum, 0) for layer in layers]
    sized = [_sized(puller, descriptor) for descriptor in unknown]
    pulled = puller.fetch_all(sized)
    paths = [puller.staging.staged.get(d.digest) or puller.layout.blob_path(d.digest) for d in sized]
    diff_ids = [_diff_id(path) for path in paths]
    config_raw = config_bytes(manifest, diff_ids)  # the bytes skopeo writes for the same image
    config = Descriptor(mt.OCI_CONFIG, compute(config_raw), len(config_raw))
    puller.staging.add_bytes(config, config_raw)
    document = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.to_oci(),
        "layers": [Descriptor(mt.OCI_LAYER_GZIP, d.digest, d.size).to_oci() for d in sized],
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    descriptor = Descriptor(mt.OCI_MANIFEST, compute(raw), len(raw))
    puller.staging.add_bytes(descriptor, raw)
    return descriptor, pulled


def _sized(puller: _Puller, descriptor: Descriptor) -> Descriptor:
    """Schema1 layers carry no size: ask the registry with a HEAD (or use the local copy's size)."""
    if not isinstance(puller.reference, Reference):
        raise UnsupportedError(f"{puller.reference} holds a schema1 manifest, which a local image cannot")
    local = puller.layout.blob_path(descriptor.digest)
    if local.exists():
        return Descriptor(descriptor.media_type, descriptor.digest, local.stat().st_size)
    size = puller.client.blob_size(puller.reference, descriptor.digest)
    return Descriptor(descriptor.media_type, descriptor.digest, size)


def pull(
    client: Client,
    ref: Reference | LayoutReference | str,
    destination: Path | str,
    *,
    platform: Platform | str | None = None,
    all_platforms: bool = False,
    jobs: int = 4,
    allow_nondistributable: bool = False,
    ref_name: str | None = None,
    progress: PullProgress | None = None,
) -> PullResult:
    """Pull ``ref`` into the OCI layout at ``destination`` (created if needed); see the module doc.

    ``jobs`` blobs download at once; ``progress`` gets events from the download threads. The image's
    ``index.json`` entry is named ``ref_name`` (default: the tag, or the whole reference).

    Raises:
        UsageError: bad arguments (``jobs`` < 1, both ``platform`` and ``all_platforms``).
        NotFoundError, AuthError, RegistryUnavailableError: as the client's methods.
        VerificationError: a manifest or blob does not match (the layout is left as it was).
        UnsafePathError: the layout's lock file is a link or not a regular file.
        LocalError: the layout cannot be written (``reason`` has the system's words); a destination
            directory this pull created is removed.
    """
    started = time.monotonic()
    if isinstance(ref, str):
        reference: Reference | LayoutReference = (
            LayoutReference.parse(ref) if LayoutReference.is_local(ref) else Reference.parse(ref)
        )
    else:
        reference = ref
    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    if all_platforms and platform is not None:
        raise UsageError("give --platform or --all-platforms, not both")
    layout = Layout(destination)
    remove_stale_staging(layout)
    name = ref_name or reference.tag or str(reference)
    top = client.fetch_manifest(reference)
    created = _missing_directories(layout.path)
    try:
        with layout.staging() as staging:
            puller = _Puller(
                client,
                reference,
                layout,
                staging,
                jobs=jobs,
                allow_nondistributable=allow_nondistributable,
                progress=progress,
            )
            plan = _Plan()
            entry = _descriptor_of(top)
            entry_platform: Platform | None = None
            converted = False
            pulled: list[PulledBlob] = []
            if isinstance(top, Index):
                if all_platforms:
                    plan.add_manifest(entry, top.raw)
                children = top.manifests if all_platforms else [top.select(only(_wanted(client, platform)))]
                for child_entry in children:
                    child = client.fetch_manifest(reference, descriptor=child_entry)
                    if not isinstance(child, ImageManifest):
                        raise UnsupportedError(f"index {reference} holds a {child.media_type} entry")
                    plan.add_manifest(child_entry, child.raw)
                    described = child_entry.platform.describe() if child_entry.platform else "unknown"
                    if not child_entry.is_attestation:
                        plan.add_image(child, described)
                    else:
                        plan.blobs.update({b.digest: b for b in (child.config, *child.layers)})
                if not all_platforms:
                    entry = children[0]
                    entry_platform = entry.platform
            elif isinstance(top, ImageManifest):
                plan.add_manifest(entry, top.raw)
                plan.add_image(top, "")
            else:
                entry, pulled = _convert_schema1(puller, top)
                converted = True
                plan.platforms.append(f"linux/{top.architecture}" if top.architecture else "")
            for descriptor, raw in plan.small.values():
                staging.add_bytes(descriptor, raw)
            pulled += puller.fetch_all(plan.blobs.values())
            annotations = {**dict(entry.annotations), REF_NAME: name}
            index_entry: dict[str, Any] = {**entry.to_oci(), "annotations": annotations}
            if entry_platform is not None:
                kept = _source_platform(top, entry) if isinstance(top, Index) else None
                index_entry["platform"] = kept or _platform_json(entry_platform)
            staging.commit([index_entry])
    except BaseException as error:
        # Nothing was committed: a DEST this pull created goes (unless another pull committed there
        # meanwhile), and a local file problem is exit 7 naming DEST, never a staging file.
        if created:
            _remove_created(layout.path, created)
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            raise LocalError(f"cannot write the image into {destination}: {reason}", reason=reason) from error
        raise
    return PullResult(
        reference=reference,
        destination=layout.path,
        ref_name=name,
        digest=entry.digest,
        media_type=entry.media_type,
        platforms=[p for p in plan.platforms if p],
        converted_from_schema1=converted,
        blobs=pulled,
        seconds=time.monotonic() - started,
        source_digest=top.digest,
        index_digest=top.digest if isinstance(top, Index) else None,
    )


def _missing_directories(path: Path) -> list[Path]:
    """The directories ``path`` needs that do not exist yet, deepest first (``path`` itself first)."""
    missing = []
    current = path.absolute()
    while not current.exists() and not current.is_symlink() and current != current.parent:
        missing.append(current)
        current = current.parent
    return missing


def _remove_created(path: Path, created: list[Path]) -> None:
    """Remove the directories a failed pull created (DEST and any parents it made), unless a layout
    was committed there meanwhile by another process."""
    if (path / "index.json").exists():
        return
    shutil.rmtree(created[0], ignore_errors=True)
    for directory in created[1:]:
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty


def _wanted(client: Client, platform: Platform | str | None) -> Platform:
    if platform is None:
        return client.default_platform
    return Platform.parse(platform) if isinstance(platform, str) else platform


def _source_platform(index: Index, entry: Descriptor) -> dict[str, Any] | None:
    """The ``platform`` object of ``entry`` exactly as the source index has it (``variant: v8`` for
    arm64, ``os.features`` and all), rather than regpeek's normalised reading of it."""
    try:
        document = json.loads(index.raw)
    except (ValueError, RecursionError):
        return None
    for item in document.get("manifests") or []:
        if isinstance(item, dict) and item.get("digest") == str(entry.digest):
            platform = item.get("platform")
            return dict(platform) if isinstance(platform, dict) else None
    return None


def _platform_json(platform: Platform) -> dict[str, Any]:
    out: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os}
    if platform.os_version:
        out["os.version"] = platform.os_version
    if platform.variant:
        out["variant"] = platform.variant
    return out
