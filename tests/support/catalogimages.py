"""A registry worth cataloguing: a few hundred tags across repositories, most images on one base.

``base/os:1`` is a one-layer image; ``team<k>/app`` (five repositories) hold eight images built on it,
each under six tags; ``multi/index`` an OCI index (five platforms and an attestation) under three
tags; ``other/solo`` an image on another base; ``legacy/old`` a signed schema1 image (when the
registry takes schema1); ``gone/victim:only`` and ``moving/tag:latest`` are there to be deleted and
moved between runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from .images import PushedImage, PushedIndex, push_index, push_oci_image, push_schema1_signed
from .manyimages import BASE_FILES
from .push import Pusher, pusher_for
from .registry import Registry

TEAMS = 5
IMAGES_PER_TEAM = 8
TAGS_PER_IMAGE = 6


@dataclass
class Catalogue:
    base: PushedImage
    on_base: dict[tuple[str, str], str] = field(default_factory=dict)  # (repository, tag) -> image digest
    index: PushedIndex | None = None
    victim: PushedImage | None = None
    moving: PushedImage | None = None

    @property
    def base_layer(self) -> str:
        return self.base.layers[0].digest


def push_catalogue(registry: Registry, *, schema1: bool = False, teams: int = TEAMS) -> Catalogue:
    with pusher_for(registry) as pusher:
        base = push_oci_image(pusher, "base/os", "1", layers=[BASE_FILES])
        catalogue = Catalogue(base)
        catalogue.on_base[("base/os", "1")] = base.digest
        for team in range(teams):
            repo = f"team{team}/app"
            for n in range(IMAGES_PER_TEAM):
                image = push_oci_image(
                    pusher, repo, f"{n}.0.0", layers=[BASE_FILES, {f"app/{n}": f"{team}.{n}\n".encode()}]
                )
                catalogue.on_base[(repo, f"{n}.0.0")] = image.digest
                for alias in (f"{n}", f"{n}.0", f"{n}-slim", f"{n}-build", f"{n}.0.0-r1"):
                    pusher.push_manifest(repo, alias, image.manifest, image.media_type)
                    catalogue.on_base[(repo, alias)] = image.digest
        index = push_index(pusher, "multi/index", "latest")
        for alias in ("stable", "1"):
            pusher.push_manifest("multi/index", alias, index.manifest, index.media_type)
        catalogue.index = index
        push_oci_image(
            pusher, "other/solo", "1", layers=[{"solo/": ("dir",), "solo/file": b"not on the base\n"}]
        )
        if schema1:
            push_schema1_signed(pusher, "legacy/old", "v1")
        catalogue.victim = push_oci_image(pusher, "gone/victim", "only", layers=[{"victim": b"soon gone\n"}])
        catalogue.moving = push_oci_image(pusher, "moving/tag", "latest", layers=[{"moving": b"first\n"}])
    return catalogue


def move_and_delete(registry: Registry, catalogue: Catalogue) -> PushedImage:
    """Delete ``gone/victim:only`` (its manifest) and point ``moving/tag:latest`` at a new image."""
    assert catalogue.victim is not None
    with pusher_for(registry) as pusher:
        pusher.delete_manifest("gone/victim", catalogue.victim.digest)
        return push_oci_image(pusher, "moving/tag", "latest", layers=[{"moving": b"second\n"}])


def served_tags(registry: Registry) -> dict[str, list[str]]:
    """Every repository's tags, as the registry lists them (the oracle for the catalogue's counts)."""
    repositories = httpx.get(f"{registry.url}/v2/_catalog?n=1000").json()["repositories"]
    return {
        repo: sorted(httpx.get(f"{registry.url}/v2/{repo}/tags/list?n=10000").json()["tags"] or [])
        for repo in repositories
    }


__all__ = ["Catalogue", "Pusher", "move_and_delete", "push_catalogue", "served_tags"]
