"""Small builders for manifest, index, config and schema1 documents used by the unit tests."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from regpeek.formats import mediatypes as mt

EMPTY_LAYER = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fake_digest(seed: str) -> str:
    """A valid digest that names nothing in particular."""
    return sha256(seed.encode())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def descriptor(
    media_type: str = mt.OCI_LAYER_GZIP,
    seed: str = "layer",
    size: int = 100,
    **extra: Any,
) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": fake_digest(seed), "size": size, **extra}


def image_manifest(
    media_type: str | None = mt.OCI_MANIFEST,
    *,
    config_type: str = mt.OCI_CONFIG,
    layers: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        document["mediaType"] = media_type
    document["config"] = descriptor(config_type, "config", 1234)
    document["layers"] = (
        layers if layers is not None else [descriptor(seed="l1", size=10), descriptor(seed="l2", size=20)]
    )
    document.update(extra)
    return document


def docker_manifest(**extra: Any) -> dict[str, Any]:
    return image_manifest(
        mt.DOCKER_MANIFEST,
        config_type=mt.DOCKER_CONFIG,
        layers=[descriptor(mt.DOCKER_LAYER, "d1", 11), descriptor(mt.DOCKER_LAYER, "d2", 22)],
        **extra,
    )


def entry(
    platform: str, seed: str | None = None, media_type: str = mt.OCI_MANIFEST, **extra: Any
) -> dict[str, Any]:
    """An index entry for ``os/arch[/variant]`` (``os(version)/arch`` for an os.version)."""
    os_part, _, rest = platform.partition("/")
    os_name, _, version = os_part.partition("(")
    architecture, _, variant = rest.partition("/")
    spec: dict[str, Any] = {"os": os_name, "architecture": architecture}
    if variant:
        spec["variant"] = variant
    if version:
        spec["os.version"] = version.rstrip(")")
    return descriptor(media_type, seed or platform, 500, platform=spec, **extra)


def attestation(seed: str = "att", ref: str | None = None) -> dict[str, Any]:
    return descriptor(
        mt.OCI_MANIFEST,
        seed,
        800,
        platform={"os": "unknown", "architecture": "unknown"},
        annotations={
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": ref or fake_digest("amd64"),
        },
    )


def index(
    entries: list[dict[str, Any]], media_type: str | None = mt.OCI_INDEX, **extra: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        document["mediaType"] = media_type
    document["manifests"] = entries
    document.update(extra)
    return document


# -- schema1 --------------------------------------------------------------------------------------


def v1_entry(**fields: Any) -> dict[str, str]:
    return {"v1Compatibility": json.dumps(fields, separators=(",", ":"))}


def schema1_document(
    layers: list[tuple[str, dict[str, Any]]],
    *,
    name: str = "library/app",
    tag: str = "latest",
    architecture: str = "amd64",
) -> dict[str, Any]:
    """A schema1 document; ``layers`` is TOP FIRST, as (blobSum, v1Compatibility fields)."""
    return {
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": architecture,
        "fsLayers": [{"blobSum": blob} for blob, _ in layers],
        "history": [v1_entry(**v1) for _, v1 in layers],
    }


def pretty(document: dict[str, Any]) -> bytes:
    """Go's MarshalIndent(v, "", "   "), as Docker writes schema1."""
    return json.dumps(document, indent=3).encode()


def format_split(unsigned: bytes) -> tuple[int, bytes]:
    """libtrust's formatLength/formatTail: up to the last value before the final ``}``."""
    close = len(unsigned.rstrip())
    length = len(unsigned[: close - 1].rstrip())
    return length, unsigned[length:]


def protected_header(length: int, tail: bytes, when: str = "2024-01-02T03:04:05Z") -> str:
    header = {"formatLength": length, "formatTail": b64url(tail), "time": when}
    return b64url(json.dumps(header).encode())


def sign(unsigned: bytes, protected: list[str] | None = None) -> bytes:
    """Splice a libtrust-style ``signatures`` array into pretty schema1 JSON (dummy signatures)."""
    length, tail = format_split(unsigned)
    if protected is None:
        protected = [protected_header(length, tail)]
    signatures = [
        {
            "header": {"jwk": {"crv": "P-256", "kty": "EC", "x": "eA", "y": "eQ"}, "alg": "ES256"},
            "signature": b64url(f"not-a-real-signature-{i}".encode()),
            "protected": value,
        }
        for i, value in enumerate(protected)
    ]
    block = json.dumps(signatures, indent=3).replace("\n", "\n   ")
    return unsigned[:length] + b',\n   "signatures": ' + block.encode() + tail
