"""The shared layer cache against the real registry: blob requests counted at the registry's access log.

Two images share their two base layers; pulling one and then unpacking or exporting the other must
download only what is new. Every CLI run here uses the test's own cache (``REGPEEK_CACHE_DIR``, set by
the autouse fixture in conftest.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import regpeek
from regpeek.disk.cache import BlobCache, default_cache_dir
from regpeek.formats.digest import Digest
from regpeek.pull import pull
from regpeek.rootfs import export_image, unpack_image
from tests.integration.api import client_options, registry_flags, run_cli
from tests.support.images import Blob, FileSpec, PushedImage, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry


@dataclass(frozen=True)
class Pair:
    a: PushedImage
    b: PushedImage

    @property
    def base(self) -> tuple[Blob, Blob]:
        return self.a.layers[0], self.a.layers[1]

    def ref(self, registry: Registry, image: PushedImage) -> str:
        return f"{registry.host}/{image.repo}:{image.tag}"


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)  # incompressible: layers of a real size


@pytest.fixture(scope="module")
def pair(registry: Registry) -> Pair:
    base: list[dict[str, FileSpec]] = [
        {"etc/": ("dir",), "etc/os-release": b"ID=shared-base\n", "usr/lib/base.bin": _noise(1, 300_000)},
        {"usr/lib/runtime.bin": _noise(2, 200_000)},
    ]
    with pusher_for(registry) as pusher:
        a = push_oci_image(pusher, "layers/a", "v1", layers=[*base, {"app/a.bin": _noise(3, 100_000)}])
        b = push_oci_image(
            pusher, "layers/b", "v1", layers=[*base, {"app/b.bin": _noise(4, 100_000)}], env=["APP=b"]
        )
    assert a.layers[:2] == b.layers[:2] and a.layers[2] != b.layers[2] and a.config != b.config
    return Pair(a, b)


def _blob_gets(registry: Registry) -> list[str]:
    """The digests of the blobs the registry served since its mark, sorted."""
    return sorted(
        r.path.rsplit("/", 1)[1] for r in registry.requests() if r.method == "GET" and "/blobs/" in r.path
    )


def _store() -> BlobCache:
    return BlobCache(default_cache_dir())


def _entry(digest: str) -> Path:
    return _store().layers.path_for(Digest.parse(digest))


def _tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _layout_blob(layout: Path, digest: str) -> bytes:
    algorithm, hexpart = digest.split(":")
    return (layout / "blobs" / algorithm / hexpart).read_bytes()


def test_unpack_and_export_of_an_image_sharing_a_base_download_only_its_new_layers(
    registry: Registry, pair: Pair, tmp_path: Path
) -> None:
    flags = registry_flags(registry)
    a, b = pair.a, pair.b
    registry.mark()
    assert run_cli("pull", *flags, pair.ref(registry, a), str(tmp_path / "layout-a")).code == 0
    assert _blob_gets(registry) == sorted([a.config.digest, *(layer.digest for layer in a.layers)])
    registry.mark()
    done = run_cli("unpack", *flags, pair.ref(registry, b), str(tmp_path / "rootfs"))
    assert done.code == 0, done.stderr
    assert _blob_gets(registry) == sorted(
        [b.config.digest, b.layers[2].digest]
    )  # the base came from the cache
    root = tmp_path / "rootfs"
    assert (root / "usr/lib/base.bin").read_bytes() == _noise(1, 300_000)
    assert (root / "usr/lib/runtime.bin").read_bytes() == _noise(2, 200_000)
    assert (root / "app/b.bin").read_bytes() == _noise(4, 100_000)
    registry.mark()
    done = run_cli("export", *flags, pair.ref(registry, b), str(tmp_path / "b.tar"))
    assert done.code == 0, done.stderr
    assert _blob_gets(registry) == []  # everything of b is in the cache now, its config included
    with tarfile.open(tmp_path / "b.tar") as exported:
        member = exported.extractfile("usr/lib/base.bin")
        assert member is not None and member.read() == _noise(1, 300_000)
    # the work areas of unpack and export are gone; the store holds every blob once
    cache_root = default_cache_dir()
    assert list((cache_root / "layers" / "work").iterdir()) == []
    stored = {f"sha256:{p.name}" for p in (cache_root / "layers" / "blobs" / "sha256").iterdir()}
    assert stored == {a.config.digest, b.config.digest, *(x.digest for x in (*a.layers, *b.layers))}


def test_pull_json_says_what_came_from_the_cache(registry: Registry, pair: Pair, tmp_path: Path) -> None:
    flags = registry_flags(registry)
    assert run_cli("pull", *flags, pair.ref(registry, pair.a), str(tmp_path / "a")).code == 0
    registry.mark()
    done = run_cli("pull", "--json", *flags, pair.ref(registry, pair.b), str(tmp_path / "b"))
    assert done.code == 0, done.stderr
    blobs = {blob["digest"]: blob for blob in json.loads(done.stdout)["blobs"]}
    base = {layer.digest for layer in pair.base}
    assert {d for d, blob in blobs.items() if blob["cached"]} == base
    assert {d for d, blob in blobs.items() if blob["downloaded"]} == {
        pair.b.config.digest,
        pair.b.layers[2].digest,
    }
    assert _blob_gets(registry) == sorted([pair.b.config.digest, pair.b.layers[2].digest])
    for layer in pair.b.layers:  # the layout has its own files, with the usual mode
        path = tmp_path / "b" / "blobs" / "sha256" / layer.digest.split(":")[1]
        assert path.read_bytes() == layer.data
        assert os.stat(path).st_ino != os.stat(_entry(layer.digest)).st_ino
        assert path.stat().st_mode & 0o044 == 0o044
        assert _entry(layer.digest).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("command", ["pull", "unpack"])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_layer_in_the_cache_is_dropped_and_downloaded_again(
    registry: Registry, pair: Pair, tmp_path: Path, command: str, damage: str
) -> None:
    flags = registry_flags(registry)
    assert run_cli("pull", *flags, pair.ref(registry, pair.a), str(tmp_path / "first")).code == 0
    victim = pair.base[0]
    entry = _entry(victim.digest)
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-1]
    entry.write_bytes(bytes(data))
    registry.mark()
    done = run_cli(command, *flags, pair.ref(registry, pair.a), str(tmp_path / "second"))
    assert done.code == 0, done.stderr
    assert _blob_gets(registry) == [victim.digest]  # only the damaged one, never used
    if command == "pull":
        assert _layout_blob(tmp_path / "second", victim.digest) == victim.data
    else:
        assert (tmp_path / "second/usr/lib/base.bin").read_bytes() == _noise(1, 300_000)
    assert entry.read_bytes() == victim.data  # and the cache holds the good one again


def test_no_cache_downloads_everything_and_writes_nothing(
    registry: Registry, pair: Pair, tmp_path: Path
) -> None:
    flags = registry_flags(registry)
    every_blob = sorted([pair.a.config.digest, *(layer.digest for layer in pair.a.layers)])
    cache_root = default_cache_dir()
    registry.mark()
    assert run_cli("pull", "--no-cache", *flags, pair.ref(registry, pair.a), str(tmp_path / "l")).code == 0
    assert _blob_gets(registry) == every_blob
    assert list(cache_root.iterdir()) == []  # the (empty) directory the test was given
    # a warm cache is neither read nor written either
    assert run_cli("pull", *flags, pair.ref(registry, pair.a), str(tmp_path / "warm")).code == 0
    before = _tree(cache_root)
    registry.mark()
    for command, dest in (("unpack", "rootfs"), ("export", "a.tar")):
        assert (
            run_cli(command, "--no-cache", *flags, pair.ref(registry, pair.a), str(tmp_path / dest)).code == 0
        )
    assert _blob_gets(registry) == sorted(every_blob * 2)
    assert _tree(cache_root) == before


def test_cache_info_shows_layers_and_prune_evicts_the_least_recently_used(
    registry: Registry, pair: Pair, tmp_path: Path
) -> None:
    flags = registry_flags(registry)
    assert run_cli("pull", *flags, pair.ref(registry, pair.a), str(tmp_path / "a")).code == 0
    blobs = [pair.a.config, *pair.a.layers]
    info = json.loads(run_cli("cache", "info", "--json").stdout)
    assert info["layers"]["entries"] == 4
    assert info["layers"]["bytes"] == sum(blob.size for blob in blobs)
    assert info["layers"]["max_bytes"] == 10 * 1024**3
    assert info["manifests"]["entries"] == 1  # the manifest; pull stores the config with the layers
    assert info["entries"] == 5 and info["bytes"] == info["layers"]["bytes"] + len(pair.a.manifest)
    text = run_cli("cache", "info").text
    assert "  layers: 4 entries" in text and "(bound 10.0 GiB)" in text
    now = int(time.time())
    order = [pair.a.layers[1], pair.a.layers[0], pair.a.config, pair.a.layers[2]]  # oldest first
    for age, blob in enumerate(order):
        os.utime(_entry(blob.digest), (now - 1000 + age, now - 1000 + age))
    keep = pair.a.config.size + pair.a.layers[2].size + len(pair.a.manifest)  # the manifest is newest
    done = run_cli("cache", "prune", "--max-size", str(keep))
    assert done.code == 0, done.stderr
    assert done.text.startswith("removed 2 entries")
    assert [_entry(blob.digest).exists() for blob in order] == [False, False, True, True]
    # and the next unpack downloads exactly what was evicted
    registry.mark()
    assert run_cli("unpack", *flags, pair.ref(registry, pair.a), str(tmp_path / "rootfs")).code == 0
    assert _blob_gets(registry) == sorted([pair.a.layers[0].digest, pair.a.layers[1].digest])


def test_python_api_uses_the_layer_cache_only_when_the_client_has_a_cache(
    registry: Registry, pair: Pair, tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "api-cache")
    with regpeek.Client(**client_options(registry, cache=cache)) as client:
        pull(client, pair.ref(registry, pair.a), tmp_path / "layout")
        registry.mark()
        result = unpack_image(client, pair.ref(registry, pair.b), tmp_path / "rootfs")
        assert _blob_gets(registry) == sorted([pair.b.config.digest, pair.b.layers[2].digest])
        registry.mark()
        out = io.BytesIO()
        export_image(client, pair.ref(registry, pair.b), out)
        assert _blob_gets(registry) == []
    assert [str(layer.digest) for layer in result.layers] == [layer.digest for layer in pair.b.layers]
    assert cache.info().layer_entries == 6
    with regpeek.Client(**client_options(registry)) as client:  # no cache: everything, every time
        registry.mark()
        unpack_image(client, pair.ref(registry, pair.b), tmp_path / "rootfs-2")
        assert _blob_gets(registry) == sorted(
            [pair.b.config.digest, *(layer.digest for layer in pair.b.layers)]
        )
