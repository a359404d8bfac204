"""``regpeek inspect sif:FILE``: what a SIF holds, from its header, descriptors and small metadata objects.

Pure: the header and descriptors come from :mod:`regpeek.formats.sif`, the objects' bytes from the
caller (:func:`regpeek.disk.sif.inspect_sif` reads them). Works for any SIF; for one built from a
Docker/OCI image by Apptainer, SingularityCE or regpeek it also finds:

- the definition (the first ``Def.FILE`` object) and its header (``bootstrap``, ``from``);
- the image config in the ``oci-config.json`` JSON object: Apptainer stores the config's ``config``
  member there (Env, Entrypoint, Cmd...), a full image config is read too;
- the labels Apptainer records in the ``inspect-metadata.json`` object, which is where its build puts
  ``org.opencontainers.image.base.name`` and ``org.opencontainers.image.base.digest``;
- the source image: the reference and digest of the definition's ``from:`` line (regpeek writes
  ``name@sha256:<image manifest digest>`` there), and the base name and digest labels.

:meth:`SifInspection.to_json` gives the keys documented in the README.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from regpeek.errors import VerificationError
from regpeek.formats import sif
from regpeek.formats.config import ImageConfig
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import parse_json_object

__all__ = ["ConfigView", "SifInspection", "SourceInfo", "build_inspection", "definition_header"]

_FS_IDS = {1: "squashfs", 2: "ext3", 3: "archive", 4: "raw", 5: "encrypted-squashfs", 6: "gocryptfs-squashfs"}
_PART_IDS = {1: "system", 2: "primary-system", 3: "data", 4: "overlay"}


def definition_header(text: str) -> dict[str, str]:
    """The header of a definition file: ``key: value`` lines before the first ``%`` section, keys lowercased."""
    header: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("%"):
            break
        if not stripped or stripped.startswith("#") or ":" not in stripped:
            continue
        key, _, value = stripped.partition(":")
        header[key.strip().lower()] = value.strip()
    return header


def _split_from(value: str) -> tuple[str, str | None]:
    """``name[:tag]@algo:hex`` -> (``name[:tag]``, ``algo:hex``); no digest -> (value, None)."""
    name, at, digest = value.partition("@")
    if at and ":" in digest:
        return name, digest
    return value, None


@dataclass(frozen=True)
class SourceInfo:
    """Where the SIF came from, as its definition and labels tell."""

    bootstrap: str | None = None
    from_: str | None = None
    reference: str | None = None
    digest: str | None = None
    base_name: str | None = None
    base_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bootstrap": self.bootstrap,
            "from": self.from_,
            "reference": self.reference,
            "digest": self.digest,
            "base_name": self.base_name,
            "base_digest": self.base_digest,
        }


@dataclass(frozen=True)
class ConfigView:
    """The stored OCI config: ``container-config`` (Apptainer's, the ``config`` member) or ``image-config``."""

    kind: str
    config: ImageConfig

    def to_dict(self) -> dict[str, Any]:
        config = self.config
        return {
            "kind": self.kind,
            "created": config.created_raw,
            "env": config.env,
            "entrypoint": config.entrypoint,
            "cmd": config.cmd,
            "working_dir": config.working_dir,
            "user": config.user,
            "stop_signal": config.stop_signal,
            "labels": config.labels,
            "exposed_ports": config.exposed_ports,
            "volumes": config.volumes,
        }


def _descriptor_json(descriptor: sif.Descriptor) -> dict[str, Any]:
    link = descriptor.link
    partition = descriptor.partition
    signature = descriptor.signature
    message = descriptor.crypto_message
    return {
        "id": descriptor.id,
        "type": descriptor.type_id,
        "type_name": descriptor.type_name,
        "name": descriptor.name,
        "group": descriptor.group,
        "link": link[0] if link else None,
        "link_is_group": bool(link and link[1]),
        "offset": descriptor.offset,
        "size": descriptor.size,
        "created": descriptor.created_at,
        "modified": descriptor.modified_at,
        "partition": {
            "fs": _FS_IDS.get(partition.fs_type, "unknown"),
            "type": _PART_IDS.get(partition.part_type, "unknown"),
            "architecture": partition.architecture,
        }
        if partition
        else None,
        "signature": {"hash": signature[0], "entity": signature[1]} if signature else None,
        "crypto_message": {"format": message[0], "message": message[1]} if message else None,
        "sbom_format": descriptor.sbom_format,
        "oci_digest": descriptor.oci_digest,
    }


@dataclass(frozen=True)
class SifInspection(JsonResult):
    """Everything ``regpeek inspect sif:FILE`` reports."""

    path: str
    file_size: int
    header: sif.Header
    descriptors: tuple[sif.Descriptor, ...]
    definition: str | None = None
    config: ConfigView | None = None
    labels: Mapping[str, str] | None = None
    source: SourceInfo = field(default_factory=SourceInfo)
    warnings: tuple[str, ...] = ()

    @property
    def primary_partition(self) -> sif.Descriptor | None:
        for descriptor in self.descriptors:
            partition = descriptor.partition
            if partition is not None and partition.part_type == sif.PartType.PRIMSYS:
                return descriptor
        return None

    def to_dict(self) -> dict[str, Any]:
        header = self.header
        primary = self.primary_partition
        return {
            "path": self.path,
            "size": self.file_size,
            "header": {
                "launch_script": header.launch_text,
                "version": header.version_text,
                "architecture": header.architecture,
                "id": header.uuid,
                "created": header.created_at,
                "modified": header.modified_at,
                "descriptors_free": header.descriptors_free,
                "descriptors_total": header.descriptors_total,
                "descriptors_offset": header.descriptors_offset,
                "descriptors_size": header.descriptors_size,
                "data_offset": header.data_offset,
                "data_size": header.data_size,
            },
            "descriptors": [_descriptor_json(descriptor) for descriptor in self.descriptors],
            "primary_partition": primary.id if primary else None,
            "definition": self.definition,
            "oci_config": self.config.to_dict() if self.config else None,
            "labels": dict(self.labels) if self.labels is not None else None,
            "source": self.source.to_dict(),
            "warnings": list(self.warnings),
        }


def _config_view(raw: bytes) -> ConfigView:
    document = parse_json_object("oci-config.json", raw)
    if isinstance(document.get("config"), dict) or "rootfs" in document:
        return ConfigView("image-config", ImageConfig(raw, None, document))
    return ConfigView("container-config", ImageConfig(raw, None, {"config": document}))


def _labels(raw: bytes) -> dict[str, str] | None:
    document = parse_json_object("inspect-metadata.json", raw)
    data = document.get("data")
    attributes = data.get("attributes") if isinstance(data, dict) else None
    labels = attributes.get("labels") if isinstance(attributes, dict) else None
    if not isinstance(labels, dict):
        return None
    return {str(key): value for key, value in labels.items() if isinstance(value, str)}


def build_inspection(
    *,
    path: str,
    file_size: int,
    header: sif.Header,
    descriptors: Sequence[sif.Descriptor],
    definition: bytes | None,
    oci_config: bytes | None,
    inspect_metadata: bytes | None,
    warnings: Sequence[str] = (),
) -> SifInspection:
    """Assemble the inspection; a metadata object that does not parse becomes a warning, not an error."""
    notes = list(warnings)
    text = definition.decode("utf-8", "replace") if definition is not None else None
    config = None
    if oci_config is not None:
        try:
            config = _config_view(oci_config)
        except VerificationError as error:
            notes.append(str(error))
    labels = None
    if inspect_metadata is not None:
        try:
            labels = _labels(inspect_metadata)
        except VerificationError as error:
            notes.append(str(error))
    header_fields = definition_header(text) if text is not None else {}
    from_value = header_fields.get("from")
    reference, digest = _split_from(from_value) if from_value else (None, None)
    base_name = (labels or {}).get("org.opencontainers.image.base.name")
    base_digest = (labels or {}).get("org.opencontainers.image.base.digest")
    source = SourceInfo(
        bootstrap=header_fields.get("bootstrap"),
        from_=from_value,
        reference=reference,
        digest=digest or base_digest,
        base_name=base_name,
        base_digest=base_digest,
    )
    return SifInspection(
        path=path,
        file_size=file_size,
        header=header,
        descriptors=tuple(descriptors),
        definition=text,
        config=config,
        labels=labels,
        source=source,
        warnings=tuple(notes),
    )
