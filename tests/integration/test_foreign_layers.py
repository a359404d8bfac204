"""Non-distributable ("foreign") layers in ``pull`` and ``unpack``: left out unless allowed; when allowed,
their URLs are tried first and without credentials, then the registry; what arrives is verified."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import regpeek
from regpeek.formats.manifest import Descriptor
from tests.integration.api import client_options, registry_flags, run_cli
from tests.support import faultproxy as fp
from tests.support.faultproxy import RecordingServer
from tests.support.fixtures import PASSWORD, USERNAME, USERS
from tests.support.images import Blob, PushedImage, compact_json, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry, start_registry

NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"


@dataclass
class Foreign:
    registry: Registry
    server: RecordingServer  # what the layer's URL points at
    layer: Blob
    image: PushedImage  # the image without the foreign layer (v1)
    manifest: bytes  # v2: v1 plus the foreign layer, with its URL

    @property
    def ref(self) -> str:
        return f"{self.registry.host}/foreign/app:v2"

    def flags(self) -> list[str]:
        return [*registry_flags(self.registry), "--username", USERNAME, "--password-stdin", "--quiet"]


def _foreign(tmp_path: Path, body: bytes | None) -> Iterator[Foreign]:
    """A registry needing a login, holding an image whose last layer is non-distributable: the registry
    has the layer too (in another repository of the same registry, so a blob fetch from the image's
    repository finds it as the registry would after a cross-mount), and the layer's URL points at a
    recording server answering every request with ``body`` (the layer, or something else)."""
    layer_data = os.urandom(4096)
    with (
        start_registry(tmp_path / "foreign", foreign_urls=True, auth="htpasswd", users=USERS) as registry,
        pusher_for(registry) as pusher,
        RecordingServer(body=layer_data if body is None else body) as server,
    ):
        layer = Blob.of(NONDISTRIBUTABLE, layer_data)
        pusher.push_blob("foreign/app", layer.data)
        image = push_oci_image(pusher, "foreign/app", "v1")
        document = json.loads(image.manifest)
        document["layers"].append({**layer.descriptor(), "urls": [f"{server.url}/layers/{layer.digest}"]})
        raw = compact_json(document)
        pusher.push_manifest("foreign/app", "v2", raw, image.media_type)
        yield Foreign(registry, server, layer, image, raw)


@pytest.fixture
def foreign(tmp_path: Path) -> Iterator[Foreign]:
    yield from _foreign(tmp_path, None)


@pytest.fixture
def foreign_wrong(tmp_path: Path) -> Iterator[Foreign]:
    """As ``foreign``, but the URL serves bytes that are not the layer."""
    yield from _foreign(tmp_path, b"not the layer\n" * 100)


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs/sha256" / digest.split(":")[1]


def test_pull_leaves_a_foreign_layer_out_and_never_asks_its_url(foreign: Foreign, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    done = run_cli("pull", "--json", *foreign.flags(), foreign.ref, str(layout), stdin=PASSWORD)
    assert done.code == 0, done.stderr
    blobs = {blob["digest"]: blob for blob in json.loads(done.stdout)["blobs"]}
    assert blobs[foreign.layer.digest]["skipped"] is True
    assert blobs[foreign.layer.digest]["downloaded"] is False
    assert not _blob(layout, foreign.layer.digest).exists()
    for layer in foreign.image.layers:  # the others are there, as pushed
        assert _blob(layout, layer.digest).read_bytes() == layer.data
    assert _blob(layout, json.loads(done.stdout)["digest"]).read_bytes() == foreign.manifest
    assert foreign.server.requests == []
    # unpack says what is missing and how to get it, and asks nobody either
    done = run_cli("unpack", f"oci:{layout}", str(tmp_path / "rootfs"))
    assert done.code != 0
    assert f"layer {foreign.layer.digest}" in done.stderr and "--allow-nondistributable" in done.stderr
    assert foreign.server.requests == []


def test_allowed_foreign_layer_comes_from_its_url_without_credentials(
    foreign: Foreign, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    foreign.registry.mark()
    done = run_cli("pull", "--json", "--allow-nondistributable", *foreign.flags(), foreign.ref, str(layout),
                   stdin=PASSWORD)  # fmt: skip
    assert done.code == 0, done.stderr
    blobs = {blob["digest"]: blob for blob in json.loads(done.stdout)["blobs"]}
    assert blobs[foreign.layer.digest]["downloaded"] is True
    assert _blob(layout, foreign.layer.digest).read_bytes() == foreign.layer.data
    [request] = foreign.server.requests
    assert (request.method, request.path) == ("GET", f"/layers/{foreign.layer.digest}")
    assert request.header("authorization") is None and request.header("cookie") is None
    assert PASSWORD not in json.dumps(request.headers)
    # the registry was not asked for that blob: the URL served it
    assert not [r for r in foreign.registry.requests() if f"/blobs/{foreign.layer.digest}" in r.path]


def test_a_foreign_url_serving_other_bytes_falls_back_to_the_registry_verified(
    foreign_wrong: Foreign, tmp_path: Path
) -> None:
    foreign = foreign_wrong
    layout = tmp_path / "layout"
    foreign.registry.mark()
    done = run_cli("pull", "--json", "--allow-nondistributable", *foreign.flags(), foreign.ref, str(layout),
                   stdin=PASSWORD)  # fmt: skip
    assert foreign.server.requests, "the URL is tried first"
    assert all(r.header("authorization") is None for r in foreign.server.requests)
    assert done.code == 0, done.stderr
    # the URL's bytes were refused, the registry served the layer, and only verified bytes were kept
    assert _blob(layout, foreign.layer.digest).read_bytes() == foreign.layer.data
    assert [r.status for r in foreign.registry.requests() if f"/blobs/{foreign.layer.digest}" in r.path][
        -1
    ] == 200


def test_a_foreign_url_asking_for_credentials_gets_none(foreign: Foreign, tmp_path: Path) -> None:
    """A URL that answers 401 with a Basic challenge is not sent the registry's login (nor any): the
    layer comes from the registry instead."""
    foreign.server.add(fp.unauthorized_forever('Basic realm="foreign"'))
    layout = tmp_path / "layout"
    done = run_cli("pull", "--json", "--allow-nondistributable", *foreign.flags(), foreign.ref, str(layout),
                   stdin=PASSWORD)  # fmt: skip
    assert done.code == 0, done.stderr
    assert _blob(layout, foreign.layer.digest).read_bytes() == foreign.layer.data
    assert foreign.server.requests, "the URL is tried first"
    for request in foreign.server.requests:
        assert request.header("authorization") is None, request
    assert PASSWORD not in done.stderr


def test_library_blob_reads_use_a_foreign_url_only_when_asked(foreign: Foreign, tmp_path: Path) -> None:
    descriptor = Descriptor.from_json(json.loads(foreign.manifest)["layers"][-1], "layer")
    assert descriptor.urls
    options = client_options(foreign.registry, username=USERNAME, password=PASSWORD)
    with regpeek.Client(**options) as client:
        repository = f"{foreign.registry.host}/foreign/app"
        with client.open_blob(repository, descriptor) as stream:
            assert stream.read() == foreign.layer.data
        client.download_blob(repository, descriptor, tmp_path / "a")
        assert foreign.server.requests == []  # use_urls=False (the default): the registry only
        with client.open_blob(repository, descriptor, use_urls=True) as stream:
            assert stream.read() == foreign.layer.data
        client.download_blob(repository, descriptor, tmp_path / "b", use_urls=True)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == foreign.layer.data
    assert [r.path for r in foreign.server.requests] == [f"/layers/{foreign.layer.digest}"] * 2
    assert all(r.header("authorization") is None for r in foreign.server.requests)
