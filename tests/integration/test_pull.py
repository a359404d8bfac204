"""Pull into OCI layouts against the real registry, checked with skopeo and umoci as oracles."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import regpeek
from regpeek.formats import mediatypes as mt
from regpeek.pull import pull
from tests.integration.api import client_options, registry_flags, run_cli
from tests.support.images import PushedIndex, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry

REF_NAME = "org.opencontainers.image.ref.name"


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the sha256 of its content (for before/after comparisons)."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".regpeek.lock"
    }


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexpart = digest.split(":")
    return (layout / "blobs" / algorithm / hexpart).read_bytes()


def _index(layout: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((layout / "index.json").read_bytes())
    return document


def _skopeo_digest(layout: Path, name: str) -> str:
    done = subprocess.run(
        ["skopeo", "inspect", "--override-os", "linux", "--override-arch", "amd64", f"oci:{layout}:{name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    digest: str = json.loads(done.stdout)["Digest"]
    return digest


def _pull(registry: Registry, ref: str, dest: Path, **kwargs: Any) -> regpeek.PullResult:
    with regpeek.Client(**client_options(registry)) as client:
        return pull(client, f"{registry.host}/{ref}", dest, **kwargs)


def test_pull_multi_layer_image(registry: Registry, samples: dict[str, Any], tmp_path: Path) -> None:
    image = samples["samples/oci-mixed"]  # gzip, uncompressed and zstd layers
    dest = tmp_path / "layout"
    result = _pull(registry, "samples/oci-mixed", dest)
    assert str(result.digest) == image.digest
    assert json.loads((dest / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    [entry] = _index(dest)["manifests"]
    assert entry["digest"] == image.digest and entry["size"] == len(image.manifest)
    assert entry["annotations"] == {REF_NAME: "latest"}
    assert _blob(dest, image.digest) == image.manifest  # original bytes, original digest
    assert _blob(dest, image.config.digest) == image.config.data
    for layer in image.layers:
        assert _blob(dest, layer.digest) == layer.data
    assert sorted(p.name for p in dest.iterdir()) == [".regpeek.lock", "blobs", "index.json", "oci-layout"]
    assert _skopeo_digest(dest, "latest") == image.digest
    listed = subprocess.run(
        ["umoci", "ls", "--layout", str(dest)], capture_output=True, text=True, check=True
    )
    assert listed.stdout.split() == ["latest"]


def test_pull_single_platform_of_index(registry: Registry, samples: dict[str, Any], tmp_path: Path) -> None:
    index: PushedIndex = samples["samples/index"]
    child = index.child("linux", "arm", "v7")
    result = _pull(registry, "samples/index", tmp_path / "l", platform="linux/arm/v7")
    assert str(result.digest) == child.digest
    [entry] = _index(tmp_path / "l")["manifests"]
    assert entry["digest"] == child.digest
    assert entry["platform"] == {"architecture": "arm", "os": "linux", "variant": "v7"}
    assert not (tmp_path / "l" / "blobs" / "sha256" / index.digest.split(":")[1]).exists()


def test_pull_all_platforms_keeps_index(registry: Registry, samples: dict[str, Any], tmp_path: Path) -> None:
    index: PushedIndex = samples["samples/index"]
    dest = tmp_path / "all"
    done = run_cli(
        "pull",
        "--all-platforms",
        "--json",
        *registry_flags(registry),
        f"{registry.host}/samples/index",
        str(dest),
    )
    assert done.code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["digest"] == index.digest
    assert summary["platforms"] == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "linux/arm/v6",
        "windows/amd64 (10.0.17763.4010)",
    ]
    [entry] = _index(dest)["manifests"]
    assert entry["digest"] == index.digest and entry["mediaType"] == mt.OCI_INDEX
    assert _blob(dest, index.digest) == index.manifest
    children = [*index.children, *([index.attestation] if index.attestation else [])]
    for child in children:  # every entry of the kept index resolves inside the layout
        assert _blob(dest, child.digest) == child.manifest
        assert _blob(dest, child.config.digest) == child.config.data
        for layer in child.layers:
            assert _blob(dest, layer.digest) == layer.data
    assert _skopeo_digest(dest, "latest") == index.digest


def test_pull_schema1_converts_to_oci(schema1_registry: Registry, schema1_samples: dict[str, Any],
                                     tmp_path: Path) -> None:  # fmt: skip
    pushed = schema1_samples["samples/schema1"]
    dest = tmp_path / "s1"
    result = _pull(schema1_registry, "samples/schema1", dest)
    assert result.converted_from_schema1
    manifest = json.loads(_blob(dest, str(result.digest)))
    assert manifest["mediaType"] == mt.OCI_MANIFEST
    assert "sha256:" + hashlib.sha256(_blob(dest, str(result.digest))).hexdigest() == str(result.digest)
    base_first = list(zip(reversed(pushed.fs_layers), reversed(pushed.history), strict=True))
    real = [blob for blob, v1 in base_first if not v1.get("throwaway")]
    assert [layer["digest"] for layer in manifest["layers"]] == [blob.digest for blob in real]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {mt.OCI_LAYER_GZIP}
    assert [layer["size"] for layer in manifest["layers"]] == [blob.size for blob in real]
    config = json.loads(_blob(dest, manifest["config"]["digest"]))
    assert manifest["config"]["mediaType"] == mt.OCI_CONFIG
    import gzip

    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(gzip.decompress(blob.data)).hexdigest() for blob in real
    ]
    assert config["config"]["Env"] == pushed.history[0]["config"]["Env"]
    assert [h.get("empty_layer", False) for h in config["history"]] == [
        bool(v1.get("throwaway")) for _, v1 in base_first
    ]
    assert _skopeo_digest(dest, "latest") == str(result.digest)
    # and regpeek reads it back offline
    inspected = run_cli("inspect", "--json", f"oci:{dest}:latest")
    assert inspected.code == 0, inspected.stderr
    assert json.loads(inspected.stdout)["env"] == pushed.history[0]["config"]["Env"]


def test_second_pull_downloads_nothing(registry: Registry, samples: dict[str, Any], tmp_path: Path) -> None:
    dest = tmp_path / "again"
    first = _pull(registry, "samples/list", dest, all_platforms=True)
    assert all(blob.downloaded for blob in first.blobs)
    before = _tree(dest)
    registry.mark()
    second = _pull(registry, "samples/list", dest, all_platforms=True)
    assert [blob.downloaded for blob in second.blobs] == [False] * len(first.blobs)
    assert not [r for r in registry.requests() if "/blobs/" in r.path]
    assert _tree(dest) == before


def test_several_images_share_one_layout(registry: Registry, samples: dict[str, Any], tmp_path: Path) -> None:
    dest = tmp_path / "shared"
    _pull(registry, "samples/oci", dest, ref_name="oci")
    docker = _pull(registry, "samples/docker", dest, ref_name="docker")
    _pull(registry, "samples/list", dest, platform="linux/arm64", ref_name="arm")
    names = [entry["annotations"][REF_NAME] for entry in _index(dest)["manifests"]]
    assert names == ["oci", "docker", "arm"]
    # the OCI and Docker samples share their layers: the second pull found them there
    shared = {layer.digest for layer in samples["samples/oci"].layers}
    assert shared and shared == {layer.digest for layer in samples["samples/docker"].layers}
    reused = {str(blob.digest) for blob in docker.blobs if not blob.downloaded}
    assert shared <= reused
    expected = {
        "oci": samples["samples/oci"].digest,
        "docker": samples["samples/docker"].digest,
        "arm": samples["samples/list"].child("linux", "arm64", "v8").digest,
    }
    for name in names:
        done = run_cli("digest", f"oci:{dest}:{name}")
        assert done.code == 0, done.stderr
        assert done.text == expected[name] + "\n"
    # pulling a name again replaces that entry only
    _pull(registry, "samples/index", dest, ref_name="oci")
    assert [e["annotations"][REF_NAME] for e in _index(dest)["manifests"]] == ["docker", "arm", "oci"]


def test_corrupted_blob_leaves_destination_unchanged(fresh_registry: Registry, tmp_path: Path) -> None:
    with pusher_for(fresh_registry) as pusher:
        good = push_oci_image(pusher, "corrupt/good", "latest")
        bad = push_oci_image(pusher, "corrupt/bad", "latest", layers=[{"x": b"original content\n" * 500}])
    hexpart = bad.layers[0].digest.split(":")[1]
    stored = (
        fresh_registry.workdir / "storage/docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"
    )
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    dest = tmp_path / "layout"
    assert (
        run_cli(
            "pull", *registry_flags(fresh_registry), f"{fresh_registry.host}/corrupt/good", str(dest)
        ).code
        == 0
    )
    before = _tree(dest)
    done = run_cli("pull", *registry_flags(fresh_registry), f"{fresh_registry.host}/corrupt/bad", str(dest))
    assert done.code == 5
    assert f"expected {bad.layers[0].digest}" in done.stderr
    assert _tree(dest) == before  # no half-written blob, no index entry
    assert not list(dest.glob(".regpeek-staging-*"))
    assert [e["digest"] for e in _index(dest)["manifests"]] == [good.digest]


def test_pull_cli_output(registry: Registry, samples: dict[str, Any], tmp_path: Path) -> None:
    done = run_cli("pull", *registry_flags(registry), f"{registry.host}/samples/docker", str(tmp_path / "x"))
    assert done.code == 0
    assert done.stderr == ""
    [line] = done.text.splitlines()
    assert line.startswith(f"pulled {registry.host}/samples/docker:latest into {tmp_path / 'x'} as latest: ")
    assert samples["samples/docker"].digest in line


@pytest.mark.parametrize("argv", [["--all-platforms", "--platform", "linux/amd64"], ["--jobs", "0"]])
def test_pull_usage_errors(argv: list[str], registry: Registry, tmp_path: Path) -> None:
    done = run_cli(
        "pull", *argv, *registry_flags(registry), f"{registry.host}/samples/docker", str(tmp_path / "x")
    )
    assert done.code == 2
    assert not (tmp_path / "x").exists()


def test_interrupted_download_resumes_with_range(
    registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    """The connection drops mid-layer: the rest comes with a Range request and the blob verifies."""
    from tests.support.faultproxy import FaultProxy, reset_after

    big = max(samples["samples/oci-mixed"].layers, key=lambda layer: layer.size)
    half = big.size // 2
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(reset_after(half), path=f"/blobs/{big.digest}$", method="GET", times=1)
        with regpeek.Client(**client_options(registry, retries=2)) as client:
            result = pull(client, f"{proxy.host}/samples/oci-mixed", tmp_path / "l", jobs=1)
        gets = proxy.matching(f"/blobs/{big.digest}$", method="GET")
        assert [(r.header("Range"), r.status) for r in gets] == [(None, 200), (f"bytes={half}-", 206)]
    [pulled] = [blob for blob in result.blobs if str(blob.digest) == big.digest]
    assert (pulled.downloaded, pulled.resumed) == (True, 1)
    assert _blob(tmp_path / "l", big.digest) == big.data


def test_restart_when_range_is_not_honoured(
    registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    """A registry that answers a Range request with 200 and the whole blob: the blob starts over."""
    from tests.support.faultproxy import FaultProxy, reset_after

    big = max(samples["samples/oci-mixed"].layers, key=lambda layer: layer.size)
    with FaultProxy(registry.url, strip_request_headers=["range"]) as proxy:
        proxy.add(reset_after(big.size // 3), path=f"/blobs/{big.digest}$", method="GET", times=1)
        with regpeek.Client(**client_options(registry, retries=2)) as client:
            result = pull(client, f"{proxy.host}/samples/oci-mixed", tmp_path / "l", jobs=1)
        statuses = [r.status for r in proxy.matching(f"/blobs/{big.digest}$", method="GET")]
        assert statuses == [200, 200]
    [pulled] = [blob for blob in result.blobs if str(blob.digest) == big.digest]
    assert (pulled.downloaded, pulled.resumed) == (True, 0)
    assert _blob(tmp_path / "l", big.digest) == big.data


def test_ctrl_c_leaves_destination_unchanged(
    registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    """SIGINT while a layer is downloading: exit 130 promptly, DEST exactly as before, no staging left."""
    import os
    import signal
    import sys
    import time

    from tests.support.faultproxy import FaultProxy, stall_mid_body

    dest = tmp_path / "layout"
    assert run_cli("pull", *registry_flags(registry), f"{registry.host}/samples/oci", str(dest)).code == 0
    before = _tree(dest)
    big = max(samples["samples/oci-mixed"].layers, key=lambda layer: layer.size)
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(stall_mid_body(30, after_bytes=big.size // 2), path=f"/blobs/{big.digest}$", method="GET")
        command = [sys.executable, "-m", "regpeek", "pull", "--plain-http", "--timeout", "60", "--no-cache",
                   f"{proxy.host}/samples/oci-mixed", str(dest)]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ)
        )
        deadline = time.monotonic() + 20
        while (
            not any(r.stalling for r in proxy.matching(f"/blobs/{big.digest}$"))
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert list(dest.glob(".regpeek-staging-*"))  # mid-pull: staged, not committed
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)  # the proxy stalls the blob: only Ctrl-C ends it
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    assert _tree(dest) == before
    assert not list(dest.glob(".regpeek-staging-*"))
