"""Docker schema1 against a real registry: signed pushes, and schema2 converted by the registry itself."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

import regpeek
from regpeek.formats import mediatypes as mt
from regpeek.formats.schema1 import EMPTY_LAYER
from tests.integration.api import Api, registry_flags, run_cli
from tests.support.images import PushedSchema1, fetch_converted_schema1
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.schema1 import canonical_schema1, verify_schema1


def _registry_digest(registry: Registry, repository: str, tag: str) -> str:
    """The ``Docker-Content-Digest`` the registry itself reports for a schema1 tag."""
    with pusher_for(registry) as pusher:
        response = pusher.get_raw(f"/v2/{repository}/manifests/{tag}", headers={"Accept": mt.SCHEMA1_SIGNED})
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def test_signed_schema1_inspect(
    api: Api, schema1_registry: Registry, schema1_samples: dict[str, Any]
) -> None:
    pushed: PushedSchema1 = schema1_samples["samples/schema1"]
    result = api.call(schema1_registry, "inspect", f"{schema1_registry.host}/samples/schema1")
    # the digest covers the canonical JWS payload, which is what the registry reports (asked here
    # directly, not through the fixture)...
    reported = _registry_digest(schema1_registry, "samples/schema1", "latest")
    assert str(result.digest) == reported == pushed.digest
    # ...and not the whole body as served (the mistake that makes other clients reject every signed
    # manifest); the bytes regpeek prints hash to the reported digest only once canonicalised
    served = run_cli(
        "manifest", *registry_flags(schema1_registry), f"{schema1_registry.host}/samples/schema1"
    )
    assert served.code == 0, served.stderr
    assert "sha256:" + hashlib.sha256(served.stdout).hexdigest() != reported
    assert "sha256:" + hashlib.sha256(canonical_schema1(served.stdout)[0]).hexdigest() == reported
    assert result.media_type == mt.SCHEMA1_SIGNED
    assert result.schema_version == 1
    assert result.config_digest is None
    assert result.index_digest is None
    data = result.to_dict()
    newest = pushed.history[0]
    assert data["env"] == newest["config"]["Env"]
    assert data["entrypoint"] == newest["config"]["Entrypoint"]
    assert data["cmd"] == newest["config"]["Cmd"]
    assert data["labels"] == newest["config"]["Labels"]
    assert data["user"] == newest["config"]["User"]
    assert data["working_dir"] == newest["config"]["WorkingDir"]
    assert data["exposed_ports"] == sorted(newest["config"]["ExposedPorts"])
    assert data["volumes"] == sorted(newest["config"]["Volumes"])
    assert data["created"] == newest["created"]
    assert data["author"] == newest["author"]
    assert data["docker_version"] == newest["docker_version"]
    assert data["platform"]["architecture"] == newest["architecture"]
    # layers base first, throwaway entries dropped; history keeps them as empty layers
    base_first = list(zip(reversed(pushed.fs_layers), reversed(pushed.history), strict=True))
    real = [blob.digest for blob, v1 in base_first if not v1.get("throwaway")]
    assert [layer["digest"] for layer in data["layers"]] == real
    assert all(layer["size"] is None and layer["diff_id"] is None for layer in data["layers"])
    assert data["size"] is None
    assert [h["empty_layer"] for h in data["history"]] == [bool(v1.get("throwaway")) for _, v1 in base_first]
    assert any(blob.digest == EMPTY_LAYER for blob in pushed.fs_layers)


def test_signed_schema1_cli(schema1_registry: Registry, schema1_samples: dict[str, Any]) -> None:
    pushed: PushedSchema1 = schema1_samples["samples/schema1"]
    ref = f"{schema1_registry.host}/samples/schema1"
    flags = registry_flags(schema1_registry)
    assert run_cli("digest", *flags, ref).text == pushed.digest + "\n"
    manifest = run_cli("manifest", *flags, ref)
    assert manifest.code == 0
    assert json.loads(manifest.stdout)["signatures"]  # served signed, as the registry has it
    # distribution re-signs on every GET: the bytes change, the signed payload and its digest do not
    assert canonical_schema1(manifest.stdout) == (pushed.canonical, pushed.digest)
    assert verify_schema1(manifest.stdout)  # the signatures of what we wrote out are intact
    config = run_cli("config", *flags, ref)
    assert config.code == 0, config.stderr
    document = json.loads(config.stdout)
    assert document["config"] == pushed.history[0]["config"]
    assert document["architecture"] == pushed.history[0]["architecture"]
    assert len(document["history"]) == len(pushed.history)
    by_digest = run_cli(
        "inspect", "--json", *flags, f"{schema1_registry.host}/samples/schema1@{pushed.digest}"
    )
    assert by_digest.code == 0, by_digest.stderr
    assert json.loads(by_digest.stdout)["digest"] == pushed.digest


def test_registry_converted_schema1(
    api: Api, schema1_registry: Registry, schema1_samples: dict[str, Any]
) -> None:
    """A client asking only for v1 gets schema2 converted and signed by the registry's own key."""
    image = schema1_samples["samples/docker"]
    ref = f"{schema1_registry.host}/samples/docker"
    manifest = api.call(schema1_registry, "fetch_manifest", ref, accept=mt.SCHEMA1_SIGNED)
    # regpeek checked Docker-Content-Digest against the canonical payload; check the oracle too
    body, announced = fetch_converted_schema1(schema1_registry.url, "samples/docker", "latest")
    assert isinstance(manifest, regpeek.Schema1Manifest)
    assert manifest.signed
    assert str(manifest.digest) == announced
    assert announced != "sha256:" + hashlib.sha256(body).hexdigest()
    real_layers = [str(layer.blob_sum) for layer in manifest.layers if not layer.throwaway]
    assert real_layers == [layer.digest for layer in image.layers]


def test_converted_schema1_pushed_back(
    api: Api, schema1_registry: Registry, schema1_samples: dict[str, Any]
) -> None:
    """The registry's own signed output, stored as a tag, inspects to the digest the registry reports."""
    body, announced = fetch_converted_schema1(schema1_registry.url, "samples/docker", "latest")
    with pusher_for(schema1_registry) as pusher:
        stored = pusher.push_manifest("samples/docker", "as-schema1", body, mt.SCHEMA1_SIGNED,
                                      expected_digest=announced)  # fmt: skip
    assert stored == announced
    result = api.call(schema1_registry, "inspect", f"{schema1_registry.host}/samples/docker:as-schema1")
    assert str(result.digest) == announced
    assert result.schema_version == 1
    assert result.to_dict()["env"] == schema1_samples["samples/docker"].config_json["config"]["Env"]


def test_schema1_digest_mismatch_by_digest(api: Api, schema1_registry: Registry,
                                           schema1_samples: dict[str, Any]) -> None:  # fmt: skip
    """Asking for the whole-body hash of a signed manifest finds nothing: the registry keys the canonical one."""
    pushed: PushedSchema1 = schema1_samples["samples/schema1"]
    wrong = "sha256:" + hashlib.sha256(pushed.manifest).hexdigest()
    with pytest.raises(regpeek.NotFoundError):
        api.call(schema1_registry, "inspect", f"{schema1_registry.host}/samples/schema1@{wrong}")
