"""SIF files on disk: :class:`SifWriter` streams data objects into a file, :func:`read_sif` reads any SIF back.

The format itself (header, descriptors, offsets) is :mod:`regpeek.formats.sif`; what goes into
Apptainer's SIF of a Docker/OCI image is :mod:`regpeek.formats.apptainer`. :func:`write_apptainer_sif`
puts the two together: the definition, the JSON objects and the squashfs partition, in the order
Apptainer's SIF assembler writes them (``internal/pkg/build/assemblers/sif.go``).

Writing follows ``sif.CreateContainer``: each object's bytes go to its aligned offset, then the
descriptor table and the header are written over the start of the file. The file must be seekable;
the caller picks the path and makes the result atomic (temporary name, fsync, rename).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from regpeek.errors import MalformedError, NotFoundError, TooLargeError, UsageError
from regpeek.formats import sif
from regpeek.formats.apptainer import INSPECT_METADATA_JSON, OCI_CONFIG_JSON, SifMetadata
from regpeek.formats.sif import DataType, Descriptor, Header, Layout, ObjectInput
from regpeek.formats.sifinspect import SifInspection, build_inspection

__all__ = [
    "SifFile",
    "SifWriter",
    "copy_object",
    "inspect_sif",
    "open_sif",
    "read_sif",
    "write_apptainer_sif",
]

_CHUNK = 1 << 20


def _regular_fd(stream: BinaryIO) -> int | None:
    """The descriptor of a stream backed by a regular file, else None (pipes, sockets, memory)."""
    try:
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


def _copy_range(source: BinaryIO, out: BinaryIO, limit: int | None) -> int:
    """Copy from ``source``'s position to its end (or ``limit`` bytes) to ``out``'s position; the count.

    Between two regular files this uses ``copy_file_range`` (in the kernel, a reflink where the file
    system shares extents); otherwise, or where the kernel refuses, a buffered copy.
    """
    copied = 0
    in_fd, out_fd = _regular_fd(source), _regular_fd(out)
    if in_fd is not None and out_fd is not None and hasattr(os, "copy_file_range"):
        out.flush()
        in_at, out_at = source.tell(), out.tell()
        try:
            while limit is None or copied < limit:
                want = _CHUNK * 64 if limit is None else min(_CHUNK * 64, limit - copied)
                done = os.copy_file_range(in_fd, out_fd, want, in_at + copied, out_at + copied)
                if done == 0:
                    break
                copied += done
        except OSError:
            if copied:
                raise
        else:
            source.seek(in_at + copied)
            out.seek(out_at + copied)
            return copied
        source.seek(in_at)
        out.seek(out_at)
    while limit is None or copied < limit:
        chunk = source.read(_CHUNK if limit is None else min(_CHUNK, limit - copied))
        if not chunk:
            break
        out.write(chunk)
        copied += len(chunk)
    return copied


class SifWriter:
    """Write a SIF object by object into a seekable binary file, then :meth:`finish` it.

    ``image_id`` (16 bytes) and ``created_at`` (Unix seconds) default to a random UUID and the current
    time, as ``sif.CreateContainer`` does. Nothing valid is in the file before :meth:`finish`.
    """

    def __init__(
        self,
        out: BinaryIO,
        *,
        image_id: bytes | None = None,
        created_at: int | None = None,
        launch_script: bytes = sif.LAUNCH_SCRIPT,
        capacity: int = sif.DEFAULT_CAPACITY,
    ) -> None:
        self._out = out
        self._start = out.tell()
        self.layout = Layout(
            image_id=uuid.uuid4().bytes if image_id is None else image_id,
            created_at=int(time.time()) if created_at is None else created_at,
            launch_script=launch_script,
            capacity=capacity,
        )

    def add(self, obj: ObjectInput, data: bytes | BinaryIO, *, size: int | None = None) -> Descriptor:
        """Write one object: ``data`` is bytes, or a binary file read from its position to its end.

        With ``size``, exactly that many bytes are read from the file (fewer is an error).
        """
        offset = self.layout.next_offset(obj)
        self._out.seek(self._start + offset)
        if isinstance(data, bytes):
            self._out.write(data)
            count = len(data)
        else:
            count = _copy_range(data, self._out, size)
        if size is not None and count != size:
            raise MalformedError(f"SIF object cut short: {count} of {size} bytes")
        return self.layout.record(obj, offset, count)

    def finish(self) -> Header:
        """Write the header and descriptor table; the file then ends with the last object."""
        self._out.seek(self._start)
        self._out.write(self.layout.head())
        end = self._start + self.layout.end
        self._out.seek(0, os.SEEK_END)
        if self._out.tell() < end:  # only when the last objects are empty: keep their offsets inside
            self._out.truncate(end)
        self._out.seek(end)
        self._out.flush()
        return self.layout.header


def write_apptainer_sif(
    out: BinaryIO,
    metadata: SifMetadata,
    squashfs: BinaryIO,
    *,
    architecture: str,
    squashfs_size: int | None = None,
    image_id: bytes | None = None,
    created_at: int | None = None,
) -> Header:
    """Write the SIF Apptainer builds from a Docker/OCI image: definition, JSON objects, squashfs.

    ``metadata`` comes from :func:`regpeek.formats.apptainer.sif_metadata`; ``squashfs`` is read from
    its position to its end (or ``squashfs_size`` bytes) into the primary system partition
    (``Squashfs/*System/<architecture>``, aligned to 4096). Every object is in group 1 and carries
    ``created_at``, as Apptainer's objects carry its build time. An architecture without a SIF code
    raises :class:`regpeek.errors.UnsupportedError` before anything is written.
    """
    partition = ObjectInput.partition(architecture)
    writer = SifWriter(out, image_id=image_id, created_at=created_at)
    writer.add(ObjectInput(DataType.DEFFILE), metadata.definition)
    for name, data in metadata.json_objects:
        writer.add(ObjectInput(DataType.GENERIC_JSON, name=name), data)
    writer.add(partition, squashfs, size=squashfs_size)
    return writer.finish()


@dataclass(frozen=True)
class SifFile:
    """An open SIF: its checked header and used descriptors; objects read on demand."""

    file: BinaryIO
    size: int
    header: Header
    descriptors: tuple[Descriptor, ...]

    def read(self, descriptor: Descriptor, limit: int) -> bytes:
        """A whole object, refused with :class:`TooLargeError` when over ``limit`` bytes."""
        if descriptor.size > limit:
            raise TooLargeError(
                f"SIF object {descriptor.id} is {descriptor.size} bytes (over {limit})",
                size=descriptor.size,
                limit=limit,
            )
        self.file.seek(descriptor.offset)
        data = self.file.read(descriptor.size)
        if len(data) != descriptor.size:
            raise MalformedError(
                f"SIF object {descriptor.id} is cut short: {len(data)} of {descriptor.size} bytes"
            )
        return data

    def copy(self, descriptor: Descriptor, out: BinaryIO) -> int:
        """Stream an object (a partition, say) to ``out``; the byte count."""
        self.file.seek(descriptor.offset)
        count = _copy_range(self.file, out, descriptor.size)
        if count != descriptor.size:
            raise MalformedError(
                f"SIF object {descriptor.id} is cut short: {count} of {descriptor.size} bytes"
            )
        return count

    @property
    def primary_partition(self) -> Descriptor | None:
        for descriptor in self.descriptors:
            part = descriptor.partition
            if part is not None and part.part_type == sif.PartType.PRIMSYS:
                return descriptor
        return None


def read_sif(file: BinaryIO) -> SifFile:
    """Read and check the header and descriptor table of an open SIF (any SIF, not only regpeek's).

    Raises :class:`MalformedError` for a file that is not a SIF, a table or object outside the file,
    or more than :data:`regpeek.formats.sif.MAX_DESCRIPTORS` descriptors; :class:`UnsupportedError`
    for a version other than 01.
    """
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(0)
    header = sif.parse_header(file.read(sif.HEADER_SIZE), size)
    file.seek(header.descriptors_offset)
    table = file.read(header.descriptors_total * sif.DESCRIPTOR_SIZE)
    descriptors = sif.parse_descriptors(table, header, size)
    return SifFile(file, size, header, tuple(descriptors))


@contextlib.contextmanager
def open_sif(path: str | os.PathLike[str]) -> Iterator[SifFile]:
    """Open and check a SIF file for reading (see :func:`read_sif`).

    A missing file raises :class:`NotFoundError`; anything but a regular file (a directory, a FIFO that
    would block, a device) :class:`UsageError`.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise NotFoundError(f"no such SIF file: {name}") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a directory, not a SIF file") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UsageError(
            f"{name} is {'a directory' if stat.S_ISDIR(mode) else 'not a regular file'}, not a SIF file"
        )
    with os.fdopen(fd, "rb") as file:
        yield read_sif(file)


_METADATA_LIMIT = 4 * 1024 * 1024  # as for manifests and configs


def inspect_sif(path: str | os.PathLike[str]) -> SifInspection:
    """Read a SIF's header, descriptors, definition and Apptainer metadata objects (``inspect sif:FILE``).

    Only the definition and the ``oci-config.json`` / ``inspect-metadata.json`` JSON objects are read
    (at most 4 MiB each; larger ones are reported as warnings); partitions are never read.
    """
    with open_sif(path) as image:
        warnings: list[str] = []

        def first(data_type: DataType, name: str | None = None) -> bytes | None:
            for descriptor in image.descriptors:
                if descriptor.data_type == data_type and (name is None or descriptor.name == name):
                    try:
                        return image.read(descriptor, _METADATA_LIMIT)
                    except TooLargeError as error:
                        warnings.append(f"{error}; not read")
                        return None
            return None

        definition = first(DataType.DEFFILE)
        oci_config = first(DataType.GENERIC_JSON, OCI_CONFIG_JSON)
        metadata = first(DataType.GENERIC_JSON, INSPECT_METADATA_JSON)
        return build_inspection(
            path=os.fspath(path),
            file_size=image.size,
            header=image.header,
            descriptors=image.descriptors,
            definition=definition,
            oci_config=oci_config,
            inspect_metadata=metadata,
            warnings=warnings,
        )


def copy_object(path: str | os.PathLike[str], object_id: int, out: BinaryIO) -> int:
    """Copy one object of a SIF by ID to ``out`` (``siftool dump``)."""
    with open_sif(path) as image:
        for descriptor in image.descriptors:
            if descriptor.id == object_id:
                return image.copy(descriptor, out)
    raise MalformedError(f"{os.fspath(path)} has no object {object_id}")
