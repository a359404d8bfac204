"""Manifest documents: bytes in, frozen typed values out.

:func:`parse` classifies a document by its ``Content-Type`` first, then by the body's ``mediaType``,
then by ``schemaVersion`` and shape (an OCI manifest may omit ``mediaType``: a ``schemaVersion`` 2 image
without one is taken as OCI; some registries serve schema1 as ``application/json``). It refuses
documents over :data:`MAX_MANIFEST_SIZE`, documents whose declared ``mediaType`` differs from their
``Content-Type`` (an OCI body served as Docker schema2 included), and ambiguous documents, as
containers/image does: an index or image carrying another kind's fields (``manifests`` beside
``layers``/``config``, CVE-2021-41190; schema1's ``fsLayers``, ``history`` or ``signatures``), or a
schema1 manifest carrying ``config``, ``layers`` or ``manifests``. Field names are matched
case-insensitively and ``null`` values do not count, as with Go's JSON decoding. The digest is
computed here, over the canonical JWS payload for signed schema1.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regpeek.errors import (
    DigestMismatchError,
    MalformedError,
    PlatformNotFoundError,
    TooLargeError,
    UsageError,
)
from regpeek.formats import mediatypes as mt
from regpeek.formats import schema1
from regpeek.formats.digest import Digest, compute, verify_bytes
from regpeek.formats.platform import Matcher, Platform, only

__all__ = [
    "MAX_MANIFEST_SIZE",
    "Descriptor",
    "ImageManifest",
    "Index",
    "Manifest",
    "check_size",
    "ensure_expected",
    "parse",
    "parse_json_object",
]

#: Manifests and configs larger than this are refused (distribution and containers/image use 4 MiB).
MAX_MANIFEST_SIZE = 4 * 1024 * 1024

_ATTESTATION_KEY = "vnd.docker.reference.type"


def check_size(what: str, size: int) -> None:
    if size > MAX_MANIFEST_SIZE:
        raise TooLargeError(
            f"{what} is {size} bytes, over the {MAX_MANIFEST_SIZE}-byte limit",
            size=size,
            limit=MAX_MANIFEST_SIZE,
        )


def parse_json_object(what: str, data: bytes) -> dict[str, Any]:
    """Decode ``data`` as a JSON object or raise :class:`MalformedError`."""
    check_size(what, len(data))
    try:
        document = json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise MalformedError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise MalformedError(f"{what} is not a JSON object")
    return document


def _annotations(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MalformedError("annotations must be an object of strings")
    return dict(value)


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest or index says about a blob or a child manifest.

    ``size`` is in bytes; -1 means unknown (a schema1 manifest gives no layer sizes), as in
    containers/image. Every blob method of the clients takes a descriptor (or a
    :class:`~regpeek.formats.config.Layer`, which is one), and checks the blob against its digest and,
    when known, its size.
    """

    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, value: Any, what: str) -> Descriptor:
        if not isinstance(value, dict):
            raise MalformedError(f"{what} is not a descriptor object")
        media_type = value.get("mediaType", "")
        size = value.get("size")
        digest_text = value.get("digest")
        if not isinstance(media_type, str) or not isinstance(digest_text, str):
            raise MalformedError(f"{what}: mediaType and digest must be strings")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise MalformedError(f"{what}: size must be a non-negative integer")
        try:
            digest = Digest.parse(digest_text)
        except UsageError as error:
            raise MalformedError(f"{what}: {error}") from None
        platform = value.get("platform")
        if platform is not None and not isinstance(platform, dict):
            raise MalformedError(f"{what}: platform must be an object")
        urls = value.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise MalformedError(f"{what}: urls must be a list of strings")
        artifact_type = value.get("artifactType")
        data = None
        if value.get("data") is not None:
            try:
                data = base64.b64decode(value["data"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise MalformedError(f"{what}: data is not valid base64") from None
            verify_bytes(f"{what} inline data", data, digest, size)
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            platform=Platform.from_json(platform) if platform is not None else None,
            urls=tuple(urls),
            annotations=_annotations(value.get("annotations")),
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
            data=data,
        )

    @property
    def known_size(self) -> int | None:
        """``size``, or None when it is unknown (-1)."""
        return self.size if self.size >= 0 else None

    @property
    def is_attestation(self) -> bool:
        """A BuildKit attestation entry: never chosen, never listed as a platform."""
        if _ATTESTATION_KEY in self.annotations:
            return True
        return self.platform is not None and (self.platform.os, self.platform.architecture) == (
            "unknown",
            "unknown",
        )

    def to_dict(self) -> dict[str, Any]:
        return {"media_type": self.media_type, "digest": str(self.digest), "size": self.size}

    def to_oci(self) -> dict[str, Any]:
        """The descriptor as OCI JSON (``mediaType``, ``digest``, ``size``, and what else it carries)."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


@dataclass(frozen=True)
class ImageManifest:
    """An OCI image manifest or a Docker schema2 manifest."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)
    digest: Digest
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    schema_version = 2

    @property
    def size(self) -> int:
        """Sum of the layers' sizes as the manifest declares them (compressed sizes)."""
        return sum(layer.size for layer in self.layers)


@dataclass(frozen=True)
class Index:
    """An OCI image index or a Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)
    digest: Digest
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    schema_version = 2

    @property
    def runnable(self) -> tuple[Descriptor, ...]:
        """Entries that are images for some platform: attestations and platform-less entries left out."""
        return tuple(
            entry for entry in self.manifests if entry.platform is not None and not entry.is_attestation
        )

    @property
    def platforms(self) -> list[Platform]:
        """The platforms of the runnable entries, in index order (attestations left out)."""
        return [entry.platform for entry in self.runnable if entry.platform is not None]

    def select(self, platform: Platform | str | Matcher) -> Descriptor:
        """The best runnable entry for ``platform`` (the first among equals), or PlatformNotFoundError.

        ``platform`` is a :class:`~regpeek.formats.platform.Platform`, its text (``"linux/arm64"``), or a
        :class:`~regpeek.formats.platform.Matcher` (``only(platform, strict=True)`` for no fallbacks); a
        platform is matched with containerd's fallbacks (``only(platform)``).

        Raises:
            PlatformNotFoundError: no entry matches (``available`` lists what there is).
            UsageError: ``platform`` is text that is not a platform.
        """
        matcher = platform if isinstance(platform, Matcher) else only(_platform_of(platform))
        best: tuple[tuple[int, int], Descriptor] | None = None
        for entry in self.runnable:
            assert entry.platform is not None
            key = matcher.key(entry.platform)
            if key is not None and (best is None or key < best[0]):
                best = (key, entry)
        if best is None:
            available = [entry.platform.describe() for entry in self.runnable if entry.platform is not None]
            raise PlatformNotFoundError(str(matcher), available)
        return best[1]


def _platform_of(platform: Platform | str) -> Platform:
    return Platform.parse(platform) if isinstance(platform, str) else platform


Manifest = ImageManifest | Index | schema1.Schema1Manifest

# The fields that identify a manifest kind, lowercased, and the ones each kind may carry.
_KIND_FIELDS = {"config", "fslayers", "history", "layers", "manifests", "signatures"}
_ALLOWED_FIELDS = {
    mt.Kind.IMAGE: {"config", "layers"},
    mt.Kind.INDEX: {"manifests"},
    mt.Kind.SCHEMA1: {"fslayers", "history", "signatures"},
}
_KIND_NAMES = {
    mt.Kind.IMAGE: "an image manifest",
    mt.Kind.INDEX: "an index",
    mt.Kind.SCHEMA1: "a schema1 manifest",
}


def _kind_fields(document: dict[str, Any]) -> dict[str, str]:
    """The kind-identifying fields present (not null): lowercased name -> name as written."""
    return {
        key.lower(): key
        for key, value in document.items()
        if key.lower() in _KIND_FIELDS and value is not None
    }


def _check_unambiguous(fields: dict[str, str], kind: mt.Kind) -> None:
    unexpected = [fields[name] for name in sorted(fields) if name not in _ALLOWED_FIELDS[kind]]
    if unexpected:
        raise MalformedError(f"ambiguous manifest: {', '.join(unexpected)} in {_KIND_NAMES[kind]}")


def _declared_kind(document: dict[str, Any]) -> tuple[str | None, mt.Kind | None]:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise MalformedError("manifest mediaType is not a string")
    return declared, mt.kind_of(declared)


def _schema_version(document: dict[str, Any]) -> Any:
    """``schemaVersion``, with booleans (which Python counts as 0 and 1) treated as invalid."""
    version = document.get("schemaVersion")
    return None if isinstance(version, bool) else version


def _shape_kind(document: dict[str, Any]) -> mt.Kind:
    version = _schema_version(document)
    if version == 1:
        return mt.Kind.SCHEMA1
    if version != 2:
        raise MalformedError(f"unsupported manifest schemaVersion {version!r}")
    if "manifests" in document:
        return mt.Kind.INDEX
    if "config" in document or "layers" in document:
        return mt.Kind.IMAGE
    raise MalformedError("document is neither an image manifest nor an index")


def parse(data: bytes, content_type: str | None = None, algorithm: str = "sha256") -> Manifest:
    """Parse manifest bytes served with ``content_type``; raises a :class:`VerificationError` subclass."""
    document = parse_json_object("manifest", data)
    fields = _kind_fields(document)
    if "manifests" in fields and ("layers" in fields or "config" in fields):
        raise MalformedError("ambiguous manifest: it has both manifests and layers/config")
    declared, declared_kind = _declared_kind(document)
    header_type = mt.normalize(content_type)
    header_kind = mt.kind_of(header_type)
    if declared_kind is not None and header_kind is not None and mt.normalize(declared) != header_type:
        raise MalformedError(f"manifest declares {declared} but was served as {header_type}")
    kind = header_kind or declared_kind or _shape_kind(document)
    media_type = (header_type if header_kind else None) or (declared if declared_kind else None)
    # the version first, then the heuristic ambiguity check, in containers/image's order
    if kind is mt.Kind.SCHEMA1:
        if _schema_version(document) != 1:
            raise MalformedError("schema1 manifest without schemaVersion 1")
        _check_unambiguous(fields, kind)
        return schema1.parse(data, document, media_type, algorithm)
    if _schema_version(document) != 2:
        raise MalformedError(f"unsupported manifest schemaVersion {document.get('schemaVersion')!r}")
    _check_unambiguous(fields, kind)
    digest = compute(data, algorithm)
    subject = Descriptor.from_json(document["subject"], "subject") if document.get("subject") else None
    artifact_type = document.get("artifactType")
    common: dict[str, Any] = {
        "raw": data,
        "digest": digest,
        "annotations": _annotations(document.get("annotations")),
        "subject": subject,
        "artifact_type": artifact_type if isinstance(artifact_type, str) else None,
    }
    if kind is mt.Kind.INDEX:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise MalformedError("index manifests must be a list")
        return Index(
            media_type=media_type or mt.OCI_INDEX,
            manifests=tuple(Descriptor.from_json(e, f"index entry {i}") for i, e in enumerate(entries)),
            **common,
        )
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise MalformedError("image manifest layers must be a list")
    if "config" not in document:
        raise MalformedError("image manifest has no config")
    return ImageManifest(
        media_type=media_type or mt.OCI_MANIFEST,
        config=Descriptor.from_json(document["config"], "config"),
        layers=tuple(Descriptor.from_json(layer, f"layer {i}") for i, layer in enumerate(layers)),
        **common,
    )


def ensure_expected(manifest: Manifest, expected: Digest | None, what: str) -> None:
    """Raise when a manifest fetched for ``expected`` has another digest."""
    if expected is not None and manifest.digest != expected:
        raise DigestMismatchError(what, expected, manifest.digest)
