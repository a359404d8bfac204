"""The structure of an image as a tree: index -> manifests -> config and layers, plus referrers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from regpeek.formats.digest import Digest
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import Descriptor, ImageManifest, Index
from regpeek.formats.schema1 import Schema1Manifest

__all__ = ["Node", "image_node", "index_node"]


@dataclass
class Node(JsonResult):
    """One box of the tree: what it is, its digest and size, and what hangs below it."""

    kind: str  # "index", "manifest", "config", "layer", "attestation", "referrer", "schema1"
    media_type: str
    digest: Digest | None
    size: int | None
    platform: str | None = None
    note: str | None = None
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "media_type": self.media_type,
            "digest": str(self.digest) if self.digest else None,
            "size": self.size,
            "platform": self.platform,
            "note": self.note,
            "children": [child.to_dict() for child in self.children],
        }


def image_node(
    manifest: ImageManifest | Schema1Manifest,
    *,
    kind: str = "manifest",
    platform: str | None = None,
    note: str | None = None,
) -> Node:
    """A manifest with its config and layers below it."""
    if isinstance(manifest, Schema1Manifest):
        layers = [
            Node("layer", "application/vnd.docker.image.rootfs.diff.tar.gzip", layer.blob_sum, None)
            for layer in manifest.layers
            if not layer.throwaway
        ]
        return Node(
            "schema1", manifest.media_type, manifest.digest, len(manifest.raw), platform, note, layers
        )
    children = [_blob("config", manifest.config)] + [_blob("layer", layer) for layer in manifest.layers]
    size = len(manifest.raw)
    return Node(kind, manifest.media_type, manifest.digest, size, platform, note, children)


def index_node(index: Index, children: list[Node]) -> Node:
    return Node("index", index.media_type, index.digest, len(index.raw), children=children)


def _blob(kind: str, descriptor: Descriptor) -> Node:
    note = "non-distributable" if descriptor.urls else None
    return Node(kind, descriptor.media_type, descriptor.digest, descriptor.size, note=note)
