"""Smoke tests proving the integration-test infrastructure itself works (plain httpx only)."""

from __future__ import annotations

import gzip
import io
import json
import ssl
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import images
from tests.support.fixtures import PASSWORD, USERNAME, require_tool
from tests.support.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_GZIP_TAR_DIGEST,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_SIGNED,
    Pushed,
    PushedImage,
    PushedIndex,
    PushedSchema1,
)
from tests.support.oracles import skopeo_config_json, skopeo_inspect, skopeo_raw_manifest
from tests.support.push import Pusher, PushError, parse_challenge
from tests.support.registry import Registry, RegistryStartError, Req, start_registry
from tests.support.schema1 import canonical_schema1, verify_schema1
from tests.support.tokenserver import TokenServer
from tests.support.util import sha256_digest

PusherFactory = Callable[..., Pusher]
ACCEPT_ALL = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, SCHEMA1_SIGNED])


_CLIENTS: dict[str, httpx.Client] = {}


def _http(reg: Registry | None = None) -> httpx.Client:
    """A shared client (creating one per request costs ~0.1 s of certificate loading)."""
    key = reg.url if reg is not None and reg.tls else ""
    if key not in _CLIENTS:
        _CLIENTS[key] = httpx.Client(verify=reg.verify() if reg is not None else True, timeout=30)
    return _CLIENTS[key]


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def _get(reg: Registry, path: str, **kwargs: Any) -> httpx.Response:
    return _http(reg).get(reg.url + path, **kwargs)


def _check_image(reg: Registry, image: PushedImage) -> None:
    response = _get(reg, f"/v2/{image.repo}/manifests/{image.digest}", headers={"Accept": image.media_type})
    assert response.status_code == 200
    assert response.content == image.manifest
    assert response.headers["Content-Type"] == image.media_type
    assert response.headers["Docker-Content-Digest"] == image.digest == sha256_digest(response.content)
    document = response.json()
    assert document["config"]["digest"] == image.config.digest
    for blob in (image.config, *image.layers):
        blob_response = _get(reg, f"/v2/{image.repo}/blobs/{blob.digest}")
        assert blob_response.status_code == 200
        assert blob_response.content == blob.data
        assert sha256_digest(blob_response.content) == blob.digest
    assert image.config_json["rootfs"]["diff_ids"] == list(image.diff_ids)


# -- samples --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "repo",
    [
        "samples/oci",
        "samples/oci-nomediatype",
        "samples/oci-mixed",
        "samples/docker",
        "samples/index",
        "samples/list",
    ],
)
def test_sample_round_trip(registry: Registry, samples: dict[str, Pushed], repo: str) -> None:
    assert repo in samples, "zstandard is a dependency of regpeek: every sample is pushed"
    item = samples[repo]
    response = _get(registry, f"/v2/{repo}/manifests/latest", headers={"Accept": item.media_type})
    assert response.status_code == 200
    assert response.content == item.manifest
    assert response.headers["Content-Type"] == item.media_type
    assert response.headers["Docker-Content-Digest"] == item.digest == sha256_digest(item.manifest)
    if isinstance(item, PushedIndex):
        for child in item.children:
            _check_image(registry, child)
        if item.attestation is not None:
            _check_image(registry, item.attestation)
    else:
        assert isinstance(item, PushedImage)
        _check_image(registry, item)


def test_oci_manifest_without_media_type(samples: dict[str, Pushed]) -> None:
    assert "mediaType" not in samples["samples/oci-nomediatype"].manifest_json
    assert samples["samples/oci"].manifest_json["mediaType"] == OCI_MANIFEST


def test_index_shape(samples: dict[str, Pushed]) -> None:
    index = samples["samples/index"]
    assert isinstance(index, PushedIndex)
    entries = index.manifest_json["manifests"]
    platforms = [
        (e["platform"]["os"], e["platform"]["architecture"], e["platform"].get("variant")) for e in entries
    ]
    assert platforms == [
        ("linux", "amd64", None),
        ("linux", "arm64", "v8"),
        ("linux", "arm", "v7"),
        ("linux", "arm", "v6"),
        ("windows", "amd64", None),
        ("unknown", "unknown", None),
    ]
    assert entries[4]["platform"]["os.version"] == "10.0.17763.4010"
    amd64 = index.child("linux", "amd64")
    assert entries[5]["annotations"] == {
        "vnd.docker.reference.digest": amd64.digest,
        "vnd.docker.reference.type": "attestation-manifest",
    }
    envs = {child.platform.label: child.config_json["config"]["Env"][-1] for child in index.children}
    assert envs["linux/arm/v7"] == "REGPEEK_PLATFORM=linux/arm/v7"
    assert len({child.digest for child in index.children}) == 5
    docker_list = samples["samples/list"]
    assert isinstance(docker_list, PushedIndex)
    assert docker_list.attestation is None
    assert {c.media_type for c in docker_list.children} == {DOCKER_MANIFEST}


def test_layers_are_deterministic_tars(samples: dict[str, Pushed]) -> None:
    mixed = samples["samples/oci-mixed"]  # zstandard is a dependency of regpeek: always pushed
    assert isinstance(mixed, PushedImage)
    methods: list[images.Compression] = ["gzip", "none", "zstd"]
    assert [layer.media_type for layer in mixed.layers] == [images.OCI_LAYER_TYPES[m] for m in methods]
    for layer, method, diff_id, files in zip(
        mixed.layers, methods, mixed.diff_ids, mixed.layer_files, strict=True
    ):
        tar_bytes = images.decompress(layer.data, method)
        assert sha256_digest(tar_bytes) == diff_id
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = tar.getmembers()
        assert [m.name for m in members] == [name.rstrip("/") for name in files]
        assert {m.mtime for m in members} == {images.FIXED_MTIME}
    assert images.make_layer({"a": b"x"}) == images.make_layer({"a": b"x"})
    assert gzip.decompress(images.make_layer({"a": b"x"}))[:1] == b"a"


# -- request accounting ---------------------------------------------------------------------------
def test_requests_counts_exactly(registry: Registry, samples: dict[str, Pushed]) -> None:
    image = samples["samples/docker"]
    assert isinstance(image, PushedImage)
    registry.mark()
    assert registry.requests() == []
    with httpx.Client(base_url=registry.url) as client:
        client.get("/v2/samples/docker/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
        client.head(f"/v2/samples/docker/blobs/{image.layers[0].digest}")
        client.get(f"/v2/samples/docker/referrers/{image.digest}")  # plain-text 404 from the router
        client.get("/v2/samples/docker/tags/list?n=1&last=a")
        client.get(f"/v2/samples/docker/blobs/{image.layers[1].digest}")
    assert registry.requests() == [
        Req("GET", "/v2/samples/docker/manifests/latest", 200),
        Req("HEAD", f"/v2/samples/docker/blobs/{image.layers[0].digest}", 200),
        Req("GET", f"/v2/samples/docker/referrers/{image.digest}", 404),
        Req("GET", "/v2/samples/docker/tags/list?n=1&last=a", 200),
        Req("GET", f"/v2/samples/docker/blobs/{image.layers[1].digest}", 200),
    ]
    registry.mark()
    assert registry.requests() == []
    assert len(registry.requests(since_mark=False)) >= 5


def test_start_failure_reports_logs(tmp_path: Path) -> None:
    require_tool("docker-registry")
    with TokenServer(tmp_path / "ts") as token_server:
        token_server.cert_path.unlink()  # the registry refuses to start without its rootcertbundle
        with pytest.raises(RegistryStartError, match=r"rootcertbundle|token-signer"):
            start_registry(tmp_path / "reg", auth="token", token_server=token_server)


# -- auth -----------------------------------------------------------------------------------------
def test_token_flow(token_registry: tuple[Registry, TokenServer], pusher_for: PusherFactory) -> None:
    reg, token_server = token_registry
    image = images.push_oci_image(pusher_for(reg), "auth/app", "v1")
    token_server.clear()

    unauthenticated = _get(reg, "/v2/auth/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert unauthenticated.status_code == 401
    scheme, params = parse_challenge(unauthenticated.headers["WWW-Authenticate"])
    assert scheme == "bearer"
    assert params == {
        "realm": token_server.realm,
        "service": token_server.service,
        "scope": "repository:auth/app:pull",
    }

    anonymous = _http().get(params["realm"], params={"service": params["service"], "scope": params["scope"]})
    assert anonymous.status_code == 200
    body = anonymous.json()
    assert set(body) == {"token", "expires_in", "issued_at"}
    pulled = _get(
        reg,
        "/v2/auth/app/manifests/v1",
        headers={"Accept": OCI_MANIFEST, "Authorization": f"Bearer {body['token']}"},
    )
    assert pulled.status_code == 200
    assert pulled.content == image.manifest

    denied = _http().post(
        f"{reg.url}/v2/auth/app/blobs/uploads/", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert denied.status_code == 401
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]

    push_token = (
        _http()
        .get(
            token_server.realm,
            params={"service": token_server.service, "scope": "repository:auth/app:pull,push"},
            auth=(USERNAME, PASSWORD),
        )
        .json()["token"]
    )
    started = _http().post(
        f"{reg.url}/v2/auth/app/blobs/uploads/", headers={"Authorization": f"Bearer {push_token}"}
    )
    assert started.status_code == 202

    wrong = _http().get(token_server.realm, params={"service": token_server.service}, auth=(USERNAME, "nope"))
    assert wrong.status_code == 401

    recorded = token_server.requests
    assert [(r.username, r.authorization, r.status) for r in recorded] == [
        (None, False, 200),
        (USERNAME, True, 200),
        (USERNAME, True, 401),
    ]
    assert recorded[0].scopes == ["repository:auth/app:pull"]
    assert recorded[1].granted == [{"type": "repository", "name": "auth/app", "actions": ["pull", "push"]}]


def test_token_server_options(tmp_path: Path) -> None:
    with TokenServer(tmp_path, users={"bob": "pw"}, field="access_token", expires_in=None) as server:
        body = (
            _http()
            .get(
                server.realm,
                params=[
                    ("service", server.service),
                    ("scope", "repository:a:pull"),
                    ("scope", "repository:b:pull repository:c:push"),
                ],
            )
            .json()
        )
        assert set(body) == {"access_token", "issued_at"}
        assert server.requests[-1].scopes == ["repository:a:pull", "repository:b:pull", "repository:c:push"]
        assert [g["actions"] for g in server.requests[-1].granted] == [["pull"], ["pull"], []]
        assert _http().post(server.realm, data={"grant_type": "password"}).status_code == 404
    with TokenServer(tmp_path / "both", users={"bob": "pw"}, field="both", oauth_post=True) as server:
        assert {"token", "access_token"} <= set(_http().get(server.realm).json())
        form = {
            "grant_type": "password",
            "username": "bob",
            "password": "pw",
            "service": server.service,
            "scope": "repository:a:pull,push",
            "client_id": "regpeek-tests",
        }
        oauth = _http().post(server.realm, data=form)
        assert oauth.status_code == 200
        assert "access_token" in oauth.json()
        assert server.requests[-1].username == "bob"
        assert server.requests[-1].method == "POST"
        assert _http().post(server.realm, data={**form, "password": "bad"}).status_code == 401


def test_oauth_token_accepted_by_registry(token_registry: tuple[Registry, TokenServer]) -> None:
    reg, token_server = token_registry
    token_server.oauth_post = True
    try:
        form = {
            "grant_type": "password",
            "username": USERNAME,
            "password": PASSWORD,
            "service": token_server.service,
            "scope": "repository:oauth/x:pull,push",
            "client_id": "t",
        }
        token = _http().post(token_server.realm, data=form).json()["access_token"]
    finally:
        token_server.oauth_post = False
    response = _http().post(
        f"{reg.url}/v2/oauth/x/blobs/uploads/", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202


def test_htpasswd(htpasswd_registry: Registry, pusher_for: PusherFactory) -> None:
    reg = htpasswd_registry
    challenge = _get(reg, "/v2/")
    assert challenge.status_code == 401
    assert parse_challenge(challenge.headers["WWW-Authenticate"])[0] == "basic"
    assert _get(reg, "/v2/", auth=(USERNAME, PASSWORD)).status_code == 200
    assert _get(reg, "/v2/", auth=(USERNAME, "wrong")).status_code == 401
    image = images.push_docker_schema2(pusher_for(reg), "basic/app", "v1")
    fetched = _get(
        reg, "/v2/basic/app/manifests/v1", headers={"Accept": DOCKER_MANIFEST}, auth=(USERNAME, PASSWORD)
    )
    assert fetched.content == image.manifest
    with pytest.raises(PushError):
        images.push_docker_schema2(pusher_for(reg, anonymous=True), "basic/other", "v1")


def test_tls(tls_registry: Registry, pusher_for: PusherFactory) -> None:
    reg = tls_registry
    assert reg.url.startswith("https://127.0.0.1:")
    assert reg.ca_file is not None
    assert _get(reg, "/v2/").status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(reg.url + "/v2/", verify=True)
    localhost = reg.url.replace("127.0.0.1", "localhost")
    by_name = httpx.get(localhost + "/v2/", verify=ssl.create_default_context(cafile=str(reg.ca_file)))
    assert by_name.status_code == 200  # the certificate also names localhost
    image = images.push_oci_image(pusher_for(reg), "tls/app", "v1")
    assert _get(reg, f"/v2/tls/app/blobs/{image.config.digest}").content == image.config.data
    reg.mark()
    _get(reg, "/v2/tls/app/tags/list")
    assert reg.requests() == [Req("GET", "/v2/tls/app/tags/list", 200)]


# -- schema1 --------------------------------------------------------------------------------------
def test_schema1_signed_push(schema1_registry: Registry, schema1_samples: dict[str, Pushed]) -> None:
    item = schema1_samples["samples/schema1"]
    assert isinstance(item, PushedSchema1)
    assert item.digest == canonical_schema1(item.manifest)[1] != sha256_digest(item.manifest)
    verify_schema1(item.manifest)
    document = item.manifest_json
    assert [layer["blobSum"] for layer in document["fsLayers"]] == [blob.digest for blob in item.fs_layers]
    assert document["fsLayers"][0]["blobSum"] == EMPTY_GZIP_TAR_DIGEST
    top = json.loads(document["history"][0]["v1Compatibility"])
    assert top["throwaway"] is True
    assert top["config"]["Env"][-1] == "REGPEEK_SCHEMA=1"
    response = _get(schema1_registry, "/v2/samples/schema1/manifests/latest")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == SCHEMA1_SIGNED
    assert response.headers["Docker-Content-Digest"] == item.digest
    assert canonical_schema1(response.content) == (item.canonical, item.digest)  # re-signed, same payload
    verify_schema1(response.content)
    empty = _get(schema1_registry, f"/v2/samples/schema1/blobs/{EMPTY_GZIP_TAR_DIGEST}")
    assert empty.content == images.EMPTY_GZIP_TAR


def test_schema1_unsigned_refused(schema1_registry: Registry, pusher_for: PusherFactory) -> None:
    with pytest.raises(PushError, match="400"):
        images.push_schema1_unsigned(pusher_for(schema1_registry), "schema1/unsigned", "latest")


def test_schema1_push_needs_compatibility_flag(registry: Registry, pusher_for: PusherFactory) -> None:
    with pytest.raises(PushError, match="500"):
        images.push_schema1_signed(pusher_for(registry), "schema1/refused", "latest")


@pytest.mark.parametrize("repo", ["samples/docker", "samples/list"])
def test_converted_schema1(schema1_registry: Registry, schema1_samples: dict[str, Pushed], repo: str) -> None:
    body, digest = images.fetch_converted_schema1(schema1_registry.url, repo, "latest")
    verify_schema1(body)
    assert canonical_schema1(body)[1] == digest
    document = json.loads(body)
    assert (document["schemaVersion"], document["name"], document["tag"]) == (1, repo, "latest")
    assert document["architecture"] == "amd64"
    top = json.loads(document["history"][0]["v1Compatibility"])
    assert "REGPEEK_PLATFORM=linux/amd64" in top["config"]["Env"]
    item = schema1_samples[repo]
    source = item.child("linux", "amd64") if isinstance(item, PushedIndex) else item
    assert isinstance(source, PushedImage)
    assert {layer["blobSum"] for layer in document["fsLayers"]} >= {layer.digest for layer in source.layers}


# -- oracle ---------------------------------------------------------------------------------------
def test_skopeo_agrees(registry: Registry, samples: dict[str, Pushed]) -> None:
    require_tool("skopeo")
    index = samples["samples/index"]
    assert isinstance(index, PushedIndex)
    inspected = skopeo_inspect(
        registry.host, "samples/index:latest", override_arch="arm64", override_variant="v8"
    )
    assert inspected["Digest"] == index.digest
    assert "REGPEEK_PLATFORM=linux/arm64/v8" in inspected["Env"]
    assert (
        skopeo_raw_manifest(registry.host, "samples/oci-nomediatype:latest")
        == samples["samples/oci-nomediatype"].manifest
    )
    config = skopeo_config_json(registry.host, f"samples/list@{samples['samples/list'].digest}")
    assert config["config"]["Labels"]["org.regpeek.formats.platform"] == "linux/amd64"


def test_skopeo_with_auth_and_tls(
    token_registry: tuple[Registry, TokenServer], tls_registry: Registry, pusher_for: PusherFactory
) -> None:
    require_tool("skopeo")
    reg, _ = token_registry
    image = images.push_docker_schema2(pusher_for(reg), "oracle/auth", "v1")
    assert skopeo_inspect(reg.host, "oracle/auth:v1", creds=(USERNAME, PASSWORD))["Digest"] == image.digest
    assert skopeo_inspect(reg.host, "oracle/auth:v1")["Digest"] == image.digest  # anonymous pull
    tls_image = images.push_oci_image(pusher_for(tls_registry), "oracle/tls", "v1")
    inspected = skopeo_inspect(tls_registry.host, "oracle/tls:v1", ca_file=tls_registry.ca_file)
    assert inspected["Digest"] == tls_image.digest


def test_accept_all_returns_stored_types(registry: Registry, samples: dict[str, Pushed]) -> None:
    for repo, item in samples.items():
        response = _get(registry, f"/v2/{repo}/manifests/latest", headers={"Accept": ACCEPT_ALL})
        assert (repo, response.headers["Content-Type"]) == (repo, item.media_type)
