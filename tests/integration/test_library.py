"""The Python library as a program uses it, against the real registry, through both clients: images and
layers (``client.image``, ``layer.open``/``download``), blobs streamed and verified (``open_blob``,
``download_blob``: resumed after a reset, refused before the last bytes when corrupt, decompressed),
errors a program can branch on, paging, thread-shared clients and the async operations."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import regpeek
from regpeek.formats.digest import Digest
from regpeek.formats.manifest import Descriptor
from regpeek.formats.reference import Reference, Repository
from tests.integration.api import Api, client_options
from tests.support import faultproxy as fp
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import PASSWORD, USERNAME, USERS
from tests.support.images import PushedImage, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry, start_registry
from tests.support.tokenserver import TokenServer

BIG = 3 * 1024 * 1024 + 4321  # several chunks: a read before the last one can be told apart
RESET_AT = 1024 * 1024 + 17


pytestmark = pytest.mark.usefixtures("no_user_credentials")  # the developer's auth files stay out


@pytest.fixture(scope="module")
def big(registry: Registry) -> PushedImage:
    """``big/layers``: a 3 MiB random (incompressible) gzip layer, then a zstd and a plain one."""
    files: list[dict[str, Any]] = [
        {"data/random.bin": os.urandom(BIG)},
        {"etc/zstd.txt": b"from a zstd layer\n" * 100},
        {"etc/plain.txt": b"from a plain layer\n"},
    ]
    with pusher_for(registry) as pusher:
        return push_oci_image(
            pusher, "big/layers", "latest", layers=files, compression=("gzip", "zstd", "none")
        )


def _ref(registry: Registry | FaultProxy, repo: str) -> str:
    return f"{registry.host}/{repo}"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- one helper per operation, through the chosen client ------------------------------------------


def _read(flavour: str, registry: Registry, repo: str, blob: Any, *, decompress: bool = False,
          size: int = 65536, **client: Any) -> tuple[list[bytes], BaseException | None]:  # fmt: skip
    """Read a blob with ``read(size)`` until the end or an error: the pieces returned, and the error."""
    pieces: list[bytes] = []
    options = client_options(registry, **client)
    if flavour == "sync":
        try:
            with (
                regpeek.Client(**options) as sync_client,
                sync_client.open_blob(repo, blob, decompress=decompress) as stream,
            ):
                while piece := stream.read(size):
                    pieces.append(piece)
        except regpeek.RegpeekError as error:
            return pieces, error
        return pieces, None

    async def run() -> BaseException | None:
        try:
            async with (
                regpeek.AsyncClient(**options) as async_client,
                async_client.open_blob(repo, blob, decompress=decompress) as stream,
            ):
                while piece := await stream.aread(size):
                    pieces.append(piece)
        except regpeek.RegpeekError as error:
            return error
        return None

    return pieces, asyncio.run(run())


def _image(flavour: str, registry: Registry, ref: str, **client: Any) -> Any:
    return Api(flavour).call(registry, "image", ref, client=client)


def _download(flavour: str, registry: Registry, repo: str, blob: Any, path: Path, **client: Any) -> Any:
    return Api(flavour).call(registry, "download_blob", repo, blob, path, client=client)


# -- images and layers --------------------------------------------------------------------------


def test_image_has_everything_and_inspect_costs_nothing(
    api: Api, registry: Registry, samples: dict[str, Any]
) -> None:
    pushed = samples["samples/index"]
    child = pushed.child("linux", "arm64", "v8")
    registry.mark()
    image = api.call(registry, "image", _ref(registry, "samples/index"), platform="linux/arm64")
    image_requests = [(r.method, r.path) for r in registry.requests()]
    assert image.reference == Reference(registry.host, "samples/index", "latest")
    assert (str(image.digest), str(image.index_digest)) == (child.digest, pushed.digest)
    assert image.manifest.raw == child.manifest and image.config.raw == child.config.data
    assert (image.platform.os, image.platform.architecture) == ("linux", "arm64")
    assert [str(layer.digest) for layer in image.layers] == [layer.digest for layer in child.layers]
    assert [str(layer.diff_id) for layer in image.layers] == list(child.diff_ids)
    for layer in image.layers:  # one descriptor type: a layer is a Layer and a Descriptor
        assert isinstance(layer, regpeek.Layer) and isinstance(layer, Descriptor)
        assert isinstance(layer.diff_id, Digest)
    registry.mark()
    assert (
        image.inspect().to_dict()
        == api.call(registry, "inspect", _ref(registry, "samples/index"), platform="linux/arm64").to_dict()
    )
    assert [(r.method, r.path) for r in registry.requests()] == image_requests  # image() == inspect()


def test_each_layer_opens_raw_and_decompressed(api: Api, registry: Registry, big: PushedImage) -> None:
    """gzip, zstd and plain layers: the blob as served, and its tar (whose digest is the diff_id)."""
    for number, layer in enumerate(big.layers):
        raw, error = _read(api.flavour, registry, _ref(registry, "big/layers"), _descriptor(layer))
        assert error is None and b"".join(raw) == layer.data
        tar, error = _read(api.flavour, registry, _ref(registry, "big/layers"), layer.digest, decompress=True)
        assert error is None
        assert _sha(b"".join(tar)) == big.diff_ids[number]  # gzip, zstd, plain alike


def _descriptor(blob: Any) -> Descriptor:
    return Descriptor(blob.media_type, Digest.parse(blob.digest), blob.size)


def test_layer_open_and_download_from_the_image(api: Api, registry: Registry, big: PushedImage,
                                                tmp_path: Path) -> None:  # fmt: skip
    options = client_options(registry)
    if api.flavour == "sync":
        with regpeek.Client(**options) as client:
            image = client.image(_ref(registry, "big/layers"))
            with (
                image.layers[1].open(decompress=True) as stream,
                tarfile.open(fileobj=stream, mode="r|*") as tar,
            ):
                names = [(member.name, tar.extractfile(member).read() if member.isfile() else None)  # type: ignore[union-attr]
                         for member in tar]  # fmt: skip
            saved = [image.layers[n].download(tmp_path / f"layer{n}") for n in range(len(image.layers))]
    else:

        async def run() -> tuple[list[tuple[str, bytes | None]], list[regpeek.DownloadedBlob]]:
            async with regpeek.AsyncClient(**options) as client:
                image = await client.image(_ref(registry, "big/layers"))
                async with image.layers[1].open(decompress=True) as stream:
                    data = await stream.aread()
                with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as tar:
                    found = [(m.name, tar.extractfile(m).read() if m.isfile() else None) for m in tar]  # type: ignore[union-attr]
                return found, [
                    await layer.download(tmp_path / f"layer{n}") for n, layer in enumerate(image.layers)
                ]

        names, saved = asyncio.run(run())
    assert names == [("etc/zstd.txt", b"from a zstd layer\n" * 100)]
    for number, layer in enumerate(big.layers):
        assert (tmp_path / f"layer{number}").read_bytes() == layer.data
        assert (str(saved[number].digest), saved[number].size, saved[number].downloaded) == (
            layer.digest, layer.size, True)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer0", "layer1", "layer2"]  # no temp files


def test_layers_of_a_layout_image_open_offline(api: Api, registry: Registry, samples: dict[str, Any],
                                               tmp_path: Path) -> None:  # fmt: skip
    with regpeek.Client(**client_options(registry)) as client:
        regpeek.pull.pull(client, _ref(registry, "samples/oci-mixed"), tmp_path / "layout")
    pushed = samples["samples/oci-mixed"]
    image = _image(api.flavour, registry, f"oci:{tmp_path / 'layout'}:latest")
    assert str(image.digest) == pushed.digest
    for number, layer in enumerate(image.layers):
        tar, error = _read(api.flavour, registry, f"oci:{tmp_path / 'layout'}", layer, decompress=True)
        assert error is None and _sha(b"".join(tar)) == pushed.diff_ids[number]
    for ref, what in (
        (f"oci:{tmp_path / 'nothing'}:x", "repository"),
        (f"oci:{tmp_path / 'layout'}:x", "manifest"),
    ):
        with pytest.raises(regpeek.NotFoundError) as info:
            _image(api.flavour, registry, ref)
        assert info.value.what == what


# -- streaming through faults ---------------------------------------------------------------------


def test_a_mid_blob_reset_is_resumed_with_range(api: Api, registry: Registry, big: PushedImage) -> None:
    layer = big.layers[0]
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(fp.reset_after(RESET_AT), path=f"/blobs/{layer.digest}$", method="GET", times=1)
        pieces, error = _read(api.flavour, registry, _ref(proxy, "big/layers"), _descriptor(layer), retries=2)
        gets = proxy.matching(f"/blobs/{layer.digest}$", method="GET")
    assert error is None
    assert b"".join(pieces) == layer.data
    assert [(r.header("Range"), r.status) for r in gets] == [(None, 200), (f"bytes={RESET_AT}-", 206)]


def test_a_registry_that_ignores_range_is_read_again_and_what_was_read_is_skipped(
    api: Api, registry: Registry, big: PushedImage
) -> None:
    layer = big.layers[0]
    with FaultProxy(registry.url, strip_request_headers=["range"]) as proxy:
        proxy.add(fp.reset_after(RESET_AT), path=f"/blobs/{layer.digest}$", method="GET", times=1)
        pieces, error = _read(api.flavour, registry, _ref(proxy, "big/layers"), layer.digest, retries=2)
        statuses = [r.status for r in proxy.matching(f"/blobs/{layer.digest}$", method="GET")]
    assert error is None and statuses == [200, 200]
    assert b"".join(pieces) == layer.data


@pytest.mark.parametrize("known_size", [True, False], ids=["descriptor", "digest-only"])
def test_a_corrupted_blob_raises_on_the_last_read(
    api: Api, registry: Registry, big: PushedImage, known_size: bool
) -> None:
    """A byte flipped in the middle: every read before the last returns, the last one raises, and the
    end of the blob is never handed out (with or without a known size)."""
    layer = big.layers[0]
    blob: Any = _descriptor(layer) if known_size else layer.digest
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(fp.flip_byte(), path=f"/blobs/{layer.digest}$", method="GET")
        pieces, error = _read(api.flavour, registry, _ref(proxy, "big/layers"), blob)
    assert isinstance(error, regpeek.DigestMismatchError)
    assert error.expected == Digest.parse(layer.digest)
    assert error.actual != error.expected and isinstance(error.actual, Digest)
    received = sum(len(piece) for piece in pieces)
    assert len(layer.data) // 2 < received < layer.size  # reads went on until the last: that one raised
    flipped = bytearray(layer.data)
    flipped[len(flipped) // 2] ^= 0x01
    assert b"".join(pieces) == flipped[:received]


def test_a_blob_longer_than_its_descriptor_raises_before_the_extra_bytes(
    api: Api, registry: Registry, big: PushedImage
) -> None:
    layer = big.layers[0]
    short = Descriptor(layer.media_type, Digest.parse(layer.digest), layer.size - 10)
    pieces, error = _read(api.flavour, registry, _ref(registry, "big/layers"), short)
    assert isinstance(error, regpeek.SizeMismatchError)
    assert (error.expected, error.actual > error.expected) == (layer.size - 10, True)
    assert sum(len(piece) for piece in pieces) < layer.size - 10


def test_a_corrupt_gzip_layer_fails_even_decompressed(api: Api, registry: Registry, big: PushedImage) -> None:
    layer = big.layers[0]
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(fp.flip_byte(), path=f"/blobs/{layer.digest}$", method="GET")
        _, error = _read(
            api.flavour, registry, _ref(proxy, "big/layers"), _descriptor(layer), decompress=True
        )
    assert isinstance(error, regpeek.VerificationError)  # the digest, or the gzip stream it broke


# -- download_blob ----------------------------------------------------------------------------------


def test_download_blob_skips_what_is_there_and_never_leaves_a_wrong_file(
    api: Api, registry: Registry, big: PushedImage, tmp_path: Path
) -> None:
    layer = big.layers[0]
    target = tmp_path / "blob"
    done = _download(api.flavour, registry, _ref(registry, "big/layers"), layer.digest, target)
    assert (done.downloaded, done.size, target.read_bytes() == layer.data) == (True, layer.size, True)
    registry.mark()
    again = _download(api.flavour, registry, _ref(registry, "big/layers"), _descriptor(layer), target)
    assert again.downloaded is False
    assert registry.requests() == []  # hashed on disk, not downloaded
    target.write_bytes(b"an older file")
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(fp.flip_byte(), path=f"/blobs/{layer.digest}$", method="GET")
        with pytest.raises(regpeek.DigestMismatchError):
            _download(api.flavour, registry, _ref(proxy, "big/layers"), layer.digest, target)
    assert target.read_bytes() == b"an older file"  # replaced only by a verified blob
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]  # no temporary file left


def test_download_blob_resumes(api: Api, registry: Registry, big: PushedImage, tmp_path: Path) -> None:
    layer = big.layers[0]
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(fp.reset_after(RESET_AT), path=f"/blobs/{layer.digest}$", method="GET", times=1)
        done = _download(api.flavour, registry, _ref(proxy, "big/layers"), _descriptor(layer),
                         tmp_path / "blob", retries=2)  # fmt: skip
    assert (done.resumed, (tmp_path / "blob").read_bytes() == layer.data) == (1, True)


# -- errors a program can act on --------------------------------------------------------------------


def test_not_found_says_what_and_where(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    missing = "sha256:" + "0" * 64
    cases: list[tuple[str, tuple[Any, ...], str, Any, str | None]] = [
        ("inspect", (_ref(registry, "samples/oci:nope"),), "manifest",
         Reference(registry.host, "samples/oci", "nope"), "MANIFEST_UNKNOWN"),
        ("blob_bytes", (_ref(registry, "samples/oci"), Descriptor("", Digest.parse(missing), 10)), "blob",
         Reference(registry.host, "samples/oci", digest=Digest.parse(missing)), "BLOB_UNKNOWN"),
        ("tags", (_ref(registry, "no/such"),), "repository", Repository(registry.host, "no/such"), "NAME_UNKNOWN"),
    ]  # fmt: skip
    for method, args, what, reference, code in cases:
        with pytest.raises(regpeek.NotFoundError) as info:
            api.call(registry, method, *args)
        error = info.value
        assert (error.what, error.status, error.method, error.reference) == (what, 404, "GET", reference)
        assert [detail.code for detail in error.errors] == [code]
        assert error.url is not None and error.url.startswith(f"http://{registry.host}/v2/")
    with pytest.raises(regpeek.PlatformNotFoundError) as platform:
        api.call(registry, "image", _ref(registry, "samples/index"), platform="linux/s390x")
    assert platform.value.what == "platform" and platform.value.wanted == "linux/s390x"


def test_an_error_url_has_no_query_string(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(fp.status(503), path="/tags/list")
        with pytest.raises(regpeek.RegistryUnavailableError) as info:
            api.call(registry, "tags", _ref(proxy, "samples/oci"), page_size=2, last="a")
    assert info.value.url == f"http://{proxy.host}/v2/samples/oci/tags/list"
    assert info.value.status == 503 and info.value.reference == Repository(proxy.host, "samples/oci")


@pytest.fixture(scope="module")
def strict_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenServer]]:
    """Token auth with no anonymous pull, and ``denied/repo`` nobody may read."""
    workdir = tmp_path_factory.mktemp("strict-token")
    with (
        TokenServer(workdir / "tokens", users=USERS, anonymous_pull=False, denied=("denied/repo",)) as tokens,
        start_registry(workdir / "registry", auth="token", token_server=tokens) as registry,
    ):
        with pusher_for(registry) as pusher:
            push_oci_image(
                pusher, "open/repo", "latest"
            )  # denied/repo needs no image: access is refused first
        yield registry, tokens


@pytest.fixture(scope="module")
def basic_samples(htpasswd_registry: Registry) -> Registry:
    with pusher_for(htpasswd_registry) as pusher:
        push_oci_image(pusher, "open/repo", "latest")
    return htpasswd_registry


ALICE = {"username": USERNAME, "password": PASSWORD}
WRONG = {"username": USERNAME, "password": "not-the-password"}


@pytest.mark.parametrize(
    ("reason", "repo", "credentials"),
    [
        ("missing_credentials", "open/repo", {}),  # an anonymous token without the scope
        ("refused", "open/repo", WRONG),  # the token service refuses the password
        ("forbidden", "denied/repo", ALICE),  # a token, but not for that repository
        ("token_service", "open/repo", ALICE),  # the token service answers 403
    ],
)
def test_every_auth_reason_with_token_auth(api: Api, strict_tokens: tuple[Registry, TokenServer],
                                           reason: str, repo: str, credentials: dict[str, str]) -> None:  # fmt: skip
    registry, tokens = strict_tokens
    if reason == "token_service":
        tokens.fail_next(403)
    with pytest.raises(regpeek.AuthError) as info:
        api.call(registry, "digest", _ref(registry, repo), client=credentials)
    error = info.value
    assert (error.reason, error.host) == (reason, registry.host)
    assert error.scope is not None and f"repository:{repo}:pull" in error.scope
    assert PASSWORD not in str(error) and "not-the-password" not in str(error)


@pytest.mark.parametrize(
    ("reason", "credentials"),
    [("missing_credentials", {}), ("refused", WRONG), ("forbidden", ALICE)],
)
def test_every_auth_reason_with_htpasswd(api: Api, basic_samples: Registry, reason: str,
                                         credentials: dict[str, str]) -> None:  # fmt: skip
    """Basic auth has no token service; a 403 (a registry's authorization layer) comes through the proxy."""
    registry = basic_samples
    with FaultProxy.for_registry(registry) as proxy:
        if reason == "forbidden":
            proxy.add(
                fp.status(403, data=b'{"errors":[{"code":"DENIED","message":"no"}]}'), path="/manifests/"
            )
        with pytest.raises(regpeek.AuthError) as info:
            api.call(registry, "inspect", _ref(proxy, "open/repo"), client=credentials)
    error = info.value
    assert (error.reason, error.host, error.scope) == (reason, proxy.host, "repository:open/repo:pull")
    assert error.status == (403 if reason == "forbidden" else 401)
    if reason == "forbidden":
        assert [d.code for d in error.errors] == ["DENIED"]


# -- sharing a client -------------------------------------------------------------------------------


def test_sixteen_threads_on_one_scope_fetch_one_token(token_registry: tuple[Registry, TokenServer]) -> None:
    registry, tokens = token_registry
    with pusher_for(registry) as pusher:
        pushed = push_oci_image(pusher, "threads/one", "latest")
    tokens.clear()
    start = threading.Barrier(16)
    results: list[str] = []
    failures: list[BaseException] = []

    def work(client: regpeek.Client) -> None:
        start.wait()
        try:
            results.append(str(client.digest(_ref(registry, "threads/one"))))
        except BaseException as error:  # surfaced below
            failures.append(error)

    with regpeek.Client(**client_options(registry)) as client:
        threads = [threading.Thread(target=work, args=(client,)) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert results == [pushed.digest] * 16
    assert len([r for r in tokens.requests if "repository:threads/one:pull" in r.scopes]) == 1


def test_sync_inspect_many_runs_in_threads_in_order(registry: Registry, samples: dict[str, Any]) -> None:
    refs = [_ref(registry, repo) for repo in ("samples/oci", "samples/none", "samples/docker")] + [
        "sif:x.sif"
    ]
    with regpeek.Client(**client_options(registry)) as client:
        outcomes = list(regpeek.inspect_many(client, refs, jobs=3))

    async def run() -> list[regpeek.Outcome]:
        async with regpeek.AsyncClient(**client_options(registry)) as client:
            return [outcome async for outcome in regpeek.inspect_many(client, refs, jobs=3)]

    assert [(o.reference, o.exit_code) for o in outcomes] == list(zip(refs, [0, 3, 0, 2], strict=True))
    assert [o.to_dict() for o in outcomes] == [o.to_dict() for o in asyncio.run(run())]


# -- paging ------------------------------------------------------------------------------------------


def test_catalog_pages_fetched_as_consumed(api: Api, fresh_registry: Registry) -> None:
    """distribution 2.8.2 pages its catalog (its tag lists come whole, whatever ``n``)."""
    with pusher_for(fresh_registry) as pusher:
        for name in ("a", "b", "c", "d", "e"):
            push_oci_image(pusher, f"paged/{name}", "latest")
    names = [f"paged/{name}" for name in ("a", "b", "c", "d", "e")]
    fresh_registry.mark()
    listing = api.call(fresh_registry, "catalog", fresh_registry.host, 2)
    assert (listing.names, listing.pages) == (names, 3)
    assert api.call(fresh_registry, "catalog", fresh_registry.host, 2, "paged/b").names == names[2:]
    options = client_options(fresh_registry)
    fresh_registry.mark()
    if api.flavour == "sync":
        with regpeek.Client(**options) as client:
            repos = client.iter_catalog(fresh_registry.host, page_size=2)
            first = [next(repos), next(repos)]
            requests_for_two = len(fresh_registry.requests())
            rest = list(repos)
    else:

        async def run() -> tuple[list[str], int, list[str]]:
            async with regpeek.AsyncClient(**options) as client:
                repos = client.iter_catalog(fresh_registry.host, page_size=2)
                got = [await repos.__anext__(), await repos.__anext__()]
                count = len(fresh_registry.requests())
                return got, count, [name async for name in repos]

        first, requests_for_two, rest = asyncio.run(run())
    assert (first + rest, requests_for_two) == (names, 1)  # two names cost one page
    assert len(fresh_registry.requests()) == 3


def test_tags_ask_for_a_page_size_and_a_start(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    with FaultProxy.for_registry(registry) as proxy:
        assert api.call(registry, "tags", _ref(proxy, "samples/oci"), page_size=2, last="a") == ["latest"]
        [request] = proxy.matching("/tags/list")
    assert request.path == "/v2/samples/oci/tags/list?n=2&last=a"


def test_iter_referrers_agrees_with_referrers(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    ref = _ref(registry, "samples/oci")
    listed = api.call(registry, "referrers", ref)
    if api.flavour == "sync":
        with regpeek.Client(**client_options(registry)) as client:
            iterated = list(client.iter_referrers(ref))
    else:

        async def run() -> list[Descriptor]:
            async with regpeek.AsyncClient(**client_options(registry)) as client:
                return [entry async for entry in client.iter_referrers(ref)]

        iterated = asyncio.run(run())
    assert iterated == listed.manifests


# -- the async operations -----------------------------------------------------------------------------


def test_aio_operations_match_the_sync_ones(
    registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    ref = _ref(registry, "samples/oci-mixed")

    async def run() -> tuple[regpeek.PullResult, regpeek.UnpackResult, bytes]:
        async with regpeek.AsyncClient(**client_options(registry)) as client:
            pulled = await regpeek.aio.pull(client, ref, tmp_path / "layout")
            unpacked = await regpeek.aio.unpack_image(client, ref, tmp_path / "rootfs")
            out = io.BytesIO()
            await regpeek.aio.export_image(client, ref, out)
            return pulled, unpacked, out.getvalue()

    pulled, unpacked, exported = asyncio.run(run())
    with regpeek.Client(**client_options(registry)) as client:
        sync_pull = regpeek.pull.pull(client, ref, tmp_path / "layout2")
        out = io.BytesIO()
        regpeek.rootfs.export_image(client, ref, out)
    assert pulled.digest == sync_pull.digest == Digest.parse(samples["samples/oci-mixed"].digest)
    assert unpacked.digest == pulled.digest
    assert (tmp_path / "rootfs" / "extra" / "zstd.txt").read_bytes() == b"zstd layer\n"
    assert exported == out.getvalue()


def test_aio_refuses_a_client_with_an_async_transport() -> None:
    import httpx

    async def run() -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(500))
        async with regpeek.AsyncClient(transport=transport) as client:
            await regpeek.aio.pull(client, "example.com/a", "/nonexistent")

    with pytest.raises(regpeek.UsageError, match="no sync twin"):
        asyncio.run(run())


# -- what a notebook shows ------------------------------------------------------------------------------


def test_reprs_show_settings_and_summaries_never_secrets_or_bytes(
    registry: Registry, samples: dict[str, Any]
) -> None:
    with regpeek.Client(**client_options(registry), username=USERNAME, password=PASSWORD) as client:
        text = repr(client)
        image = client.image(_ref(registry, "samples/index"), platform="linux/arm/v7")
    assert PASSWORD not in text and f"username='{USERNAME}'" in text and "plain_http=True" in text
    digest = samples["samples/index"].child("linux", "arm", "v7").digest
    assert repr(image.digest) == f"Digest('{digest}')"
    for value in (image.manifest, image.config, image.layers[0], image):
        assert "raw=" not in repr(value) and "=b'" not in repr(value) and "document=" not in repr(value)

    class Printer:
        def __init__(self) -> None:
            self.parts: list[str] = []

        def text(self, value: str) -> None:
            self.parts.append(value)

    printer = Printer()
    image._repr_pretty_(printer, False)
    shown = "".join(printer.parts)
    assert shown == image.inspect().summary()
    assert shown.splitlines()[0] == f"{registry.host}/samples/index:latest"
    index_digest = samples["samples/index"].digest  # Digest: the index, pinning every platform
    assert re.search(rf"^  Digest +{index_digest}$", shown, re.MULTILINE)
    assert re.search(rf"^  Image digest +{digest}$", shown, re.MULTILINE) and "linux/arm/v7 *" in shown
