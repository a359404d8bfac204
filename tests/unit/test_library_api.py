"""The library's building blocks without a registry: blob checking and streams, layer decompression,
times, digests, platform selection, registry error details, lazy paging, the package's lazy names."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest
import zstandard

import regpeek
from regpeek.disk.tarstream import LayerDecoder
from regpeek.errors import (
    AuthError,
    DigestMismatchError,
    MalformedError,
    NotFoundError,
    RegistryErrorDetail,
    SizeMismatchError,
    parse_error_body,
)
from regpeek.formats.config import parse_time
from regpeek.formats.digest import BlobCheck, Digest, compute
from regpeek.formats.manifest import Descriptor, Index, parse
from regpeek.formats.platform import Platform, only
from regpeek.formats.reference import Reference, Repository
from regpeek.network._async.blobs import AsyncBlobStream
from regpeek.network._async.blobs import verified as async_verified
from regpeek.network._sync.blobs import BlobStream, verified
from regpeek.network.transport import (
    AUTH_OUTCOME,
    AuthOutcome,
    HttpOptions,
    error_for_status,
    reference_for_url,
)

HOST = "registry.example"
DATA = os.urandom(200_000)


# -- BlobCheck and the verified chunk stream ----------------------------------------------------------


def _chunks(data: bytes, size: int = 50_000) -> Generator[bytes, None, None]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _verified(data: bytes, digest: Digest, size: int | None) -> tuple[list[bytes], BaseException | None]:
    got: list[bytes] = []
    try:
        for chunk in verified(_chunks(data), BlobCheck(digest, size, "blob x")):
            got.append(chunk)
    except (DigestMismatchError, SizeMismatchError) as error:
        return got, error
    return got, None


@pytest.mark.parametrize("size", [len(DATA), None], ids=["size-known", "size-unknown"])
def test_verified_chunks_pass_a_good_blob_whole(size: int | None) -> None:
    got, error = _verified(DATA, compute(DATA), size)
    assert error is None and b"".join(got) == DATA


@pytest.mark.parametrize("size", [len(DATA), None], ids=["size-known", "size-unknown"])
def test_verified_chunks_keep_the_last_chunk_of_a_wrong_blob(size: int | None) -> None:
    wrong = bytearray(DATA)
    wrong[10] ^= 1
    got, error = _verified(bytes(wrong), compute(DATA), size)
    assert isinstance(error, DigestMismatchError)
    assert (error.expected, error.actual, error.what) == (compute(DATA), compute(bytes(wrong)), "blob x")
    assert b"".join(got) == bytes(wrong)[:150_000]  # three of the four chunks: never the last


def test_verified_chunks_stop_at_the_first_byte_too_many() -> None:
    got, error = _verified(DATA, compute(DATA), 120_000)
    assert isinstance(error, SizeMismatchError) and (error.expected, error.actual) == (120_000, 150_000)
    assert len(b"".join(got)) == 100_000


def test_verified_chunks_of_a_short_blob_fail_at_the_end() -> None:
    got, error = _verified(DATA[:-1], compute(DATA), len(DATA))
    assert isinstance(error, SizeMismatchError) and (error.expected, error.actual) == (
        len(DATA),
        len(DATA) - 1,
    )
    assert b"".join(got) == DATA[:-1]  # a known size: chunks go on until the end, which raises


def test_async_verified_is_the_same_machinery() -> None:
    async def source() -> Any:
        for chunk in _chunks(DATA):
            yield chunk

    async def run() -> bytes:
        return b"".join(
            [chunk async for chunk in async_verified(source(), BlobCheck(compute(DATA), None, "x"))]
        )

    assert asyncio.run(run()) == DATA


# -- blob streams: read, readinto, iteration -----------------------------------------------------------


def _stream(data: bytes = DATA) -> BlobStream:
    check = BlobCheck(compute(data), len(data), "blob x")
    return BlobStream(verified(_chunks(data, 70_000), check), Descriptor("", compute(data), len(data)), check)


def test_a_blob_stream_is_a_file() -> None:
    stream = _stream()
    assert stream.readable() and not stream.seekable()
    assert stream.read(10) == DATA[:10]
    assert stream.read(0) == b""
    buffer = bytearray(100)
    assert stream.readinto(buffer) == 100 and bytes(buffer) == DATA[10:110]
    assert next(iter(stream)) == DATA[110:70_000]  # iteration gives the rest of the chunk at hand
    assert stream.read() == DATA[70_000:]
    assert stream.read(5) == b"" and stream.compressed_bytes == len(DATA)
    stream.close()
    assert stream.closed


def test_a_blob_stream_feeds_buffered_readers_and_tarfile() -> None:
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    data = gzip.compress(tar_bytes.getvalue())
    with tarfile.open(fileobj=_stream(data), mode="r|*") as tar:  # what the README's example does
        assert [(m.name, tar.extractfile(m).read()) for m in tar] == [("a.txt", b"hello")]  # type: ignore[union-attr]
    assert io.BufferedReader(_stream()).read() == DATA


def test_an_async_blob_stream_reads_like_the_sync_one() -> None:
    async def source() -> Any:
        for chunk in _chunks(DATA, 70_000):
            yield chunk

    async def run() -> tuple[bytes, bytes, list[int]]:
        check = BlobCheck(compute(DATA), len(DATA), "x")
        stream = AsyncBlobStream(
            async_verified(source(), check), Descriptor("", compute(DATA), len(DATA)), check
        )
        head = await stream.aread(10)
        buffer = bytearray(90)
        await stream.areadinto(buffer)
        sizes = [len(chunk) async for chunk in stream]
        await stream.aclose()
        return head, bytes(buffer), sizes

    head, middle, sizes = asyncio.run(run())
    assert (head, middle, sizes) == (DATA[:10], DATA[10:100], [69_900, 70_000, 60_000])


# -- layer decompression -------------------------------------------------------------------------------


def _decode(blob: bytes, step: int = 7000) -> bytes:
    decoder = LayerDecoder()
    out = [piece for start in range(0, len(blob), step) for piece in decoder.feed(blob[start : start + step])]
    return b"".join(out + list(decoder.finish()))


ZSTD = zstandard.ZstdCompressor()


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(gzip.compress(DATA), id="gzip"),
        pytest.param(
            gzip.compress(DATA[:5]) + gzip.compress(DATA[5:]) + b"\0" * 9, id="gzip-members-padding"
        ),
        pytest.param(ZSTD.compress(DATA), id="zstd"),
        pytest.param(ZSTD.compress(DATA[:5]) + ZSTD.compress(DATA[5:]), id="zstd-frames"),
        pytest.param(DATA, id="plain"),
    ],
)
def test_layer_decoder_reads_every_layer_kind(blob: bytes) -> None:
    assert _decode(blob) == DATA
    assert _decode(blob, step=1) == DATA if len(blob) < 1000 else True


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        pytest.param(gzip.compress(DATA)[:-4], "truncated", id="gzip-truncated"),
        pytest.param(ZSTD.compress(DATA)[:-4], "truncated", id="zstd-truncated"),
        pytest.param(gzip.compress(DATA) + b"junk", "after the gzip stream", id="gzip-trailing-junk"),
        pytest.param(b"\x1f\x8b" + b"\0" * 20, "unreadable layer", id="gzip-corrupt"),
    ],
)
def test_layer_decoder_refuses_broken_streams(blob: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        _decode(blob)


@pytest.mark.parametrize("compress", [gzip.compress, ZSTD.compress], ids=["gzip", "zstd"])
def test_layer_decoder_output_is_bounded_per_step(compress: Callable[[bytes], bytes]) -> None:
    """A bomb (64 MiB of zeros in a few KiB) comes out in pieces, never at once."""
    blob = compress(b"\0" * (64 << 20))
    decoder = LayerDecoder()
    biggest = total = 0
    for piece in [*decoder.feed(blob), *decoder.finish()]:
        biggest, total = max(biggest, len(piece)), total + len(piece)
    assert total == 64 << 20
    assert biggest <= 32 << 20


# -- types ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)),
        (
            "2024-05-01T12:00:00.123456789Z",
            datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, datetime.timezone.utc),
        ),
        ("2024-05-01T14:30:00+02:30", datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)),
        ("0001-01-01T00:00:00Z", datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc)),
        ("2024-13-01T00:00:00Z", None),
        ("yesterday", None),
        ("2024-05-01T12:00:00", None),  # no zone: not RFC 3339
        (None, None),
    ],
)
def test_parse_time_gives_aware_datetimes(text: str | None, expected: datetime.datetime | None) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


def test_digest_text_constructor_and_repr() -> None:
    text = "sha256:" + "ab" * 32
    digest = Digest(text)
    assert digest == Digest.parse(text) == Digest("sha256", "ab" * 32)
    assert repr(digest) == f"Digest('{text}')" and eval(repr(digest)) == digest
    with pytest.raises(regpeek.UsageError):
        Digest("sha256:xyz")


def _index() -> Index:
    entries = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + c * 64, "size": 1,
         "platform": platform}
        for c, platform in [("a", {"os": "linux", "architecture": "amd64"}),
                            ("b", {"os": "linux", "architecture": "arm", "variant": "v6"}),
                            ("c", {"os": "unknown", "architecture": "unknown"})]
    ]  # fmt: skip
    index = parse(json.dumps({"schemaVersion": 2, "manifests": entries}).encode())
    assert isinstance(index, Index)
    return index


def test_index_select_takes_a_platform_its_text_or_a_matcher() -> None:
    index = _index()
    assert index.platforms == [Platform.parse("linux/amd64"), Platform.parse("linux/arm/v6")]
    wanted = Platform.parse("linux/arm/v7")
    assert (
        index.select("linux/arm/v7")
        == index.select(wanted)
        == index.select(only(wanted))
        == index.manifests[1]
    )
    with pytest.raises(regpeek.PlatformNotFoundError):
        index.select(only(wanted, strict=True))


# -- registry errors --------------------------------------------------------------------------------


def _response(status: int, body: Any, url: str, method: str = "GET", **headers: str) -> httpx.Response:
    request = httpx.Request(method, url)
    return httpx.Response(status, json=body, request=request, headers=headers)


def test_error_details_keep_code_message_and_detail() -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "no", "detail": {"Name": "x"}}]}).encode()
    assert parse_error_body(body) == [RegistryErrorDetail("DENIED", "no", {"Name": "x"})]
    assert parse_error_body(body)[0].detail == {"Name": "x"}


def test_a_registry_error_carries_status_method_url_reference_and_details() -> None:
    url = f"https://user:pw@{HOST}/v2/team/app/manifests/1.0?token=secret"
    body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
    response = _response(404, body, url, "HEAD")
    error = error_for_status(response, response.content, "manifest x", url=httpx.URL(url), method="HEAD",
                             registry=HOST)  # fmt: skip
    assert isinstance(error, NotFoundError) and error.what == "manifest"
    assert (error.status, error.method) == (404, "HEAD")
    assert error.url == f"https://{HOST}/v2/team/app/manifests/1.0"  # no query, no credentials
    assert error.reference == Reference(HOST, "team/app", "1.0")
    assert error.errors == (RegistryErrorDetail("MANIFEST_UNKNOWN", "manifest unknown"),)
    assert str(error) == "manifest x not found (HTTP 404): MANIFEST_UNKNOWN: manifest unknown"


@pytest.mark.parametrize(
    ("path", "code", "what", "reference"),
    [
        (
            "/v2/a/b/blobs/sha256:" + "1" * 64,
            None,
            "blob",
            Reference(HOST, "a/b", digest=Digest("sha256:" + "1" * 64)),
        ),
        ("/v2/a/b/manifests/latest", "NAME_UNKNOWN", "repository", Reference(HOST, "a/b", "latest")),
        ("/v2/a/b/tags/list", None, "tag list", Repository(HOST, "a/b")),
        ("/v2/_catalog", None, None, None),
    ],
)
def test_not_found_says_what(path: str, code: str | None, what: str | None, reference: Any) -> None:
    url = f"https://{HOST}{path}"
    body = {"errors": [{"code": code, "message": ""}]} if code else {}
    response = _response(404, body, url)
    error = error_for_status(response, response.content, "x", url=httpx.URL(url), registry=HOST)
    assert isinstance(error, NotFoundError) and (error.what, error.reference) == (what, reference)
    assert reference_for_url(httpx.URL(url), HOST) == reference


def test_a_403_is_forbidden_and_a_bare_401_says_whether_credentials_were_sent() -> None:
    url = f"https://{HOST}/v2/a/manifests/1"
    forbidden = error_for_status(_response(403, {}, url), b"", "x", url=httpx.URL(url), scope="s")
    assert isinstance(forbidden, AuthError) and (forbidden.reason, forbidden.host, forbidden.scope) == (
        "forbidden", HOST, "s")  # fmt: skip
    bare = _response(401, {}, url)  # not seen by an auth flow (no AuthOutcome on it)
    assert error_for_status(bare, b"", "x").reason == "missing_credentials"  # type: ignore[attr-defined]


SCOPE_A = "repository:a:pull"


@pytest.mark.parametrize(
    ("status", "outcome", "reason", "message"),
    [
        (401, AuthOutcome(HOST, "basic"), "missing_credentials",
         f"no credentials for {HOST} (run `regpeek login {HOST}` or pass --username): HTTP 401 for x"),
        (401, AuthOutcome(HOST, "bearer", scopes=(SCOPE_A,)), "missing_credentials",
         f"no credentials for {HOST} (run `regpeek login {HOST}` or pass --username): HTTP 401 for x"),
        (401, AuthOutcome(HOST, "basic", "--username", "alice"), "refused",
         f"credentials for {HOST} were refused (from --username): HTTP 401 for x"),
        (401, AuthOutcome(HOST, "bearer", "~/.docker/config.json", "alice", (SCOPE_A,), "invalid_token"),
         "refused", f"credentials for {HOST} were refused (from ~/.docker/config.json): HTTP 401 for x"),
        (401, AuthOutcome(HOST, "bearer", "--username", "alice", (SCOPE_A,), "insufficient_scope"), "forbidden",
         f"{HOST} refused access to x (HTTP 401 insufficient_scope; the token had scope {SCOPE_A}; "
         "credentials from --username)"),
        (403, AuthOutcome(HOST, "bearer", "", "", (SCOPE_A,)), "forbidden",
         f"{HOST} refused access to x (HTTP 403; the token had scope {SCOPE_A})"),
        (403, AuthOutcome(HOST, "basic", "--username", "alice"), "forbidden",
         f"{HOST} refused access to x (HTTP 403; as alice from --username)"),
    ],
)  # fmt: skip
def test_the_reason_and_the_message_come_from_the_same_auth_outcome(
    status: int, outcome: AuthOutcome, reason: str, message: str
) -> None:
    url = f"https://{HOST}/v2/a/manifests/1"
    response = _response(status, {}, url)
    response.extensions[AUTH_OUTCOME] = outcome
    error = error_for_status(response, b"", "x", url=httpx.URL(url), registry=HOST, scope=SCOPE_A)
    assert isinstance(error, AuthError)
    assert (error.reason, str(error), error.host, error.scope, error.status) == (
        reason, message, HOST, SCOPE_A, status)  # fmt: skip


def test_a_basic_challenge_with_no_credentials_is_missing_credentials(flavour: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    with pytest.raises(AuthError) as info:
        _call(flavour, handler, "digest", f"{HOST}/a")
    assert (info.value.reason, info.value.host, info.value.scope) == (
        "missing_credentials", HOST, "repository:a:pull")  # fmt: skip


# -- lazy paging (shapes distribution 2.8 does not page) --------------------------------------------


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _call(flavour: str, handler: Callable[[httpx.Request], httpx.Response], method: str, *args: Any,
          **kwargs: Any) -> Any:  # fmt: skip
    options = HttpOptions(retries=0)
    if flavour == "sync":
        with regpeek.Client(options=options, transport=httpx.MockTransport(handler)) as client:
            result = getattr(client, method)(*args, **kwargs)
            return list(result) if method.startswith("iter_") else result

    async def run() -> Any:
        async with regpeek.AsyncClient(options=options, transport=httpx.MockTransport(handler)) as client:
            if method.startswith("iter_"):
                return [item async for item in getattr(client, method)(*args, **kwargs)]
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(run())


def test_iter_tags_asks_for_the_next_page_only_when_needed(flavour: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        if "last=b" in str(request.url):
            return httpx.Response(200, json={"tags": ["c"]})
        return httpx.Response(
            200, json={"tags": ["a", "b"]}, headers={"Link": '</v2/x/tags/list?n=2&last=b>; rel="next"'}
        )

    options = HttpOptions(retries=0)
    if flavour == "sync":
        with regpeek.Client(options=options, transport=httpx.MockTransport(handler)) as client:
            tags = client.iter_tags(f"{HOST}/x", page_size=2)
            first = next(tags)
            pages_for_first = len(seen)
            rest = list(tags)
    else:

        async def run() -> tuple[str, int, list[str]]:
            async with regpeek.AsyncClient(options=options, transport=httpx.MockTransport(handler)) as client:
                tags = client.iter_tags(f"{HOST}/x", page_size=2)
                got = await tags.__anext__()
                return got, len(seen), [tag async for tag in tags]

        first, pages_for_first, rest = asyncio.run(run())
    assert (first, pages_for_first, rest) == ("a", 1, ["b", "c"])
    assert seen == ["/v2/x/tags/list?n=2", "/v2/x/tags/list?n=2&last=b"]


# -- the package ---------------------------------------------------------------------------------------


def test_submodules_and_the_old_cache_path_load_on_first_use() -> None:
    code = (
        "import sys, regpeek\n"
        "assert 'httpx' not in sys.modules and 'regpeek.disk.cache' not in sys.modules\n"
        "assert regpeek.cache.BlobCache is regpeek.BlobCache\n"
        "assert regpeek.pull.pull and regpeek.aio.pull and regpeek.rootfs.unpack_image\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout == "ok\n", done.stderr


def test_every_public_name_resolves_and_dir_lists_them() -> None:
    for name in regpeek.__all__:
        assert getattr(regpeek, name) is not None, name
    assert set(regpeek.__all__) <= set(dir(regpeek))
    with pytest.raises(AttributeError):
        regpeek.no_such_name  # noqa: B018


def test_too_large_errors_say_how_large_and_the_limit(flavour: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{}" * 10, headers={"Content-Length": str(5 << 20)})

    with pytest.raises(regpeek.TooLargeError) as info:
        _call(flavour, handler, "fetch_manifest", f"{HOST}/a:1")
    assert (info.value.size, info.value.limit) == (5 << 20, 4 << 20)
