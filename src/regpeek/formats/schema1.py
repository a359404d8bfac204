"""Docker image manifest schema 1: signed (JWS) and unsigned documents, their digest, and their config.

A signed schema1 manifest is "pretty JWS": the manifest JSON with a ``signatures`` array spliced in
before its last closing brace. Registries report the digest of the *canonical payload*, not of the
served bytes (which change on every GET, since distribution re-signs each time): each signature's
protected header holds ``formatLength`` and ``formatTail``, and the payload is
``body[:formatLength] + b64url_decode(formatTail)``. An unsigned manifest is hashed as it is.

``fsLayers`` and ``history`` list the top layer first; :attr:`Schema1Manifest.layers` gives them base
first. The newest ``history`` entry's ``v1Compatibility`` holds the image config, from which
:func:`synthesize_config` builds an OCI-style config. Signatures are not checked cryptographically:
the digest is what pins the content.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from regpeek.errors import MalformedError, UsageError
from regpeek.formats.digest import Digest, compute
from regpeek.formats.mediatypes import SCHEMA1, SCHEMA1_SIGNED

__all__ = [
    "EMPTY_LAYER",
    "Schema1Layer",
    "Schema1Manifest",
    "canonical_payload",
    "parse",
    "synthesize_config",
]

#: The gzipped empty tar Docker uses for throwaway (metadata-only) layers.
EMPTY_LAYER = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"

# Keys of the image config kept when a schema1 history entry becomes an OCI-style config.
_CONFIG_KEYS = ("architecture", "os", "created", "author", "docker_version", "variant", "os.version")


def _b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise MalformedError(f"schema1 signature: invalid base64url: {error}") from None


def canonical_payload(body: bytes, document: dict[str, Any]) -> bytes:
    """The bytes a signed schema1 manifest's digest covers (``body`` itself when unsigned)."""
    signatures = document.get("signatures")
    if not signatures:
        return body
    if not isinstance(signatures, list):
        raise MalformedError("schema1 manifest: signatures is not a list")
    formats: set[tuple[int, bytes]] = set()
    for signature in signatures:
        protected_text = signature.get("protected") if isinstance(signature, dict) else None
        if not isinstance(protected_text, str):
            raise MalformedError("schema1 signature: missing protected header")
        try:
            protected = json.loads(_b64url_decode(protected_text))
        except (ValueError, RecursionError):
            raise MalformedError("schema1 signature: protected header is not JSON") from None
        length = protected.get("formatLength") if isinstance(protected, dict) else None
        tail = protected.get("formatTail") if isinstance(protected, dict) else None
        if not isinstance(length, int) or isinstance(length, bool) or not isinstance(tail, str):
            raise MalformedError("schema1 signature: protected header lacks formatLength/formatTail")
        if not 0 < length <= len(body):
            raise MalformedError("schema1 signature: formatLength outside the document")
        formats.add((length, _b64url_decode(tail)))
    if len(formats) != 1:
        raise MalformedError("schema1 manifest: signatures disagree on the signed payload")
    length, tail = formats.pop()
    return body[:length] + tail


@dataclass(frozen=True)
class Schema1Layer:
    """One schema1 layer, base-first order, with its parsed ``v1Compatibility``."""

    blob_sum: Digest
    v1: dict[str, Any]

    @property
    def throwaway(self) -> bool:
        return self.v1.get("throwaway") is True


@dataclass(frozen=True)
class Schema1Manifest:
    """A parsed schema1 manifest."""

    media_type: str
    name: str
    tag: str
    architecture: str
    layers: tuple[Schema1Layer, ...]  # base first, throwaway entries included
    signed: bool
    raw: bytes
    digest: Digest

    schema_version = 1

    @property
    def newest(self) -> dict[str, Any]:
        """The newest history entry: the one that holds the image config."""
        return self.layers[-1].v1 if self.layers else {}


def parse(
    body: bytes, document: dict[str, Any], media_type: str | None, algorithm: str = "sha256"
) -> Schema1Manifest:
    """Build a :class:`Schema1Manifest` from a document already known to be schema1."""
    payload = canonical_payload(body, document)
    signed = payload is not body
    if signed:
        try:
            document = json.loads(payload)
        except (ValueError, RecursionError):
            raise MalformedError("schema1 manifest: signed payload is not JSON") from None
        if not isinstance(document, dict):
            raise MalformedError("schema1 manifest: signed payload is not an object")
    fs_layers = document.get("fsLayers")
    history = document.get("history")
    if not isinstance(fs_layers, list) or not isinstance(history, list) or not fs_layers:
        raise MalformedError("schema1 manifest: fsLayers and history must be non-empty lists")
    if len(fs_layers) != len(history):
        raise MalformedError("schema1 manifest: fsLayers and history differ in length")
    layers = []
    for fs_layer, entry in zip(reversed(fs_layers), reversed(history), strict=True):
        blob_sum = fs_layer.get("blobSum") if isinstance(fs_layer, dict) else None
        compat = entry.get("v1Compatibility") if isinstance(entry, dict) else None
        if not isinstance(blob_sum, str) or not isinstance(compat, str):
            raise MalformedError(
                "schema1 manifest: fsLayers need blobSum and history v1Compatibility strings"
            )
        try:
            digest = Digest.parse(blob_sum)
            v1 = json.loads(compat)
        except (UsageError, ValueError, RecursionError) as error:
            raise MalformedError(f"schema1 manifest: bad layer entry: {error}") from None
        if not isinstance(v1, dict):
            raise MalformedError("schema1 manifest: v1Compatibility is not a JSON object")
        layers.append(Schema1Layer(digest, v1))

    def text(key: str) -> str:
        value = document.get(key)
        return value if isinstance(value, str) else ""

    return Schema1Manifest(
        media_type=media_type or (SCHEMA1_SIGNED if signed else SCHEMA1),
        name=text("name"),
        tag=text("tag"),
        architecture=text("architecture"),
        layers=tuple(layers),
        signed=signed,
        raw=body,
        digest=compute(payload, algorithm),
    )


def _join_cmd(container_config: Any) -> str:
    cmd = container_config.get("Cmd") if isinstance(container_config, dict) else None
    if isinstance(cmd, list):
        return " ".join(str(part) for part in cmd)
    return cmd if isinstance(cmd, str) else ""


def synthesize_config(manifest: Schema1Manifest, diff_ids: list[str] | None = None) -> dict[str, Any]:
    """An OCI-style image config built from the schema1 history.

    The newest entry gives architecture, os, created, author, docker_version and ``config``; every
    entry gives one ``history`` item (``created_by`` is its ``container_config.Cmd``), with
    ``empty_layer`` for throwaway entries. ``rootfs.diff_ids`` is included only when the caller knows
    the uncompressed layer digests (which takes downloading the layers).
    """
    newest = manifest.newest
    config: dict[str, Any] = {key: newest[key] for key in _CONFIG_KEYS if key in newest}
    config.setdefault("architecture", manifest.architecture)
    config.setdefault("os", "linux")
    inner = newest.get("config")
    config["config"] = inner if isinstance(inner, dict) else {}
    if diff_ids is not None:
        config["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    history = []
    for layer in manifest.layers:
        item: dict[str, Any] = {}
        for key in ("created", "author", "comment"):
            if isinstance(layer.v1.get(key), str):
                item[key] = layer.v1[key]
        created_by = _join_cmd(layer.v1.get("container_config"))
        if created_by:
            item["created_by"] = created_by
        if layer.throwaway:
            item["empty_layer"] = True
        history.append(item)
    config["history"] = history
    return config
