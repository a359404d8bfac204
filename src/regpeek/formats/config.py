"""Image configs and the inspect result built from a manifest, its config and the index above it.

Pure: everything here works on bytes and parsed documents already fetched and verified.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regpeek.errors import UsageError
from regpeek.formats import mediatypes as mt
from regpeek.formats import schema1
from regpeek.formats.digest import Digest
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import Descriptor, ImageManifest, Index, parse_json_object
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference
from regpeek.formats.terminal import safe_text
from regpeek.formats.units import format_size

if TYPE_CHECKING:  # for the type checker only: formats never loads disk/
    from regpeek.disk.layout import LayoutReference

__all__ = [
    "HistoryEntry",
    "ImageConfig",
    "InspectResult",
    "Layer",
    "PlatformEntry",
    "build_inspect",
    "config_from_schema1",
    "parse_time",
]

_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))"
)


def parse_time(text: str | None) -> datetime.datetime | None:
    """An RFC 3339 time as images write it (Go's layout: nanoseconds, ``Z`` or an offset) as a
    timezone-aware datetime (to the microsecond); None when absent or not such a time.

    >>> parse_time("2024-05-01T12:00:00.123456789Z")
    datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)
    """
    match = _TIME_RE.fullmatch(text.strip()) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zulu, sign, offset_hours, offset_minutes = match.groups()[6:]
    zone = datetime.timezone.utc
    if not zulu:
        offset = datetime.timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
        if offset >= datetime.timedelta(hours=24):
            return None
        zone = datetime.timezone(-offset if sign == "-" else offset)
    try:
        return datetime.datetime(
            year, month, day, hour, minute, min(second, 59), int((fraction or "0")[:6].ljust(6, "0")), zone
        )
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, str):  # some old configs hold a shell string
        return [value]
    return None


def _words(value: list[str] | None) -> str | None:
    return json.dumps(value) if value is not None else None


def _keys(value: Any) -> list[str]:
    return sorted(value) if isinstance(value, dict) else []


@dataclass(frozen=True)
class HistoryEntry:
    """One step of a config's history; ``created_raw`` is the time as written, ``created`` parsed."""

    created_raw: str | None
    created_by: str | None
    author: str | None
    comment: str | None
    empty_layer: bool

    @property
    def created(self) -> datetime.datetime | None:
        """When the step ran, timezone-aware; None when absent or not an RFC 3339 time."""
        return parse_time(self.created_raw)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created_raw,
            "created_by": self.created_by,
            "author": self.author,
            "comment": self.comment,
            "empty_layer": self.empty_layer,
        }


@dataclass(frozen=True)
class ImageConfig:
    """An image config: the raw bytes (as served, or synthesized for schema1) and the fields in them."""

    raw: bytes = field(repr=False)
    digest: Digest | None  # None when synthesized from schema1 history
    document: Mapping[str, Any] = field(repr=False)
    #: What a schema1 history holds that an OCI config has no place for (``docker_version``).
    legacy: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"ImageConfig(digest={self.digest!r}, platform={str(self.platform)!r}, created={self.created_raw!r})"

    @classmethod
    def parse(cls, raw: bytes, digest: Digest | None) -> ImageConfig:
        return cls(raw, digest, parse_json_object("config", raw))

    @property
    def _config(self) -> Mapping[str, Any]:
        inner = self.document.get("config")
        if isinstance(inner, dict):
            return inner
        legacy = self.document.get("container_config")  # very old Docker configs
        return legacy if isinstance(legacy, dict) else {}

    @property
    def platform(self) -> Platform:
        return Platform.from_json(self.document)

    @property
    def created(self) -> datetime.datetime | None:
        """When the image was built, timezone-aware; None when absent or not an RFC 3339 time."""
        return parse_time(self.created_raw)

    @property
    def created_raw(self) -> str | None:
        """``created`` as the config writes it."""
        return _str(self.document.get("created"))

    @property
    def author(self) -> str | None:
        return _str(self.document.get("author"))

    @property
    def docker_version(self) -> str | None:
        return _str(self.document.get("docker_version")) or _str(self.legacy.get("docker_version"))

    @property
    def env(self) -> list[str]:
        return _str_list(self._config.get("Env")) or []

    @property
    def entrypoint(self) -> list[str] | None:
        return _str_list(self._config.get("Entrypoint"))

    @property
    def cmd(self) -> list[str] | None:
        return _str_list(self._config.get("Cmd"))

    @property
    def working_dir(self) -> str | None:
        return _str(self._config.get("WorkingDir"))

    @property
    def user(self) -> str | None:
        return _str(self._config.get("User"))

    @property
    def stop_signal(self) -> str | None:
        return _str(self._config.get("StopSignal"))

    @property
    def exposed_ports(self) -> list[str]:
        return _keys(self._config.get("ExposedPorts"))

    @property
    def volumes(self) -> list[str]:
        return _keys(self._config.get("Volumes"))

    @property
    def labels(self) -> dict[str, str]:
        labels = self._config.get("Labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    @property
    def diff_ids(self) -> list[Digest]:
        """``rootfs.diff_ids``: the digests of the uncompressed layers, base first (empty when one is
        not a valid digest)."""
        rootfs = self.document.get("rootfs")
        ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(ids, list):
            return []
        try:
            return [Digest.parse(item) for item in ids if isinstance(item, str)]
        except UsageError:
            return []

    @property
    def history(self) -> list[HistoryEntry]:
        entries = self.document.get("history")
        if not isinstance(entries, list):
            return []
        return [
            HistoryEntry(
                created_raw=_str(entry.get("created")),
                created_by=_str(entry.get("created_by")),
                author=_str(entry.get("author")),
                comment=_str(entry.get("comment")),
                empty_layer=entry.get("empty_layer") is True,
            )
            for entry in entries
            if isinstance(entry, dict)
        ]

    def facts(self) -> list[tuple[str, list[str]]]:
        """How the image runs, as :meth:`InspectResult.facts` shows it (``Entrypoint``, ``Cmd``,
        ``Working dir``, ``User``, ``Stop signal``, ``Env``, ``Labels``, ``Ports``, ``Volumes``):
        (label, lines) pairs, those without a value left out; the text is the image's own."""
        return _fact_lines(
            [
                ("Entrypoint", _words(self.entrypoint)),
                ("Cmd", _words(self.cmd)),
                ("Working dir", self.working_dir),
                ("User", self.user),
                ("Stop signal", self.stop_signal),
                ("Env", self.env),
                ("Labels", [f"{k}={v}" for k, v in sorted(self.labels.items())]),
                ("Ports", ", ".join(self.exposed_ports)),
                ("Volumes", ", ".join(self.volumes)),
            ]
        )


def _fact_lines(rows: list[tuple[str, str | list[str] | None]]) -> list[tuple[str, list[str]]]:
    """(label, value) rows as (label, lines): a text value is one line; rows without a value go."""
    return [(label, value if isinstance(value, list) else [value]) for label, value in rows if value]


def config_from_schema1(manifest: schema1.Schema1Manifest) -> ImageConfig:
    """The OCI config synthesized from a schema1 manifest's history, encoded as skopeo encodes it.

    ``docker_version``, which the OCI config leaves out, is still reported from the newest entry.
    """
    document = schema1.synthesize_config(manifest)
    legacy = {"docker_version": manifest.newest.get("docker_version")}
    return ImageConfig(schema1.go_json(document), None, document, legacy)


@dataclass(frozen=True)
class Layer(Descriptor):
    """A layer of an image: its descriptor (``size`` is -1 for schema1, which gives none) and
    ``diff_id``, the digest of its uncompressed tar from the config (None when unknown)."""

    diff_id: Digest | None = None

    @classmethod
    def of(cls, descriptor: Descriptor, diff_id: Digest | None = None) -> Layer:
        """A layer from a manifest's layer descriptor."""
        return cls(
            media_type=descriptor.media_type,
            digest=descriptor.digest,
            size=descriptor.size,
            platform=descriptor.platform,
            urls=descriptor.urls,
            annotations=descriptor.annotations,
            artifact_type=descriptor.artifact_type,
            data=descriptor.data,
            diff_id=diff_id,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "digest": str(self.digest),
            "size": self.known_size,
            "media_type": self.media_type,
            "diff_id": str(self.diff_id) if self.diff_id else None,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        return out


@dataclass(frozen=True)
class PlatformEntry:
    platform: Platform
    digest: Digest
    media_type: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.platform.to_dict(),
            "digest": str(self.digest),
            "media_type": self.media_type,
            "size": self.size,
        }


@dataclass(frozen=True)
class InspectResult(JsonResult):
    """Everything ``regpeek inspect`` reports about one image; :meth:`to_dict` gives the documented keys
    (:meth:`to_json` their text).

    ``reference`` is the :class:`~regpeek.formats.reference.Reference` inspected (normalised, with its
    registry: pass it back to the client as is), or the :class:`~regpeek.disk.layout.LayoutReference`
    of an image in a local layout; ``registry``, ``repository`` (the path, ``library/alpine``) and
    ``tag`` are its parts, as the JSON has them.
    """

    reference: Reference | LayoutReference
    registry: str | None  # None for an image in a local OCI layout
    repository: str
    tag: str | None
    digest: Digest
    index_digest: Digest | None
    media_type: str
    schema_version: int
    platform: Platform
    platforms: list[PlatformEntry] | None
    config_digest: Digest | None
    config: ImageConfig
    layers: list[Layer]
    annotations: Mapping[str, str] = field(default_factory=dict)
    index_media_type: str | None = None

    @property
    def size(self) -> int | None:
        """Sum of the compressed layer sizes, or None when they are unknown (schema1)."""
        sizes = [layer.known_size for layer in self.layers]
        if self.schema_version == 1 or any(size is None for size in sizes):
            return None
        return sum(size or 0 for size in sizes)

    def facts(self) -> list[tuple[str, list[str]]]:
        """The summary ``regpeek inspect`` prints above its tables: (label, lines) pairs, those
        without a value left out. The text is the image's own: make it safe before showing it.

        Which digest is which: ``Digest`` is what the reference resolved to, so for a multi-platform
        image the index (it pins every platform, as skopeo's ``Digest`` does), with ``Image digest``
        after it, the manifest of the platform shown; each of those two has a second line saying so.
        """
        config = self.config
        index_kinds = {mt.OCI_INDEX: "OCI index", mt.DOCKER_MANIFEST_LIST: "Docker manifest list"}
        count = len(self.layers)
        platform = self.platform.describe()
        rows: list[tuple[str, str | list[str] | None]] = []
        if self.index_digest is not None:
            kind = index_kinds.get(self.index_media_type or "", "index")
            pins = f"{kind} of {len(self.platforms or [])} platforms: pins every platform"
            rows += [
                ("Digest", [str(self.index_digest), pins]),
                ("Image digest", [str(self.digest), f"the {platform} image, shown below"]),
            ]
        else:
            rows.append(("Digest", str(self.digest)))
        rows += [
            ("Media type", f"{self.media_type} (schema {self.schema_version})"),
            ("Platform", platform),
            ("Config", str(self.config_digest) if self.config_digest else "synthesized from schema1 history"),
            ("Created", config.created_raw),
            ("Author", config.author),
            ("Docker", config.docker_version),
            *config.facts(),
            ("Annotations", [f"{k}={v}" for k, v in sorted(self.annotations.items())]),
            ("Size", f"{format_size(self.size)} in {count} layer{'s' if count != 1 else ''}"),
        ]
        return _fact_lines(rows)

    def summary(self) -> str:
        """:meth:`facts`, then the platforms and layers, as plain text (what a notebook shows)."""
        lines = [str(self.reference)]
        width = max(len(label) for label, _ in self.facts())
        for label, values in self.facts():
            lines += [f"  {label if n == 0 else '':<{width}}  {value}" for n, value in enumerate(values)]
        if self.platforms:
            lines.append("Platforms:")
            for entry in self.platforms:
                mark = " *" if entry.digest == self.digest else ""
                lines.append(
                    f"  {entry.platform.describe() + mark:<24} {entry.digest}  {format_size(entry.size)}"
                )
        if self.layers:
            lines.append("Layers (base first):")
            for number, layer in enumerate(self.layers, 1):
                lines.append(f"  {number:>3}  {layer.digest}  {format_size(layer.known_size)}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's display: :meth:`summary`, with terminal controls shown as escapes."""
        printer.text("InspectResult(...)" if cycle else safe_text(self.summary(), newlines=True))

    def to_dict(self) -> dict[str, Any]:
        config = self.config
        return {
            "reference": str(self.reference),
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "digest": str(self.digest),
            "index_digest": str(self.index_digest) if self.index_digest else None,
            "media_type": self.media_type,
            "schema_version": self.schema_version,
            "platform": self.platform.to_dict(),
            "platforms": [entry.to_dict() for entry in self.platforms]
            if self.platforms is not None
            else None,
            "created": config.created_raw,
            "author": config.author,
            "docker_version": config.docker_version,
            "config_digest": str(self.config_digest) if self.config_digest else None,
            "env": config.env,
            "entrypoint": config.entrypoint,
            "cmd": config.cmd,
            "working_dir": config.working_dir,
            "user": config.user,
            "labels": config.labels,
            "exposed_ports": config.exposed_ports,
            "volumes": config.volumes,
            "stop_signal": config.stop_signal,
            "layers": [layer.to_dict() for layer in self.layers],
            "history": [entry.to_dict() for entry in config.history],
            "size": self.size,
            "annotations": dict(self.annotations),
        }


def _platforms(index: Index | None) -> list[PlatformEntry] | None:
    if index is None:
        return None
    return [
        PlatformEntry(entry.platform, entry.digest, entry.media_type, entry.size)
        for entry in index.runnable
        if entry.platform is not None
    ]


def _layers(manifest: ImageManifest | schema1.Schema1Manifest, config: ImageConfig) -> list[Layer]:
    if isinstance(manifest, schema1.Schema1Manifest):
        return [
            Layer(mt.DOCKER_LAYER, layer.blob_sum, -1) for layer in manifest.layers if not layer.throwaway
        ]
    diff_ids = config.diff_ids
    usable = len(diff_ids) == len(manifest.layers)
    return [Layer.of(layer, diff_ids[i] if usable else None) for i, layer in enumerate(manifest.layers)]


def build_inspect(
    *,
    reference: Reference | LayoutReference,
    manifest: ImageManifest | schema1.Schema1Manifest,
    config: ImageConfig,
    index: Index | None = None,
    entry_platform: Platform | None = None,
) -> InspectResult:
    """Assemble an :class:`InspectResult` from verified parts.

    The platform comes from the config; what the config leaves out comes from the index entry that
    was chosen (``entry_platform``).
    """
    platform = config.platform
    if entry_platform is not None:
        raw = config.document

        def field(key: str, fallback: str) -> str:
            value = raw.get(key)
            return value if isinstance(value, str) and value else fallback

        platform = Platform.create(  # raw fields first: normalising first would invent arm's v7
            field("os", entry_platform.os),
            field("architecture", entry_platform.architecture),
            field("variant", entry_platform.variant),
            field("os.version", entry_platform.os_version),
        )
    return InspectResult(
        reference=reference,
        registry=reference.registry,
        repository=reference.repository,
        tag=reference.tag,
        digest=manifest.digest,
        index_digest=index.digest if index is not None else None,
        media_type=manifest.media_type,
        schema_version=manifest.schema_version,
        platform=platform,
        platforms=_platforms(index),
        config_digest=manifest.config.digest if isinstance(manifest, ImageManifest) else None,
        config=config,
        layers=_layers(manifest, config),
        annotations=dict(manifest.annotations) if isinstance(manifest, ImageManifest) else {},
        index_media_type=index.media_type if index is not None else None,
    )
