"""The pieces of ``copy`` that need no registry: locations, the verifying feed, push-protocol headers,
scopes, the token lock shared by threads, and the archive readers and writers."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import regpeek
from regpeek.copy import _Feed, _SourceFailed, _tag_given, parse_location
from regpeek.disk.archive import DockerArchive, OciArchive, write_docker_archive, write_oci_archive
from regpeek.disk.layout import REF_NAME, Layout, LayoutReference
from regpeek.errors import DigestMismatchError, MalformedError, SizeMismatchError, UsageError
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest, DigestVerifier, compute
from regpeek.formats.manifest import Descriptor, ImageManifest, parse
from regpeek.formats.reference import Reference
from regpeek.network._sync.push import _location, _range_end
from regpeek.network.auth import _merged, scope_for_path
from regpeek.network.credentials import CredentialStore
from tests.support.layers import Entry, write_oci_layout

# -- locations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "name", "transport"),
    [
        ("oci:/a/b", "/a/b", None, "oci"),
        ("oci:/a/b:latest", "/a/b", "latest", "oci"),
        ("oci:rel/dir:x:y", "rel/dir:x", "y", "oci"),
        ("oci-archive:/t/a.tar", "/t/a.tar", None, "oci-archive"),
        ("oci-archive:/t/a.tar:v1", "/t/a.tar", "v1", "oci-archive"),
        ("docker-archive:/t/d.tar", "/t/d.tar", None, "docker-archive"),
        ("docker-archive:/t/d.tar:example.com/app:v3", "/t/d.tar", "example.com/app:v3", "docker-archive"),
        ("docker-archive:d.tar:alpine:3", "d.tar", "alpine:3", "docker-archive"),
    ],
)  # fmt: skip
def test_local_references(text: str, path: str, name: str | None, transport: str) -> None:
    reference = LayoutReference.parse(text)
    assert (str(reference.path), reference.name, reference.transport) == (path, name, transport)
    assert str(reference) == text
    assert LayoutReference.is_local(text)
    assert parse_location(text) == reference


@pytest.mark.parametrize("text", ["oci:", "docker-archive:", "sif:x.sif", "tar:x"])
def test_bad_local_references(text: str) -> None:
    with pytest.raises(UsageError):
        LayoutReference.parse(text)


@pytest.mark.parametrize(
    ("text", "given"),
    [("host:5000/a/b", False), ("host:5000/a/b:v1", True), ("docker://host/a", False),
     ("docker://host/a@sha256:" + "0" * 64, True), ("alpine", False), ("alpine:3", True)],
)  # fmt: skip
def test_destination_tag_given(text: str, given: bool) -> None:
    assert _tag_given(text) is given
    assert isinstance(parse_location(text), Reference)


# -- the verifying feed ----------------------------------------------------------------------------


def _feed(data: bytes, pieces: list[bytes], start: int = 0) -> tuple[_Feed, dict[int, DigestVerifier]]:
    descriptor = Descriptor(mt.OCI_LAYER, compute(data), len(data))
    snapshots = {0: DigestVerifier()}
    verifier = DigestVerifier()
    verifier.update(data[:start])
    return _Feed(iter(pieces), descriptor, verifier, snapshots, threading.Event(), None, "blob"), snapshots


def test_feed_hands_over_exact_counts_and_keeps_hash_states() -> None:
    data = bytes(range(256)) * 40
    feed, snapshots = _feed(data, [data[i : i + 1000] for i in range(0, len(data), 1000)])
    first = b"".join(feed.take(4096))
    rest = b"".join(feed.take(len(data) - 4096))
    assert first + rest == data
    assert sorted(snapshots) == [0, 4096]
    resumed = snapshots[4096].copy()
    resumed.update(data[4096:])
    assert resumed.digest() == compute(data)


def test_feed_checks_the_digest_before_the_last_piece_goes_out() -> None:
    data = b"a" * 5000
    corrupt = b"a" * 4999 + b"b"
    feed, _ = _feed(data, [corrupt[:3000], corrupt[3000:]])
    sent: list[bytes] = []
    with pytest.raises(_SourceFailed) as failure:
        sent.extend(feed.take(len(data)))
    assert isinstance(failure.value.error, DigestMismatchError)
    assert sum(len(piece) for piece in sent) < len(data)  # the last byte never left


def test_feed_short_source_is_a_size_mismatch() -> None:
    data = b"x" * 100
    feed, _ = _feed(data, [data[:60]])
    with pytest.raises(_SourceFailed) as failure:
        list(feed.take(100))
    assert isinstance(failure.value.error, SizeMismatchError)


def test_feed_skip_hashes_what_the_registry_holds() -> None:
    data = b"0123456789" * 100
    feed, _ = _feed(data, [data[200:]], start=200)
    feed.skip(300)  # the registry holds 500 bytes
    assert b"".join(feed.take(500)) == data[500:]


# -- push protocol headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_before", "held"),
    [(None, 0, None), ("0-0", 0, 0), ("0-0", 1, 1), ("0-1048575", 0, 1048576), ("bytes=0-99", 0, 100)],
)  # fmt: skip
def test_upload_range(value: str | None, expected_before: int, held: int | None) -> None:
    assert _range_end(value, expected_before) == held


@pytest.mark.parametrize("value", ["1-5", "0-", "junk", "0-x"])
def test_upload_range_invalid(value: str) -> None:
    with pytest.raises(MalformedError):
        _range_end(value, 0)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/v2/a/blobs/uploads/u1?_state=s%3D", "https://r.test/v2/a/blobs/uploads/u1?_state=s%3D"),
        ("https://r.test:5000/v2/a/blobs/uploads/u2", "https://r.test:5000/v2/a/blobs/uploads/u2"),
        ("https://storage.test/upload?sig=1", "https://storage.test/upload?sig=1"),
    ],
)
def test_location_relative_or_absolute(location: str, expected: str) -> None:
    request = httpx.Request("POST", "https://r.test/v2/a/blobs/uploads/")
    response = httpx.Response(202, headers={"Location": location}, request=request)
    assert str(_location(response, "upload")) == expected


def test_location_missing() -> None:
    response = httpx.Response(202, request=httpx.Request("POST", "https://r.test/v2/a/blobs/uploads/"))
    with pytest.raises(MalformedError):
        _location(response, "upload")


# -- scopes ----------------------------------------------------------------------------------------


def test_push_and_mount_scopes() -> None:
    assert scope_for_path("/v2/a/blobs/x", "HEAD", push=True) == "repository:a:pull,push"
    assert scope_for_path("/v2/b/blobs/uploads/", "POST", mount_from="a") == (
        "repository:b:pull,push repository:a:pull"
    )
    assert _merged(["repository:a:pull", "repository:a:pull,push", "repository:b:pull", "registry:catalog:*"]) == [
        "repository:a:pull,push", "repository:b:pull", "registry:catalog:*",
    ]  # fmt: skip


def test_allow_push_widens_reads_and_mounts_carry_both_repositories() -> None:
    auth = regpeek.Client().auth
    auth.register("r.test", "r.test")
    auth.allow_push("r.test", "dst")
    head = httpx.Request("HEAD", "https://r.test/v2/dst/blobs/sha256:x")
    assert auth.scope(head) == "repository:dst:pull,push"
    assert auth.scope(httpx.Request("GET", "https://r.test/v2/src/manifests/1")) == "repository:src:pull"
    mount = httpx.Request("POST", "https://r.test/v2/dst/blobs/uploads/?mount=sha256:x&from=src")
    assert auth.scope(mount) == "repository:dst:pull,push repository:src:pull"


def test_threads_share_one_token() -> None:
    """Eight threads start at once on a host that wants a token: one token request, not eight."""
    tokens: list[httpx.Request] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            with lock:
                tokens.append(request)
            return httpx.Response(200, json={"token": "t", "expires_in": 300})
        if request.headers.get("Authorization") != "Bearer t":
            challenge = 'Bearer realm="https://auth.test/token",service="r.test"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, headers={"Content-Length": "1"})

    with regpeek.Client(transport=httpx.MockTransport(handler), credentials=CredentialStore()) as client:
        repo = Reference.parse("r.test/a/b:1").repo
        with ThreadPoolExecutor(8) as pool:
            sizes = list(pool.map(lambda n: client.blob_size(repo, compute(str(n).encode())), range(8)))
    assert sizes == [1] * 8
    assert len(tokens) == 1


# -- archives ----------------------------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    write_oci_layout(
        tmp_path / "layout",
        [[Entry("etc", "dir"), Entry("etc/a", data=b"a\n")], [Entry("b", data=b"b" * 5000)]],
        tag="v1",
    )
    return Layout(tmp_path / "layout")


def _image(store: Layout | OciArchive | DockerArchive, name: str | None) -> ImageManifest:
    image = parse(store.read_blob(store.find(name)))
    assert isinstance(image, ImageManifest)
    return image


def test_oci_archive_round_trip(layout: Layout, tmp_path: Path) -> None:
    target = tmp_path / "out.tar"
    write_oci_archive(layout, target)
    with tarfile.open(target) as tar:
        names = tar.getnames()
        assert names[:3] == ["oci-layout", "index.json", "blobs"]
        assert {member.mtime for member in tar.getmembers()} == {0}
    archive = OciArchive(target)
    assert archive.exists() and archive.entries() == layout.entries()
    image = _image(archive, "v1")
    for blob in (image.config, *image.layers):
        with archive.open_verified(blob) as source:
            assert source.read() == layout.read_blob(blob, max_size=1 << 30)
    with archive.open_blob(image.layers[1].digest, image.layers[1].size) as member:
        member.seek(10)
        assert member.read(5) == layout.read_blob(image.layers[1], max_size=1 << 30)[10:15]
    assert list(tmp_path.glob(".out.tar.*")) == []


def test_docker_archive_round_trip(layout: Layout, tmp_path: Path) -> None:
    """Layers go in uncompressed, named by diff_id; read back, the image has the same config and its
    layers are the uncompressed tars, each checked against its diff_id."""
    image = _image(layout, "v1")
    target = tmp_path / "d.tar"
    write_docker_archive(layout, image, ["example.com/app:v3"], target)
    archive = DockerArchive(target)
    back = _image(archive, "example.com/app:v3")
    assert back.config.digest == image.config.digest and back.media_type == mt.DOCKER_MANIFEST
    config = json.loads(layout.read_blob(image.config))
    assert [str(layer.digest) for layer in back.layers] == config["rootfs"]["diff_ids"]
    assert {layer.media_type for layer in back.layers} == {mt.DOCKER_LAYER_TAR}
    for layer, original in zip(back.layers, image.layers, strict=True):
        with archive.open_verified(layer) as source:
            assert source.read() == gzip.decompress(layout.read_blob(original, max_size=1 << 30))
    assert archive.find(None) == archive.find("example.com/app:v3")
    with pytest.raises(regpeek.NotFoundError):
        archive.find("example.com/app:v4")


def test_docker_archive_refuses_a_layer_that_is_not_its_diff_id(layout: Layout, tmp_path: Path) -> None:
    image = _image(layout, "v1")
    config = json.loads(layout.read_blob(image.config))
    config["rootfs"]["diff_ids"][0] = str(compute(b"something else"))
    raw = json.dumps(config).encode()
    (layout.path / "blobs" / "sha256" / compute(raw).hex).write_bytes(raw)
    forged = ImageManifest(image.media_type, Descriptor(mt.OCI_CONFIG, compute(raw), len(raw)), image.layers,
                           b"", Digest.parse(str(image.digest)))  # fmt: skip
    with pytest.raises(DigestMismatchError):
        write_docker_archive(layout, forged, [], tmp_path / "d.tar")
    assert list(tmp_path.iterdir()) == [layout.path]


def _docker_save(path: Path, layers: list[bytes], *, compress_second: bool) -> bytes:
    """A tar as ``docker save`` writes it: one directory per layer, the first layer repeated through a
    symbolic link, ``manifest.json``; returns the config."""
    diff_ids = [str(compute(layer)) for layer in [*layers, layers[0]]]
    config = json.dumps(
        {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    members = {f"{compute(config).hex}.json": config}
    for number, layer in enumerate(layers):
        members[f"l{number}/layer.tar"] = gzip.compress(layer) if compress_second and number == 1 else layer
    manifest = [{"Config": f"{compute(config).hex}.json", "RepoTags": ["app:1"],
                 "Layers": ["l0/layer.tar", "l1/layer.tar", "dup/layer.tar"]}]  # fmt: skip
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("dup/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../l0/layer.tar"
        tar.addfile(link)
    return config


def test_docker_save_archive_with_a_compressed_layer_and_a_linked_duplicate(tmp_path: Path) -> None:
    layers = [tarfile_bytes({"a": b"1"}), tarfile_bytes({"b": b"2" * 3000})]
    config = _docker_save(tmp_path / "save.tar", layers, compress_second=True)
    archive = DockerArchive(tmp_path / "save.tar")
    image = _image(archive, "docker.io/library/app:1")
    assert image.config.digest == compute(config)
    assert [layer.digest for layer in image.layers] == [
        compute(layers[0]),
        compute(layers[1]),
        compute(layers[0]),
    ]
    assert [layer.size for layer in image.layers] == [len(layers[0]), len(layers[1]), len(layers[0])]
    for layer, data in zip(image.layers, [*layers, layers[0]], strict=True):
        with archive.open_verified(layer) as source:
            assert source.read() == data
    entry = archive.entries()[0]
    assert entry.annotations[REF_NAME] == "docker.io/library/app:1"
    assert entry.platform is not None and entry.platform.architecture == "arm64"


def tarfile_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("content", [b"", b"not a tar at all" * 100])
def test_not_an_archive(content: bytes, tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(content)
    with pytest.raises((MalformedError, regpeek.NotFoundError)):
        OciArchive(tmp_path / "x.tar").find(None)


def test_archive_members_outside_are_not_blobs(tmp_path: Path) -> None:
    """A member named ``../blobs/...`` or ``/blobs/...`` is normalised, and a blob that is a link to a
    file outside the archive's members does not resolve."""
    data = b"payload"
    with tarfile.open(tmp_path / "x.tar", "w") as tar:
        link = tarfile.TarInfo(f"blobs/sha256/{compute(data).hex}")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(regpeek.NotFoundError):
        OciArchive(tmp_path / "x.tar").open_blob(compute(data))
