"""The README's Python examples, as written: type-checked with ``mypy --strict``, then run, in order and
in one directory, against the demo images (``make demo``'s set, on a local registry).

The examples name Docker Hub images, as a reader would; to run them here the references are swapped
for the demo's (``alpine:3.20`` is ``samples/index``, a multi-platform index; ``busybox`` is
``samples/docker``) and the clients get ``plain_http=True``. Nothing else is changed. The two example
scripts of ``scripts/examples/`` run too, as a user would run them.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import regpeek
from tests.integration.api import client_options
from tests.support.fixtures import require_tool
from tests.support.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = ROOT / "scripts" / "examples"


def python_examples() -> list[str]:
    """The ```python blocks of the README's "Python API" section, in order."""
    text = README.read_text()
    section = text[text.index("## Python API\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def for_the_demo(code: str, host: str) -> str:
    """An example with the demo registry's references and plain HTTP."""
    swaps = {
        '"alpine:3.20"': f'"{host}/samples/index:latest"',
        '"alpine:no-such-tag"': f'"{host}/samples/index:no-such-tag"',
        '"alpine"': f'"{host}/samples/index"',
        '"busybox"': f'"{host}/samples/docker"',
        '"library/alpine"': f'"{host}/samples/index"',
        '"registry.site.example/mirror/alpine': f'"{host}/mirror/alpine',
        '"oci:./layout:3.20"': '"oci:./layout:latest"',
        "regpeek.Client(": "regpeek.Client(plain_http=True, ",
        "regpeek.AsyncClient(": "regpeek.AsyncClient(plain_http=True, ",
    }
    for old, new in swaps.items():
        code = code.replace(old, new)
    return code


def test_the_readme_shows_the_image_and_layer_api_first() -> None:
    examples = python_examples()
    assert len(examples) == 6
    assert (
        "client.image(" in examples[0] and "layer.open(" in examples[0] and "layer.download(" in examples[0]
    )


def test_the_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    files = []
    for number, code in enumerate(python_examples(), 1):
        path = tmp_path / f"readme_example_{number}.py"
        path.write_text(code)
        files.append(str(path))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.10", "--follow-imports", "silent",
         "--cache-dir", str(tmp_path / ".mypy_cache"), *files],
        capture_output=True, text=True, check=False, cwd=tmp_path, env={**os.environ, "MYPYPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=cwd, timeout=300
    )


def test_the_readme_examples_run_against_the_demo_images(
    registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    require_tool("tar2sqfs")
    index = samples["samples/index"]
    arm64 = index.child("linux", "arm64", "v8")
    outputs = []
    for number, code in enumerate(python_examples(), 1):
        if "image.sif" in code:  # the SIF example reads one: build it from the demo index first
            with regpeek.Client(**client_options(registry)) as client:
                regpeek.sif.build_sif(client, f"{registry.host}/samples/index", tmp_path / "image.sif")
        done = _run(for_the_demo(code, registry.host), tmp_path)
        assert done.returncode == 0, f"example {number}:\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    first = outputs[0]
    assert f"{registry.host}/samples/index:latest {arm64.digest} {index.digest} linux/arm64" in first
    assert (tmp_path / "layer.blob").read_bytes() == arm64.layers[-1].data
    assert '"reference": "' + registry.host + '/samples/index:latest"' in first
    assert f"{registry.host}/samples/docker:latest" in outputs[1]
    assert "manifest 404" in outputs[2] and "MANIFEST_UNKNOWN" in outputs[2]
    assert (tmp_path / "rootfs").is_dir() and (tmp_path / "alpine.tar").stat().st_size > 0
    assert index.child("linux", "amd64").digest in outputs[3]  # the host's platform (linux/amd64)
    copied = outputs[4].splitlines()  # the copy example: a mirror in the same registry is all mounts
    images = [*index.children, index.attestation]
    blobs = len({blob.digest for image in images for blob in (image.config, *image.layers)})
    assert copied[0] == f"{index.digest} 0 {blobs} 0"
    assert copied[2].startswith(f"{arm64.digest} 0 ")  # from the archive: every blob already there
    assert copied[3] == f"{blobs} blobs were there already"
    assert (tmp_path / "rootfs.sqfs").read_bytes()[:4] == b"hsqs"  # a squashfs superblock


def test_the_download_script_saves_every_layer(
    registry: Registry, samples: dict[str, Any], tmp_path: Path
) -> None:
    pushed = samples["samples/oci-mixed"]
    command = [sys.executable, str(EXAMPLES / "download_layers.py"), "--plain-http",
               f"{registry.host}/samples/oci-mixed", str(tmp_path / "layers")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    saved = sorted((tmp_path / "layers").iterdir())
    assert sorted(path.name for path in saved) == sorted(
        layer.digest.replace(":", "-") for layer in pushed.layers
    )
    for path in saved:
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == path.name.replace("-", ":")
    assert done.stdout.count("downloaded") == len(pushed.layers)
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and again.stdout.count("already there") == len(pushed.layers)
    missing = subprocess.run([*command[:3], f"{registry.host}/samples/none", str(tmp_path / "x")],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert missing.returncode == 3 and "not found" in missing.stderr


@pytest.mark.parametrize(("number", "listing"), [
    ("1", [("d", "etc"), ("-", "etc/os-release"), ("d", "bin"), ("-", "bin/sh")]),  # gzip
    ("2", [("d", "app"), ("-", "app/platform.txt"), ("l", "app/current")]),  # plain
    ("3", [("-", "extra/zstd.txt")]),  # zstd
])  # fmt: skip
def test_the_listing_script_streams_a_layer_into_tarfile(registry: Registry, samples: dict[str, Any],
                                                         number: str, listing: list[tuple[str, str]]) -> None:  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "list_layer.py"), "--plain-http", f"{registry.host}/samples/oci-mixed", number],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [(line.split()[0], line.split()[-1]) for line in done.stdout.splitlines()] == listing
    if number == "3":
        assert done.stdout == f"-{11:>11} extra/zstd.txt\n"  # type, size, name
