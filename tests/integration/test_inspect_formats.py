"""Inspect every manifest format the real registry serves, checked against what was pushed and skopeo."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

import regpeek
from regpeek.formats import mediatypes as mt
from regpeek.formats.reference import Reference
from tests.integration.api import Api, registry_flags, run_cli
from tests.support.images import PushedImage, PushedIndex
from tests.support.oracles import skopeo_config, skopeo_inspect, skopeo_raw_manifest
from tests.support.registry import Registry

SINGLE = ["samples/oci", "samples/oci-nomediatype", "samples/docker", "samples/oci-mixed"]


def _expect_image(result: regpeek.InspectResult, image: PushedImage) -> None:
    """Every field of an inspect result against the image as it was pushed."""
    config = image.config_json
    inner = config["config"]
    assert str(result.digest) == image.digest
    assert str(result.config_digest) == image.config.digest
    assert result.config.raw == image.config.data
    assert result.media_type == image.media_type
    assert result.schema_version == 2
    assert [str(layer.digest) for layer in result.layers] == [layer.digest for layer in image.layers]
    assert [layer.size for layer in result.layers] == [layer.size for layer in image.layers]
    assert [layer.media_type for layer in result.layers] == [layer.media_type for layer in image.layers]
    assert [str(layer.diff_id) for layer in result.layers] == list(image.diff_ids)
    assert result.size == sum(layer.size for layer in image.layers)
    data = result.to_dict()
    assert data["env"] == inner["Env"]
    assert data["entrypoint"] == inner["Entrypoint"]
    assert data["cmd"] == inner["Cmd"]
    assert data["labels"] == inner["Labels"]
    assert data["working_dir"] == inner.get("WorkingDir")
    assert data["created"] == config["created"]
    assert data["platform"]["os"] == image.platform.os
    assert data["platform"]["architecture"] == image.platform.architecture
    assert len(data["history"]) == len(config["history"])
    assert [h["empty_layer"] for h in data["history"]] == [
        h.get("empty_layer", False) for h in config["history"]
    ]


@pytest.mark.parametrize("repo", SINGLE)
def test_inspect_single_platform_images(
    api: Api, registry: Registry, samples: dict[str, Any], repo: str
) -> None:
    image = samples[repo]
    result = api.call(registry, "inspect", f"{registry.host}/{repo}:latest")
    _expect_image(result, image)
    assert result.index_digest is None
    assert result.platforms is None
    assert result.tag == "latest"
    assert result.reference == Reference.parse(f"{registry.host}/{repo}:latest")  # a real Reference
    assert str(result.reference) == f"{registry.host}/{repo}:latest"


def test_oci_manifest_without_media_type_is_served_as_pushed(
    registry: Registry, samples: dict[str, Any]
) -> None:
    image = samples["samples/oci-nomediatype"]
    assert "mediaType" not in image.manifest_json  # the case that crashes other Python clients
    done = run_cli("manifest", *registry_flags(registry), f"{registry.host}/samples/oci-nomediatype")
    assert done.code == 0, done.stderr
    assert done.stdout == image.manifest


@pytest.mark.parametrize("repo", ["samples/index", "samples/list"])
def test_inspect_index_defaults_to_host_platform(api: Api, registry: Registry, samples: dict[str, Any],
                                                 repo: str) -> None:  # fmt: skip
    index: PushedIndex = samples[repo]
    result = api.call(registry, "inspect", f"{registry.host}/{repo}", client={"platform": "linux/amd64"})
    _expect_image(result, index.child("linux", "amd64"))
    assert str(result.index_digest) == index.digest
    assert result.index_media_type == index.media_type
    listed = [(p.platform.describe(), str(p.digest)) for p in result.platforms or []]
    expected = [(c.platform.label.replace("/v8", ""), c.digest) for c in index.children]
    expected = [
        (f"{label} ({c.platform.os_version})" if c.platform.os_version else label, digest)
        for (label, digest), c in zip(expected, index.children, strict=True)
    ]
    assert listed == expected
    if index.attestation is not None:  # attestations are never listed as platforms
        assert index.attestation.digest not in {digest for _, digest in listed}


def test_inspect_by_digest(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    image = samples["samples/docker"]
    result = api.call(registry, "inspect", f"{registry.host}/samples/docker@{image.digest}")
    _expect_image(result, image)
    assert result.tag is None


def test_tag_and_digest_keeps_digest(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    """``name:tag@digest``: the digest decides what is fetched, even if the tag points elsewhere."""
    oci = samples["samples/oci"]
    result = api.call(registry, "inspect", f"{registry.host}/samples/oci:no-such-tag@{oci.digest}")
    assert str(result.digest) == oci.digest
    assert result.tag == "no-such-tag"


@pytest.mark.parametrize("repo", ["samples/oci", "samples/docker", "samples/index", "samples/list"])
def test_skopeo_agrees(registry: Registry, samples: dict[str, Any], repo: str) -> None:
    """skopeo, an independent client, sees the same manifest bytes and config."""
    ref = f"{registry.host}/{repo}:latest"
    done = run_cli("manifest", *registry_flags(registry), ref)
    assert done.code == 0, done.stderr
    assert done.stdout == skopeo_raw_manifest(registry.host, f"{repo}:latest")
    config = skopeo_config(registry.host, f"{repo}:latest", override_os="linux", override_arch="amd64")
    done = run_cli("config", *registry_flags(registry), "--platform", "linux/amd64", ref)
    assert done.code == 0, done.stderr
    assert done.stdout == config
    ours = run_cli("digest", *registry_flags(registry), "--platform", "linux/amd64", ref)
    assert ours.code == 0, ours.stderr
    theirs = skopeo_inspect(registry.host, f"{repo}:latest", override_os="linux", override_arch="amd64")
    raw = skopeo_raw_manifest(registry.host, f"{repo}:latest")
    if isinstance(samples[repo], PushedIndex):
        # skopeo reports the index digest as Digest even when it shows a platform (a known quirk), so
        # the platform's digest is the one the index (as skopeo read it) names for linux/amd64, and
        # skopeo must serve bytes hashing to it.
        assert theirs["Digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
        [child] = [
            entry["digest"] for entry in json.loads(raw)["manifests"]
            if entry.get("platform", {}).get("os") == "linux"
            and entry.get("platform", {}).get("architecture") == "amd64"
        ]  # fmt: skip
        child_raw = skopeo_raw_manifest(registry.host, f"{repo}@{child}")
        assert "sha256:" + hashlib.sha256(child_raw).hexdigest() == child
        assert ours.text == child + "\n"
    else:
        assert theirs["Digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert ours.text == theirs["Digest"] + "\n"


def test_inspect_json_has_documented_keys(registry: Registry, samples: dict[str, Any]) -> None:
    done = run_cli("inspect", "--json", *registry_flags(registry), "--platform", "linux/arm/v7",
                   f"{registry.host}/samples/index")  # fmt: skip
    assert done.code == 0, done.stderr
    data = json.loads(done.stdout)
    assert list(data) == [
        "reference", "registry", "repository", "tag", "digest", "index_digest", "media_type",
        "schema_version", "platform", "platforms", "created", "author", "docker_version", "config_digest",
        "env", "entrypoint", "cmd", "working_dir", "user", "labels", "exposed_ports", "volumes",
        "stop_signal", "layers", "history", "size", "annotations",
    ]  # fmt: skip
    child = samples["samples/index"].child("linux", "arm", "v7")
    assert data["digest"] == child.digest
    assert data["platform"] == {"os": "linux", "architecture": "arm", "variant": "v7", "os_version": None}
    assert data["media_type"] == mt.OCI_MANIFEST
    assert set(data["layers"][0]) == {"digest", "size", "media_type", "diff_id"}


def test_inspect_readable_output(registry: Registry, samples: dict[str, Any]) -> None:
    done = run_cli("inspect", *registry_flags(registry), "--platform", "linux/arm64",
                   f"{registry.host}/samples/list")  # fmt: skip
    assert done.code == 0, done.stderr
    child = samples["samples/list"].child("linux", "arm64", "v8")
    text = done.text
    assert child.digest in text  # full digest, never cut
    assert samples["samples/list"].digest in text
    assert "linux/arm64 *" in text
    assert "REGPEEK_PLATFORM=linux/arm64" in text
    assert done.stderr == ""
