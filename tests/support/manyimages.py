"""Images for the many-SIF tests: ten references, seven images on one shared base layer, an index, a
signed schema1 image and a missing tag, on a registry with schema1 pushes enabled."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .images import FileSpec, push_docker_schema2, push_index, push_oci_image, push_schema1_signed
from .push import pusher_for
from .registry import Registry


def _random(size: int, seed: str) -> bytes:
    """``size`` bytes that do not compress, the same for the same seed."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


BASE_FILES: dict[str, FileSpec] = {
    "etc/": ("dir",),
    "etc/os-release": b'NAME="shared base"\nID=base\n',
    "bin/": ("dir",),
    "bin/tool": ("file", _random(150_000, "base"), 0o755),
}


@dataclass(frozen=True)
class ManyImages:
    references: list[str]  # ten, in input order: nine images and the missing tag (fifth)
    digests: dict[str, str]  # reference -> the image manifest digest its SIF pins
    base_layer: str  # the shared layer's digest
    missing: str  # the reference with no image

    def write(self, path: Path, references: list[str] | None = None) -> Path:
        path.write_text(
            "# images to convert\n" + "".join(f"{ref}\n" for ref in references or self.references)
        )
        return path


def push_many(registry: Registry, *, big: int = 0) -> ManyImages:
    """Push the ten references' images (``big`` more images with a 16 MiB incompressible layer each,
    for tests that must catch a build in progress, appended after the ten)."""
    host = registry.host
    references: list[str] = []
    digests: dict[str, str] = {}
    with pusher_for(registry) as pusher:
        base_digest = ""
        for n in range(6):
            image = push_oci_image(
                pusher, f"apps/app{n}", "v1", layers=[BASE_FILES, {f"app/{n}.txt": f"app {n}\n".encode()}]
            )
            base_digest = image.layers[0].digest
            references.append(f"{host}/apps/app{n}:v1")
            digests[references[-1]] = image.digest
        docker = push_docker_schema2(pusher, "apps/docker", "v1", layers=[BASE_FILES, {"app/docker": b"d\n"}])
        references.append(f"{host}/apps/docker:v1")
        digests[references[-1]] = docker.digest
        index = push_index(pusher, "apps/multi", "latest")
        references.append(f"{host}/apps/multi:latest")
        digests[references[-1]] = index.child("linux", "amd64").digest
        missing = f"{host}/apps/missing:nope"
        references.insert(4, missing)  # an error in the middle of the input
        legacy = push_schema1_signed(pusher, "legacy/old", "v1")
        references.append(f"{host}/legacy/old:v1")
        digests[references[-1]] = legacy.digest
        for n in range(big):
            files: dict[str, Any] = {f"data/big{n}.bin": os.urandom(16 * 1024 * 1024)}
            image = push_oci_image(pusher, f"big/image{n}", "v1", layers=[BASE_FILES, files])
            references.append(f"{host}/big/image{n}:v1")
            digests[references[-1]] = image.digest
    return ManyImages(references, digests, base_digest, missing)
