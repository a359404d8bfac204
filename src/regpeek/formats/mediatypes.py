"""Media types of the OCI image spec and Docker's manifest formats, and how to classify them."""

from __future__ import annotations

import re
from enum import Enum

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_FOREIGN_LAYER",
    "DOCKER_LAYER",
    "DOCKER_LAYER_TAR",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_ACCEPT",
    "MANIFEST_MEDIA_TYPES",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "SCHEMA1",
    "SCHEMA1_SIGNED",
    "Kind",
    "kind_of",
    "normalize",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"  # uncompressed
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"


class Kind(Enum):
    """What a manifest document is."""

    INDEX = "index"  # OCI index or Docker manifest list
    IMAGE = "image"  # OCI manifest or Docker schema2
    SCHEMA1 = "schema1"  # Docker schema1, signed or not


_KINDS = {
    OCI_INDEX: Kind.INDEX,
    DOCKER_MANIFEST_LIST: Kind.INDEX,
    OCI_MANIFEST: Kind.IMAGE,
    DOCKER_MANIFEST: Kind.IMAGE,
    SCHEMA1: Kind.SCHEMA1,
    SCHEMA1_SIGNED: Kind.SCHEMA1,
}

#: Every manifest media type regpeek reads, most preferred first.
MANIFEST_MEDIA_TYPES = (
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    SCHEMA1_SIGNED,
    SCHEMA1,
)

#: The ``Accept`` header sent for every manifest request: one list with every type.
MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE_RE = re.compile(f"{_TOKEN}/{_TOKEN}")


def normalize(content_type: str | None) -> str:
    """A media type without parameters, lowercased: ``"A/B; charset=utf-8"`` -> ``"a/b"``.

    Anything that is not ``type/subtype`` made of RFC 7230 tokens gives ``""`` (as containers/image's
    ``simplifyContentType`` does), so junk is never mistaken for a media type.
    """
    if not content_type:
        return ""
    base = content_type.split(";", 1)[0].strip(" \t").lower()
    return base if _MEDIA_TYPE_RE.fullmatch(base) else ""


def kind_of(media_type: str | None) -> Kind | None:
    """The manifest kind a media type names, or None for anything else (``application/json`` included)."""
    return _KINDS.get(normalize(media_type))


def is_gzip_layer(media_type: str) -> bool:
    return media_type.endswith(("+gzip", ".tar.gzip"))


def is_zstd_layer(media_type: str) -> bool:
    return media_type.endswith("+zstd")
