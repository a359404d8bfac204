"""registries.conf with two real registries: a primary and a mirror holding the same images. Each test
asserts which registry served which request (their access logs), and that the other saw none.

The images are named ``registry.example/samples/...``, a name no resolver knows: only the
``[[registry]]`` table's ``location`` makes them reachable. Neither registry speaks TLS, and no
``--plain-http`` is given: as loopback registries they are found to speak plain HTTP by themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from regpeek.formats.registriesconf import RegistriesConf
from regpeek.network.registriesconf import load
from tests.integration.api import Api, run_cli
from tests.support.fixtures import require_tool
from tests.support.images import Pushed, PushedImage, load_samples
from tests.support.push import pusher_for
from tests.support.registry import Registry, start_registry
from tests.support.util import free_port

LOGICAL = "registry.example/samples"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_tool("docker-registry")
    with start_registry(tmp_path_factory.mktemp("mirror-registry")) as running:
        yield running


@pytest.fixture(scope="module")
def mirrored(mirror: Registry, samples: dict[str, Pushed]) -> dict[str, Pushed]:
    """The primary's samples, pushed to the mirror as well (same repositories, same digests)."""
    with pusher_for(mirror) as pusher:
        copies = load_samples(pusher)
    assert {name: image.digest for name, image in copies.items()} == {
        name: image.digest for name, image in samples.items()
    }
    return copies


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _conf(tmp_path: Path, primary: Registry, mirror_location: str | None, pull_from_mirror: str | None = None,
          extra: str = "") -> Path:  # fmt: skip
    text = f'[[registry]]\nprefix = "{LOGICAL}"\nlocation = "{primary.host}/samples"\n'
    if mirror_location is not None:
        text += f'[[registry.mirror]]\nlocation = "{mirror_location}"\n'
        if pull_from_mirror:
            text += f'pull-from-mirror = "{pull_from_mirror}"\n'
    return _write(tmp_path / "registries.conf", text + extra)


def _served(registry: Registry) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in registry.requests()]


def _mark(*registries: Registry) -> None:
    for registry in registries:
        registry.mark()


@pytest.fixture
def both(registry: Registry, mirror: Registry, mirrored: dict[str, Pushed]) -> tuple[Registry, Registry]:
    _mark(registry, mirror)
    return registry, mirror


def test_a_pull_by_digest_is_served_by_the_mirror(
    both: tuple[Registry, Registry], samples: dict[str, Pushed], tmp_path: Path
) -> None:
    primary, mirror = both
    conf = _conf(tmp_path, primary, f"{mirror.host}/samples", "digest-only")
    image = samples["samples/oci"]
    assert isinstance(image, PushedImage)
    _mark(primary, mirror)
    done = run_cli("pull", "--registries-conf", str(conf), "--retries", "0", "--no-cache", "--quiet",
                   f"{LOGICAL}/oci@{image.digest}", str(tmp_path / "layout"))  # fmt: skip
    assert done.code == 0, done.stderr
    assert _served(primary) == []
    served = _served(mirror)
    assert ("GET", f"/v2/samples/oci/manifests/{image.digest}", 200) in served
    assert {path for _, path, _ in served if "/blobs/" in path} == {
        f"/v2/samples/oci/blobs/{digest}"
        for digest in [image.config.digest, *(layer.digest for layer in image.layers)]
    }
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest


def test_a_tag_with_digest_only_mirrors_comes_from_the_primary(
    both: tuple[Registry, Registry], samples: dict[str, Pushed], tmp_path: Path
) -> None:
    primary, mirror = both
    conf = _conf(tmp_path, primary, f"{mirror.host}/samples", "digest-only")
    done = run_cli(
        "inspect", "--json", "--registries-conf", str(conf), "--retries", "0", f"{LOGICAL}/oci:latest"
    )
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reference"] == f"{LOGICAL}/oci:latest"  # the name the user gave
    assert result["digest"] == samples["samples/oci"].digest
    assert _served(mirror) == []  # not even the manifest and config, fetched by digest once the tag resolved
    # a tag never seen: one GET of the tag (no HEAD first), then the config
    assert [(m, s) for m, _, s in _served(primary)] == [("GET", 200), ("GET", 200)]
    assert _served(primary)[0][1] == "/v2/samples/oci/manifests/latest"


def test_pull_from_mirror_all_serves_tags_from_the_mirror(
    both: tuple[Registry, Registry], samples: dict[str, Pushed], tmp_path: Path
) -> None:
    primary, mirror = both
    conf = _conf(tmp_path, primary, f"{mirror.host}/samples", "all")
    image = samples["samples/index"]
    done = run_cli("inspect", "--json", "--no-cache", "--registries-conf", str(conf), "--retries", "0",
                   "--platform", "linux/arm64", f"{LOGICAL}/index:latest")  # fmt: skip
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["index_digest"] == image.digest
    assert _served(primary) == []
    assert [(m, s) for m, _, s in _served(mirror)] == [("GET", 200)] * 3  # index, arm64 manifest, config


def test_a_mirror_without_the_image_falls_back_to_the_primary(
    both: tuple[Registry, Registry], samples: dict[str, Pushed], tmp_path: Path
) -> None:
    primary, mirror = both
    conf = _conf(tmp_path, primary, f"{mirror.host}/elsewhere")
    image = samples["samples/docker"]
    assert isinstance(image, PushedImage)
    done = run_cli("pull", "--registries-conf", str(conf), "--retries", "0", "--no-cache", "--quiet",
                   f"{LOGICAL}/docker@{image.digest}", str(tmp_path / "layout"))  # fmt: skip
    assert done.code == 0, done.stderr
    assert _served(mirror) == [("GET", f"/v2/elsewhere/docker/manifests/{image.digest}", 404)]
    served = _served(primary)
    assert ("GET", f"/v2/samples/docker/manifests/{image.digest}", 200) in served
    assert sum(1 for _, path, status in served if "/blobs/" in path and status == 200) == 1 + len(
        image.layers
    )


def test_an_unreachable_mirror_falls_back_to_the_primary(
    both: tuple[Registry, Registry], samples: dict[str, Pushed], tmp_path: Path
) -> None:
    primary, _ = both
    conf = _conf(tmp_path, primary, f"127.0.0.1:{free_port()}/samples")
    image = samples["samples/oci"]
    done = run_cli(
        "digest", "--registries-conf", str(conf), "--retries", "0", f"{LOGICAL}/oci@{image.digest}"
    )
    assert (done.code, done.text) == (0, image.digest + "\n")
    assert _served(primary) == [("HEAD", f"/v2/samples/oci/manifests/{image.digest}", 200)]


def test_a_blocked_registry_is_refused_before_any_request(
    both: tuple[Registry, Registry], tmp_path: Path
) -> None:
    primary, mirror = both
    conf = _write(
        tmp_path / "registries.conf",
        f'[[registry]]\nprefix = "{LOGICAL}"\nlocation = "{primary.host}/samples"\nblocked = true\n'
        f'[[registry.mirror]]\nlocation = "{mirror.host}/samples"\n',
    )
    for argv in (["inspect", f"{LOGICAL}/oci"], ["pull", f"{LOGICAL}/oci", str(tmp_path / "dest")],
                 ["tags", f"{LOGICAL}/oci"]):  # fmt: skip
        done = run_cli(argv[0], "--registries-conf", str(conf), *argv[1:])
        assert done.code == 2, done.stderr
        assert done.stderr == (
            f"regpeek: error: {LOGICAL}/oci{':latest' if argv[0] != 'tags' else ''} is blocked by "
            f"registries.conf ([[registry]] prefix '{LOGICAL}' in {conf})\n"
        )
    assert _served(primary) == [] and _served(mirror) == []
    assert not (tmp_path / "dest").exists()


def test_a_location_rewrite_applies_to_tags_and_unpack(
    both: tuple[Registry, Registry], samples: dict[str, Pushed], tmp_path: Path
) -> None:
    primary, mirror = both
    conf = _conf(tmp_path, primary, None)
    tags = run_cli("tags", "--registries-conf", str(conf), f"{LOGICAL}/oci")
    assert (tags.code, tags.text) == (0, "latest\n")
    unpacked = run_cli(
        "unpack", "--registries-conf", str(conf), "--quiet", f"{LOGICAL}/oci", str(tmp_path / "root")
    )
    assert unpacked.code == 0, unpacked.stderr
    assert _served(mirror) == []
    assert ("GET", "/v2/samples/oci/tags/list", 200) in _served(primary)


def test_an_insecure_tls_registry(tls_registry: Registry, tmp_path: Path) -> None:
    """``insecure = true``: TLS without verification, as podman; without it the certificate is refused."""
    with pusher_for(tls_registry) as pusher:
        image = load_samples(pusher)["samples/oci"]
    ref = f"{tls_registry.host}/samples/oci"
    refused = run_cli("digest", "--retries", "0", ref)
    assert refused.code == 6 and "certificate verification failed" in refused.stderr
    conf = _write(
        tmp_path / "insecure.conf", f'[[registry]]\nlocation = "{tls_registry.host}"\ninsecure = true\n'
    )
    done = run_cli("digest", "--retries", "0", "--registries-conf", str(conf), ref)
    assert (done.code, done.text) == (0, image.digest + "\n")


def test_the_environment_and_home_files(
    both: tuple[Registry, Registry],
    samples: dict[str, Pushed],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$CONTAINERS_REGISTRIES_CONF and ~/.config/containers/registries.conf are read; --no-registries-conf
    reads neither."""
    primary, mirror = both
    image = samples["samples/oci"]
    blocking = f'[[registry]]\nlocation = "{primary.host}/samples"\nblocked = true\n'
    ref = f"{primary.host}/samples/oci@{image.digest}"
    home = tmp_path / "home"
    (home / ".config" / "containers").mkdir(parents=True)
    _write(home / ".config" / "containers" / "registries.conf", blocking)
    monkeypatch.setenv("HOME", str(home))
    assert run_cli("digest", "--retries", "0", ref).code == 2
    unblocked = run_cli("digest", "--retries", "0", "--no-registries-conf", ref)
    assert (unblocked.code, unblocked.text) == (0, image.digest + "\n")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(_conf(tmp_path, primary, f"{mirror.host}/samples")))
    _mark(primary, mirror)
    done = run_cli("digest", "--retries", "0", f"{LOGICAL}/oci@{image.digest}")
    assert (done.code, done.text) == (0, image.digest + "\n")
    assert _served(primary) == [] and len(_served(mirror)) == 1


def test_mirrors_in_the_library(
    api: Api, both: tuple[Registry, Registry], samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """Client(registries=load(...)) and AsyncClient alike: the mirror serves a reference by digest."""
    primary, mirror = both
    registries: RegistriesConf = load(_conf(tmp_path, primary, f"{mirror.host}/samples"))
    image = samples["samples/oci"]
    result = api.call(primary, "inspect", f"{LOGICAL}/oci@{image.digest}",
                      client={"registries": registries, "plain_http": False})  # fmt: skip
    assert str(result.digest) == image.digest
    assert _served(primary) == []
    assert [(m, s) for m, _, s in _served(mirror)] == [("GET", 200), ("GET", 200)]
