"""Choosing a platform from a real index: containerd's rules, attestations, Windows os.version."""

from __future__ import annotations

from typing import Any

import pytest

import regpeek
from tests.integration.api import Api, registry_flags, run_cli
from tests.support.registry import Registry


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        pytest.param("linux/amd64", ("linux", "amd64", None), id="exact"),
        pytest.param("linux/x86_64", ("linux", "amd64", None), id="x86_64-normalised"),
        pytest.param("linux/arm64", ("linux", "arm64", "v8"), id="arm64-matches-v8"),
        pytest.param("linux/aarch64", ("linux", "arm64", "v8"), id="aarch64"),
        pytest.param("linux/arm64/v8", ("linux", "arm64", "v8"), id="arm64-v8"),
        pytest.param("linux/arm", ("linux", "arm", "v7"), id="arm-means-v7"),
        pytest.param("linux/armhf", ("linux", "arm", "v7"), id="armhf"),
        pytest.param("linux/arm/v7", ("linux", "arm", "v7"), id="arm-v7"),
        pytest.param("linux/arm/v8", ("linux", "arm", "v7"), id="arm-v8-falls-back-to-v7"),
        pytest.param("linux/armel", ("linux", "arm", "v6"), id="armel-is-v6"),
        pytest.param("linux/arm/v6", ("linux", "arm", "v6"), id="arm-v6"),
        pytest.param("linux/amd64/v3", ("linux", "amd64", None), id="amd64-v3-falls-back"),
        pytest.param("windows/amd64", ("windows", "amd64", None), id="windows"),
        pytest.param("windows(10.0.17763)/amd64", ("windows", "amd64", None), id="windows-os-version-prefix"),
    ],
)
def test_platform_choice(api: Api, registry: Registry, samples: dict[str, Any], wanted: str,
                         chosen: tuple[str, str, str | None]) -> None:  # fmt: skip
    index = samples["samples/index"]
    result = api.call(registry, "inspect", f"{registry.host}/samples/index", platform=wanted)
    child = index.child(*chosen)
    assert str(result.digest) == child.digest
    assert result.to_dict()["labels"]["org.regpeek.formats.platform"] == child.platform.label


def test_windows_os_version_reported(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    result = api.call(registry, "inspect", f"{registry.host}/samples/list", platform="windows/amd64")
    assert result.platform.os_version == "10.0.17763.4010"
    assert result.to_dict()["platform"]["os_version"] == "10.0.17763.4010"


@pytest.mark.parametrize(
    "wanted",
    [
        "linux/s390x",
        "linux/arm/v5",
        "windows(10.0.20348)/amd64",
        "unknown/unknown",
        # an unknown variant has no fallbacks: never another variant's image (containerd; issue 10, item 9)
        "linux/arm/vfoo",
        "linux/arm64/v10",
    ],
)
def test_no_matching_platform(api: Api, registry: Registry, samples: dict[str, Any], wanted: str) -> None:
    with pytest.raises(regpeek.PlatformNotFoundError) as caught:
        api.call(registry, "inspect", f"{registry.host}/samples/index", platform=wanted)
    message = str(caught.value)
    for there in [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "linux/arm/v6",
        "windows/amd64 (10.0.17763.4010)",
    ]:
        assert there in message
    assert "unknown" not in message.split("available:")[1]  # the attestation is not a platform


@pytest.mark.parametrize("wanted", ["linux/riscv64", "linux/arm/vfoo"])
def test_no_matching_platform_cli_exit_3(registry: Registry, samples: dict[str, Any], wanted: str) -> None:
    done = run_cli(
        "inspect", *registry_flags(registry), "--platform", wanted, f"{registry.host}/samples/list"
    )
    assert done.code == 3
    assert done.stdout == b""
    assert done.stderr.count("\n") == 1
    assert wanted in done.stderr and "linux/arm/v6" in done.stderr
    assert "Traceback" not in done.stderr


def test_explicit_platform_must_match_single_image(
    api: Api, registry: Registry, samples: dict[str, Any]
) -> None:
    with pytest.raises(regpeek.PlatformNotFoundError):
        api.call(registry, "inspect", f"{registry.host}/samples/oci", platform="linux/arm64")
    # the default (host) platform never blocks a single-platform image
    result = api.call(registry, "inspect", f"{registry.host}/samples/oci", client={"platform": "linux/arm64"})
    assert str(result.digest) == samples["samples/oci"].digest


def test_manifest_and_digest_of_index(api: Api, registry: Registry, samples: dict[str, Any]) -> None:
    index = samples["samples/index"]
    ref = f"{registry.host}/samples/index"
    top = api.call(registry, "manifest", ref)
    assert isinstance(top, regpeek.Index)
    assert top.raw == index.manifest
    assert str(api.call(registry, "digest", ref)) == index.digest
    child = index.child("linux", "arm", "v6")
    assert api.call(registry, "manifest", ref, platform="linux/arm/v6").raw == child.manifest
    assert str(api.call(registry, "digest", ref, platform="linux/arm/v6")) == child.digest


def test_cli_manifest_and_digest_with_platform(registry: Registry, samples: dict[str, Any]) -> None:
    index = samples["samples/list"]
    ref = f"{registry.host}/samples/list"
    flags = registry_flags(registry)
    assert run_cli("manifest", *flags, ref).stdout == index.manifest
    child = index.child("linux", "arm64", "v8")
    assert run_cli("manifest", *flags, "--platform", "linux/arm64", ref).stdout == child.manifest
    assert run_cli("digest", *flags, ref).text == index.digest + "\n"
    assert run_cli("digest", *flags, "--platform", "linux/arm64", ref).text == child.digest + "\n"
    assert run_cli("config", *flags, "--platform", "linux/arm64", ref).stdout == child.config.data
