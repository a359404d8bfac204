"""Docker image manifest schema 1: signed (JWS) and unsigned documents, their digest, and their config.

A signed schema1 manifest is "pretty JWS": the manifest JSON with a ``signatures`` array spliced in
before its last closing brace. Registries report the digest of the *canonical payload*, not of the
served bytes (which change on every GET, since distribution re-signs each time): each signature's
protected header holds ``formatLength`` and ``formatTail``, and the payload is
``body[:formatLength] + b64url_decode(formatTail)`` where ``body`` is the document without leading and
trailing whitespace (Go's JSON decoder hands libtrust the trimmed value; regclient's fixture has such
whitespace). An unsigned manifest is hashed as it is.

``fsLayers`` and ``history`` list the top layer first; :attr:`Schema1Manifest.layers` gives them base
first. The newest ``history`` entry's ``v1Compatibility`` holds the image config, from which
:func:`synthesize_config` builds an OCI image config the way containers/image converts schema1 to OCI
(``ToSchema2Config`` and then decoding into image-spec v1.1's ``Image``): only OCI image-config fields,
in image-spec's order, with history steps built from every entry; :func:`config_bytes` encodes it as
Go's ``encoding/json`` does, so the bytes are the ones skopeo writes. Signatures are not checked
cryptographically: the digest is what pins the content.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from regpeek.errors import MalformedError, UsageError
from regpeek.formats.digest import Digest, compute
from regpeek.formats.mediatypes import SCHEMA1, SCHEMA1_SIGNED

__all__ = [
    "EMPTY_LAYER",
    "Schema1Layer",
    "Schema1Manifest",
    "canonical_payload",
    "config_bytes",
    "go_json",
    "parse",
    "synthesize_config",
]

#: The gzipped empty tar Docker uses for throwaway (metadata-only) layers.
EMPTY_LAYER = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"

_JSON_SPACE = b" \t\r\n"


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
    body = body.strip(_JSON_SPACE)
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
    layers: tuple[Schema1Layer, ...] = field(repr=False)  # base first, throwaway entries included
    signed: bool
    raw: bytes = field(repr=False)
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
    signed = bool(document.get("signatures"))
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


# -- the OCI config of a converted schema1 image ------------------------------------------------

#: What image-spec v1.1's ``ImageConfig`` holds, in its field order: name -> JSON shape.
_IMAGE_CONFIG_FIELDS = {
    "User": "string",
    "ExposedPorts": "set",
    "Env": "strings",
    "Entrypoint": "strings",
    "Cmd": "strings",
    "Volumes": "set",
    "WorkingDir": "string",
    "Labels": "labels",
    "StopSignal": "string",
    "ArgsEscaped": "bool",
}
#: image-spec v1.1's ``Image`` fields taken from the newest v1Compatibility, in order (``config``,
#: ``rootfs`` and ``history`` follow).
_IMAGE_FIELDS = {
    "created": "time",
    "author": "string",
    "architecture": "string",
    "os": "string",
    "os.version": "string",
    "os.features": "strings",
    "variant": "string",
}
_ZERO_TIME = "0001-01-01T00:00:00Z"
_RFC3339_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})"
)
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _go_time(value: Any) -> str | None:
    """An RFC 3339 time as Go's ``time.Time`` re-encodes it (RFC3339Nano), or None if Go would refuse it."""
    match = _RFC3339_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day = (int(part) for part in match["date"].split("-"))
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS[month - 1] or (month == 2 and day == 29 and not leap):
        return None
    if int(match["h"]) > 23 or int(match["m"]) > 59 or int(match["s"]) > 59:
        return None
    zone = match["zone"]
    if zone != "Z" and (int(zone[1:3]) > 23 or int(zone[4:6]) > 59):
        return None
    fraction = (match["fraction"] or "")[:9].rstrip("0")
    if zone in ("Z", "+00:00", "-00:00"):
        zone = "Z"
    return f"{match['date']}T{match['h']}:{match['m']}:{match['s']}{'.' + fraction if fraction else ''}{zone}"


def _decoded(shape: str, value: Any) -> Any:
    """``value`` as Go would decode it into a field of ``shape``, or None when empty or refused.

    Go fails the whole conversion on a wrong type; regpeek leaves that one field out instead.
    """
    if shape == "string":
        return value if isinstance(value, str) and value else None
    if shape == "bool":
        return True if value is True else None
    if shape == "time":
        return _go_time(value)
    if shape == "strings":
        if not isinstance(value, list) or not all(isinstance(item, str) or item is None for item in value):
            return None
        return [item or "" for item in value] or None
    if shape == "set":
        if not isinstance(value, dict) or not all(isinstance(v, dict) or v is None for v in value.values()):
            return None
        return {key: {} for key in sorted(value)} or None
    if shape == "labels":
        if not isinstance(value, dict) or not all(isinstance(v, str) or v is None for v in value.values()):
            return None
        return {key: value[key] or "" for key in sorted(value)} or None
    raise AssertionError(shape)


def _go_struct(fields: dict[str, str], document: dict[str, Any]) -> dict[str, Any]:
    """Decode ``document`` into a Go struct with ``fields`` and re-encode it with ``omitempty``.

    Keys match field names case-insensitively and the last matching key wins, as in ``encoding/json``;
    everything else is dropped; the output follows the struct's field order.
    """
    by_name = {name.lower(): name for name in fields}
    values: dict[str, Any] = {}
    for key, value in document.items():
        name = by_name.get(key.lower())
        if name is not None:
            values[name] = value
    out: dict[str, Any] = {}
    for name, shape in fields.items():
        decoded = _decoded(shape, values.get(name))
        if decoded is not None:
            out[name] = decoded
    return out


def _join_cmd(container_config: Any) -> str:
    cmd = container_config.get("Cmd") if isinstance(container_config, dict) else None
    if isinstance(cmd, list):
        return " ".join(part if isinstance(part, str) else "" for part in cmd)
    return cmd if isinstance(cmd, str) else ""


def synthesize_config(manifest: Schema1Manifest, diff_ids: list[str] | None = None) -> dict[str, Any]:
    """The OCI image config containers/image (and so skopeo) builds for a schema1 image.

    From the newest ``v1Compatibility``: ``created``, ``author``, ``architecture``, ``os``,
    ``os.version``, ``os.features``, ``variant`` and the image-spec ``config`` fields (``User``,
    ``ExposedPorts``, ``Env``, ``Entrypoint``, ``Cmd``, ``Volumes``, ``WorkingDir``, ``Labels``,
    ``StopSignal``, ``ArgsEscaped``); Docker-only fields (``Hostname``, ``Attach*``, ``Tty``, ``Image``,
    ``OnBuild``, ``Healthcheck``, ``docker_version``, ``container_config``...) and empty or null values
    are left out. Every entry, base first, gives one ``history`` item (``created`` -- Go's zero time when
    the entry has none --, ``created_by`` joined from ``container_config.Cmd``, ``author``,
    ``comment``, ``empty_layer`` for throwaway entries). ``rootfs.diff_ids`` is included only when the
    caller knows the uncompressed layer digests (which takes downloading the layers). Unlike
    containers/image, a missing ``architecture`` falls back to the manifest's and a missing ``os`` to
    ``linux``, so the platform is never empty.
    """
    newest = manifest.newest
    config = _go_struct(_IMAGE_FIELDS, newest)
    config["architecture"] = config.get("architecture") or manifest.architecture
    config["os"] = config.get("os") or "linux"
    ordered = {key: config[key] for key in _IMAGE_FIELDS if key in config}
    inner = next((value for key, value in reversed(newest.items()) if key.lower() == "config"), None)
    ordered["config"] = _go_struct(_IMAGE_CONFIG_FIELDS, inner) if isinstance(inner, dict) else {}
    if diff_ids is not None:
        ordered["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    history = []
    for layer in manifest.layers:
        item: dict[str, Any] = {"created": _go_time(layer.v1.get("created")) or _ZERO_TIME}
        created_by = _join_cmd(layer.v1.get("container_config"))
        if created_by:
            item["created_by"] = created_by
        for key in ("author", "comment"):
            if isinstance(layer.v1.get(key), str) and layer.v1[key]:
                item[key] = layer.v1[key]
        if layer.throwaway:
            item["empty_layer"] = True
        history.append(item)
    ordered["history"] = history
    return ordered


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def go_json(value: Any) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it: HTML characters and U+2028/9 escaped, UTF-8."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = _GO_ESCAPE_RE.sub(lambda match: _GO_ESCAPES[match.group()], text)
    return _SURROGATE_RE.sub("\ufffd", text).encode()


def config_bytes(manifest: Schema1Manifest, diff_ids: list[str] | None = None) -> bytes:
    """:func:`synthesize_config` encoded as skopeo writes it into an OCI layout."""
    return go_json(synthesize_config(manifest, diff_ids))
