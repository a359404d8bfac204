"""schema1 -> OCI conversion: ``regpeek pull`` against ``skopeo copy`` of the same image into a layout.

skopeo (containers/image) is the reference the README names: both pull a signed schema1 image from the
real registry into an OCI layout, and the config bytes must be equal. Two images: the sample set's
``samples/schema1``, and one whose history carries everything the conversion must drop or re-encode
(Docker-only fields, nulls, HTML characters, a history entry without ``created``, fractional and offset
timestamps, ``comment``, ``ArgsEscaped``, ``StopSignal``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

import regpeek
from regpeek.formats.schema1 import go_json
from regpeek.pull import pull
from tests.integration.api import client_options
from tests.support.fixtures import require_tool
from tests.support.images import EMPTY_GZIP_TAR, Blob, make_layer
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.schema1 import pretty_json, sign_schema1

RICH = "conformance/rich-schema1"
VARIANT = "conformance/variant-schema1"
PLATFORM_FIELDS = {"architecture": "arm64", "variant": "v8", "os.version": "5.10", "os.features": ["b", "a"]}
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _rich_history(platform: dict[str, Any] | None = None) -> tuple[list[Blob], list[dict[str, Any]]]:
    """(layers, v1Compatibility entries), base first."""
    base = Blob.of(DOCKER_LAYER, make_layer({"etc/os-release": b"ID=rich\n"}))
    app = Blob.of(DOCKER_LAYER, make_layer({"app/run.sh": b"#!/bin/sh\necho <&>\n"}))
    empty = Blob.of(DOCKER_LAYER, EMPTY_GZIP_TAR)
    ids = [hashlib.sha256(f"rich-{i}".encode()).hexdigest() for i in range(4)]
    docker_config = {
        "Hostname": "9428cdea83ba", "Domainname": "", "User": "app", "AttachStdin": False, "AttachStdout": False,
        "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": ["PATH=/usr/bin:/bin", "GREETING=<hello & goodbye>"], "Cmd": ["/app/run.sh"],
        "Healthcheck": {"Test": ["CMD-SHELL", "/app/run.sh"]}, "ArgsEscaped": True,
        "Image": "sha256:" + "1" * 64, "Volumes": None, "WorkingDir": "/app", "Entrypoint": None, "OnBuild": [],
        "Labels": {"b.label": "x > y", "a.label": "café"}, "StopSignal": "SIGQUIT",
        "ExposedPorts": {"8443/tcp": {}, "80/tcp": {}},
    }  # fmt: skip
    history: list[dict[str, Any]] = [
        {"id": ids[0], "comment": "Imported from -", "created": "2019-03-01T10:00:00.500000000Z",
         "container_config": {"Cmd": [""]}},
        {"id": ids[1], "parent": ids[0], "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ENV A=1"]},
         "throwaway": True},  # no `created`: Go's zero time in the converted history
        {"id": ids[2], "parent": ids[1], "created": "2019-03-01T12:00:00+02:00", "author": "Someone <s@example.com>",
         "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) COPY run.sh /app/"]}},
        {"id": ids[3], "parent": ids[2], "created": "2019-03-02T08:30:15.123456Z", "author": "Someone <s@example.com>",
         "docker_version": "1.13.1", "container": "0fd99658f7a7", "architecture": "amd64", "os": "linux",
         "container_config": {**docker_config, "Cmd": ["/bin/sh", "-c", '#(nop) CMD ["/app/run.sh"]']},
         "config": docker_config, "throwaway": True, "Size": 0},
    ]  # fmt: skip
    history[-1].update(platform or {})
    return [base, empty, app, empty], history


def _push_rich(registry: Registry, repo: str = RICH, platform: dict[str, Any] | None = None) -> None:
    layers, history = _rich_history(platform)
    document = {
        "schemaVersion": 1,
        "name": repo,
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": blob.digest} for blob in reversed(layers)],
        "history": [
            {"v1Compatibility": json.dumps(entry, separators=(",", ":"))} for entry in reversed(history)
        ],
    }
    signed = sign_schema1(pretty_json(document))
    with pusher_for(registry) as pusher:
        for blob in {blob.digest: blob for blob in layers}.values():
            pusher.push_blob(repo, blob.data)
        pusher.push_manifest(repo, "latest", signed.signed, "application/vnd.docker.distribution.manifest.v1+prettyjws",
                             expected_digest=signed.digest)  # fmt: skip


def _skopeo_copy(registry: Registry, repo: str, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="regpeek-skopeo-") as tmp:
        authfile = Path(tmp) / "auth.json"
        authfile.write_text("{}")
        env = {**os.environ, "TMPDIR": tmp, "XDG_RUNTIME_DIR": tmp, "REGISTRY_AUTH_FILE": str(authfile)}
        args = ["skopeo", "copy", "--authfile", str(authfile), "--src-tls-verify=false", "--retry-times", "0",
                f"docker://{registry.host}/{repo}:latest", f"oci:{dest}:latest"]  # fmt: skip
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=120, check=False, cwd=tmp, env=env
        )
    assert done.returncode == 0, done.stderr


def _image(layout: Path) -> tuple[bytes, bytes]:
    """(manifest bytes, config bytes) of the layout's one image."""
    index = json.loads((layout / "index.json").read_bytes())
    (entry,) = index["manifests"]

    def blob(digest: str) -> bytes:
        algorithm, hexpart = digest.split(":")
        return (layout / "blobs" / algorithm / hexpart).read_bytes()

    manifest = blob(entry["digest"])
    return manifest, blob(json.loads(manifest)["config"]["digest"])


@pytest.fixture(scope="module")
def rich_pushed(schema1_registry: Registry) -> str:
    _push_rich(schema1_registry)
    _push_rich(schema1_registry, VARIANT, PLATFORM_FIELDS)
    return RICH


@pytest.mark.parametrize("repo", ["samples/schema1", RICH])
def test_pull_schema1_writes_the_config_skopeo_writes(
    schema1_registry: Registry, schema1_samples: dict[str, Any], rich_pushed: str, repo: str, tmp_path: Path
) -> None:
    require_tool("skopeo")
    ours, theirs = tmp_path / "regpeek", tmp_path / "skopeo"
    with regpeek.Client(**client_options(schema1_registry)) as client:
        result = pull(client, f"{schema1_registry.host}/{repo}", ours)
    assert result.converted_from_schema1
    _skopeo_copy(schema1_registry, repo, theirs)
    our_manifest, our_config = _image(ours)
    their_manifest, their_config = _image(theirs)
    assert our_config == their_config, (our_config.decode(), their_config.decode())
    assert our_manifest == their_manifest  # so the converted image has the same digest as skopeo's
    assert str(result.digest) == "sha256:" + hashlib.sha256(their_manifest).hexdigest()


def test_rich_schema1_config_keeps_only_oci_fields(
    schema1_registry: Registry, rich_pushed: str, tmp_path: Path
) -> None:
    """What the conversion keeps, stated independently of skopeo."""
    with regpeek.Client(**client_options(schema1_registry)) as client:
        pull(client, f"{schema1_registry.host}/{RICH}", tmp_path / "layout")
    _, raw = _image(tmp_path / "layout")
    config = json.loads(raw)
    assert list(config) == ["created", "author", "architecture", "os", "config", "rootfs", "history"]
    assert config["created"] == "2019-03-02T08:30:15.123456Z"
    assert config["config"] == {
        "User": "app",
        "ExposedPorts": {"80/tcp": {}, "8443/tcp": {}},
        "Env": ["PATH=/usr/bin:/bin", "GREETING=<hello & goodbye>"],
        "Cmd": ["/app/run.sh"],
        "WorkingDir": "/app",
        "Labels": {"a.label": "café", "b.label": "x > y"},
        "StopSignal": "SIGQUIT",
        "ArgsEscaped": True,
    }
    assert (
        b"\\u003chello \\u0026 goodbye\\u003e" in raw and "café".encode() in raw
    )  # Go's escaping, UTF-8 kept
    assert [h["created"] for h in config["history"]] == [
        "2019-03-01T10:00:00.5Z", "0001-01-01T00:00:00Z", "2019-03-01T12:00:00+02:00", "2019-03-02T08:30:15.123456Z",
    ]  # fmt: skip
    assert config["history"][0] == {"created": "2019-03-01T10:00:00.5Z", "comment": "Imported from -"}
    assert [h.get("empty_layer", False) for h in config["history"]] == [False, True, False, True]
    assert len(config["rootfs"]["diff_ids"]) == 2


def test_variant_follows_image_spec_1_1(schema1_registry: Registry, rich_pushed: str, tmp_path: Path) -> None:
    """With a variant the documents are equal but the key order is image-spec's: v1.1 (containers/image
    since 2023, which regpeek follows) writes ``variant`` after ``os.features``; skopeo builds on older
    image-spec (Debian's 1.9.3) write it after ``architecture``. The README lists this difference."""
    require_tool("skopeo")
    with regpeek.Client(**client_options(schema1_registry)) as client:
        pull(client, f"{schema1_registry.host}/{VARIANT}", tmp_path / "regpeek")
    _skopeo_copy(schema1_registry, VARIANT, tmp_path / "skopeo")
    _, ours = _image(tmp_path / "regpeek")
    _, theirs = _image(tmp_path / "skopeo")
    assert json.loads(ours) == json.loads(theirs)
    assert list(json.loads(ours))[:7] == ["created", "author", "architecture", "os", "os.version", "os.features",
                                          "variant"]  # fmt: skip
    if ours != theirs:  # an older skopeo: only the position of `variant` differs
        assert list(json.loads(theirs))[:4] == ["created", "author", "architecture", "variant"]
        moved = json.loads(theirs)
        assert ours == go_json({key: moved[key] for key in json.loads(ours)})
