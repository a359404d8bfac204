"""Blobs of any size, streamed and verified: the one implementation behind ``open_blob``,
``download_blob``, ``Layer.open()``/``download()`` and ``pull``.

Written once in ``_async/blobs.py``; ``_sync/blobs.py`` is generated from it by ``scripts/unasync.py``.

A blob travels through three steps, each a chunk iterator:

1. the source: :class:`AsyncBlobTransfer` for a registry (a GET that, when the connection drops, goes on
   with ``Range: bytes=N-`` from where it stopped, or, when the registry ignores the range and sends the
   blob again, skips what was already received; every retry spends one budget of ``retries``; a
   descriptor's ``urls`` may be tried first, then the registry's sources: registries.conf mirrors
   before the primary location, see ``AsyncClient.blob_urls``), a file for an OCI layout, or a
   descriptor's inline ``data``;
2. :func:`verified`: each chunk hashed as it passes (:class:`~regpeek.formats.digest.BlobCheck`); the
   chunk that completes the blob is handed on only once the digest and size are checked, and a blob of
   unknown size (a bare digest) is checked at its end before its last chunk goes on; so whoever reads a
   blob to its end never finishes with bytes that do not match;
3. optionally :func:`decompressed` (gzip, zstd or plain, sniffed), with bounded output per step.

:class:`AsyncBlobStream` gives the result a reader's face: ``aread(n)``, ``areadinto(buffer)`` and
``async for chunk in stream`` (the sync twin, ``BlobStream``, is an :class:`io.RawIOBase` with
``read``, ``readinto`` and iteration by chunks). Memory stays flat whatever the blob's size: there is
no cap here (the 4 MiB cap is for manifests and configs, read whole).

A blob written to a file (``download_blob``, ``pull``) whose bytes from a mirror or a foreign URL do
not verify is downloaded again from the next source, the registry's primary location last; a stream
already handed to a reader cannot be taken back, so ``open_blob`` raises instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from regpeek.disk.layout import ImageStore, LayoutReference
from regpeek.errors import AuthError, NotFoundError, RegistryUnavailableError, VerificationError
from regpeek.formats.digest import BlobCheck, Digest
from regpeek.formats.manifest import Descriptor
from regpeek.formats.reference import Reference, Repository
from regpeek.network._async.http import AsyncHTTP
from regpeek.network.common import (
    AnyReference,
    AsyncChunks,
    AsyncReadable,
    BlobRef,
    DownloadedBlob,
    blob_descriptor,
    blob_origin,
    holds,
)
from regpeek.network.transport import Attempts, HttpOptions, describe_url, retry_delay

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["AsyncBlobMethods", "AsyncBlobStream", "AsyncBlobTransfer", "decompressed", "verified"]

log = logging.getLogger("regpeek.registry")

_FILE_CHUNK = 1024 * 1024

#: Called with the number of bytes each chunk adds, as a download goes (may raise to stop it).
ProgressCallback = Callable[[int], None]


class AsyncBlobTransfer:
    """The chunks of one blob from a registry (or the URLs a descriptor lists, then the registry),
    picking a dropped connection up with ``Range``; ``resumed`` and ``restarted`` count how often.

    The chunks are not verified here (see :func:`verified`): together they are exactly the blob's
    bytes once, in order, from whichever responses they came.
    """

    def __init__(
        self, http: AsyncHTTP, options: HttpOptions, urls: list[httpx.URL], descriptor: Descriptor, what: str
    ) -> None:
        self.http = http
        self.options = options
        self.urls = urls
        self.size = descriptor.known_size
        self.what = what
        self.resumed = 0  # Range requests the registry answered from where we were (206)
        self.restarted = 0  # Range requests answered with the whole blob again (200)
        self.serving = 0  # the index in ``urls`` of the URL the bytes come from now

    async def chunks(self, start: int = 0) -> AsyncChunks:
        """The blob's bytes from offset ``start`` on (all of them by default)."""
        have = start
        for number, url in enumerate(self.urls, 1):
            self.serving = number - 1
            try:
                async for chunk in self._from(url, have):
                    have += len(chunk)
                    yield chunk
                return
            except (RegistryUnavailableError, NotFoundError, AuthError):
                if number == len(self.urls):
                    raise
                # a URL of a non-distributable layer failed: the next one (the registry last) goes on

    async def _from(self, url: httpx.URL, have: int) -> AsyncChunks:
        attempts = Attempts(self.options.retries)  # shared with the request loop's own retries
        while self.size is None or have < self.size:
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                async with self.http.stream(url, headers, self.what, attempts) as response:
                    skip = 0
                    if have and _resumes_at(response, have):
                        self.resumed += 1
                    elif have:
                        skip = have  # the whole blob again: drop what was already passed on
                        self.restarted += 1
                    async for received in response.aiter_bytes():
                        if skip >= len(received):
                            skip -= len(received)
                            continue
                        chunk, skip = received[skip:], 0
                        have += len(chunk)
                        yield chunk
                return  # the response ended: verification says whether that was the whole blob
            except httpx.TransportError as error:
                if attempts.last:
                    raise RegistryUnavailableError(
                        f"connection kept failing while downloading {self.what}: "
                        f"{error or type(error).__name__}"
                    ) from None
                await asyncio.sleep(retry_delay(self.options, attempts.made, None))


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    """Did the registry answer a Range request with the bytes from ``offset`` on?"""
    if response.status_code != 206:
        return False
    content_range: str = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")


async def _file_chunks(layout: ImageStore, descriptor: Descriptor) -> AsyncChunks:
    """A blob of a local layout or archive (a regular file, never through a link), read in chunks."""
    with layout.open_blob(descriptor.digest, descriptor.known_size) as blob:
        while chunk := blob.read(_FILE_CHUNK):
            yield chunk


async def _inline(data: bytes) -> AsyncChunks:
    yield data


async def verified(chunks: AsyncChunks, check: BlobCheck) -> AsyncChunks:
    """``chunks`` checked by ``check``: the chunk that completes the blob only after verification."""
    held: bytes | None = None  # size unknown: the last chunk waits for the end of the source
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            if not chunk:
                continue
            check.add(chunk)
            if check.size is not None:
                yield chunk
                continue
            if held is not None:
                yield held
            held = chunk
    check.finish()
    if held is not None:
        yield held


async def decompressed(chunks: AsyncChunks) -> AsyncChunks:
    """The uncompressed bytes of a layer blob (gzip, zstd or plain: see
    :class:`~regpeek.disk.tarstream.LayerDecoder`)."""
    from regpeek.disk.tarstream import LayerDecoder  # gzip, tarfile, zstd: only for decompressed reads

    decoder = LayerDecoder()
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            for piece in decoder.feed(chunk):
                yield piece
    for piece in decoder.finish():
        yield piece


class AsyncBlobStream(AsyncReadable):
    """A blob being read, verified as it goes: ``await stream.aread(n)`` (``aread()`` for the rest),
    ``await stream.areadinto(buffer)``, or ``async for chunk in stream`` (chunks as they arrive).

    Reading to the end raises :class:`~regpeek.errors.DigestMismatchError` or
    :class:`~regpeek.errors.SizeMismatchError` before the last bytes are returned when the blob is not
    what its descriptor says. ``descriptor`` is what was asked for; ``compressed_bytes`` counts the
    verified bytes of the blob read so far (the blob itself, not what decompression made of it).
    """

    def __init__(self, chunks: AsyncChunks, descriptor: Descriptor, check: BlobCheck) -> None:
        super().__init__()
        self.descriptor = descriptor
        self._chunks = chunks
        self._check = check
        self._buffer = b""
        self._offset = 0
        self._ended = False

    @property
    def compressed_bytes(self) -> int:
        return self._check.seen

    async def _fill(self) -> bool:
        """Bring in the next chunk when the buffer is empty; False at the end."""
        while self._offset >= len(self._buffer):
            if self._ended:
                return False
            try:
                self._buffer, self._offset = await self._chunks.__anext__(), 0
            except StopAsyncIteration:
                self._ended = True
                self._buffer, self._offset = b"", 0
        return True

    async def aread(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (fewer only at the end; ``b""`` there), or everything left."""
        if size < 0:
            parts = []
            while await self._fill():
                parts.append(self._buffer[self._offset :])
                self._offset = len(self._buffer)
            return b"".join(parts)
        if size == 0 or not await self._fill():
            return b""
        data = self._buffer[self._offset : self._offset + size]
        self._offset += len(data)
        return data

    async def areadinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = await self.aread(len(view))
        view[: len(data)] = data
        return len(data)

    def __aiter__(self) -> AsyncBlobStream:
        return self

    async def __anext__(self) -> bytes:
        if not await self._fill():
            raise StopAsyncIteration
        data = self._buffer[self._offset :]
        self._offset = len(self._buffer)
        return data

    async def aclose(self) -> None:
        """Stop reading: the connection (or file) is released."""
        await self._chunks.aclose()
        await super().aclose()


class AsyncBlobMethods:
    """The blob methods of :class:`~regpeek.network._async.registry.AsyncClient` (a mixin, to keep
    them apart from the manifest methods)."""

    http: AsyncHTTP
    options: HttpOptions

    def blob_urls(
        self, repo: Repository | Reference, digest: Digest
    ) -> list[httpx.URL]:  # pragma: no cover - the client's
        raise NotImplementedError

    def _blob_source(
        self,
        origin: Repository | Reference | LayoutReference,
        descriptor: Descriptor,
        *,
        use_urls: bool,
        skip: int = 0,
    ) -> tuple[AsyncChunks, AsyncBlobTransfer | None, BlobCheck]:
        """The verified chunks of a blob, the transfer that fetches them (a registry's), the check.

        A registry blob comes from the descriptor's ``urls`` (with ``use_urls``), then the sources of
        ``origin`` (see ``blob_urls``), less the first ``skip`` of those URLs.
        """
        repository = origin.repo if isinstance(origin, Reference) else origin
        what = f"blob {repository}@{descriptor.digest}"
        check = BlobCheck(descriptor.digest, descriptor.known_size, what)
        transfer = None
        if descriptor.data is not None:
            source = _inline(descriptor.data)
        elif isinstance(origin, LayoutReference):
            source = _file_chunks(origin.open(), descriptor)
        else:
            transfer = self._blob_transfer(origin, descriptor, use_urls=use_urls, skip=skip)
            source = transfer.chunks()
        return verified(source, check), transfer, check

    def _blob_transfer(
        self, origin: Repository | Reference, descriptor: Descriptor, *, use_urls: bool, skip: int = 0
    ) -> AsyncBlobTransfer:
        """How a blob is read from a registry: a non-distributable layer's ``urls`` first (with
        ``use_urls``), then the sources of ``origin`` (``blob_urls``: registries.conf mirrors, then the
        primary location), less the first ``skip`` of those URLs. Its chunks are not verified (see
        :func:`verified`)."""
        repository = origin.repo if isinstance(origin, Reference) else origin
        registry = self.blob_urls(origin, descriptor.digest)
        foreign = [httpx.URL(url) for url in descriptor.urls if url.startswith(("https://", "http://"))]
        urls = [*foreign, *registry] if use_urls else registry
        return AsyncBlobTransfer(
            self.http, self.options, urls[skip:], descriptor, f"blob {repository}@{descriptor.digest}"
        )

    @contextlib.asynccontextmanager
    async def open_blob(
        self,
        repository: Repository | AnyReference | str,
        blob: BlobRef,
        *,
        decompress: bool = False,
        use_urls: bool = False,
    ) -> AsyncIterator[AsyncBlobStream]:
        """A blob of ``repository`` as a stream, verified as it is read (see :class:`AsyncBlobStream`).

        ``blob`` is a descriptor (a layer of :meth:`image`, an entry of a manifest) or a digest: with a
        bare digest the size is unknown and only the digest is checked. A dropped connection is resumed
        with ``Range``. ``decompress=True`` yields the uncompressed tar of a layer (gzip, zstd or plain,
        sniffed) while the compressed bytes are still what is verified. ``use_urls`` tries a
        non-distributable layer's ``urls`` (without credentials) before the registry. ``repository``
        may be ``oci:PATH`` (a local layout). The request is sent on entry, so a missing blob raises
        here; the stream is closed on exit.

        Raises:
            NotFoundError: no such blob (``what == "blob"``) or repository.
            AuthError: access refused (see ``reason``).
            DigestMismatchError, SizeMismatchError: while reading, before the last bytes are returned.
            MalformedError: with ``decompress``, the compressed stream is corrupt or truncated.
            RegistryUnavailableError: the registry kept failing after retries.
        """
        descriptor = blob_descriptor(blob)
        chunks, _, check = self._blob_source(blob_origin(repository), descriptor, use_urls=use_urls)
        stream = AsyncBlobStream(decompressed(chunks) if decompress else chunks, descriptor, check)
        try:
            await stream._fill()  # send the request now: a missing blob fails here, not at first read
            yield stream
        finally:
            await stream.aclose()

    async def download_blob(
        self,
        repository: Repository | AnyReference | str,
        blob: BlobRef,
        path: str | os.PathLike[str],
        *,
        use_urls: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> DownloadedBlob:
        """Download a blob to ``path``, verified, atomically: it is written to a temporary file beside
        ``path`` (fsynced) and renamed over it only once its digest and size match, so ``path`` never
        holds a partial or wrong blob. A dropped connection is resumed with ``Range``. When ``path``
        already holds the verified blob nothing is downloaded (``downloaded`` is False).
        ``on_progress`` is called with each chunk's size (an exception from it stops the download).

        Raises:
            NotFoundError, AuthError, RegistryUnavailableError: as :meth:`open_blob`.
            DigestMismatchError, SizeMismatchError: the blob did not match; ``path`` is left as it was.
            OSError: ``path`` cannot be written.
        """
        descriptor = blob_descriptor(blob)
        target = Path(path)
        if holds(target, descriptor):
            return DownloadedBlob(target, descriptor.digest, os.stat(target).st_size, downloaded=False)
        temp = target.with_name(f".{target.name}.{os.urandom(4).hex()}.part")
        try:
            size, resumed = await self._write_blob(
                blob_origin(repository), descriptor, temp, use_urls=use_urls, on_progress=on_progress
            )
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return DownloadedBlob(target, descriptor.digest, size, downloaded=True, resumed=resumed)

    async def _write_blob(
        self,
        origin: Repository | Reference | LayoutReference,
        descriptor: Descriptor,
        path: Path,
        *,
        use_urls: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[int, int]:
        """Stream a verified blob into ``path`` (created or truncated) and fsync it; (size, resumed).

        The file is complete only when this returns: on an error it holds part of the blob, for the
        caller to remove. Bytes that do not verify from a source that is not the last (a mirror, a
        foreign URL) are thrown away and the blob is read again from the next one. Shared by
        :meth:`download_blob` and :func:`regpeek.pull.pull`.
        """
        skip = 0
        while True:
            chunks, transfer, check = self._blob_source(origin, descriptor, use_urls=use_urls, skip=skip)
            try:
                with open(path, "wb") as out:
                    async with contextlib.aclosing(chunks):
                        async for chunk in chunks:
                            out.write(chunk)
                            if on_progress is not None:
                                on_progress(len(chunk))
                    out.flush()
                    os.fsync(out.fileno())
            except VerificationError as error:
                if transfer is None or transfer.serving >= len(transfer.urls) - 1:
                    raise
                failed = describe_url(transfer.urls[transfer.serving])
                log.debug("%s: %s; reading it from the next source", failed, error)
                skip += transfer.serving + 1
                continue
            return check.seen, transfer.resumed if transfer is not None else 0
