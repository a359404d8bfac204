"""``regpeek copy`` between two real distribution registries (token auth on one, htpasswd Basic on the
other), OCI layouts and archives, with skopeo as the oracle and a fault proxy for the failures."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import regpeek
from regpeek.copy import CopyResult, copy
from tests.integration.api import client_options, registry_flags, run_cli
from tests.support.faultproxy import (
    FaultProxy,
    RecordingServer,
    cut_request,
    flip_byte,
    rewrite_target,
    set_header,
)
from tests.support.fixtures import PASSWORD, USERNAME, require_tool
from tests.support.images import (
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Pushed,
    PushedImage,
    PushedIndex,
    compact_json,
    load_samples,
    push_oci_image,
)
from tests.support.oracles import skopeo_raw_manifest
from tests.support.push import Pusher, pusher_for
from tests.support.registry import Registry, start_registry
from tests.support.tokenserver import TokenServer
from tests.support.util import sha256_digest

MiB = 1024 * 1024
MANIFEST_TYPES = (
    OCI_INDEX, OCI_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)  # fmt: skip
CREDS = f"{USERNAME}:{PASSWORD}"
NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"


pytestmark = pytest.mark.usefixtures("no_user_credentials")  # the developer's auth files stay out


@pytest.fixture(scope="module")
def source(token_registry: tuple[Registry, TokenServer]) -> Registry:
    """The source: a token-auth registry (anonymous pull) holding the samples and a 3 MiB random image."""
    require_tool("skopeo")
    registry, _ = token_registry
    return registry


@pytest.fixture(scope="module")
def images(source: Registry) -> dict[str, Pushed]:
    with pusher_for(source) as pusher:
        pushed = load_samples(pusher)
        pushed["big/random"] = push_oci_image(
            pusher, "big/random", "v1", layers=[{"data.bin": os.urandom(3 * MiB + 1000)}, {"small": b"x"}]
        )
    return pushed


@pytest.fixture(scope="module")
def dest(htpasswd_registry: Registry) -> Registry:
    """The destination: an htpasswd registry with its own storage (alice may push)."""
    return htpasswd_registry


def _dest_pusher(registry: Registry) -> Pusher:
    return pusher_for(registry, username=USERNAME, password=PASSWORD)


def _blob(registry: Registry, repo: str, digest: str) -> bytes:
    with _dest_pusher(registry) as pusher:
        response = pusher.get_raw(f"/v2/{repo}/blobs/{digest}", repo=repo)
    assert response.status_code == 200, (repo, digest, response.status_code)
    return response.content


def _has_manifest(registry: Registry, repo: str, target: str) -> bool:
    with _dest_pusher(registry) as pusher:
        response = pusher.request(
            "HEAD", f"/v2/{repo}/manifests/{target}", scope=f"repository:{repo}:pull,push",
            headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"},
        )  # fmt: skip
    return response.status_code == 200


def _copy_cli(*argv: str) -> Any:
    done = run_cli("copy", "--plain-http", "--dest-creds", CREDS, "--json", *argv)
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)


def _children(image: PushedIndex) -> list[PushedImage]:
    return [*image.children, *([image.attestation] if image.attestation else [])]


# -- registry to registry ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "repo", ["samples/index", "samples/list", "samples/oci-nomediatype", "samples/docker"]
)
def test_registry_to_registry_keeps_every_byte(
    repo: str, source: Registry, images: dict[str, Pushed], dest: Registry
) -> None:
    """Index with attestations, manifest list, OCI without mediaType, schema2: the destination serves
    the very bytes (skopeo inspect --raw on both sides), digests included; configs and layers too."""
    pushed = images[repo]
    target = f"mirror/{repo.replace('/', '-')}"
    dest.mark()
    result = _copy_cli(f"{source.host}/{repo}", f"{dest.host}/{target}:v1")
    assert result["digest"] == result["source_digest"] == pushed.digest
    creds = (USERNAME, PASSWORD)
    assert skopeo_raw_manifest(dest.host, f"{target}:v1", creds=creds) == pushed.manifest
    assert skopeo_raw_manifest(source.host, f"{repo}:latest") == pushed.manifest
    assert isinstance(pushed, (PushedIndex, PushedImage))
    images_ = _children(pushed) if isinstance(pushed, PushedIndex) else [pushed]
    for image in images_:
        raw = skopeo_raw_manifest(dest.host, f"{target}@{image.digest}", creds=creds)
        assert raw == skopeo_raw_manifest(source.host, f"{repo}@{image.digest}") == image.manifest
        for blob in (image.config, *image.layers):
            assert _blob(dest, target, blob.digest) == blob.data
    if isinstance(pushed, PushedIndex):
        assert len(result["platforms"]) == len(pushed.children) and "linux/amd64" in result["platforms"]
        assert [m["target"] for m in result["manifests"]][-1] == "v1"  # the tag last
        assert {m["digest"] for m in result["manifests"][:-1]} == {i.digest for i in images_}
    assert {b["action"] for b in result["blobs"]} == {"copied"}
    # a blob shared by several platforms (the base layer) goes up once
    unique = {blob.digest for image in images_ for blob in (image.config, *image.layers)}
    assert sorted(b["digest"] for b in result["blobs"]) == sorted(unique)
    started = [r for r in dest.requests() if r.method == "POST" and r.status == 202]
    assert len(started) == len(unique)
    # the destination serves the manifest with the source's media type
    assert _content_type(dest, target, "v1", (USERNAME, PASSWORD)) == _content_type(
        source, repo, "latest", None
    )


def _content_type(registry: Registry, repo: str, target: str, creds: tuple[str, str] | None) -> str:
    pusher = (
        pusher_for(registry, username=creds[0], password=creds[1])
        if creds
        else pusher_for(registry, anonymous=True)
    )
    with pusher:
        response = pusher.request("HEAD", f"/v2/{repo}/manifests/{target}", scope=f"repository:{repo}:pull",
                                  headers={"Accept": ", ".join(MANIFEST_TYPES)})  # fmt: skip
    assert response.status_code == 200
    return response.headers["Content-Type"]


@pytest.mark.parametrize("what", ["blob", "manifest"])
def test_destination_digest_header_is_checked(
    what: str, registry: Registry, samples: dict[str, Pushed]
) -> None:
    """A destination whose Docker-Content-Digest does not name what was sent: exit 5, and no tag."""
    wrong = "sha256:" + "0" * 64
    path = "/blobs/uploads/" if what == "blob" else "/manifests/"
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(set_header("Docker-Content-Digest", wrong), method="PUT", path=path)
        done = run_cli(
            "copy",
            *registry_flags(registry),
            f"{registry.host}/samples/oci",
            f"{proxy.host}/wrongdigest/{what}:v1",
        )
    assert done.code == 5, done.stderr
    assert f"got {wrong}" in done.stderr and "Docker-Content-Digest" in done.stderr
    with pusher_for(registry) as pusher:
        assert (
            pusher.request("HEAD", f"/v2/wrongdigest/{what}/manifests/v1").status_code == 404
            or what == "manifest"
        )


def test_tag_pushed_last_and_recopy_sends_heads_only(
    source: Registry, images: dict[str, Pushed], dest: Registry
) -> None:
    index = images["samples/index"]
    dest.mark()
    _copy_cli(f"{source.host}/samples/index", f"{dest.host}/recopy/index")
    writes = [r for r in dest.requests() if r.method in ("PUT", "PATCH", "POST") and r.status < 400]
    assert writes[-1].method == "PUT" and writes[-1].path == "/v2/recopy/index/manifests/latest"
    assert not any("/manifests/latest" in r.path for r in writes[:-1])  # nothing tagged before the end
    dest.mark()
    again = _copy_cli(f"{source.host}/samples/index", f"{dest.host}/recopy/index")
    assert {r.method for r in dest.requests()} == {"HEAD"}
    assert {b["action"] for b in again["blobs"]} == {"present"}
    assert {m["action"] for m in again["manifests"]} == {"present"}
    assert again["digest"] == index.digest and again["copied_bytes"] == 0


def test_mount_within_one_registry(registry: Registry, samples: dict[str, Pushed]) -> None:
    """Another repository of the same registry: every blob mounted, no upload (the registry's log)."""
    index = samples["samples/index"]
    registry.mark()
    done = run_cli("copy", *registry_flags(registry), "--json", f"{registry.host}/samples/index",
                   f"{registry.host}/elsewhere/index:copy")  # fmt: skip
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert {b["action"] for b in result["blobs"]} == {"mounted"}
    served = registry.requests()
    mounts = [r for r in served if r.method == "POST"]
    assert len(mounts) == len(result["blobs"]) > 0
    assert all(
        "mount=sha256" in r.path and "from=samples%2Findex" in r.path and r.status == 201 for r in mounts
    )
    assert not [r for r in served if r.method in ("PATCH",) or (r.method == "PUT" and "/blobs/" in r.path)]
    assert skopeo_raw_manifest(registry.host, "elsewhere/index:copy") == index.manifest


def test_mount_declined_falls_back_to_upload(registry: Registry, samples: dict[str, Pushed]) -> None:
    """A registry that answers the mount with 202 (here: asked to mount from a repository without the
    blob) opens an upload session, which the copy uses."""
    image = samples["samples/oci"]
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(rewrite_target(lambda target: target.replace("from=samples%2Foci", "from=nothing%2Fhere")),
                  method="POST", path="mount=")  # fmt: skip
        with regpeek.Client(**client_options(registry)) as client:
            result = copy(client, f"{proxy.host}/samples/oci", f"{proxy.host}/declined/oci:v1")
        posts = proxy.matching("/blobs/uploads/", method="POST")
        assert posts and all("mount=" in r.path and r.status == 202 for r in posts)
        assert len(proxy.matching("/blobs/uploads/", method="PUT")) == len(posts)
    assert {blob.action for blob in result.blobs} == {"copied"}
    assert skopeo_raw_manifest(registry.host, "declined/oci:v1") == image.manifest


# -- failures ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "forwarded", [False, True], ids=["cut-before-the-registry", "partial-chunk-received"]
)
def test_interrupted_patch(
    forwarded: bool, source: Registry, images: dict[str, Pushed], dest: Registry
) -> None:
    """The second PATCH of a chunked upload is cut. When the registry got none of it, the upload
    resumes at the Range it reports (GET on the session); when it got part of it, distribution drops
    the session, and the blob starts over in a new one. The blob arrives intact either way."""
    big = images["big/random"]
    assert isinstance(big, PushedImage)
    layer = big.layers[0]
    with FaultProxy.for_registry(dest) as proxy:
        proxy.add(cut_request(MiB // 2, forward=forwarded), method="PATCH", times=1,
                  when=lambda ex: not (ex.header("Content-Range") or "").startswith("0-"))  # fmt: skip
        with (
            regpeek.Client(**client_options(source, retries=2)) as reader,
            regpeek.Client(**client_options(dest, retries=2, username=USERNAME, password=PASSWORD)) as writer,
        ):
            result = copy(reader, f"{source.host}/big/random:v1", f"{proxy.host}/cut{int(forwarded)}/random",
                          dest_client=writer, chunk_size=MiB, jobs=1)  # fmt: skip
        uploads = [r for r in proxy.requests if "/blobs/uploads/" in r.path and r.method != "HEAD"]
    [copied] = [blob for blob in result.blobs if str(blob.digest) == layer.digest]
    steps = [(r.method, r.header("Content-Range"), r.status) for r in uploads]
    cut = ("PATCH", f"{MiB}-{2 * MiB - 1}", 0)
    first = [("POST", None, 202), ("PATCH", f"0-{MiB - 1}", 202), cut]
    assert steps[:3] == first
    if not forwarded:
        assert (copied.resumed, copied.restarted) == (1, 0)
        assert steps[3:6] == [("GET", None, 204), ("PATCH", f"{MiB}-{2 * MiB - 1}", 202),
                              ("PATCH", f"{2 * MiB}-{3 * MiB - 1}", 202)]  # fmt: skip
        assert uploads[3].response_header("Range") == f"0-{MiB - 1}"
    else:
        assert (copied.resumed, copied.restarted) == (0, 1)
        assert steps[3][0] == "GET" and steps[3][2] in (400, 404)  # the session is gone
        assert steps[4:6] == [("POST", None, 202), ("PATCH", f"0-{MiB - 1}", 202)]
    [last] = [r for r in uploads if r.method == "PUT" and r.request_body_bytes == layer.size - 3 * MiB]
    assert last.status == 201  # the last piece went with the PUT
    assert _blob(dest, f"cut{int(forwarded)}/random", layer.digest) == layer.data
    assert (
        skopeo_raw_manifest(dest.host, f"cut{int(forwarded)}/random:v1", creds=(USERNAME, PASSWORD))
        == big.manifest
    )


def test_corrupted_source_blob_exit_5_and_no_tag(
    source: Registry, images: dict[str, Pushed], dest: Registry
) -> None:
    """A layer corrupted on the way: exit 5 naming both digests, the upload cancelled (DELETE), and
    neither the tag nor any manifest in the destination."""
    big = images["big/random"]
    assert isinstance(big, PushedImage)
    layer = big.layers[0]
    with FaultProxy.for_registry(source) as proxy:
        proxy.add(flip_byte(), path=f"/blobs/{layer.digest}$", method="GET")
        dest.mark()
        done = run_cli("copy", "--plain-http", "--dest-creds", CREDS, f"{proxy.host}/big/random:v1",
                       f"{dest.host}/corrupt/random:v1")  # fmt: skip
    assert done.code == 5, done.stderr
    assert f"expected {layer.digest}" in done.stderr and "Traceback" not in done.stderr
    served = dest.requests()
    assert [r for r in served if r.method == "DELETE" and "/blobs/uploads/" in r.path]
    assert not [r for r in served if "/manifests/" in r.path and r.method == "PUT"]
    assert not _has_manifest(dest, "corrupt/random", "v1")


def test_failed_copy_to_archive_leaves_nothing(
    source: Registry, images: dict[str, Pushed], tmp_path: Path
) -> None:
    big = images["big/random"]
    assert isinstance(big, PushedImage)
    with FaultProxy.for_registry(source) as proxy:
        proxy.add(flip_byte(), path=f"/blobs/{big.layers[0].digest}$", method="GET")
        done = run_cli("copy", "--plain-http", "--no-cache", f"{proxy.host}/big/random:v1",
                       f"oci-archive:{tmp_path}/out.tar")  # fmt: skip
    assert done.code == 5
    assert list(tmp_path.iterdir()) == []


# -- archives ----------------------------------------------------------------------------------------
def _skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _inspect(reference: str, *flags: str) -> dict[str, Any]:
    done = run_cli("inspect", "--json", *flags, reference)
    assert done.code == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_archive_round_trip(
    source: Registry, images: dict[str, Pushed], dest: Registry, tmp_path: Path
) -> None:
    """registry -> oci-archive -> another registry -> docker-archive: the OCI archive keeps every digest
    (skopeo reads the same index from it), the docker archive the config and, as diff_ids, the
    layers; skopeo and regpeek agree on both archives."""
    index = images["samples/index"]
    assert isinstance(index, PushedIndex)
    amd64 = index.child("linux", "amd64")
    oci_tar, docker_tar = tmp_path / "index.tar", tmp_path / "index-docker.tar"

    first = _copy_cli(f"{source.host}/samples/index", f"oci-archive:{oci_tar}")
    assert first["digest"] == index.digest
    assert _skopeo("inspect", "--raw", f"oci-archive:{oci_tar}").encode() == index.manifest
    seen = json.loads(_skopeo("inspect", "--override-arch", "amd64", "--override-os", "linux",
                              f"oci-archive:{oci_tar}"))  # fmt: skip
    ours = _inspect(f"oci-archive:{oci_tar}", "--platform", "linux/amd64")
    assert seen["Digest"] == ours["index_digest"] == index.digest
    assert seen["Layers"] == [layer["digest"] for layer in ours["layers"]] == [b.digest for b in amd64.layers]

    second = _copy_cli(f"oci-archive:{oci_tar}", f"{dest.host}/fromarchive/index:v2")
    assert second["digest"] == index.digest
    assert (
        skopeo_raw_manifest(dest.host, "fromarchive/index:v2", creds=(USERNAME, PASSWORD)) == index.manifest
    )

    third = _copy_cli("--platform", "linux/amd64", "--src-creds", CREDS, f"{dest.host}/fromarchive/index:v2",
                      f"docker-archive:{docker_tar}:example.com/app:v3")  # fmt: skip
    assert third["source_digest"] == index.digest
    manifest_json = json.loads(_skopeo("inspect", "--raw", f"docker-archive:{docker_tar}"))
    assert manifest_json["config"]["digest"] == amd64.config.digest  # the config, byte for byte
    assert [layer["digest"] for layer in manifest_json["layers"]] == list(amd64.diff_ids)
    assert (
        _skopeo("inspect", "--config", "--raw", f"docker-archive:{docker_tar}").encode() == amd64.config.data
    )
    ours = _inspect(f"docker-archive:{docker_tar}:example.com/app:v3")
    assert ours["digest"] == third["digest"]
    assert ours["config_digest"] == amd64.config.digest
    assert [layer["digest"] for layer in ours["layers"]] == list(amd64.diff_ids)
    items = json.loads(_tar_member(docker_tar, "manifest.json"))
    assert items[0]["RepoTags"] == ["example.com/app:v3"]

    # skopeo reads regpeek's archives
    _skopeo("copy", "--all", f"oci-archive:{oci_tar}", f"oci:{tmp_path}/by-skopeo:x")
    _skopeo("copy", f"docker-archive:{docker_tar}", f"oci:{tmp_path}/by-skopeo:y")
    assert (
        json.loads((tmp_path / "by-skopeo" / "index.json").read_text())["manifests"][0]["digest"]
        == index.digest
    )


def _tar_member(archive: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def test_regpeek_reads_skopeos_archives(
    source: Registry, images: dict[str, Pushed], dest: Registry, tmp_path: Path
) -> None:
    oci = images["samples/oci"]
    docker = images["samples/docker"]
    assert isinstance(docker, PushedImage)
    _skopeo("copy", "--src-tls-verify=false", f"docker://{source.host}/samples/oci:latest",
            f"oci-archive:{tmp_path}/s.tar:tagged")  # fmt: skip
    _skopeo("copy", "--src-tls-verify=false", f"docker://{source.host}/samples/docker:latest",
            f"docker-archive:{tmp_path}/d.tar:example.com/docker:1")  # fmt: skip
    result = _copy_cli(f"oci-archive:{tmp_path}/s.tar:tagged", f"{dest.host}/fromskopeo/oci")
    assert result["digest"] == oci.digest and result["tag"] == "tagged"
    assert skopeo_raw_manifest(dest.host, "fromskopeo/oci:tagged", creds=(USERNAME, PASSWORD)) == oci.manifest
    from_docker = _copy_cli(f"docker-archive:{tmp_path}/d.tar", f"{dest.host}/fromskopeo/docker:1")
    inspected = _inspect(f"{dest.host}/fromskopeo/docker:1", "--plain-http", "-u", USERNAME, "-p", PASSWORD)
    assert inspected["digest"] == from_docker["digest"]
    assert inspected["config_digest"] == docker.config.digest
    assert [layer["diff_id"] for layer in inspected["layers"]] == list(docker.diff_ids)
    assert [layer["digest"] for layer in inspected["layers"]] == list(
        docker.diff_ids
    )  # uncompressed as stored
    assert [layer["media_type"] for layer in inspected["layers"]] == [
        "application/vnd.docker.image.rootfs.diff.tar"
    ] * len(docker.layers)


def test_layout_sources_and_push_alias(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """``push oci:PATH:NAME REF`` is copy; an oci: destination without NAME takes the tag."""
    image = samples["samples/oci"]
    assert (
        run_cli("copy", *registry_flags(registry), f"{registry.host}/samples/oci", f"oci:{tmp_path}/l").code
        == 0
    )
    entry = json.loads((tmp_path / "l" / "index.json").read_text())["manifests"][0]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    done = run_cli(
        "push", *registry_flags(registry), f"oci:{tmp_path}/l:latest", f"{registry.host}/pushed/oci:v9"
    )
    assert done.code == 0, done.stderr
    assert skopeo_raw_manifest(registry.host, "pushed/oci:v9") == image.manifest


# -- referrers -----------------------------------------------------------------------------------------
def _push_signature(pusher: Pusher, repo: str, subject: Pushed) -> tuple[str, bytes]:
    """An artifact whose subject is ``subject``, and the fallback tag index listing it (distribution
    2.8.2 has no referrers API)."""
    empty = Blob.of("application/vnd.oci.empty.v1+json", b"{}")
    signature = Blob.of("application/vnd.dev.cosign.simplesigning.v1+json", b'{"critical":{"type":"test"}}')
    pusher.push_blob(repo, empty.data)
    pusher.push_blob(repo, signature.data)
    artifact_type = "application/vnd.dev.cosign.artifact.sig.v1+json"
    manifest = compact_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": empty.descriptor(), "layers": [signature.descriptor()],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.manifest)},
    })  # fmt: skip
    digest = pusher.push_manifest(repo, sha256_digest(manifest), manifest, OCI_MANIFEST)
    fallback = compact_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest), "artifactType": artifact_type}
    ]})  # fmt: skip
    pusher.push_manifest(repo, subject.digest.replace(":", "-"), fallback, OCI_INDEX)
    return digest, manifest


def test_with_referrers(registry: Registry, dest: Registry) -> None:
    with pusher_for(registry) as pusher:
        image = push_oci_image(pusher, "signed/app", "v1")
        signature, raw = _push_signature(pusher, "signed/app", image)
    plain = _copy_cli(f"{registry.host}/signed/app:v1", f"{dest.host}/signed/plain:v1")
    assert plain["referrers"] == []
    assert not _has_manifest(dest, "signed/plain", signature)
    result = _copy_cli("--with-referrers", f"{registry.host}/signed/app:v1", f"{dest.host}/signed/app:v1")
    assert result["referrers"] == [signature]
    assert skopeo_raw_manifest(dest.host, f"signed/app@{signature}", creds=(USERNAME, PASSWORD)) == raw
    done = run_cli("referrers", "--json", "--plain-http", "-u", USERNAME, "-p", PASSWORD,
                   f"{dest.host}/signed/app@{image.digest}")  # fmt: skip
    assert done.code == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["via"] == "tag"
    assert [r["digest"] for r in listed["referrers"]] == [signature]
    assert listed["referrers"][0]["artifact_type"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
    again = _copy_cli("--with-referrers", f"{registry.host}/signed/app:v1", f"{dest.host}/signed/app:v1")
    assert {m["action"] for m in again["manifests"]} == {"present"}  # the fallback index is not doubled
    done = run_cli("referrers", "--json", "--plain-http", "-u", USERNAME, "-p", PASSWORD,
                   f"{dest.host}/signed/app@{image.digest}")  # fmt: skip
    assert len(json.loads(done.stdout)["referrers"]) == 1


# -- auth --------------------------------------------------------------------------------------------
def test_push_scope_and_one_token_for_a_mount(
    registry: Registry, samples: dict[str, Pushed], token_registry: tuple[Registry, TokenServer],
    images: dict[str, Pushed],
) -> None:  # fmt: skip
    """Anonymous source, token destination: the destination's token asks for pull,push once and serves
    every check, upload and put. A mount inside the token registry asks for both repositories' scopes
    in one token request."""
    target, tokens = token_registry
    tokens.clear()
    done = run_cli("copy", "--plain-http", "--dest-creds", CREDS, f"{registry.host}/samples/oci",
                   f"{target.host}/scoped/oci:v1")  # fmt: skip
    assert done.code == 0, done.stderr
    asked = [request.scopes for request in tokens.requests]
    assert asked == [["repository:scoped/oci:pull,push"]]  # one token: HEADs, uploads, manifests
    assert tokens.requests[0].username == USERNAME

    tokens.clear()
    target.mark()
    done = run_cli("copy", "--plain-http", "--json", "--dest-creds", CREDS, f"{target.host}/big/random:v1",
                   f"{target.host}/mounted/random:v1")  # fmt: skip
    assert done.code == 0, done.stderr
    assert {b["action"] for b in json.loads(done.stdout)["blobs"]} == {"mounted"}
    both = [r for r in tokens.requests if "repository:big/random:pull" in r.scopes and r.username == USERNAME]
    assert both and all("repository:mounted/random:pull,push" in r.scopes for r in both)
    assert len([r for r in target.requests() if r.method == "POST"]) == 3  # a config and two layers


# -- protocol details ----------------------------------------------------------------------------------
def test_relative_locations_and_chunk_minimum(
    source: Registry, images: dict[str, Pushed], tmp_path: Path
) -> None:
    """A registry sending relative Locations (``relativeurls``) and an ``OCI-Chunk-Min-Length`` above
    the chunk size asked for: chunks of the registry's minimum, the last piece in the PUT."""
    big = images["big/random"]
    assert isinstance(big, PushedImage)
    with (
        start_registry(tmp_path / "relative", relative_urls=True) as relative,
        FaultProxy.for_registry(relative) as proxy,
    ):
        proxy.add(set_header("OCI-Chunk-Min-Length", str(2 * MiB)), method="POST", path="/blobs/uploads/")
        with (
            regpeek.Client(**client_options(source)) as reader,
            regpeek.Client(**client_options(relative)) as writer,
        ):
            copy(reader, f"{source.host}/big/random:v1", f"{proxy.host}/rel/random:v1", dest_client=writer,
                 chunk_size=MiB)  # fmt: skip
        posts = proxy.matching("/blobs/uploads/", method="POST")
        assert all(
            (r.response_header("Location") or "").startswith("/v2/rel/random/blobs/uploads/") for r in posts
        )
        ranges = [r.header("Content-Range") for r in proxy.matching("/blobs/uploads/", method="PATCH")]
        assert ranges == [f"0-{2 * MiB - 1}"]
        [put] = [r for r in proxy.matching("/blobs/uploads/", method="PUT") if r.request_body_bytes > MiB]
        assert put.request_body_bytes == big.layers[0].size - 2 * MiB
        assert skopeo_raw_manifest(relative.host, "rel/random:v1") == big.manifest


def test_dry_run_writes_nothing(source: Registry, images: dict[str, Pushed], registry: Registry,
                                samples: dict[str, Pushed]) -> None:  # fmt: skip
    registry.mark()
    done = run_cli("copy", "--plain-http", "--dry-run", f"{source.host}/samples/index",
                   f"{registry.host}/dry/index:v1")  # fmt: skip
    assert done.code == 0, done.stderr
    assert {r.method for r in registry.requests()} == {"HEAD"}
    lines = done.text.splitlines()
    index = images["samples/index"]
    assert isinstance(index, PushedIndex)
    blobs = {blob.digest for image in _children(index) for blob in (image.config, *image.layers)}
    assert sum(line.startswith("copy ") for line in lines) == len(blobs)
    assert lines[-1].startswith(
        f"would copy {source.host}/samples/index:latest to {registry.host}/dry/index:v1"
    )
    done = run_cli("copy", "--plain-http", "--dry-run", "--json", f"{registry.host}/samples/index",
                   f"{registry.host}/dry/index:v1")  # fmt: skip
    assert {b["action"] for b in json.loads(done.stdout)["blobs"]} == {"mounted"}


def test_destination_names(registry: Registry, samples: dict[str, Pushed]) -> None:
    index = samples["samples/index"]
    assert isinstance(index, PushedIndex)
    flags = registry_flags(registry)
    done = run_cli(
        "copy", *flags, "--json", f"{registry.host}/samples/index:latest", f"{registry.host}/named/x"
    )
    assert json.loads(done.stdout)["tag"] == "latest"  # no tag: the source's
    done = run_cli(
        "copy", *flags, f"{registry.host}/samples/index@{index.digest}", f"{registry.host}/named/y"
    )
    assert done.code == 2 and "give the destination a tag" in done.stderr
    done = run_cli("copy", *flags, "--json", f"{registry.host}/samples/index@{index.digest}",
                   f"{registry.host}/named/y@{index.digest}")  # fmt: skip
    assert done.code == 0 and json.loads(done.stdout)["tag"] is None
    other = index.children[0].digest
    done = run_cli("copy", *flags, f"{registry.host}/samples/index", f"{registry.host}/named/z@{other}")
    assert done.code == 2
    arm64 = index.child("linux", "arm64", "v8")
    done = run_cli("copy", *flags, "--json", "--platform", "linux/arm64", f"{registry.host}/samples/index",
                   f"{registry.host}/named/arm64:v1")  # fmt: skip
    result = json.loads(done.stdout)
    assert result["digest"] == arm64.digest and result["platforms"] == ["linux/arm64"]
    assert skopeo_raw_manifest(registry.host, "named/arm64:v1") == arm64.manifest
    done = run_cli("copy", *flags, "--platform", "linux/s390x", f"{registry.host}/samples/index",
                   f"{registry.host}/named/none:v1")  # fmt: skip
    assert done.code == 3


def _copy_with(flavour: str, registry: Registry, src: str, dst: str, **kwargs: Any) -> CopyResult:
    if flavour == "sync":
        with regpeek.Client(**client_options(registry)) as client:
            return copy(client, src, dst, **kwargs)

    async def run() -> CopyResult:
        async with regpeek.AsyncClient(**client_options(registry)) as client:
            return await copy(client, src, dst, **kwargs)

    return asyncio.run(run())


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_python_api_both_clients(
    flavour: str, registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    index = samples["samples/list"]
    result = _copy_with(
        flavour, registry, f"{registry.host}/samples/list", f"{registry.host}/api/{flavour}:v1"
    )
    assert isinstance(result, CopyResult)
    assert result.digest == regpeek.Digest.parse(index.digest)
    assert result.count("mounted") == len(result.blobs) > 0 and result.seconds > 0
    archived = _copy_with(
        flavour, registry, f"{registry.host}/api/{flavour}:v1", f"oci-archive:{tmp_path}/a.tar"
    )
    assert archived.count("copied") == len(archived.blobs) and archived.copied_bytes > 0
    assert (tmp_path / "a.tar").is_file()


# -- schema1 and foreign layers ----------------------------------------------------------------------
def test_schema1(schema1_registry: Registry, schema1_samples: dict[str, Pushed], tmp_path: Path) -> None:
    """To a registry that takes schema1: as it is, digest kept. To an archive: converted, and said so."""
    pushed = schema1_samples["samples/schema1"]
    flags = registry_flags(schema1_registry)
    done = run_cli("copy", *flags, "--json", f"{schema1_registry.host}/samples/schema1",
                   f"{schema1_registry.host}/copied/schema1:v1")  # fmt: skip
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["digest"] == pushed.digest
    done = run_cli(
        "copy", *flags, f"{schema1_registry.host}/samples/schema1", f"oci-archive:{tmp_path}/s1.tar"
    )
    assert done.code == 0, done.stderr
    assert f"the schema1 source {pushed.digest} was converted" in done.stderr
    with start_registry(tmp_path / "modern") as modern:
        done = run_cli("copy", *flags, f"{schema1_registry.host}/samples/schema1", f"{modern.host}/s1/x:v1")
        assert done.code == 5 and "does not take schema1" in done.stderr
        done = run_cli("copy", *flags, f"oci-archive:{tmp_path}/s1.tar", f"{modern.host}/s1/x:v1")
        assert done.code == 0, done.stderr


@pytest.fixture
def foreign_image(tmp_path: Path) -> Iterator[tuple[Registry, bytes, Blob, RecordingServer]]:
    """An image whose last layer is non-distributable: the registry holds it only in another repository,
    and its descriptor's URL points at a server that serves it from there."""
    with (
        start_registry(tmp_path / "foreign", foreign_urls=True) as registry,
        pusher_for(registry) as pusher,
        RecordingServer(registry.url) as server,
    ):
        layer = Blob.of(NONDISTRIBUTABLE, os.urandom(4096))
        pusher.push_blob("foreign/store", layer.data)
        image = push_oci_image(pusher, "foreign/app", "v1")
        document = json.loads(image.manifest)
        url = f"{server.url}/v2/foreign/store/blobs/{layer.digest}"
        document["layers"].append({**layer.descriptor(), "urls": [url]})
        raw = compact_json(document)
        pusher.push_manifest("foreign/app", "v2", raw, image.media_type)
        yield registry, raw, layer, server


def test_foreign_layers(foreign_image: tuple[Registry, bytes, Blob, RecordingServer]) -> None:
    registry, manifest, layer, server = foreign_image
    flags = registry_flags(registry)
    done = run_cli(
        "copy", *flags, "--json", f"{registry.host}/foreign/app:v2", f"{registry.host}/foreign/copy:v2"
    )
    assert done.code == 0, done.stderr
    actions = {b["digest"]: b["action"] for b in json.loads(done.stdout)["blobs"]}
    assert actions[layer.digest] == "skipped"
    done = run_cli("copy", *flags, f"{registry.host}/foreign/app:v2", f"{registry.host}/foreign/copy:v2")
    assert "1 non-distributable layer(s) left out" in done.stderr
    assert skopeo_raw_manifest(registry.host, "foreign/copy:v2") == manifest
    assert not server.requests
    done = run_cli("copy", *flags, "--json", "--allow-nondistributable", f"{registry.host}/foreign/app:v2",
                   f"{registry.host}/foreign/full:v2")  # fmt: skip
    assert done.code == 0, done.stderr
    assert {b["digest"]: b["action"] for b in json.loads(done.stdout)["blobs"]}[layer.digest] == "copied"
    assert server.matching(f"/blobs/{layer.digest}", method="GET")
    with pusher_for(registry) as pusher:
        assert pusher.get_raw(f"/v2/foreign/full/blobs/{layer.digest}").content == layer.data


def test_pull_spells_local_destinations(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """``pull REF oci-archive:FILE`` (and oci:, docker-archive:) write what copy writes, one platform."""
    index = samples["samples/index"]
    assert isinstance(index, PushedIndex)
    arm64 = index.child("linux", "arm64", "v8")
    flags = [*registry_flags(registry), "--platform", "linux/arm64"]
    done = run_cli("pull", *flags, f"{registry.host}/samples/index", f"oci-archive:{tmp_path}/p.tar")
    assert done.code == 0, done.stderr
    assert _skopeo("inspect", "--raw", f"oci-archive:{tmp_path}/p.tar").encode() == arm64.manifest
    done = run_cli("pull", *flags, f"{registry.host}/samples/index", f"oci:{tmp_path}/lay:named")
    assert done.code == 0, done.stderr
    [entry] = json.loads((tmp_path / "lay" / "index.json").read_text())["manifests"]
    assert (entry["digest"], entry["annotations"]["org.opencontainers.image.ref.name"]) == (
        arm64.digest,
        "named",
    )
    done = run_cli("pull", *flags, f"{registry.host}/samples/index", f"docker-archive:{tmp_path}/d.tar:app:1")
    assert done.code == 0, done.stderr
    assert json.loads(_tar_member(tmp_path / "d.tar", "manifest.json"))[0]["RepoTags"] == [
        "docker.io/library/app:1"
    ]


def test_authfiles_per_side(
    registry: Registry, samples: dict[str, Pushed], dest: Registry, tmp_path: Path
) -> None:
    """--dest-authfile gives the destination its credentials; without any, the push is refused (exit 4)."""
    import base64

    authfile = tmp_path / "auth.json"
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    authfile.write_text(json.dumps({"auths": {dest.host: {"auth": token}}}))
    flags = ["--plain-http", f"{registry.host}/samples/oci", f"{dest.host}/authfile/oci:v1"]
    refused = run_cli("copy", *flags)
    assert refused.code == 4, refused.stderr
    done = run_cli("copy", "--dest-authfile", str(authfile), *flags)
    assert done.code == 0, done.stderr
    assert _has_manifest(dest, "authfile/oci", "v1")
    done = run_cli("copy", "--src-authfile", str(authfile), "--plain-http", f"{dest.host}/authfile/oci:v1",
                   f"oci:{tmp_path}/out")  # fmt: skip
    assert done.code == 0, done.stderr


def test_local_to_local(registry: Registry, samples: dict[str, Pushed], tmp_path: Path) -> None:
    """oci-archive -> docker-archive -> oci layout, offline: the config survives, the layers are the
    diff_ids, and a second docker archive written from the layout is read the same."""
    image = samples["samples/oci"]
    assert isinstance(image, PushedImage)
    assert (
        run_cli(
            "copy", *registry_flags(registry), f"{registry.host}/samples/oci", f"oci-archive:{tmp_path}/a.tar"
        ).code
        == 0
    )
    done = run_cli("copy", f"oci-archive:{tmp_path}/a.tar", f"docker-archive:{tmp_path}/d.tar:local/app:1")
    assert done.code == 0, done.stderr
    done = run_cli("copy", "--json", f"docker-archive:{tmp_path}/d.tar", f"oci:{tmp_path}/layout")
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["tag"] == "docker.io/local/app:1"
    ours = _inspect(f"oci:{tmp_path}/layout")  # one image: no NAME needed (a NAME holds no "/")
    assert ours["config_digest"] == image.config.digest
    assert [layer["digest"] for layer in ours["layers"]] == list(image.diff_ids)
    done = run_cli("copy", f"oci:{tmp_path}/layout", f"docker-archive:{tmp_path}/e.tar")
    assert done.code == 0, done.stderr
    assert _inspect(f"docker-archive:{tmp_path}/e.tar")["digest"] == ours["digest"]


def test_archives_are_read_by_the_other_commands(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    index = samples["samples/index"]
    assert isinstance(index, PushedIndex)
    archive = f"oci-archive:{tmp_path}/i.tar"
    assert run_cli("copy", *registry_flags(registry), f"{registry.host}/samples/index", archive).code == 0
    assert run_cli("digest", archive).text.strip() == index.digest
    assert run_cli("manifest", archive).stdout == index.manifest
    done = run_cli("unpack", "--platform", "linux/arm/v7", archive, str(tmp_path / "rootfs"))
    assert done.code == 0, done.stderr
    assert (tmp_path / "rootfs" / "app" / "platform.txt").read_text() == "linux/arm/v7\n"
