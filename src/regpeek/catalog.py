"""A registry's catalogue in SQLite: every repository, tag, manifest, layer and config, kept up to date.

:func:`catalog_registry` walks ``/v2/_catalog`` (or the repositories given), lists every tag, resolves
each with one HEAD, and reads the manifests (index children included, attestations marked) and
configs whose digests the database does not hold yet; :class:`regpeek.disk.catalogdb.CatalogDB`
writes what each repository gave. A second run therefore costs the listings and one HEAD per tag,
and records what changed: tags added, moved to another digest, gone, or back.

The walk of one repository, :func:`scan_repository`, is async (thousands of small requests: the
async client's tasks and one connection pool) and returns a
:class:`~regpeek.formats.catalogschema.RepositoryScan`, plain data. Locally the repositories are walked
``jobs`` requests at a time in this process; with Dask they are partitioned across the workers
(:func:`scan_partition`, one task per partition), and the rows come back to the client, which alone
writes the database (SQLite wants one writer).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regpeek.cluster import ClientSpec
from regpeek.errors import NotFoundError, RegpeekError, UsageError, exit_code_for
from regpeek.formats import mediatypes as mt
from regpeek.formats.catalogschema import RepositoryScan
from regpeek.formats.config import ImageConfig
from regpeek.formats.manifest import Descriptor, ImageManifest, Index, Manifest
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference, Repository
from regpeek.formats.schema1 import Schema1Manifest

if TYPE_CHECKING:
    from regpeek.network._async.registry import AsyncClient

__all__ = ["CatalogResult", "catalog_registry", "scan_partition", "scan_repository", "utc_time"]


def utc_time(value: str | None) -> str | None:
    """An RFC 3339 time (``2024-05-01T14:00:00.123+02:00``) as UTC text, ``2024-05-01T12:00:00Z``;
    None for none, the text unchanged when it is not such a time."""
    if not value:
        return None
    text = value.strip()
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        # Go writes nanoseconds, which fromisoformat (before 3.11) refuses: cut to microseconds
        head, dot, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        try:
            parsed = datetime.datetime.fromisoformat(
                f"{head}{dot}{digits[:6]}{zone}".replace("Z", "+00:00").replace("z", "+00:00")
            )
        except ValueError:
            return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    try:
        utc = parsed.astimezone(datetime.timezone.utc)
    except OverflowError:  # year 1 east of UTC
        return text
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"


def now_text() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- one repository ------------------------------------------------------------------------------
@dataclass
class _Walk:
    """What a set of repositories walked together shares: the client, the request limit, and the
    digests already known (in the database) or claimed by a repository of this walk."""

    client: AsyncClient
    registry: str
    limit: asyncio.Semaphore
    known_manifests: frozenset[str] | set[str]
    known_configs: frozenset[str] | set[str]
    claimed: set[str] = field(default_factory=set)

    def claim(self, digest: str, *, config: bool = False) -> bool:
        """True for the first asker of a digest the database does not hold."""
        known = self.known_configs if config else self.known_manifests
        key = ("config:" if config else "") + digest
        if digest in known or key in self.claimed:
            return False
        self.claimed.add(key)
        return True


def _platform_columns(platform: Platform | None) -> tuple[str | None, str | None, str | None]:
    if platform is None:
        return None, None, None
    return platform.os or None, platform.architecture or None, platform.variant or None


def _error_row(tag: str | None, digest: str | None, error: BaseException) -> tuple[Any, ...]:
    kind = error.kind if isinstance(error, RegpeekError) else "internal"
    return (tag, digest, exit_code_for(error), kind, str(error) or type(error).__name__)


async def scan_repository(walk: _Walk, repository: str) -> RepositoryScan:
    """List, resolve and read one repository (see the module doc); errors are rows, not raised."""
    scan = RepositoryScan(repository)
    repo = Repository.parse(f"{walk.registry}/{repository}")
    try:
        async with walk.limit:
            listing = await walk.client.list_tags(repo)
    except NotFoundError:
        scan.missing = True
        return scan
    except RegpeekError as error:
        scan.errors.append(_error_row(None, None, error))
        scan.failed_tags.append("*")
        return scan

    async def resolve(tag: str) -> tuple[str, str | None]:
        reference = Reference(repo.registry, repo.name, tag)
        try:
            async with walk.limit:
                scan.tag_requests += 1
                return tag, str(await walk.client.digest(reference))
        except NotFoundError:
            return tag, None  # deleted between the listing and the HEAD: gone
        except RegpeekError as error:
            scan.errors.append(_error_row(tag, None, error))
            scan.failed_tags.append(tag)
            return tag, None

    resolved = await asyncio.gather(*(resolve(tag) for tag in dict.fromkeys(listing.names)))
    scan.tags = [(tag, digest) for tag, digest in resolved if digest is not None]
    digests = [digest for digest in dict.fromkeys(d for _, d in scan.tags) if walk.claim(digest)]
    await asyncio.gather(*(_read_top(walk, scan, repo, digest) for digest in digests))
    return scan


async def _fetch(walk: _Walk, scan: RepositoryScan, repo: Repository, digest: str,
                 descriptor: Descriptor | None = None) -> Manifest | None:  # fmt: skip
    reference = Reference.parse(f"{repo}@{digest}")
    try:
        async with walk.limit:
            scan.manifests_fetched += 1
            return await walk.client.fetch_manifest(reference, descriptor=descriptor)
    except RegpeekError as error:
        scan.errors.append(_error_row(None, digest, error))
        return None


async def _read_top(walk: _Walk, scan: RepositoryScan, repo: Repository, digest: str) -> None:
    manifest = await _fetch(walk, scan, repo, digest)
    if manifest is None:
        return
    if isinstance(manifest, Index):
        scan.manifests.append(_manifest_row(manifest, repo, "index", None, None))
        children = []
        for position, entry in enumerate(manifest.manifests):
            attestation = entry.is_attestation
            scan.index_entries.append(
                (
                    str(manifest.digest),
                    str(entry.digest),
                    position,
                    entry.media_type,
                    entry.size,
                    *_platform_columns(entry.platform),
                    int(attestation),
                )
            )
            if walk.claim(str(entry.digest)):
                children.append(_read_child(walk, scan, repo, entry))
        await asyncio.gather(*children)
        return
    await _read_image(walk, scan, repo, manifest, None, "image")


async def _read_child(walk: _Walk, scan: RepositoryScan, repo: Repository, entry: Descriptor) -> None:
    child = await _fetch(walk, scan, repo, str(entry.digest), entry)
    if child is None:
        return
    if isinstance(child, Index):
        scan.manifests.append(_manifest_row(child, repo, "index", None, None))
        return  # an index in an index: recorded, not followed (no registry client follows it either)
    await _read_image(
        walk, scan, repo, child, entry.platform, "attestation" if entry.is_attestation else "image"
    )


def _manifest_row(manifest: Manifest, repo: Repository, kind: str, platform: Platform | None,
                  config: Descriptor | None, created: str | None = None) -> tuple[Any, ...]:  # fmt: skip
    artifact_type = getattr(manifest, "artifact_type", None)
    subject = getattr(manifest, "subject", None)
    return (
        str(manifest.digest),
        manifest.media_type,
        len(manifest.raw),
        kind,
        *_platform_columns(platform),
        str(config.digest) if config is not None else None,
        created,
        repo.name,
        artifact_type,
        str(subject.digest) if subject is not None else None,
    )


async def _read_image(walk: _Walk, scan: RepositoryScan, repo: Repository, manifest: Manifest,
                      platform: Platform | None, kind: str) -> None:  # fmt: skip
    if isinstance(manifest, Schema1Manifest):
        newest = manifest.newest
        schema1_platform = Platform("linux", manifest.architecture) if manifest.architecture else None
        created = utc_time(newest.get("created") if isinstance(newest.get("created"), str) else None)
        scan.manifests.append(
            _manifest_row(manifest, repo, "schema1", platform or schema1_platform, None, created)
        )
        position = 0
        for fs_layer in manifest.layers:
            if fs_layer.throwaway:
                continue
            scan.layers.append((str(fs_layer.blob_sum), None, mt.DOCKER_LAYER))
            scan.manifest_layers.append((str(manifest.digest), str(fs_layer.blob_sum), position))
            position += 1
        return
    if not isinstance(manifest, ImageManifest):
        return
    scan.manifests.append(_manifest_row(manifest, repo, kind, platform, manifest.config))
    for position, layer in enumerate(manifest.layers):
        scan.layers.append((str(layer.digest), layer.size, layer.media_type))
        scan.manifest_layers.append((str(manifest.digest), str(layer.digest), position))
    config = manifest.config
    if not walk.claim(str(config.digest), config=True):
        return
    try:
        async with walk.limit:
            scan.configs_fetched += 1
            raw = await walk.client.blob_bytes(repo, config)
    except RegpeekError as error:
        scan.errors.append(_error_row(None, str(config.digest), error))
        return
    scan.configs.append(_config_row(raw, config))


def _config_row(raw: bytes, descriptor: Descriptor) -> tuple[Any, ...]:
    try:
        parsed = ImageConfig.parse(raw, descriptor.digest)
        created_raw = parsed.created_raw
        author = parsed.author
        env = parsed.env
        labels = dict(parsed.labels)
        entrypoint = parsed.entrypoint
        cmd = parsed.cmd
        platform = parsed.platform
    except (RegpeekError, AttributeError, TypeError, ValueError):
        created_raw, author, env, labels, entrypoint, cmd = None, None, [], {}, None, None
        platform = None

    def encoded(value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    return (
        str(descriptor.digest),
        utc_time(created_raw),
        author,
        encoded(env),
        encoded(labels),
        encoded(entrypoint),
        encoded(cmd),
        *_platform_columns(platform),
        descriptor.size,
        created_raw,
    )


async def _scan_all(walk: _Walk, repositories: Iterable[str], width: int) -> AsyncIterator[RepositoryScan]:
    """Scans as repositories finish, at most ``width`` repositories at once."""
    running: set[asyncio.Task[RepositoryScan]] = set()
    try:
        for repository in repositories:
            running.add(asyncio.ensure_future(scan_repository(walk, repository)))
            if len(running) >= width:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        while running:
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def scan_partition(
    spec: ClientSpec,
    registry: str,
    repositories: Sequence[str],
    known: tuple[frozenset[str], frozenset[str]],
    jobs: int = 16,
) -> list[RepositoryScan]:
    """Walk ``repositories`` (a Dask task: one partition of the registry) with a client of its own."""

    async def run() -> list[RepositoryScan]:
        async with spec.async_client(cache=False) as client:
            walk = _Walk(client, registry, asyncio.Semaphore(jobs), known[0], known[1])
            return [scan async for scan in _scan_all(walk, repositories, jobs)]

    return asyncio.run(run())


# -- the whole run -------------------------------------------------------------------------------
@dataclass
class CatalogResult:
    """What a catalogue run did (``regpeek catalog --db --json`` prints :meth:`to_dict`)."""

    database: str
    registry: str
    run_id: int
    repositories: int = 0
    tags: int = 0
    tag_requests: int = 0
    manifests_fetched: int = 0
    configs_fetched: int = 0
    added: int = 0
    changed: int = 0
    gone: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    parquet: str | None = None

    @property
    def exit_code(self) -> int:
        return max((int(error["code"]) for error in self.errors), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "registry": self.registry,
            "run": self.run_id,
            "repositories": self.repositories,
            "tags": self.tags,
            "tag_requests": self.tag_requests,
            "manifests_fetched": self.manifests_fetched,
            "configs_fetched": self.configs_fetched,
            "added": self.added,
            "changed": self.changed,
            "gone": self.gone,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "parquet": self.parquet,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _partitions(repositories: Sequence[str], parts: int) -> list[list[str]]:
    parts = max(1, min(parts, len(repositories)))
    return [list(repositories[n::parts]) for n in range(parts)] if repositories else []


def catalog_registry(
    spec: ClientSpec,
    database: Path | str,
    registry: str,
    *,
    repositories: Sequence[str] | None = None,
    prefix: str | None = None,
    jobs: int = 32,
    dask: str | None = None,
    parquet: Path | str | None = None,
    page_size: int | None = None,
) -> CatalogResult:
    """Walk ``registry`` into the SQLite file ``database`` (created if missing); see the module doc.

    ``repositories`` names the repositories to walk instead of ``/v2/_catalog``; ``prefix`` keeps those
    whose name starts with it. With ``dask`` (a scheduler address) the repositories are partitioned
    across its workers. ``parquet`` also writes every table as ``DIR/<table>.parquet``.
    """
    from regpeek.disk.catalogdb import CatalogDB

    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    started = time.monotonic()
    host = Repository.parse(f"{registry}/x").registry  # normalised (docker.io), validated
    with CatalogDB(database) as db:
        db.claim_registry(host)
        run_id = db.start_run(host, now_text())
        result = CatalogResult(str(database), host, run_id)
        whole = repositories is None
        names = list(repositories) if repositories is not None else _catalog(spec, host, page_size)
        if prefix:
            names = [name for name in names if name.startswith(prefix)]
        names = list(dict.fromkeys(names))
        known = (frozenset(db.known_manifests()), frozenset(db.known_configs()))
        for scan in _scans(spec, host, names, known, jobs, dask):
            db.write_scan(scan, run_id, now_text(), result)
        if whole:
            db.mark_missing_repositories(set(names), prefix or "", run_id, now_text(), result)
        result.repositories = len(names)
        db.finish_run(run_id, now_text(), result)
        result.seconds = time.monotonic() - started
        if parquet is not None:
            db.export_parquet(Path(parquet))
            result.parquet = str(parquet)
    return result


def _catalog(spec: ClientSpec, registry: str, page_size: int | None) -> list[str]:
    with spec.client(cache=False) as client:
        return client.catalog(registry, page_size).names


def _scans(spec: ClientSpec, registry: str, names: list[str], known: tuple[frozenset[str], frozenset[str]],
           jobs: int, dask: str | None) -> Iterable[RepositoryScan]:  # fmt: skip
    if dask is None:
        yield from _local_scans(spec, registry, names, known, jobs)
        return
    from regpeek.cluster import dask_client

    with dask_client(dask) as client:
        import distributed

        workers = len(client.nthreads()) or 1
        shared = client.scatter(known, broadcast=True)
        futures = [
            client.submit(scan_partition, spec, registry, part, shared, jobs, pure=False, retries=1)
            for part in _partitions(names, workers * 4)
        ]
        for future in distributed.as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            yield from future.result()
            future.release()


def _local_scans(spec: ClientSpec, registry: str, names: list[str],
                 known: tuple[frozenset[str], frozenset[str]], jobs: int) -> Iterable[RepositoryScan]:  # fmt: skip
    """Scans of this process's async walk, handed over one at a time (the writer runs between them)."""
    loop = asyncio.new_event_loop()
    try:
        client = spec.async_client(cache=False)
        walk = _Walk(client, registry, asyncio.Semaphore(jobs), set(known[0]), set(known[1]))
        scans = _scan_all(walk, names, jobs).__aiter__()
        try:
            while True:
                try:
                    scan = loop.run_until_complete(scans.__anext__())
                except StopAsyncIteration:
                    break
                yield scan
        finally:
            loop.run_until_complete(scans.aclose())  # type: ignore[attr-defined]
            loop.run_until_complete(client.aclose())
    finally:
        loop.close()
