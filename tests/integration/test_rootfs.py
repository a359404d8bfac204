"""``unpack`` and ``export`` from a registry and from an ``oci:`` layout: the platform chosen is the one
applied, and only layers matching their digests are ever applied (checked again as they are read)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import regpeek
import regpeek.pull
import regpeek.rootfs
from regpeek.disk.unpack import export_tar
from regpeek.errors import VerificationError
from tests.integration.api import client_options, registry_flags, run_cli
from tests.support.images import PushedIndex
from tests.support.registry import Registry

PLATFORMS = [("linux", "arm", "v7"), ("linux", "arm64", "v8"), ("linux", "amd64", None)]


def _label(os: str, architecture: str, variant: str | None) -> str:
    return "/".join(part for part in (os, architecture, variant) if part)


def _tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: _label(*p))
def test_unpack_from_the_registry_applies_the_chosen_platform(
    registry: Registry, samples: dict[str, Any], tmp_path: Path, platform: tuple[str, str, str | None]
) -> None:
    index: PushedIndex = samples["samples/index"]
    child = index.child(*platform)
    label = _label(*platform)
    done = run_cli("unpack", "--json", "--quiet", *registry_flags(registry), "--platform", label,
                   f"{registry.host}/samples/index", str(tmp_path / "rootfs"))  # fmt: skip
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["digest"] == child.digest
    assert result["layers"] == [layer.digest for layer in child.layers]
    assert (tmp_path / "rootfs/app/platform.txt").read_text() == child.platform.label + "\n"


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: _label(*p))
def test_export_from_the_registry_writes_the_chosen_platform(
    registry: Registry, samples: dict[str, Any], tmp_path: Path, platform: tuple[str, str, str | None]
) -> None:
    index: PushedIndex = samples["samples/index"]
    child = index.child(*platform)
    out = tmp_path / "out.tar"
    done = run_cli("export", "--quiet", *registry_flags(registry), "--platform", _label(*platform),
                   f"{registry.host}/samples/index", str(out))  # fmt: skip
    assert done.code == 0, done.stderr
    assert _tar_members(out.read_bytes())["app/platform.txt"] == (child.platform.label + "\n").encode()


@pytest.fixture(scope="module")
def index_layout(
    registry: Registry, samples: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``samples/index`` with every platform, copied into an OCI layout."""
    layout = tmp_path_factory.mktemp("index-layout") / "layout"
    done = run_cli("copy", *registry_flags(registry), "--all-platforms", f"{registry.host}/samples/index",
                   f"oci:{layout}:v1")  # fmt: skip
    assert done.code == 0, done.stderr
    return layout


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: _label(*p))
def test_unpack_and_export_from_a_layout_apply_the_chosen_platform(
    index_layout: Path, samples: dict[str, Any], tmp_path: Path, platform: tuple[str, str, str | None]
) -> None:
    child = samples["samples/index"].child(*platform)
    label = _label(*platform)
    done = run_cli("unpack", "--json", "--platform", label, f"oci:{index_layout}:v1", str(tmp_path / "root"))
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["digest"] == child.digest
    assert (tmp_path / "root/app/platform.txt").read_text() == child.platform.label + "\n"
    done = run_cli("export", "--platform", label, f"oci:{index_layout}:v1", str(tmp_path / "out.tar"))
    assert done.code == 0, done.stderr
    assert (
        _tar_members((tmp_path / "out.tar").read_bytes())["app/platform.txt"]
        == (child.platform.label + "\n").encode()
    )


def _swap_layer(path: Path) -> None:
    """Replace a layer blob with other bytes of the same size (a change no size check sees)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert hashlib.sha256(data).hexdigest() != path.name


def test_a_layout_layer_that_does_not_match_is_refused_before_anything_is_written(
    index_layout: Path, samples: dict[str, Any], tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    done = run_cli("copy", f"oci:{index_layout}:v1", "--platform", "linux/arm64", f"oci:{layout}:v1")
    assert done.code == 0, done.stderr
    child = samples["samples/index"].child("linux", "arm64", "v8")
    blob = layout / "blobs/sha256" / child.layers[-1].digest.split(":")[1]
    _swap_layer(blob)
    applied: list[str] = []
    original = regpeek.rootfs.ImageLayers.streams

    def recording(self: regpeek.rootfs.ImageLayers) -> Iterator[Any]:
        for stream in original(self):
            applied.append(stream[1])
            yield stream

    for command, target in (("unpack", tmp_path / "root"), ("export", tmp_path / "out.tar")):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(regpeek.rootfs.ImageLayers, "streams", recording)
            done = run_cli(command, f"oci:{layout}:v1", str(target))
        assert done.code == 5, done.stderr
        assert f"layer {child.layers[-1].digest} in {layout} does not match its digest" in done.stderr
        assert not target.exists()
    assert applied == []  # the check comes before the first layer is read for writing


@pytest.mark.parametrize("command", ["unpack", "export"])
def test_a_pulled_layer_changed_before_it_is_applied_is_caught(
    registry: Registry, samples: dict[str, Any], tmp_path: Path, command: str
) -> None:
    """Layers pulled from the registry are read again through their digest check while applied."""
    image = samples["samples/oci"]
    real_pull = regpeek.pull.pull
    changed: list[Path] = []

    def pull_then_change(client: Any, source: str, dest: Path, **options: Any) -> Any:
        pulled = real_pull(client, source, dest, **options)
        blob = Path(dest) / "blobs/sha256" / image.layers[-1].digest.split(":")[1]
        # the pulled blob may be a hard link into the cache: replace it, not rewrite it in place
        data = blob.read_bytes()
        blob.unlink()
        blob.write_bytes(data)
        _swap_layer(blob)
        changed.append(blob)
        return pulled

    target = tmp_path / ("root" if command == "unpack" else "out.tar")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(regpeek.rootfs, "pull", pull_then_change)
        done = run_cli(
            command, "--quiet", *registry_flags(registry), f"{registry.host}/samples/oci", str(target)
        )
    assert changed
    assert done.code == 5, done.stderr
    assert f"digest mismatch for blob {image.layers[-1].digest}" in done.stderr
    assert not target.exists()


def test_library_unpack_of_a_layout_changed_after_it_was_opened_raises(
    index_layout: Path, registry: Registry, tmp_path: Path, samples: dict[str, Any]
) -> None:
    layout = tmp_path / "layout"
    assert (
        run_cli("copy", f"oci:{index_layout}:v1", "--platform", "linux/amd64", f"oci:{layout}:v1").code == 0
    )
    child = samples["samples/index"].child("linux", "amd64")
    with (
        regpeek.Client(**client_options(registry)) as client,
        regpeek.rootfs.image_layers(client, f"oci:{layout}:v1") as image,
    ):
        assert [str(layer.digest) for layer in image.layers] == [layer.digest for layer in child.layers]
        _swap_layer(layout / "blobs/sha256" / child.layers[0].digest.split(":")[1])
        with pytest.raises(VerificationError, match="digest mismatch"):
            image.unpack(tmp_path / "root")
        with pytest.raises(VerificationError, match="digest mismatch"):
            export_tar(image.openers(), io.BytesIO(), limits=image.limits(None, None),
                                      names=image.names())  # fmt: skip


@pytest.mark.parametrize("source", ["registry", "layout"])
def test_library_platform_argument_decides_without_a_client_default(
    registry: Registry, samples: dict[str, Any], index_layout: Path, tmp_path: Path, source: str
) -> None:
    """``platform=`` of unpack_image/export_image, with a client that has no platform of its own."""
    index: PushedIndex = samples["samples/index"]
    ref = f"{registry.host}/samples/index" if source == "registry" else f"oci:{index_layout}:v1"
    with regpeek.Client(**client_options(registry)) as client:
        for n, platform in enumerate(PLATFORMS):
            child = index.child(*platform)
            result = regpeek.rootfs.unpack_image(
                client, ref, tmp_path / f"root{n}", platform=_label(*platform)
            )
            assert str(result.digest) == child.digest
            assert [str(layer.digest) for layer in result.layers] == [layer.digest for layer in child.layers]
            assert (tmp_path / f"root{n}/app/platform.txt").read_text() == child.platform.label + "\n"
            out = io.BytesIO()
            regpeek.rootfs.export_image(client, ref, out, platform=_label(*platform))
            assert _tar_members(out.getvalue())["app/platform.txt"] == (child.platform.label + "\n").encode()
