"""Writing to a registry: the push protocol of the OCI distribution spec, one request per function.

Written once in ``_async/push.py``; ``_sync/push.py`` is generated from it by ``scripts/unasync.py``.
What to send, in which order, and how an interrupted upload resumes is decided by the copy engine
(:mod:`regpeek.copy`); these functions send one request each and check its answer:

- :func:`blob_exists`: ``HEAD /v2/<name>/blobs/<digest>`` (200 or 404);
- :func:`start_upload`: ``POST /v2/<name>/blobs/uploads/``, with ``?mount=<digest>&from=<repo>`` for a
  cross-repository mount: 201 means mounted, 202 opens an upload session (also when a mount was asked
  and the registry declined it);
- :func:`send_chunk`: ``PATCH <location>`` with ``Content-Range: <start>-<end>`` and ``Content-Length``;
- :func:`upload_status`: ``GET <location>``, whose ``Range: 0-<end>`` says how much the registry holds;
- :func:`finish_upload`: ``PUT <location>?digest=<digest>``, with the whole blob (monolithic) or empty
  after the chunks; :func:`cancel_upload`: ``DELETE <location>``;
- :func:`manifest_digest` (``HEAD``) and :func:`put_manifest` (``PUT``, the exact bytes, the source's
  media type as ``Content-Type``).

Every ``Location`` is resolved against the URL of the request that returned it (registries send
relative or absolute ones, with query strings such as distribution's signed ``_state`` that must be
kept). Every ``Docker-Content-Digest`` a write returns must name what was sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import httpx

from regpeek.errors import DigestMismatchError, MalformedError, NotFoundError
from regpeek.formats.digest import Digest
from regpeek.formats.mediatypes import MANIFEST_ACCEPT
from regpeek.formats.reference import Repository
from regpeek.network._async.http import Content
from regpeek.network._async.registry import AsyncClient

__all__ = [
    "Upload",
    "blob_exists",
    "cancel_upload",
    "finish_upload",
    "manifest_digest",
    "put_manifest",
    "send_chunk",
    "start_upload",
    "upload_status",
]

_RANGE_RE = re.compile(r"^\s*(?:bytes=)?0-(\d+)\s*$")
_OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class Upload:
    """An upload session: where its next request goes, how many bytes the registry holds, and the
    smallest chunk it accepts (``OCI-Chunk-Min-Length``, 0 when it sets none)."""

    url: httpx.URL
    offset: int = 0
    min_chunk: int = 0


async def blob_exists(client: AsyncClient, repo: Repository, digest: Digest) -> bool:
    """Whether ``repo`` already holds the blob (a HEAD: 200 yes, 404 no)."""
    try:
        await client.http.head(client.blob_url(repo, digest), {}, f"blob {repo}@{digest}")
    except NotFoundError:
        return False
    return True


async def manifest_digest(client: AsyncClient, repo: Repository, target: str) -> Digest | None:
    """The digest ``repo`` holds under ``target`` (a tag or a digest), from a HEAD; None when absent.

    A registry that sends no ``Docker-Content-Digest`` for a tag gives None too (the manifest is then
    put again, which is harmless); for a digest, a 200 is enough.
    """
    what = f"manifest {repo}:{target}"
    try:
        response = await client.http.head(
            client.api_url(repo, f"manifests/{target}"), {"Accept": MANIFEST_ACCEPT}, what
        )
    except NotFoundError:
        return None
    header = response.headers.get("Docker-Content-Digest", "").strip()
    if header:
        try:
            return Digest.parse(header)
        except ValueError:
            raise MalformedError(f"{what}: registry sent an invalid Docker-Content-Digest") from None
    return Digest.parse(target) if ":" in target else None


async def start_upload(
    client: AsyncClient,
    repo: Repository,
    *,
    mount: Digest | None = None,
    mount_from: Repository | None = None,
) -> Upload | None:
    """Open an upload session in ``repo``; with ``mount`` and ``mount_from``, ask to mount the blob from
    that repository of the same registry instead. None when the blob was mounted."""
    url = client.api_url(repo, "blobs/uploads/")
    what = f"blob upload to {repo}"
    if mount is not None and mount_from is not None:
        url = url.copy_merge_params({"mount": str(mount), "from": mount_from.name})
        what = f"mount of {mount} from {mount_from.name} into {repo}"
    response, _ = await client.http.send("POST", url, {"Content-Length": "0"}, what, ok=(201, 202))
    if response.status_code == 201:
        if mount is None:
            raise MalformedError(f"{what}: the registry answered 201 Created to an upload start")
        _check_digest(response, mount, what)
        return None
    return Upload(_location(response, what), 0, _min_chunk(response))


async def send_chunk(client: AsyncClient, upload: Upload, content: Content, length: int) -> Upload:
    """PATCH ``length`` bytes at the session's offset; the session as the registry now describes it."""
    end = upload.offset + length - 1
    headers = {
        "Content-Type": _OCTETS,
        "Content-Length": str(length),
        "Content-Range": f"{upload.offset}-{end}",
    }
    what = f"blob upload chunk {upload.offset}-{end}"
    response, _ = await client.http.send("PATCH", upload.url, headers, what, ok=(202, 204), content=content)
    reported = _range_end(response.headers.get("Range"), upload.offset + length)
    if reported is not None and reported != upload.offset + length:
        raise MalformedError(
            f"{what}: the registry holds {reported} bytes after the chunk, not {upload.offset + length}"
        )
    return replace(upload, url=_location(response, what, upload.url), offset=upload.offset + length)


async def upload_status(client: AsyncClient, upload: Upload) -> Upload:
    """Ask the registry how much of the upload it holds (``GET <location>``: 204 with ``Range``)."""
    what = "blob upload status"
    response, _ = await client.http.send("GET", upload.url, {}, what, ok=(200, 204))
    held = _range_end(response.headers.get("Range"), upload.offset)
    return replace(upload, url=_location(response, what, upload.url), offset=held or 0)


async def finish_upload(
    client: AsyncClient, upload: Upload, digest: Digest, content: Content = None, length: int = 0
) -> None:
    """``PUT <location>?digest=<digest>``: close the session with the last ``length`` bytes (all of
    them for a monolithic upload, none after the chunks); the registry checks the digest."""
    url = upload.url.copy_merge_params({"digest": str(digest)})
    headers = {"Content-Type": _OCTETS, "Content-Length": str(length)}
    what = f"blob upload of {digest}"
    response, _ = await client.http.send(
        "PUT", url, headers, what, ok=(201, 204), content=content if length else b""
    )
    _check_digest(response, digest, what)


async def cancel_upload(client: AsyncClient, upload: Upload) -> None:
    """``DELETE <location>``: drop a failed session (an unknown one is already gone)."""
    await client.http.send("DELETE", upload.url, {}, "blob upload cancel", ok=(200, 202, 204, 404))


async def put_manifest(
    client: AsyncClient, repo: Repository, target: str, raw: bytes, media_type: str, digest: Digest
) -> str | None:
    """PUT the manifest bytes under ``target`` (a tag or its digest) with ``media_type`` as
    ``Content-Type``; the registry's ``Docker-Content-Digest`` must be ``digest``. Returns the
    ``OCI-Subject`` header, which a registry with the referrers API sends for a manifest with a subject."""
    what = f"manifest {repo}:{target}" if ":" not in target else f"manifest {repo}@{target}"
    response, _ = await client.http.send(
        "PUT",
        client.api_url(repo, f"manifests/{target}"),
        {"Content-Type": media_type},
        what,
        ok=(200, 201, 202),
        content=raw,
    )
    _check_digest(response, digest, what)
    subject: str | None = response.headers.get("OCI-Subject")
    return subject


def _location(response: httpx.Response, what: str, default: httpx.URL | None = None) -> httpx.URL:
    """The session's next URL: ``Location`` resolved against the request's URL (relative or absolute)."""
    location = response.headers.get("Location")
    if not location:
        if default is not None:
            return default
        raise MalformedError(f"{what}: the registry sent no Location")
    try:
        return response.request.url.join(location.strip())
    except httpx.InvalidURL:
        raise MalformedError(f"{what}: the registry sent an invalid Location") from None


def _min_chunk(response: httpx.Response) -> int:
    value = response.headers.get("OCI-Chunk-Min-Length", "").strip()
    return int(value) if value.isdigit() else 0


def _range_end(value: str | None, expected: int) -> int | None:
    """How many bytes a ``Range: 0-<end>`` header says the registry holds (None without one).

    distribution answers ``0-0`` for an empty session as well as for one byte: when ``expected`` is
    0, that reads as 0.
    """
    if value is None:
        return None
    match = _RANGE_RE.match(value)
    if match is None:
        raise MalformedError(f"the registry sent an invalid upload Range {value!r}")
    end = int(match.group(1))
    return 0 if end == 0 and expected == 0 else end + 1


def _check_digest(response: httpx.Response, digest: Digest, what: str) -> None:
    """The ``Docker-Content-Digest`` of a write's answer, when sent, must name what was sent."""
    header = response.headers.get("Docker-Content-Digest", "").strip()
    if not header:
        return
    try:
        announced = Digest.parse(header)
    except ValueError:
        raise MalformedError(f"{what}: registry sent an invalid Docker-Content-Digest") from None
    if announced != digest:
        raise DigestMismatchError(f"{what} (Docker-Content-Digest)", digest, announced)
