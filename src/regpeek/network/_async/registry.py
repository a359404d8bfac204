"""The registry client: manifests, configs, digests and tags, every answer verified.

Written once in ``_async/registry.py``; ``_sync/registry.py`` is generated from it by
``scripts/unasync.py``, turning the async client into the sync one.

How an inspect travels: ``fetch_manifest`` GETs the reference with one ``Accept`` listing every
manifest type, parses it (:mod:`regpeek.formats.manifest`), checks its digest against the digest asked for
and against ``Docker-Content-Digest``; an index is narrowed to one platform (:mod:`regpeek.formats.platform`)
and the chosen child is fetched by digest and checked against its descriptor; the config is a blob,
checked against its descriptor (or synthesized from schema1 history); :mod:`regpeek.formats.config` assembles
the result. Three registry GETs for a tag that points at an index, plus auth.

With a registries.conf (``registries=``), a reference is read from the sources
:meth:`~regpeek.formats.registriesconf.RegistriesConf.resolve` gives: its mirrors in order, then its
primary location (rewritten by ``location``). Each request about a reference tries them in that order,
starting with the one that last served that reference, and falls back to the next on any failure; the
primary's failure is the one reported. Listings (tags, catalog, referrers) use the primary location.
A blocked reference raises :class:`~regpeek.errors.BlockedError` before any request.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TypeVar

import httpx

from regpeek.disk.cache import Cache, NullCache
from regpeek.disk.layout import REF_NAME, LayoutReference
from regpeek.errors import (
    BlockedError,
    DigestMismatchError,
    MalformedError,
    NotFoundError,
    PlatformNotFoundError,
    RegpeekError,
    SizeMismatchError,
    TooLargeError,
    UnsupportedError,
    UsageError,
    VerificationError,
)
from regpeek.formats.config import ImageConfig, InspectResult, build_inspect, config_from_schema1
from regpeek.formats.digest import Digest, compute, verify_bytes
from regpeek.formats.listing import Listing, RateLimit, Referrers
from regpeek.formats.manifest import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    Index,
    Manifest,
    check_size,
    ensure_expected,
    parse,
)
from regpeek.formats.mediatypes import MANIFEST_ACCEPT, OCI_INDEX
from regpeek.formats.platform import Platform, only
from regpeek.formats.reference import Reference, Repository
from regpeek.formats.registriesconf import RegistriesConf, Resolution, Source
from regpeek.formats.schema1 import Schema1Manifest
from regpeek.formats.tree import Node, image_node, index_node
from regpeek.hostinfo import default_platform
from regpeek.network._async.blobs import AsyncBlobMethods
from regpeek.network._async.http import AsyncHTTP
from regpeek.network._async.image import AsyncImage
from regpeek.network.auth import RegistryAuth
from regpeek.network.common import AnyReference, AsyncRead, BlobRef, Resolved, blob_descriptor, blob_origin
from regpeek.network.common import as_platform as _platform
from regpeek.network.common import as_reference as _reference
from regpeek.network.common import as_repository as _repository
from regpeek.network.credentials import CredentialStore
from regpeek.network.transport import HttpOptions, next_page

__all__ = ["AsyncClient", "Resolved"]

log = logging.getLogger("regpeek.registry")

T = TypeVar("T")

MAX_TAG_LIST = 64 * 1024 * 1024
MAX_TAG_PAGES = 10_000


class AsyncClient(AsyncBlobMethods):
    """Reads images from Docker/OCI registries (and ``oci:`` layouts); every answer is verified.

    ::

        async with regpeek.AsyncClient(platform="linux/arm64") as client:
            image = await client.image("alpine:3.20")           # manifest, config, layers
            print(image.digest, image.config.env)
            async with image.layers[0].open(decompress=True) as tar:
                first = await tar.aread(512)                   # streamed, verified as read
            await image.layers[0].download("layer.tar.gz")     # atomic, verified, resumable
            result = await client.inspect("busybox")          # InspectResult (to_dict(), to_json())
            tags = await client.tags("library/alpine")

    Images: :meth:`image`, :meth:`inspect`, :meth:`manifest`, :meth:`config`, :meth:`digest`,
    :meth:`resolve`, :meth:`tree`. Blobs: :meth:`open_blob`, :meth:`download_blob`, :meth:`blob_bytes`
    (small ones). Listings: :meth:`tags`, :meth:`iter_tags`, :meth:`catalog`, :meth:`iter_catalog`,
    :meth:`referrers`, :meth:`iter_referrers`; :meth:`ratelimit`. A reference is a string
    (``"alpine"``, ``"host:5000/app@sha256:…"``, ``"oci:./layout:tag"``) or a ``Reference``; a platform
    a string (``"linux/arm/v7"``) or a ``Platform``. Errors are :class:`~regpeek.errors.RegpeekError`
    subclasses; each method's docstring lists them.

    ``platform`` is the default platform for indexes (the host's, ``linux/<arch>``, when omitted).
    Credentials come from ``username``/``password``, else ``authfile``, else the usual auth files
    (``credentials`` sets the store itself). ``options`` sets every HTTP setting at once and then wins
    over ``timeout``, ``ca_file``, ``insecure``, ``plain_http`` and ``retries``; a ``transport`` given
    beside it is still used. ``cache`` (a :class:`~regpeek.disk.cache.BlobCache`) keeps verified
    manifests, configs and layers on disk; none by default. ``auth`` shares another client's token
    cache (:mod:`regpeek.aio` uses it). ``registries`` is a parsed registries.conf
    (:func:`regpeek.network.registriesconf.load`): mirrors, location rewrites, insecure and blocked
    registries; none by default.

    One client may be shared: by tasks (async), by threads (sync). Tokens are fetched once per
    registry and scope, the others waiting for it.
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        authfile: str | os.PathLike[str] | None = None,
        platform: Platform | str | None = None,
        timeout: float = 30.0,
        ca_file: str | None = None,
        insecure: bool = False,
        plain_http: bool = False,
        retries: int = 3,
        options: HttpOptions | None = None,
        credentials: CredentialStore | None = None,
        cache: Cache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: RegistryAuth | None = None,
        registries: RegistriesConf | None = None,
    ) -> None:
        if options is not None and transport is not None:
            options = dataclasses.replace(options, transport=transport)
        if options is None:
            options = HttpOptions(
                timeout=timeout,
                ca_file=ca_file,
                insecure=insecure,
                plain_http=plain_http,
                retries=retries,
                transport=transport,
            )
        self.registries = registries or RegistriesConf()
        if self.registries:
            unverified = self.registries.insecure_hosts()
            if not unverified <= options.insecure_hosts:
                options = dataclasses.replace(options, insecure_hosts=options.insecure_hosts | unverified)
        self._served: dict[tuple[str, bool], Source] = {}
        self.options = options
        self.cache: Cache = cache if cache is not None else NullCache()
        self.default_platform = _platform(platform) or default_platform()
        self.credentials = credentials or CredentialStore(
            username=username, password=password, authfile=authfile
        )
        self.auth = auth if auth is not None else RegistryAuth(self.credentials, state=self.cache.auth)
        self.http = AsyncHTTP(options, self.auth)

    def __repr__(self) -> str:
        """The client's settings, never a secret."""
        options = self.options
        parts = [f"platform={str(self.default_platform)!r}", f"timeout={options.timeout}"]
        parts.append(f"retries={options.retries}")
        parts += [f"{name}=True" for name in ("plain_http", "insecure") if getattr(options, name)]
        if options.ca_file:
            parts.append(f"ca_file={options.ca_file!r}")
        parts.append(f"credentials={self.credentials!r}")
        if not isinstance(self.cache, NullCache):
            parts.append(f"cache={self.cache!r}")
        if self.registries:
            parts.append(f"registries={list(self.registries.files)!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Credentials and tokens in use: strings that must never be shown."""
        return self.auth.secrets

    def _url(self, repo: Repository, path: str) -> httpx.URL:
        self.auth.register(repo.api_host, repo.registry)
        return httpx.URL(f"{self.http.scheme(repo.api_host)}://{repo.api_host}/v2/{repo.name}/{path}")

    # -- where a reference is read from (registries.conf) -----------------------------------------

    def _resolution(self, reference: Reference | Repository) -> Resolution:
        resolution = self.registries.resolve(reference)
        if resolution.blocked:
            raise BlockedError(resolution.blocked_message(str(reference)))
        return resolution

    def sources(self, reference: Reference | Repository) -> list[Source]:
        """Where requests about ``reference`` go, in the order they are tried: the source that last
        served it first, then those after it (mirrors, then the primary location)."""
        found = list(self._resolution(reference).sources)
        served = self._served.get(_served_key(reference))
        if served is not None and served in found:
            found = found[found.index(served) :]
        return found

    def _whole_registry(self, registry: str) -> tuple[str, Repository]:
        """A whole registry (catalog, login): its name (``docker.io`` normalised, the host validated)
        and a repository on the host registries.conf sends it to; BlockedError when it is blocked."""
        name = Repository.parse(f"{registry}/x").registry
        resolution = self.registries.host(name)
        if resolution.blocked:
            raise BlockedError(resolution.blocked_message(name))
        return name, resolution.primary.repository

    def _primary(self, reference: Reference | Repository) -> Repository:
        """The repository listings are read from: the primary location (``location`` applied)."""
        return self._resolution(reference).primary.repository

    def _served_by(self, reference: Reference | Repository, source: Source) -> None:
        self._served[_served_key(reference)] = source

    async def _from_sources(self, reference: Reference | Repository, read: AsyncRead[T]) -> T:
        """``read(source)`` for each source of ``reference`` in turn (:meth:`sources`) until one
        answers; that source is remembered for the reference, and the last source's failure is the
        one raised."""
        sources = self.sources(reference)
        for number, source in enumerate(sources):
            try:
                result = await read(source)
            except RegpeekError as error:
                if number == len(sources) - 1:
                    raise
                log.debug("%s failed: %s; trying %s", source, error, sources[number + 1])
                continue
            self._served_by(reference, source)
            return result
        raise AssertionError("no source")  # sources is never empty

    def api_url(self, repo: Repository, path: str) -> httpx.URL:
        """``<scheme>://<host>/v2/<name>/<path>`` (registering the host for auth)."""
        return self._url(repo, path)

    # -- manifests ------------------------------------------------------------------------------

    async def fetch_manifest(
        self, ref: AnyReference | str, *, descriptor: Descriptor | None = None, accept: str = MANIFEST_ACCEPT
    ) -> Manifest:
        """GET one manifest (by ``descriptor``'s digest when given) and verify it.

        The computed digest must equal the digest asked for (the reference's or the descriptor's) and
        any ``Docker-Content-Digest`` the registry sends; a descriptor's size must match too. From a
        local layout the manifest is read from its blob and checked against its descriptor.

        Raises:
            UsageError: ``ref`` is not a valid reference.
            NotFoundError: no such repository, tag or manifest (``what`` says which).
            AuthError: access refused (see ``reason``).
            DigestMismatchError, SizeMismatchError: the bytes are not what was asked for or announced.
            MalformedError, TooLargeError, UnsupportedError: a document regpeek cannot use.
            RegistryUnavailableError: the registry kept failing after retries.
        """
        reference = _reference(ref)
        if isinstance(reference, LayoutReference):
            layout = reference.open()
            entry = descriptor or layout.find(reference.name)
            return parse(layout.read_blob(entry), entry.media_type or None, entry.digest.algorithm)
        read = functools.partial(
            self._manifest_from, reference=reference, descriptor=descriptor, accept=accept
        )
        return await self._from_sources(reference, read)

    async def _manifest_from(
        self, source: Source, *, reference: Reference, descriptor: Descriptor | None, accept: str
    ) -> Manifest:
        repo = source.repository
        at = _at(source, reference)
        wanted = descriptor.digest if descriptor is not None else reference.digest
        content_type = descriptor.media_type if descriptor is not None else None
        memo = self.cache.tags if wanted is None and accept == MANIFEST_ACCEPT else None
        seen = memo.get(repo.api_host, repo.name, reference.target) if memo is not None else None
        cached = self.cache.get(seen[0]) if seen is not None else None
        if seen is not None and cached is not None:
            # The tag named a manifest the cache holds: one HEAD (free on Docker Hub's rate limit) says
            # whether it still does; a tag never seen is fetched with one GET, no HEAD first.
            what = f"manifest {reference}{at}"
            try:
                head = await self.http.head(
                    self._url(repo, f"manifests/{reference.target}"), {"Accept": accept}, what
                )
            except (NotFoundError, UsageError, UnsupportedError):
                pass  # a HEAD answer has no body to say why: the GET below fails with the registry's words
            else:
                wanted = _header_digest(head.headers.get("Docker-Content-Digest"), what)
                content_type = head.headers.get("Content-Type")
                if wanted != seen[0]:
                    cached = self.cache.get(wanted) if wanted is not None else None
        else:
            cached = self.cache.get(wanted) if wanted is not None else None
        if cached is not None and wanted is not None:
            manifest = _checked(
                parse(cached, content_type, wanted.algorithm),
                cached,
                wanted,
                descriptor,
                f"cached manifest {wanted}",
            )
            if memo is not None:
                memo.put(repo.api_host, repo.name, reference.target, wanted, content_type)
            return manifest
        target = str(wanted) if wanted is not None else reference.target
        what = f"manifest {reference.repo}@{wanted}{at}" if wanted else f"manifest {reference}{at}"
        response, body = await self.http.get(
            self._url(repo, f"manifests/{target}"), {"Accept": accept}, what, MAX_MANIFEST_SIZE
        )
        header = response.headers.get("Docker-Content-Digest")
        try:
            manifest = parse(
                body, response.headers.get("Content-Type"), wanted.algorithm if wanted else "sha256"
            )
        except VerificationError as error:
            _check_unparsed(body, wanted, header, what, error)
            raise
        _checked(manifest, body, wanted, descriptor, what)
        _check_content_digest(manifest, body, header, what)
        # a signed schema1 manifest's digest is not of its bytes: not cached
        stored = not isinstance(manifest, Schema1Manifest) and self.cache.put(manifest.digest, body)
        if stored and memo is not None:
            memo.put(
                repo.api_host,
                repo.name,
                reference.target,
                manifest.digest,
                response.headers.get("Content-Type"),
            )
        return manifest

    async def manifest(self, ref: AnyReference | str, platform: Platform | str | None = None) -> Manifest:
        """The manifest a reference names: the index itself, or with ``platform`` that platform's manifest.

        Raises:
            As :meth:`fetch_manifest`; PlatformNotFoundError when the index has no image for ``platform``.
        """
        wanted = _platform(platform)
        if wanted is None:
            return await self.fetch_manifest(ref)
        return (await self.resolve(ref, wanted)).manifest

    async def resolve(self, ref: AnyReference | str, platform: Platform | str | None = None) -> Resolved:
        """Follow a reference to one image manifest, through an index if there is one (choosing
        ``platform``, else the client's default platform).

        Raises:
            As :meth:`fetch_manifest`; PlatformNotFoundError when the index has no image for the platform;
            UnsupportedError when an index points at another index.
        """
        reference = _reference(ref)
        top = await self.fetch_manifest(reference)
        if not isinstance(top, Index):
            return Resolved(reference, top)
        entry = top.select(only(_platform(platform) or self.default_platform))
        child = await self.fetch_manifest(reference, descriptor=entry)
        if isinstance(child, Index):
            raise UnsupportedError(f"index {reference} points at another index for {entry.platform}")
        return Resolved(reference, child, top, entry)

    # -- blobs and configs ----------------------------------------------------------------------

    async def blob_bytes(self, repo: Repository | AnyReference | str, blob: BlobRef) -> bytes:
        """A small blob (a config), read into memory and verified against its descriptor (or digest).

        At most 4 MiB: a larger blob is for :meth:`open_blob` or :meth:`download_blob`.

        Raises:
            NotFoundError: no such blob (``what == "blob"``) or repository.
            AuthError: access refused (see ``reason``).
            DigestMismatchError, SizeMismatchError: the bytes do not match.
            TooLargeError: the blob is over 4 MiB.
            RegistryUnavailableError: the registry kept failing after retries.
        """
        origin = blob_origin(repo)
        repository = origin.repo if isinstance(origin, Reference) else origin
        descriptor = blob_descriptor(blob)
        what = f"blob {repository}@{descriptor.digest}"
        check_size(what, descriptor.size)
        if descriptor.data is not None:
            return descriptor.data
        if isinstance(origin, LayoutReference):
            return origin.open().read_blob(descriptor)
        cached = self.cache.get(descriptor.digest)
        if cached is not None and descriptor.known_size in (None, len(cached)):
            return cached
        limit = MAX_MANIFEST_SIZE if descriptor.known_size is None else descriptor.size
        named = origin  # as narrowed above, for the closure

        async def read(source: Source) -> bytes:
            at = _at(source, named)
            url = self._url(source.repository, f"blobs/{descriptor.digest}")
            _, body = await self.http.get(url, {}, what + at, limit)
            verify_bytes(what + at, body, descriptor.digest, descriptor.known_size)
            return body

        body = await self._from_sources(origin, read)
        self.cache.put(descriptor.digest, body)
        return body

    def blob_url(self, repo: Repository, digest: Digest) -> httpx.URL:
        """Where a blob of ``repo`` itself is served (registering the host for auth): no mirror, no
        rewrite; what a push checks and writes. Reads go through :meth:`blob_urls`."""
        return self._url(repo, f"blobs/{digest}")

    def blob_urls(self, repo: Repository | Reference, digest: Digest) -> list[httpx.URL]:
        """Every place a blob of ``repo`` may be read from, in the order to try them (registries.conf
        mirrors first, the primary location last; for a ``Reference``, from the source that last served
        it), registering each host for auth."""
        return [self._url(source.repository, f"blobs/{digest}") for source in self.sources(repo)]

    async def blob_size(self, repo: Repository | AnyReference | str, blob: BlobRef) -> int:
        """A blob's size from a HEAD request (schema1 layers carry no size); each source in turn.

        Raises:
            NotFoundError, AuthError, RegistryUnavailableError: as :meth:`blob_bytes`.
            MalformedError: the registry sent no usable ``Content-Length``.
            UnsupportedError: ``repo`` is a local layout.
        """
        origin = blob_origin(repo)
        digest = blob_descriptor(blob).digest
        if isinstance(origin, LayoutReference):
            raise UnsupportedError("blob_size asks a registry; a layout's blob is a file")
        what = f"blob {origin.repo if isinstance(origin, Reference) else origin}@{digest}"

        async def head(source: Source) -> httpx.Response:
            return await self.http.head(self._url(source.repository, f"blobs/{digest}"), {}, what)

        length = (await self._from_sources(origin, head)).headers.get("Content-Length", "")
        if not length.isdigit():
            raise MalformedError(f"{what}: registry sent no usable Content-Length")
        return int(length)

    async def config_of(self, resolved: Resolved) -> ImageConfig:
        """The config of a resolved image: its blob, or synthesized from schema1 history.

        Raises:
            As :meth:`blob_bytes`; MalformedError when the config is not a JSON object.
        """
        manifest = resolved.manifest
        if isinstance(manifest, Schema1Manifest):
            return config_from_schema1(manifest)
        raw = await self.blob_bytes(resolved.reference, manifest.config)
        return ImageConfig.parse(raw, manifest.config.digest)

    async def config(self, ref: AnyReference | str, platform: Platform | str | None = None) -> ImageConfig:
        """The image config (bytes as served, and parsed) for the reference and platform.

        Raises:
            As :meth:`inspect`.
        """
        resolved = await self.resolve(ref, platform)
        config = await self.config_of(resolved)
        _check_single_platform(resolved, config, _platform(platform))
        return config

    # -- inspect, digest, tags ------------------------------------------------------------------

    async def inspect(self, ref: AnyReference | str, platform: Platform | str | None = None) -> InspectResult:
        """Everything about one image: manifest, config, layers, platforms (three GETs for a tag that
        names an index, plus auth).

        Raises:
            UsageError: ``ref`` or ``platform`` is not valid.
            NotFoundError: no such repository, tag or manifest; PlatformNotFoundError when the index
                has no image for the platform.
            AuthError: access refused (see ``reason``).
            VerificationError: a manifest or the config does not match its digest, or cannot be used.
            RegistryUnavailableError: the registry kept failing after retries.
        """
        resolved = await self.resolve(ref, platform)
        config = await self.config_of(resolved)
        _check_single_platform(resolved, config, _platform(platform))
        return _inspect_result(resolved, config)

    async def image(self, ref: AnyReference | str, platform: Platform | str | None = None) -> AsyncImage:
        """The image ``ref`` names, for ``platform`` when it names an index (the client's default
        platform otherwise): manifest, config and layers at hand, each layer ready to ``open()`` or
        ``download()``. The same requests as :meth:`inspect`, and ``image.inspect()`` costs none.

        Raises:
            The same as :meth:`inspect`.
        """
        resolved = await self.resolve(ref, platform)
        config = await self.config_of(resolved)
        _check_single_platform(resolved, config, _platform(platform))
        return AsyncImage.of(self, resolved, config, _inspect_result(resolved, config))

    async def digest(self, ref: AnyReference | str, platform: Platform | str | None = None) -> Digest:
        """The digest a reference resolves to (the index's unless ``platform`` is given).

        Without a platform this is one HEAD request when the registry reports ``Docker-Content-Digest``;
        otherwise the manifest is fetched and hashed.

        Raises:
            As :meth:`fetch_manifest`; PlatformNotFoundError with a ``platform`` the index lacks.
        """
        reference = _reference(ref)
        wanted = _platform(platform)
        if wanted is not None or isinstance(reference, LayoutReference):
            top = await self.fetch_manifest(reference)
            if isinstance(top, Index) and wanted is not None:
                return top.select(only(wanted)).digest
            return top.digest
        image = reference  # as narrowed above, for the closure

        async def head(source: Source) -> tuple[httpx.Response, str] | None:
            what = f"manifest {image}{_at(source, image)}"
            url = self._url(source.repository, f"manifests/{image.target}")
            try:
                return await self.http.head(url, {"Accept": MANIFEST_ACCEPT}, what), what
            except (UsageError, UnsupportedError):
                return None  # some registries refuse HEAD (400, 405): a GET also brings the body saying why

        answered = await self._from_sources(reference, head)
        if answered is None:
            return (await self.fetch_manifest(reference)).digest
        return await self._digest_from(reference, *answered)

    async def _digest_from(self, reference: Reference, response: httpx.Response, what: str) -> Digest:
        header = _header_digest(response.headers.get("Docker-Content-Digest"), what)
        if reference.digest is not None:
            if (
                header is not None
                and header.algorithm == reference.digest.algorithm
                and header != reference.digest
            ):
                raise DigestMismatchError(what, reference.digest, header)
            return reference.digest
        if header is not None:
            return header
        return (await self.fetch_manifest(reference)).digest

    async def tags(
        self,
        repository: Repository | Reference | str,
        page_size: int | None = None,
        last: str | None = None,
    ) -> list[str]:
        """Every tag of a repository, following ``Link`` pagination (``page_size`` tags a page, the
        registry's default when None; after the tag ``last`` when given). For an ``oci:`` layout,
        the ref names of its images.

        Raises:
            NotFoundError: no such repository (``what == "repository"`` or ``"tag list"``).
            AuthError: access refused (see ``reason``).
            MalformedError: a page is not a tag list, or its ``Link`` loops.
            RegistryUnavailableError: the registry kept failing after retries.
        """
        return (await self.list_tags(repository, page_size=page_size, last=last)).names

    async def list_tags(
        self,
        repository: Repository | Reference | str,
        *,
        page_size: int | None = None,
        last: str | None = None,
    ) -> Listing:
        """Every tag of a repository, with how many pages it took (see :meth:`tags`)."""
        names: list[str] = []
        pages = 0
        async for page in self._tag_pages(repository, page_size, last):
            names += page
            pages += 1
        return Listing(str(_repository(repository)), names, pages)

    async def iter_tags(
        self,
        repository: Repository | Reference | str,
        *,
        page_size: int | None = None,
        last: str | None = None,
    ) -> AsyncIterator[str]:
        """The tags of a repository, a page fetched only when the one before is used up
        (``async for tag in client.iter_tags(repo)``); raises as :meth:`tags`."""
        async for page in self._tag_pages(repository, page_size, last):
            for name in page:
                yield name

    async def _tag_pages(
        self, repository: Repository | Reference | str, page_size: int | None, last: str | None
    ) -> AsyncIterator[list[str]]:
        repo = _repository(repository)
        if isinstance(repo, LayoutReference):
            names = sorted(
                e.annotations[REF_NAME] for e in repo.open().entries() if REF_NAME in e.annotations
            )
            yield [name for name in names if last is None or name > last]
            return
        primary = self._primary(repo)
        url = _page_params(self._url(primary, "tags/list"), page_size, last)
        async for page in self._pages(url, "tags", f"tags of {repo}{_at_repo(primary, repo)}"):
            yield page

    async def catalog(self, registry: str, page_size: int | None = None, last: str | None = None) -> Listing:
        """Every repository of a registry (``/v2/_catalog``), following ``Link`` pagination.

        Raises:
            AuthError: the registry does not let this user list repositories.
            NotFoundError, UnsupportedError: the registry has no catalog.
            MalformedError, RegistryUnavailableError: as :meth:`tags`.
        """
        names: list[str] = []
        pages = 0
        async for page in self._catalog_pages(registry, page_size, last):
            names += page
            pages += 1
        return Listing(Repository.parse(f"{registry}/x").registry, names, pages)

    async def iter_catalog(
        self, registry: str, *, page_size: int | None = None, last: str | None = None
    ) -> AsyncIterator[str]:
        """The repositories of a registry, a page fetched as the one before is used up."""
        async for page in self._catalog_pages(registry, page_size, last):
            for name in page:
                yield name

    async def _catalog_pages(
        self, registry: str, page_size: int | None, last: str | None
    ) -> AsyncIterator[list[str]]:
        name, repo = self._whole_registry(registry)
        self.auth.register(repo.api_host, repo.registry)
        url = httpx.URL(f"{self.http.scheme(repo.api_host)}://{repo.api_host}/v2/_catalog")
        async for page in self._pages(
            _page_params(url, page_size, last), "repositories", f"catalog of {name}"
        ):
            yield page

    async def _pages(self, first: httpx.URL, key: str, what: str) -> AsyncIterator[list[str]]:
        """The names of each page of a listing, following ``Link`` (same scheme and host only)."""
        url: httpx.URL | None = first
        seen: set[str] = set()
        while url is not None and len(seen) < MAX_TAG_PAGES:
            seen.add(str(url))
            response, body = await self.http.get(url, {"Accept": "application/json"}, what, MAX_TAG_LIST)
            names = _names_from(body, key, what)
            url = next_page(url, response.headers.get("Link"), what)
            if url is not None and str(url) in seen:
                raise MalformedError(f"{what}: a Link header points back to a page already read")
            yield names

    async def referrers(self, ref: Reference | str, artifact_type: str | None = None) -> Referrers:
        """Manifests that refer to an image (OCI 1.1), from the referrers API or the fallback tag.

        Registries without the API (distribution 2.8.2 answers a plain-text 404) are asked for the tag
        ``sha256-<hex>``, which holds an index of referrers; no such tag means no referrers.

        Raises:
            UnsupportedError: ``ref`` is a local layout.
            NotFoundError, AuthError, RegistryUnavailableError: as :meth:`digest` (a tag is resolved
                first).
            MalformedError, TooLargeError: a page is not an index, or there are too many.
        """
        reference = _reference(ref)
        subject = await self._subject(reference)
        entries: list[Descriptor] = []
        via = "api"
        async for source, page in self._referrer_pages(reference, subject, artifact_type):
            via = source
            entries += page
        return Referrers(subject, entries, via)

    async def iter_referrers(
        self, ref: Reference | str, artifact_type: str | None = None
    ) -> AsyncIterator[Descriptor]:
        """The referrers of an image, a page fetched as the one before is used up; as :meth:`referrers`."""
        reference = _reference(ref)
        subject = await self._subject(reference)
        async for _, page in self._referrer_pages(reference, subject, artifact_type):
            for entry in page:
                yield entry

    async def _subject(self, reference: AnyReference) -> Digest:
        if isinstance(reference, LayoutReference):
            raise UnsupportedError("referrers are looked up in registries, not in local layouts")
        return reference.digest or await self.digest(reference)

    async def _referrer_pages(
        self, reference: AnyReference, subject: Digest, artifact_type: str | None
    ) -> AsyncIterator[tuple[str, list[Descriptor]]]:
        """("api" or "tag", entries) for each page; entries of another artifact type are left out
        (also when the registry did not filter them)."""
        assert isinstance(reference, Reference)
        primary = self._primary(reference)
        what = f"referrers of {reference.repo}@{subject}{_at_repo(primary, reference.repo)}"
        url = self._url(primary, f"referrers/{subject}")
        if artifact_type:
            url = url.copy_merge_params({"artifactType": artifact_type})
        try:
            response, body = await self.http.get(url, {"Accept": OCI_INDEX}, what, MAX_MANIFEST_SIZE)
        except (NotFoundError, UnsupportedError):
            fallback = reference.with_digest(None)
            tag = f"{subject.algorithm}-{subject.hex}"
            try:
                index = await self.fetch_manifest(Reference(fallback.registry, fallback.repository, tag))
            except NotFoundError:
                yield "tag", []
                return
            if not isinstance(index, Index):
                raise MalformedError(f"{what}: the fallback tag {tag} does not hold an index") from None
            yield "tag", _of_type(index.manifests, artifact_type)
            return
        seen = {str(url)}
        read = len(body)
        yield "api", _of_type(_referrers_page(response, body, what), artifact_type)
        page = next_page(url, response.headers.get("Link"), what)
        while page is not None:  # pages follow on the same scheme and host (see next_page)
            if str(page) in seen:
                raise MalformedError(f"{what}: a Link header points back to a page already read")
            if len(seen) >= MAX_TAG_PAGES or read > MAX_TAG_LIST:
                raise TooLargeError(
                    f"{what}: over {MAX_TAG_PAGES} pages or {MAX_TAG_LIST} bytes",
                    size=read,
                    limit=MAX_TAG_LIST,
                )
            seen.add(str(page))
            response, body = await self.http.get(page, {"Accept": OCI_INDEX}, what, MAX_MANIFEST_SIZE)
            read += len(body)
            yield "api", _of_type(_referrers_page(response, body, what), artifact_type)
            page = next_page(page, response.headers.get("Link"), what)

    async def tree(self, ref: AnyReference | str, *, with_referrers: bool = True) -> Node:
        """The index -> manifests -> config/layers structure, attestations marked, referrers below.

        Raises:
            As :meth:`fetch_manifest` and :meth:`referrers`.
        """
        reference = _reference(ref)
        top = await self.fetch_manifest(reference)
        if isinstance(top, Index):
            children = []
            for entry in top.manifests:
                child = await self.fetch_manifest(reference, descriptor=entry)
                if isinstance(child, Index):
                    children.append(index_node(child, []))
                    continue
                platform = entry.platform.describe() if entry.platform and not entry.is_attestation else None
                subject = entry.annotations.get("vnd.docker.reference.digest")
                kind = "attestation" if entry.is_attestation else "manifest"
                note = f"attestation for {subject}" if entry.is_attestation and subject else None
                children.append(image_node(child, kind=kind, platform=platform, note=note))
            root = index_node(top, children)
        else:
            root = image_node(top)
        if with_referrers and isinstance(reference, Reference):
            found = await self.referrers(reference.with_digest(top.digest))
            for entry in found.manifests:
                root.children.append(
                    Node("referrer", entry.media_type, entry.digest, entry.size, note=entry.artifact_type)
                )
        return root

    async def ratelimit(self, ref: Reference | str) -> RateLimit:
        """Docker Hub style pull limits, from a HEAD request (which does not count as a pull).

        Raises:
            UnsupportedError: ``ref`` is a local layout.
            NotFoundError, AuthError, RegistryUnavailableError: as :meth:`fetch_manifest`.
        """
        reference = _reference(ref)
        if isinstance(reference, LayoutReference):
            raise UnsupportedError("rate limits are a registry's, not a local layout's")
        primary = self._primary(reference)
        what = f"manifest {reference}{_at_repo(primary, reference.repo)}"
        response = await self.http.head(
            self._url(primary, f"manifests/{reference.target}"), {"Accept": MANIFEST_ACCEPT}, what
        )
        return RateLimit.from_headers(response.headers)

    async def check_login(self, registry: str) -> None:
        """Check that the registry accepts this client's credentials: ``GET /v2/`` through the auth
        flow (a token without scope from a Bearer registry, Basic credentials otherwise).

        Raises:
            AuthError: the credentials are refused, or there are none and the registry wants some
                (see ``reason``).
            BlockedError: registries.conf blocks the registry.
            RegistryUnavailableError: the registry cannot be reached.
        """
        name, repo = self._whole_registry(registry)
        self.auth.register(repo.api_host, name)  # the credentials being checked are the name's
        url = httpx.URL(f"{self.http.scheme(repo.api_host)}://{repo.api_host}/v2/")
        await self.http.get(url, {}, f"the API root of {name}", 64 * 1024)


def _served_key(reference: Reference | Repository) -> tuple[str, bool]:
    if isinstance(reference, Reference):
        return str(reference.repo), reference.digest is not None
    return str(reference), True


def _at(source: Source, reference: Reference | Repository) -> str:
    """`` at mirror.example/app`` when ``source`` is not where the reference itself points."""
    repo = reference.repo if isinstance(reference, Reference) else reference
    if source.repository == repo and not source.mirror:
        return ""
    return f" at {source.repository}" + (" (mirror)" if source.mirror else "")


def _at_repo(primary: Repository, repo: Repository) -> str:
    return "" if primary == repo else f" at {primary}"


def _checked(
    manifest: Manifest, body: bytes, wanted: Digest | None, descriptor: Descriptor | None, what: str
) -> Manifest:
    """A manifest must be what was asked for: the digest wanted, and the size its descriptor gives."""
    ensure_expected(manifest, wanted, what)
    if descriptor is not None and not isinstance(manifest, Schema1Manifest) and len(body) != descriptor.size:
        raise SizeMismatchError(what, descriptor.size, len(body))
    return manifest


def _names_from(body: bytes, key: str, what: str) -> list[str]:
    """The list under ``key`` ("tags" or "repositories") of a listing page; null means none."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise MalformedError(f"{what}: the page is not JSON") from None
    names = document.get(key) if isinstance(document, dict) else None
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise MalformedError(f"{what}: {key} is not a list of strings")
    return names


def _referrers_page(response: httpx.Response, body: bytes, what: str) -> tuple[Descriptor, ...]:
    """The entries of one page of the referrers API, an OCI index."""
    index = parse(body, response.headers.get("Content-Type") or OCI_INDEX)
    if not isinstance(index, Index):
        raise MalformedError(f"{what}: the registry did not answer with an index")
    return index.manifests


def _page_params(url: httpx.URL, page_size: int | None, last: str | None) -> httpx.URL:
    """A listing's first page, with ``n`` and ``last`` when given."""
    params: dict[str, str | int] = {}
    if page_size is not None:
        params["n"] = page_size
    if last is not None:
        params["last"] = last
    return url.copy_merge_params(params) if params else url


def _of_type(entries: tuple[Descriptor, ...], artifact_type: str | None) -> list[Descriptor]:
    if artifact_type is None:
        return list(entries)
    return [entry for entry in entries if entry.artifact_type == artifact_type]


def _header_digest(value: str | None, what: str) -> Digest | None:
    if not value:
        return None
    try:
        return Digest.parse(value.strip())
    except UsageError:
        raise MalformedError(f"{what}: registry sent an invalid Docker-Content-Digest") from None


def _check_content_digest(manifest: Manifest, body: bytes, header: str | None, what: str) -> None:
    """``Docker-Content-Digest``, when sent, must name the bytes received."""
    announced = _header_digest(header, what)
    if announced is None:
        return
    actual = manifest.digest
    if announced.algorithm != actual.algorithm:
        if isinstance(manifest, Schema1Manifest):
            return  # would need the canonical payload in another algorithm; the reference check stands
        actual = compute(body, announced.algorithm)
    if announced != actual:
        raise DigestMismatchError(f"{what} (Docker-Content-Digest)", announced, actual)


def _check_unparsed(
    body: bytes, wanted: Digest | None, header: str | None, what: str, error: VerificationError
) -> None:
    """Bytes that do not even parse were most likely damaged on the way: when a digest was expected
    (asked for, or announced in ``Docker-Content-Digest``) and they do not hash to it, that is the
    error to report, with both digests."""
    for expected, label in (
        (wanted, what),
        (_header_digest(header, what), f"{what} (Docker-Content-Digest)"),
    ):
        if expected is not None:
            actual = compute(body, expected.algorithm)
            if actual != expected:
                raise DigestMismatchError(label, expected, actual) from error


def _inspect_result(resolved: Resolved, config: ImageConfig) -> InspectResult:
    return build_inspect(
        reference=resolved.reference,
        manifest=resolved.manifest,
        config=config,
        index=resolved.index,
        entry_platform=resolved.entry.platform if resolved.entry else None,
    )


def _check_single_platform(resolved: Resolved, config: ImageConfig, wanted: Platform | None) -> None:
    """An explicitly asked platform must match a single-platform image too (as docker pull does)."""
    if wanted is None or resolved.index is not None:
        return
    have = config.platform
    if have.architecture and not only(wanted).matches(have):
        raise PlatformNotFoundError(wanted.describe(), [have.describe()])
