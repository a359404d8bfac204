"""The Singularity Image Format (SIF), as ``github.com/sylabs/sif`` v2 writes and reads it.

Pure: bytes in, bytes and typed values out. The file writer and reader live in
:mod:`regpeek.disk.sif`; the clock and the random image ID are passed in.

Layout (all integers little-endian, structures packed, as Go's ``encoding/binary`` writes them)::

    0       global header, 128 bytes           launch script [32], "SIF_MAGIC\\0" [10], version "01\\0" [3],
                                               arch "02\\0" [3], UUID [16], created, modified (int64 Unix
                                               seconds), descriptors free/total/offset/size, data
                                               offset/size (int64)
    ...     zeros up to the descriptor table
    4096    descriptor table, capacity x 585    48 descriptors by default, unused ones all zero
    32176   data objects, one after the other   each at the next offset its alignment allows (4096 for a
                                                partition, none otherwise), the file ending with the last

A descriptor (585 bytes): data type (int32), used (1 byte), ID, group ID, linked ID (uint32), offset,
size, size with padding, created, modified, UID, GID (int64), name [128], extra [384]. Object IDs are
1-based positions in the table; a group ID carries the mask ``0xf0000000`` (``0xf0000001`` is group 1,
0 is no group); a link with that mask names a group, without it an object (0 is no link). A partition's
extra is its file system (int32), partition type (int32) and architecture code [3]; the primary system
partition (``PartType.PRIMSYS``) also sets the header's architecture.

Sources read (sylabs/sif v2.24.1, commit 4c44215): ``pkg/sif/sif.go`` (header, types), ``descriptor.go``
(the raw descriptor, partition/signature/SBOM extras), ``create.go`` (offsets: ``nextAligned``, data
written at ``DataOffset + DataSize``), ``descriptor_input.go`` (default group 1, partitions aligned to
4096), ``arch.go`` (architecture codes), ``load.go`` (magic and version checks). Apptainer's fork
(apptainer/sif) is identical but for one more file system type, 6 (gocryptfs squashfs).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from regpeek.errors import MalformedError, UnsupportedError

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_DESCRIPTORS_OFFSET",
    "DEFAULT_GROUP",
    "DESCRIPTOR_SIZE",
    "GROUP_MASK",
    "HEADER_SIZE",
    "LAUNCH_SCRIPT",
    "MAGIC",
    "MAX_DESCRIPTORS",
    "PARTITION_ALIGNMENT",
    "VERSION",
    "DataType",
    "Descriptor",
    "FsType",
    "Header",
    "Layout",
    "ObjectInput",
    "PartType",
    "Partition",
    "arch_code",
    "arch_name",
    "format_uuid",
    "parse_descriptors",
    "parse_header",
    "plan",
]

LAUNCH_SCRIPT = b"#!/usr/bin/env run-singularity\n"  # what Apptainer and SingularityCE write
MAGIC = b"SIF_MAGIC\x00"
VERSION = b"01\x00"
HEADER_SIZE = 128
DESCRIPTOR_SIZE = 585
DEFAULT_DESCRIPTORS_OFFSET = 4096
DEFAULT_CAPACITY = 48
GROUP_MASK = 0xF000_0000
DEFAULT_GROUP = 1
PARTITION_ALIGNMENT = 4096
NAME_SIZE = 128
EXTRA_SIZE = 384
LAUNCH_SIZE = 32
# Reading: more descriptors than this is not a SIF regpeek will trust (Go allows up to 2**32 - 1, but
# real images hold tens; 65536 descriptors are 37 MiB of table).
MAX_DESCRIPTORS = 65536

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class DataType(enum.IntEnum):
    """Data object types (``sif.DataType``)."""

    DEFFILE = 0x4001
    ENVVAR = 0x4002
    LABELS = 0x4003
    PARTITION = 0x4004
    SIGNATURE = 0x4005
    GENERIC_JSON = 0x4006
    GENERIC = 0x4007
    CRYPTO_MESSAGE = 0x4008
    SBOM = 0x4009
    OCI_ROOT_INDEX = 0x400A
    OCI_BLOB = 0x400B


# siftool's names (``DataType.String``) and regpeek's JSON identifiers
_TYPE_NAMES: dict[int, tuple[str, str]] = {
    DataType.DEFFILE: ("Def.FILE", "deffile"),
    DataType.ENVVAR: ("Env.Vars", "envvar"),
    DataType.LABELS: ("JSON.Labels", "labels"),
    DataType.PARTITION: ("FS", "partition"),
    DataType.SIGNATURE: ("Signature", "signature"),
    DataType.GENERIC_JSON: ("JSON.Generic", "generic-json"),
    DataType.GENERIC: ("Generic/Raw", "generic"),
    DataType.CRYPTO_MESSAGE: ("Cryptographic Message", "crypto-message"),
    DataType.SBOM: ("SBOM", "sbom"),
    DataType.OCI_ROOT_INDEX: ("OCI.RootIndex", "oci-root-index"),
    DataType.OCI_BLOB: ("OCI.Blob", "oci-blob"),
}


class FsType(enum.IntEnum):
    """Partition file systems (``sif.FSType``; 6 is Apptainer's addition)."""

    SQUASHFS = 1
    EXT3 = 2
    IMMUTABLE_OBJECTS = 3
    RAW = 4
    ENCRYPTED_SQUASHFS = 5
    GOCRYPTFS_SQUASHFS = 6


_FS_NAMES: dict[int, str] = {
    FsType.SQUASHFS: "Squashfs",
    FsType.EXT3: "Ext3",
    FsType.IMMUTABLE_OBJECTS: "Archive",
    FsType.RAW: "Raw",
    FsType.ENCRYPTED_SQUASHFS: "Encrypted squashfs",
    FsType.GOCRYPTFS_SQUASHFS: "Gocryptfs squashfs",
}


class PartType(enum.IntEnum):
    """Partition types (``sif.PartType``); PRIMSYS is the primary system partition (``*System``)."""

    SYSTEM = 1
    PRIMSYS = 2
    DATA = 3
    OVERLAY = 4


_PART_NAMES: dict[int, str] = {
    PartType.SYSTEM: "System",
    PartType.PRIMSYS: "*System",
    PartType.DATA: "Data",
    PartType.OVERLAY: "Overlay",
}

_HASH_NAMES = {1: "SHA-256", 2: "SHA-384", 3: "SHA-512", 4: "BLAKE2s-256", 5: "BLAKE2b-256"}
_MESSAGE_FORMATS = {1: "OpenPGP", 2: "PEM"}
_MESSAGE_TYPES = {0x100: "Clear Signature", 0x200: "RSA-OAEP"}
_SBOM_FORMATS = {
    1: "cyclonedx-json",
    2: "cyclonedx-xml",
    3: "github-json",
    4: "spdx-json",
    5: "spdx-rdf",
    6: "spdx-tag-value",
    7: "spdx-yaml",
    8: "syft-json",
}

# Go architecture names and their two-digit header codes (arch.go); "00" is unknown.
_ARCH_CODES = {
    "386": "01",
    "amd64": "02",
    "arm": "03",
    "arm64": "04",
    "ppc64": "05",
    "ppc64le": "06",
    "mips": "07",
    "mipsle": "08",
    "mips64": "09",
    "mips64le": "10",
    "s390x": "11",
    "riscv64": "12",
    "loong64": "13",
}
_ARCH_NAMES = {code: name for name, code in _ARCH_CODES.items()}


def arch_code(architecture: str) -> bytes:
    """The 3-byte header code of a Go/OCI architecture name: ``"arm64"`` -> ``b"04\\0"``.

    The platform's variant does not matter (every ``arm`` is ``03``). An architecture SIF has no code for
    raises :class:`UnsupportedError`, as the Go library refuses it.
    """
    code = _ARCH_CODES.get(architecture)
    if code is None:
        known = ", ".join(_ARCH_CODES)
        raise UnsupportedError(f"SIF has no architecture code for {architecture!r} (known: {known})")
    return code.encode() + b"\x00"


def arch_name(code: bytes) -> str:
    """The Go architecture name of a header or partition code, ``"unknown"`` when it is not one."""
    return _ARCH_NAMES.get(code.rstrip(b"\x00").decode("ascii", "replace"), "unknown")


def format_uuid(raw: bytes) -> str:
    """16 bytes as ``8-4-4-4-12`` lowercase hex, as Go's ``uuid.UUID.String`` prints them."""
    if len(raw) != 16:
        raise ValueError("a UUID is 16 bytes")
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _i32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little", signed=True)


def _i64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little", signed=True)


def _p32(value: int, signed: bool = False) -> bytes:
    return value.to_bytes(4, "little", signed=signed)


def _p64(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} does not fit in an int64")
    return value.to_bytes(8, "little", signed=True)


def _fixed(value: bytes, size: int, what: str) -> bytes:
    if len(value) > size:
        raise ValueError(f"{what} is {len(value)} bytes, at most {size} fit")
    return value + bytes(size - len(value))


def _text(raw: bytes) -> str:
    """A fixed-size text field: trailing NULs dropped (as Go's ``TrimRight``), invalid UTF-8 replaced."""
    return raw.rstrip(b"\x00").decode("utf-8", "replace")


@dataclass(frozen=True)
class Header:
    """The 128-byte global header."""

    launch_script: bytes
    magic: bytes
    version: bytes
    arch: bytes  # 3 bytes, e.g. b"02\\0"
    id: bytes  # 16 bytes
    created_at: int
    modified_at: int
    descriptors_free: int
    descriptors_total: int
    descriptors_offset: int
    descriptors_size: int
    data_offset: int
    data_size: int

    @property
    def architecture(self) -> str:
        """The primary architecture as a Go name (``amd64``), ``unknown`` without a primary partition."""
        return arch_name(self.arch)

    @property
    def uuid(self) -> str:
        return format_uuid(self.id)

    @property
    def launch_text(self) -> str:
        return _text(self.launch_script)

    @property
    def version_text(self) -> str:
        return _text(self.version)

    def encode(self) -> bytes:
        out = b"".join(
            [
                _fixed(self.launch_script, LAUNCH_SIZE, "launch script"),
                _fixed(self.magic, 10, "magic"),
                _fixed(self.version, 3, "version"),
                _fixed(self.arch, 3, "architecture"),
                _fixed(self.id, 16, "image ID"),
                *(
                    _p64(value)
                    for value in (
                        self.created_at,
                        self.modified_at,
                        self.descriptors_free,
                        self.descriptors_total,
                        self.descriptors_offset,
                        self.descriptors_size,
                        self.data_offset,
                        self.data_size,
                    )
                ),
            ]
        )
        assert len(out) == HEADER_SIZE
        return out

    @classmethod
    def decode(cls, data: bytes) -> Header:
        """Decode 128 bytes; no validation (see :func:`parse_header`)."""
        if len(data) < HEADER_SIZE:
            raise MalformedError(f"not a SIF file: {len(data)} bytes, the header alone is {HEADER_SIZE}")
        return cls(
            launch_script=data[0:32],
            magic=data[32:42],
            version=data[42:45],
            arch=data[45:48],
            id=data[48:64],
            created_at=_i64(data, 64),
            modified_at=_i64(data, 72),
            descriptors_free=_i64(data, 80),
            descriptors_total=_i64(data, 88),
            descriptors_offset=_i64(data, 96),
            descriptors_size=_i64(data, 104),
            data_offset=_i64(data, 112),
            data_size=_i64(data, 120),
        )


@dataclass(frozen=True)
class Partition:
    """A partition descriptor's extra: file system, partition type, architecture code."""

    fs_type: int
    part_type: int
    arch: bytes  # 3 bytes

    @property
    def fs_name(self) -> str:
        return _FS_NAMES.get(self.fs_type, "Unknown")

    @property
    def part_name(self) -> str:
        return _PART_NAMES.get(self.part_type, "Unknown")

    @property
    def architecture(self) -> str:
        return arch_name(self.arch)

    def encode(self) -> bytes:
        return (
            _p32(self.fs_type, signed=True) + _p32(self.part_type, signed=True) + _fixed(self.arch, 3, "arch")
        )

    @classmethod
    def decode(cls, extra: bytes) -> Partition:
        return cls(_i32(extra, 0), _i32(extra, 4), extra[8:11])


@dataclass(frozen=True)
class Descriptor:
    """One 585-byte entry of the descriptor table."""

    data_type: int
    used: bool
    id: int
    group_id: int  # raw, with GROUP_MASK when in a group
    linked_id: int  # raw, with GROUP_MASK when linked to a group
    offset: int
    size: int
    size_with_padding: int
    created_at: int
    modified_at: int
    uid: int = 0  # deprecated in the format, always written as 0
    gid: int = 0
    name_raw: bytes = b""
    extra: bytes = b""

    @property
    def name(self) -> str:
        return _text(self.name_raw)

    @property
    def type_name(self) -> str:
        """siftool's name for the type (``Def.FILE``, ``FS``, ``JSON.Generic``...), ``Unknown`` else."""
        names = _TYPE_NAMES.get(self.data_type)
        return names[0] if names else "Unknown"

    @property
    def type_id(self) -> str:
        """regpeek's JSON identifier for the type (``deffile``, ``partition``...), or ``0x....``."""
        names = _TYPE_NAMES.get(self.data_type)
        return names[1] if names else f"0x{self.data_type & 0xFFFFFFFF:04x}"

    @property
    def group(self) -> int | None:
        """The group number (1 for Apptainer's objects), None when the object is in no group."""
        group = self.group_id & ~GROUP_MASK & 0xFFFFFFFF
        return group or None

    @property
    def link(self) -> tuple[int, bool] | None:
        """``(id, is_group)`` of what this object is linked to, None when unlinked."""
        target = self.linked_id & ~GROUP_MASK & 0xFFFFFFFF
        if self.linked_id == 0:
            return None
        return target, (self.linked_id & GROUP_MASK) == GROUP_MASK

    @property
    def partition(self) -> Partition | None:
        return Partition.decode(self.extra) if self.data_type == DataType.PARTITION else None

    @property
    def signature(self) -> tuple[str, str | None] | None:
        """``(hash name, signing key fingerprint hex or None)`` of a signature object."""
        if self.data_type != DataType.SIGNATURE:
            return None
        hash_type = _i32(self.extra, 0)
        entity = self.extra[4:24]
        fingerprint = entity.hex().upper() if any(entity) else None
        return _HASH_NAMES.get(hash_type, "Unknown"), fingerprint

    @property
    def crypto_message(self) -> tuple[str, str] | None:
        if self.data_type != DataType.CRYPTO_MESSAGE:
            return None
        return (
            _MESSAGE_FORMATS.get(_i32(self.extra, 0), "Unknown"),
            _MESSAGE_TYPES.get(_i32(self.extra, 4), "Unknown"),
        )

    @property
    def sbom_format(self) -> str | None:
        return _SBOM_FORMATS.get(_i32(self.extra, 0), "unknown") if self.data_type == DataType.SBOM else None

    @property
    def oci_digest(self) -> str | None:
        """The ``sha256:...`` digest an OCI root index or blob object records in its extra."""
        if self.data_type not in (DataType.OCI_ROOT_INDEX, DataType.OCI_BLOB):
            return None
        return self.extra.split(b"\x00", 1)[0].decode("ascii", "replace") or None

    def encode(self) -> bytes:
        out = b"".join(
            [
                _p32(self.data_type, signed=True),
                b"\x01" if self.used else b"\x00",
                _p32(self.id),
                _p32(self.group_id),
                _p32(self.linked_id),
                _p64(self.offset),
                _p64(self.size),
                _p64(self.size_with_padding),
                _p64(self.created_at),
                _p64(self.modified_at),
                _p64(self.uid),
                _p64(self.gid),
                _fixed(self.name_raw, NAME_SIZE, "object name"),
                _fixed(self.extra, EXTRA_SIZE, "descriptor extra"),
            ]
        )
        assert len(out) == DESCRIPTOR_SIZE
        return out

    @classmethod
    def decode(cls, data: bytes) -> Descriptor:
        if len(data) != DESCRIPTOR_SIZE:
            raise MalformedError(f"SIF descriptor is {len(data)} bytes, expected {DESCRIPTOR_SIZE}")
        return cls(
            data_type=_i32(data, 0),
            used=data[4] != 0,
            id=_u32(data, 5),
            group_id=_u32(data, 9),
            linked_id=_u32(data, 13),
            offset=_i64(data, 17),
            size=_i64(data, 25),
            size_with_padding=_i64(data, 33),
            created_at=_i64(data, 41),
            modified_at=_i64(data, 49),
            uid=_i64(data, 57),
            gid=_i64(data, 65),
            name_raw=data[73:201],
            extra=data[201:585],
        )


EMPTY_DESCRIPTOR = bytes(DESCRIPTOR_SIZE)


def parse_header(data: bytes, file_size: int) -> Header:
    """Decode and check a global header against the size of the file it came from.

    Raises :class:`MalformedError` for anything that is not a SIF or whose table lies outside the file,
    :class:`UnsupportedError` for a SIF version other than 01.
    """
    header = Header.decode(data)
    if header.magic != MAGIC:
        raise MalformedError("not a SIF file: no SIF_MAGIC in the header")
    if header.version != VERSION:
        raise UnsupportedError(
            f"SIF version {header.version.rstrip(bytes(1)).decode('ascii', 'replace')!r} is not supported (only 01)"
        )
    total, free = header.descriptors_total, header.descriptors_free
    if not 0 <= total <= MAX_DESCRIPTORS:
        raise MalformedError(f"SIF header declares {total} descriptors (at most {MAX_DESCRIPTORS} accepted)")
    if not 0 <= free <= total:
        raise MalformedError(f"SIF header declares {free} free descriptors of {total}")
    table = total * DESCRIPTOR_SIZE
    if header.descriptors_size < table:
        raise MalformedError(
            f"SIF descriptor table is {header.descriptors_size} bytes, {total} descriptors need {table}"
        )
    offset = header.descriptors_offset
    if offset < HEADER_SIZE or offset > file_size or table > file_size - offset:
        raise MalformedError(
            f"SIF descriptor table ({table} bytes at offset {offset}) lies outside the file ({file_size} bytes)"
        )
    if (
        not 0 <= header.data_offset <= file_size
        or not 0 <= header.data_size <= file_size - header.data_offset
    ):
        raise MalformedError(
            f"SIF data section ({header.data_size} bytes at offset {header.data_offset}) lies outside "
            f"the file ({file_size} bytes)"
        )
    return header


def parse_descriptors(table: bytes, header: Header, file_size: int) -> list[Descriptor]:
    """The used descriptors of a table read at ``header.descriptors_offset``, each checked to lie in the file.

    Raises :class:`MalformedError` for a short table, an object outside the file, a negative size or
    offset, or two objects with one ID.
    """
    count = header.descriptors_total
    if len(table) < count * DESCRIPTOR_SIZE:
        raise MalformedError(
            f"SIF descriptor table is cut short: {len(table)} of {count * DESCRIPTOR_SIZE} bytes"
        )
    found: list[Descriptor] = []
    ids: set[int] = set()
    for index in range(count):
        descriptor = Descriptor.decode(table[index * DESCRIPTOR_SIZE : (index + 1) * DESCRIPTOR_SIZE])
        if not descriptor.used:
            continue
        where = f"SIF object {descriptor.id} (descriptor {index + 1})"
        if descriptor.offset < 0 or descriptor.size < 0:
            raise MalformedError(f"{where} has offset {descriptor.offset} and size {descriptor.size}")
        if descriptor.offset > file_size or descriptor.size > file_size - descriptor.offset:
            raise MalformedError(
                f"{where} ({descriptor.size} bytes at offset {descriptor.offset}) lies outside the file "
                f"({file_size} bytes)"
            )
        if descriptor.id in ids:
            raise MalformedError(f"{where} repeats an object ID")
        ids.add(descriptor.id)
        found.append(descriptor)
    return found


def _next_aligned(offset: int, alignment: int) -> int:
    """``create.go``'s ``nextAligned``: the first offset at or after ``offset`` that ``alignment`` divides."""
    if alignment <= 0 or offset % alignment == 0:
        return offset
    return offset + alignment - offset % alignment


@dataclass(frozen=True)
class ObjectInput:
    """What a data object will be, before its bytes are written (``sif.NewDescriptorInput`` and its options).

    ``alignment`` None means the Go default: 4096 for a partition, none for anything else. ``group``
    None puts the object in no group. ``link`` is an object ID, or a group ID with ``link_is_group``.
    ``time`` overrides the image time for this object.
    """

    data_type: DataType
    name: str = ""
    group: int | None = DEFAULT_GROUP
    link: int = 0
    link_is_group: bool = False
    alignment: int | None = None
    extra: bytes = b""
    time: int | None = None

    @classmethod
    def partition(
        cls,
        architecture: str,
        *,
        fs_type: FsType = FsType.SQUASHFS,
        part_type: PartType = PartType.PRIMSYS,
        name: str = "",
    ) -> ObjectInput:
        """A partition with ``OptPartitionMetadata(fs, pt, arch)``; the arch is a Go name (``arm64``)."""
        extra = Partition(int(fs_type), int(part_type), arch_code(architecture)).encode()
        return cls(DataType.PARTITION, name=name, extra=extra)

    def __post_init__(self) -> None:
        if len(self.name.encode()) > NAME_SIZE:
            raise ValueError(f"SIF object name over {NAME_SIZE} bytes: {self.name!r}")
        if len(self.extra) > EXTRA_SIZE:
            raise ValueError(f"SIF descriptor extra over {EXTRA_SIZE} bytes")
        if self.group is not None and not 0 < self.group < GROUP_MASK:
            raise ValueError(f"invalid SIF group ID {self.group}")
        if self.link < 0 or self.link >= GROUP_MASK:
            raise ValueError(f"invalid SIF link {self.link}")

    @property
    def effective_alignment(self) -> int:
        if self.alignment is not None:
            return self.alignment
        return PARTITION_ALIGNMENT if self.data_type == DataType.PARTITION else 0


@dataclass
class Layout:
    """The header and descriptor table of a SIF being written, object by object (``createContainer``).

    For each object: :meth:`next_offset` says where its bytes go, the caller writes them there, then
    :meth:`record` fills its descriptor. :meth:`head` is then the file's first ``data_offset`` bytes:
    header, zero padding and the whole descriptor table. Objects are numbered 1, 2, ... in the order
    they are recorded, as the Go library numbers them.
    """

    image_id: bytes
    created_at: int
    launch_script: bytes = LAUNCH_SCRIPT
    capacity: int = DEFAULT_CAPACITY
    descriptors_offset: int = DEFAULT_DESCRIPTORS_OFFSET
    descriptors: list[Descriptor] = field(default_factory=list)
    arch: bytes = b"00\x00"
    end: int = 0  # end of the last object (the data section's end)

    def __post_init__(self) -> None:
        if len(self.image_id) != 16:
            raise ValueError("a SIF image ID is 16 bytes")
        if len(self.launch_script) >= LAUNCH_SIZE:
            raise ValueError(f"launch script must be under {LAUNCH_SIZE} bytes")
        if not 0 <= self.capacity <= MAX_DESCRIPTORS:
            raise ValueError(f"descriptor capacity must be 0..{MAX_DESCRIPTORS}")
        if self.descriptors_offset < HEADER_SIZE:
            raise ValueError("the descriptor table cannot overlap the header")
        self.end = max(self.end, self.data_offset)

    @property
    def data_offset(self) -> int:
        return self.descriptors_offset + self.capacity * DESCRIPTOR_SIZE

    def next_offset(self, obj: ObjectInput) -> int:
        """Where the next object's first byte goes."""
        if len(self.descriptors) >= self.capacity:
            raise ValueError(f"no free descriptor: the SIF holds at most {self.capacity} objects")
        return _next_aligned(self.end, obj.effective_alignment)

    def record(self, obj: ObjectInput, offset: int, size: int) -> Descriptor:
        """Fill the next descriptor for an object of ``size`` bytes written at ``offset``."""
        if offset != self.next_offset(obj):
            raise ValueError(f"object written at {offset}, expected {self.next_offset(obj)}")
        if size < 0:
            raise ValueError("negative object size")
        if obj.data_type == DataType.PARTITION and obj.extra:
            partition = Partition.decode(obj.extra + bytes(EXTRA_SIZE))
            if partition.part_type == PartType.PRIMSYS:
                if any(
                    (d.partition is not None and d.partition.part_type == PartType.PRIMSYS)
                    for d in self.descriptors
                ):
                    raise ValueError("the SIF already has a primary partition")
                self.arch = partition.arch
        when = self.created_at if obj.time is None else obj.time
        descriptor = Descriptor(
            data_type=int(obj.data_type),
            used=True,
            id=len(self.descriptors) + 1,
            group_id=(obj.group | GROUP_MASK) if obj.group is not None else 0,
            linked_id=(obj.link | GROUP_MASK) if obj.link_is_group else obj.link,
            offset=offset,
            size=size,
            size_with_padding=offset - self.end + size,
            created_at=when,
            modified_at=when,
            name_raw=_fixed(obj.name.encode(), NAME_SIZE, "object name"),
            extra=_fixed(obj.extra, EXTRA_SIZE, "descriptor extra"),
        )
        self.descriptors.append(descriptor)
        self.end = offset + size
        return descriptor

    @property
    def header(self) -> Header:
        return Header(
            launch_script=_fixed(self.launch_script, LAUNCH_SIZE, "launch script"),
            magic=MAGIC,
            version=VERSION,
            arch=self.arch,
            id=self.image_id,
            created_at=self.created_at,
            modified_at=self.created_at,
            descriptors_free=self.capacity - len(self.descriptors),
            descriptors_total=self.capacity,
            descriptors_offset=self.descriptors_offset,
            descriptors_size=self.capacity * DESCRIPTOR_SIZE,
            data_offset=self.data_offset,
            data_size=self.end - self.data_offset,
        )

    def head(self) -> bytes:
        """Header, zeros, and the full descriptor table: the bytes before ``data_offset``."""
        table = b"".join(d.encode() for d in self.descriptors)
        table += EMPTY_DESCRIPTOR * (self.capacity - len(self.descriptors))
        header = self.header.encode()
        return header + bytes(self.descriptors_offset - len(header)) + table


def plan(
    objects: Sequence[tuple[ObjectInput, int]],
    *,
    image_id: bytes,
    created_at: int,
    launch_script: bytes = LAUNCH_SCRIPT,
    capacity: int = DEFAULT_CAPACITY,
    descriptors_offset: int = DEFAULT_DESCRIPTORS_OFFSET,
) -> Layout:
    """The whole layout of objects whose sizes are known in advance: ``[(input, size), ...]``."""
    layout = Layout(
        image_id=image_id,
        created_at=created_at,
        launch_script=launch_script,
        capacity=capacity,
        descriptors_offset=descriptors_offset,
    )
    for obj, size in objects:
        layout.record(obj, layout.next_offset(obj), size)
    return layout
