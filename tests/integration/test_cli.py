"""The CLI as a user meets it: every exit code, one-line errors, tags, and tampered registry content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import regpeek
from tests.integration.api import Api, registry_flags, run_cli
from tests.support.images import load_samples, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.util import free_port


def _one_line_error(stderr: str) -> None:
    assert stderr.startswith("regpeek: error: ")
    assert stderr.count("\n") == 1
    assert "Traceback" not in stderr


def _blob_file(registry: Registry, digest: str) -> Path:
    hexpart = digest.split(":", 1)[1]
    return registry.workdir / "storage/docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = ord("X") if data[middle] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))


def test_exit_0_and_outputs(registry: Registry, samples: dict[str, Any]) -> None:
    image = samples["samples/docker"]
    ref = f"{registry.host}/samples/docker"
    flags = registry_flags(registry)
    inspect = run_cli("inspect", "--json", *flags, ref)
    assert (inspect.code, inspect.stderr) == (0, "")
    assert json.loads(inspect.stdout)["digest"] == image.digest
    assert run_cli("manifest", *flags, ref).stdout == image.manifest
    assert run_cli("config", *flags, ref).stdout == image.config.data
    assert run_cli("digest", *flags, ref).text == image.digest + "\n"
    assert run_cli("tags", *flags, f"{registry.host}/samples/docker").text == "latest\n"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["inspect", "Not/Valid:tag"], id="uppercase-repository"),
        pytest.param(["inspect", "a" * 64], id="image-id"),
        pytest.param(["inspect", "x@sha256:abc"], id="short-digest"),
        pytest.param(["inspect", "https://registry.example/x"], id="url"),
        pytest.param(["inspect", "--platform", "linux/", "ubuntu"], id="bad-platform"),
        pytest.param(["inspect", "--platform", "linux", "ubuntu"], id="os-without-arch"),
        pytest.param(["digest", "--password", "x", "ubuntu"], id="password-without-username"),
        pytest.param(["tags", "ubuntu:latest"], id="tags-of-a-tag"),
        pytest.param(["inspect"], id="missing-argument"),
        pytest.param(["frobnicate"], id="unknown-command"),
    ],
)
def test_exit_2_usage_errors_before_any_traffic(argv: list[str], registry: Registry) -> None:
    registry.mark()
    done = run_cli(*argv)
    assert done.code == 2
    assert done.stdout == b""
    assert "Traceback" not in done.stderr
    assert done.stderr.strip()
    assert registry.requests() == []


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        pytest.param("samples/docker:missing", "MANIFEST_UNKNOWN", id="tag"),
        pytest.param("samples/nothing-here:latest", "MANIFEST_UNKNOWN", id="repository"),  # 2.8.2 says so
        pytest.param("samples/docker@sha256:" + "0" * 64, "MANIFEST_UNKNOWN", id="digest"),
    ],
)
def test_exit_3_not_found(registry: Registry, samples: dict[str, Any], ref: str, words: str) -> None:
    done = run_cli("inspect", *registry_flags(registry), f"{registry.host}/{ref}")
    assert done.code == 3
    _one_line_error(done.stderr)
    assert words in done.stderr
    assert "not found" in done.stderr


def test_exit_5_config_blob_tampered_in_storage(api: Api, fresh_registry: Registry) -> None:
    """The registry serves a config whose bytes no longer match the manifest's descriptor."""
    with pusher_for(fresh_registry) as pusher:
        image = push_oci_image(pusher, "tamper/config", "latest")
    _flip_a_byte(_blob_file(fresh_registry, image.config.digest))
    with pytest.raises(regpeek.DigestMismatchError) as caught:
        api.call(fresh_registry, "inspect", f"{fresh_registry.host}/tamper/config")
    assert image.config.digest in str(caught.value)
    done = run_cli("config", *registry_flags(fresh_registry), f"{fresh_registry.host}/tamper/config")
    assert done.code == 5
    assert done.stdout == b""  # nothing printed as if it were valid
    _one_line_error(done.stderr)
    assert f"expected {image.config.digest}, got sha256:" in done.stderr


def test_exit_5_manifest_tampered_in_storage(api: Api, fresh_registry: Registry) -> None:
    """By digest the bytes must hash to that digest; by tag they must match Docker-Content-Digest."""
    with pusher_for(fresh_registry) as pusher:
        image = push_oci_image(pusher, "tamper/manifest", "latest")
    path = _blob_file(fresh_registry, image.digest)
    document = json.loads(path.read_bytes())
    document["annotations"] = {"tampered": "yes"}
    path.write_bytes(json.dumps(document).encode())
    for ref in (f"tamper/manifest@{image.digest}", "tamper/manifest:latest"):
        with pytest.raises(regpeek.DigestMismatchError):
            api.call(fresh_registry, "manifest", f"{fresh_registry.host}/{ref}")
        done = run_cli("manifest", *registry_flags(fresh_registry), f"{fresh_registry.host}/{ref}")
        assert done.code == 5
        assert done.stdout == b""
        _one_line_error(done.stderr)


def test_exit_6_unreachable(api: Api) -> None:
    port = free_port()  # nothing listens there
    done = run_cli("inspect", "--plain-http", "--retries", "1", f"127.0.0.1:{port}/x")
    assert done.code == 6
    _one_line_error(done.stderr)
    assert f"127.0.0.1:{port}" in done.stderr and "after 2 attempts" in done.stderr


def test_exit_6_registry_gone_mid_session(api: Api, fresh_registry: Registry) -> None:
    host = fresh_registry.host
    with pusher_for(fresh_registry) as pusher:
        load_samples(pusher)
    fresh_registry.stop()
    with pytest.raises(regpeek.RegistryUnavailableError):
        api.call(fresh_registry, "inspect", f"{host}/samples/oci")


def test_debug_shows_traceback_and_requests(registry: Registry, samples: dict[str, Any]) -> None:
    done = run_cli("inspect", "--debug", *registry_flags(registry), f"{registry.host}/samples/docker:missing")
    assert done.code == 3
    assert "Traceback" in done.stderr
    assert (
        f"regpeek: debug: GET http://{registry.host}/v2/samples/docker/manifests/missing -> 404"
        in done.stderr
    )
    assert done.stderr.rstrip().splitlines()[-1].startswith("regpeek: error: ")


def test_version_and_help() -> None:
    done = run_cli("--version")
    assert (done.code, done.text) == (0, f"regpeek {regpeek.__version__}\n")
    helped = run_cli("inspect", "--help")
    assert helped.code == 0
    for option in ("--platform", "--json", "--username", "--password-stdin", "--authfile", "--ca-file",
                   "--insecure", "--plain-http", "--timeout", "--debug"):  # fmt: skip
        assert option in helped.text


def test_tags_many(api: Api, fresh_registry: Registry) -> None:
    with pusher_for(fresh_registry) as pusher:
        image = push_oci_image(pusher, "many/tags", "latest")
        names = [f"v1.{n}" for n in range(40)]
        for name in names:
            pusher.push_manifest("many/tags", name, image.manifest, image.media_type)
    tags = api.call(fresh_registry, "tags", f"{fresh_registry.host}/many/tags")
    assert sorted(tags) == sorted([*names, "latest"])
    done = run_cli("tags", *registry_flags(fresh_registry), f"{fresh_registry.host}/many/tags")
    assert done.code == 0
    assert sorted(done.text.splitlines()) == sorted([*names, "latest"])


def test_tags_of_missing_repository(fresh_registry: Registry) -> None:
    done = run_cli("tags", *registry_flags(fresh_registry), f"{fresh_registry.host}/no/such")
    assert done.code == 3
    _one_line_error(done.stderr)


def test_exit_1_internal_error(
    registry: Registry, samples: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (any exception that is not a RegpeekError) is one line and exit 1; --debug adds the traceback."""

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(regpeek.formats.config, "build_inspect", broken)
    monkeypatch.setattr("regpeek.network._sync.registry.build_inspect", broken)
    done = run_cli("inspect", *registry_flags(registry), f"{registry.host}/samples/oci")
    assert done.code == 1
    assert done.stderr == "regpeek: internal error: 'boom'\n"
    debug = run_cli("inspect", "--debug", *registry_flags(registry), f"{registry.host}/samples/oci")
    assert debug.code == 1
    assert "Traceback" in debug.stderr and "KeyError" in debug.stderr
