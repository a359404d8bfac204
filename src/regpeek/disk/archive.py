"""Image archives, as skopeo names them: ``oci-archive:`` (a tar of an OCI layout) and
``docker-archive:`` (what ``docker save`` writes and ``docker load`` reads).

Reading, in place: the tar's headers are scanned once (tarfile seeks over the content) and each member
is read from its offset with ``pread``, so nothing is extracted and several threads can read at once.
Both readers are :class:`~regpeek.disk.layout.ImageStore` objects, read exactly as a layout is (blobs
through a digest and size check), so ``copy``, ``pull``, ``inspect`` and the other readers of ``oci:``
take archives too.

- :class:`OciArchive`: ``index.json``, ``oci-layout`` and ``blobs/<algorithm>/<hex>`` members.
- :class:`DockerArchive`: ``manifest.json`` lists images as ``{"Config", "RepoTags", "Layers"}`` (member
  paths; symbolic links between members are followed inside the archive, as ``docker save`` writes
  duplicate layers). An archive holds no manifest, so one is made, as skopeo does: Docker schema2, the
  config as stored, and as layers the *uncompressed* tars, each named by its ``diff_id`` (a compressed
  layer member is decompressed as it is read, and its size measured once). Unlike skopeo, which labels
  them ``...tar.gzip``, the layers carry the media type of what they are,
  ``application/vnd.docker.image.rootfs.diff.tar``, so the manifest can be pushed as it is. Each
  ``RepoTags`` entry becomes an ``index.json`` entry named by the normalised reference.

Writing: :func:`write_oci_archive` tars a layout (``oci-layout``, ``index.json``, then the blobs);
:func:`write_docker_archive` writes an image in the layout skopeo's writer uses (``<config hex>.json``,
``<diff_id hex>.tar`` uncompressed layers verified against the config's ``diff_ids``, ``manifest.json``),
which ``docker load``, ``podman load`` and skopeo read. Both write a temporary file beside the target
and rename it when complete, so a failure or Ctrl-C leaves no partial archive; members have fixed
owners (0), modes (0644, 0755) and times (0).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from regpeek.disk.files import fsync_dir, open_regular, write_file_atomically
from regpeek.disk.layout import REF_NAME, ImageStore, Layout, NotRegularError, read_json
from regpeek.disk.tarstream import CHUNK, open_layer, scan_members, sniff_compression
from regpeek.errors import LocalError, MalformedError, NotFoundError, UnsafePathError, UsageError
from regpeek.formats import mediatypes as mt
from regpeek.formats.config import ImageConfig
from regpeek.formats.digest import Digest, DigestVerifier, compute
from regpeek.formats.manifest import MAX_MANIFEST_SIZE, Descriptor, ImageManifest
from regpeek.formats.reference import Reference

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["DockerArchive", "OciArchive", "write_docker_archive", "write_oci_archive"]

_BLOCK = 512
_MAX_LINKS = 16


# -- reading ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    offset: int
    size: int
    link: str | None = None  # a symbolic or hard link's target, as a member name


def _member_name(name: str) -> str:
    """A member name as a relative POSIX path (``./a//b`` -> ``a/b``)."""
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


@functools.lru_cache(maxsize=8)
def _scan(path: str, device: int, inode: int, size: int, mtime: int) -> dict[str, _Entry]:
    """Every member of the archive at ``path`` (cached while the file is unchanged)."""
    entries: dict[str, _Entry] = {}
    try:
        with open(open_regular(path), "rb") as archive:
            for info in scan_members(cast(BinaryIO, archive)):
                name = _member_name(info.name)
                if info.isreg():
                    entries[name] = _Entry(info.offset_data, info.size)
                elif info.issym():
                    entries[name] = _Entry(
                        0, 0, posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
                    )
                elif info.islnk():
                    entries[name] = _Entry(0, 0, _member_name(info.linkname))
    except (tarfile.TarError, EOFError) as error:
        raise MalformedError(f"{path} is not a readable tar archive: {error}") from None
    return entries


class _Reader(io.RawIOBase):
    """A read-only stream of a known ``size`` that keeps its position (``tell``)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position


class _Member(_Reader):
    """A member of an archive: a seekable window of the file, read with ``pread``."""

    def __init__(self, path: Path, entry: _Entry) -> None:
        super().__init__(entry.size)
        self._fd = open_regular(path)
        self._start = entry.offset

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self.size - self._position)
        if count <= 0:
            return 0
        data = os.pread(self._fd, count, self._start + self._position)
        if not data:
            raise MalformedError("archive member cut short: the file ends inside it")
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class _Sized(io.BytesIO):
    """Bytes made up by a reader (a synthesized manifest or index), with the ``size`` members have."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)


class _Archive(ImageStore):
    """An image store inside a tar file."""

    def _identity(self) -> tuple[str, int, int, int, int]:
        """The archive's path and what changes when the file does (device, inode, size, mtime)."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise NotFoundError(f"no {self.kind} at {self.path}") from None
        except OSError as error:
            raise LocalError(f"cannot read {self.path}: {error.strerror}") from None
        if not os.path.isfile(self.path):
            raise UsageError(f"{self.path} is not a file (a {self.kind} is a tar file)")
        return str(self.path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns

    def _entries(self) -> dict[str, _Entry]:
        return _scan(*self._identity())

    def _member(self, name: str) -> BinaryIO:
        """Open member ``name`` (following links inside the archive); FileNotFoundError if absent."""
        entries = self._entries()
        for _ in range(_MAX_LINKS):
            entry = entries.get(name)
            if entry is None:
                raise FileNotFoundError(name)
            if entry.link is None:
                try:
                    return cast(BinaryIO, _Member(self.path, entry))
                except UnsafePathError as error:
                    raise NotRegularError(str(error)) from None
            name = entry.link
        raise NotRegularError(f"{name}: too many links")

    def _size(self, blob: BinaryIO) -> int:
        size: int = getattr(blob, "size")  # noqa: B009 - every reader of ours has one
        return size

    def exists(self) -> bool:
        return self.path.is_file()


class OciArchive(_Archive):
    """``oci-archive:FILE``: a tar of an OCI layout, read in place."""

    kind = "OCI archive"
    hint = "oci-archive:FILE:NAME"

    def _open_file(self, name: str) -> BinaryIO:
        return self._member(name)

    def exists(self) -> bool:
        return super().exists() and {"oci-layout", "index.json"} <= set(self._entries())


@dataclass(frozen=True)
class _DockerImage:
    """One ``manifest.json`` item: its config and layers, and the manifest made for it."""

    repo_tags: tuple[str, ...]
    config: bytes
    config_member: str
    layers: tuple[tuple[Digest, str, int], ...]  # diff_id, member, uncompressed size
    manifest: bytes
    platform: dict[str, str]


_DOCKER_IMAGES: dict[tuple[str, int, int, int, int], list[_DockerImage]] = {}


class DockerArchive(_Archive):
    """``docker-archive:FILE``: what ``docker save`` writes, read as a layout (see the module doc)."""

    kind = "docker archive"
    hint = "docker-archive:FILE:REPO:TAG"

    def exists(self) -> bool:
        return super().exists() and "manifest.json" in self._entries()

    def find(self, name: str | None) -> Descriptor:
        """The image tagged ``name`` (``REPO:TAG``, compared normalised), or the only one."""
        return super().find(_normalised(name) if name is not None else None)

    def _images(self) -> list[_DockerImage]:
        """The archive's images (measuring a compressed layer means decompressing it: done once per
        archive file, not per blob read)."""
        key = self._identity()
        images = _DOCKER_IMAGES.get(key)
        if images is None:
            images = self._read_images()
            while len(_DOCKER_IMAGES) >= 8:
                _DOCKER_IMAGES.pop(next(iter(_DOCKER_IMAGES)))
            _DOCKER_IMAGES[key] = images
        return images

    def _read_images(self) -> list[_DockerImage]:
        items = read_json(self._read("manifest.json"), f"manifest.json in {self.path}")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise MalformedError(f"manifest.json in {self.path} is not a list of images")
        return [self._image(item, number) for number, item in enumerate(items)]

    def _read(self, member: str) -> BinaryIO:
        try:
            return self._member(member)
        except FileNotFoundError:
            raise MalformedError(f"{self.path} has no member {member!r}") from None
        except NotRegularError as error:
            raise MalformedError(f"{member} in {self.path} is not a regular file ({error})") from None

    def _image(self, item: dict[str, Any], number: int) -> _DockerImage:
        where = f"manifest.json entry {number} in {self.path}"
        config_member, tags, layer_members = (
            item.get("Config"),
            item.get("RepoTags") or [],
            item.get("Layers"),
        )
        if (
            not isinstance(config_member, str)
            or not isinstance(tags, list)
            or not all(isinstance(tag, str) for tag in tags)
            or not isinstance(layer_members, list)
            or not all(isinstance(layer, str) for layer in layer_members)
        ):
            raise MalformedError(f"{where}: Config, RepoTags or Layers is missing or of the wrong type")
        config_member = _member_name(config_member)
        with self._read(config_member) as source:
            config = source.read(MAX_MANIFEST_SIZE + 1)
        if len(config) > MAX_MANIFEST_SIZE:
            raise MalformedError(f"{where}: the config is over {MAX_MANIFEST_SIZE} bytes")
        parsed = ImageConfig.parse(config, compute(config))
        diff_ids = parsed.diff_ids
        if len(diff_ids) != len(layer_members):
            raise MalformedError(
                f"{where}: {len(layer_members)} layers but {len(diff_ids)} diff_ids in the config"
            )
        layers = tuple(
            (diff_id, _member_name(member), self._uncompressed_size(_member_name(member)))
            for diff_id, member in zip(diff_ids, layer_members, strict=True)
        )
        document = {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_MANIFEST,
            "config": {"mediaType": mt.DOCKER_CONFIG, "size": len(config), "digest": str(compute(config))},
            "layers": [
                {"mediaType": mt.DOCKER_LAYER_TAR, "size": size, "digest": str(d)} for d, _, size in layers
            ],
        }
        platform = {"architecture": parsed.platform.architecture or "", "os": parsed.platform.os or ""}
        if parsed.platform.variant:
            platform["variant"] = parsed.platform.variant
        return _DockerImage(
            tuple(_normalised(tag) for tag in tags),
            config,
            config_member,
            layers,
            json.dumps(document, separators=(",", ":")).encode(),
            platform,
        )

    def _uncompressed_size(self, member: str) -> int:
        with self._read(member) as source:
            size: int = getattr(source, "size")  # noqa: B009
            if sniff_compression(source.read(4)) == "none":
                return size
            source.seek(0)
            with open_layer(source, "") as layer:
                total = 0
                while chunk := layer.read(CHUNK):
                    total += len(chunk)
                return total

    def _open_file(self, name: str) -> BinaryIO:
        images = self._images()
        if name == "index.json":
            entries = []
            for image in images:
                descriptor = {"mediaType": mt.DOCKER_MANIFEST, "digest": str(compute(image.manifest)),
                              "size": len(image.manifest), "platform": image.platform}  # fmt: skip
                names = image.repo_tags or (None,)
                entries += [
                    {**descriptor, "annotations": {REF_NAME: tag}} if tag else descriptor for tag in names
                ]
            index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
            return cast(BinaryIO, _Sized(json.dumps(index).encode()))
        wanted = name.rpartition("/")[2]
        for image in images:
            if compute(image.manifest).hex == wanted:
                return cast(BinaryIO, _Sized(image.manifest))
            if compute(image.config).hex == wanted:
                return self._read(image.config_member)
            for diff_id, member, size in image.layers:
                if diff_id.hex == wanted:
                    return cast(BinaryIO, _Uncompressed(self._read(member), size))
        raise FileNotFoundError(name)


class _Uncompressed(_Reader):
    """A layer member read as its uncompressed tar (its ``size`` measured beforehand); it seeks
    forward only, by reading and dropping."""

    def __init__(self, member: BinaryIO, size: int) -> None:
        super().__init__(size)
        self._member = member
        self._layer = open_layer(member, "")

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self._position:
            raise io.UnsupportedOperation("a decompressed layer only seeks forward")
        while self._position < offset:
            dropped = self._layer.read(min(CHUNK, offset - self._position))
            if not dropped:
                break
            self._position += len(dropped)
        return self._position

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._layer.read(len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._layer.close()
            self._member.close()
        super().close()


def _normalised(name: str) -> str:
    """``REPO:TAG`` as a full reference (``alpine:3`` -> ``docker.io/library/alpine:3``)."""
    return str(Reference.parse(name))


# -- writing ---------------------------------------------------------------------------------------
class _TarWriter:
    """Writes a tar member by member: fixed owners, modes and times; GNU headers (one block for names
    under 100 bytes, sizes of any length). A member whose size is not known in advance gets its header
    written after its content (the file is seekable)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.written = 0

    @staticmethod
    def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.type, info.mtime = size, kind, 0
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")

    def directory(self, name: str) -> None:
        self._out.write(self._header(name.rstrip("/") + "/", 0, tarfile.DIRTYPE))

    def file(self, name: str, chunks: Iterable[bytes], size: int | None = None) -> int:
        """Add ``name`` with the bytes of ``chunks`` (exactly ``size`` of them when given)."""
        start = self._out.tell()
        header = self._header(name, size or 0)
        self._out.write(header)
        written = 0
        for chunk in chunks:
            self._out.write(chunk)
            written += len(chunk)
        if size is not None and written != size:
            raise LocalError(f"{name}: wrote {written} bytes, expected {size}")
        self._out.write(bytes(-written % _BLOCK))
        if size is None:
            end = self._out.tell()
            self._out.seek(start)
            final = self._header(name, written)
            if len(final) != len(header):
                raise LocalError(f"{name}: name too long for an archive member")
            self._out.write(final)
            self._out.seek(end)
        self.written += written
        return written

    def close(self) -> None:
        self._out.write(bytes(2 * _BLOCK))


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


@contextlib.contextmanager
def _atomic_archive(target: Path) -> Iterator[_TarWriter]:
    """A :class:`_TarWriter` on a temporary file beside ``target``, renamed over it on success."""
    try:
        with write_file_atomically(target, mode=0o644) as out:
            writer = _TarWriter(out)
            yield writer
            writer.close()
        fsync_dir(target.absolute().parent)
    except OSError as error:
        raise LocalError(f"cannot write {target}: {error.strerror or error}") from None


def write_oci_archive(layout: Layout, target: Path | str) -> int:
    """Tar the OCI layout (every blob re-read through its digest check) into ``target``; the bytes of
    blobs written."""
    target = Path(target)
    entries = layout.entries()
    blobs = _reachable(layout, entries)
    with _atomic_archive(target) as tar:
        tar.file("oci-layout", [(layout.path / "oci-layout").read_bytes()])
        tar.file("index.json", [json.dumps(layout.index(), indent=2).encode() + b"\n"])
        tar.directory("blobs")
        for algorithm in sorted({descriptor.digest.algorithm for descriptor in blobs}):
            tar.directory(f"blobs/{algorithm}")
        for descriptor in blobs:
            with layout.open_verified(descriptor) as blob:
                tar.file(
                    f"blobs/{descriptor.digest.algorithm}/{descriptor.digest.hex}",
                    _chunks(blob),
                    descriptor.size,
                )
        return tar.written


def _reachable(layout: Layout, entries: list[Descriptor]) -> list[Descriptor]:
    """Every blob the entries need that the layout holds (a foreign layer left out stays out)."""
    from regpeek.formats.manifest import Index, parse

    found: dict[Digest, Descriptor] = {}
    pending = list(entries)
    while pending:
        descriptor = pending.pop()
        if descriptor.digest in found:
            continue
        found[descriptor.digest] = descriptor
        if mt.kind_of(descriptor.media_type) is None:
            continue
        document = parse(
            layout.read_blob(descriptor), descriptor.media_type or None, descriptor.digest.algorithm
        )
        if isinstance(document, Index):
            pending += document.manifests
        elif isinstance(document, ImageManifest):
            pending.append(document.config)
            pending += [
                layer
                for layer in document.layers
                if not layer.urls or layout.blob_path(layer.digest).exists()
            ]
    return sorted(found.values(), key=lambda d: str(d.digest))


def write_docker_archive(
    layout: ImageStore, manifest: ImageManifest, repo_tags: list[str], target: Path | str
) -> int:
    """Write the image of ``manifest`` (its blobs in ``layout``) as a ``docker save`` archive tagged
    ``repo_tags``: layers decompressed and each checked against its ``diff_id``."""
    target = Path(target)
    config = layout.read_blob(manifest.config)
    diff_ids = ImageConfig.parse(config, manifest.config.digest).diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise MalformedError(f"{len(manifest.layers)} layers but {len(diff_ids)} diff_ids in the config")
    names: list[str] = []
    with _atomic_archive(target) as tar:
        tar.file(f"{manifest.config.digest.hex}.json", [config])
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
            name = f"{diff_id.hex}.tar"
            if name not in names:
                with layout.open_verified(layer) as blob, open_layer(blob, layer.media_type) as stream:
                    tar.file(name, _checked_chunks(stream, diff_id, f"layer {layer.digest}"))
            names.append(name)
        items = [{"Config": f"{manifest.config.digest.hex}.json", "RepoTags": repo_tags, "Layers": names}]
        tar.file("manifest.json", [json.dumps(items, separators=(",", ":")).encode()])
        return tar.written


def _checked_chunks(stream: BinaryIO, diff_id: Digest, what: str) -> Iterator[bytes]:
    verifier = DigestVerifier(diff_id.algorithm)
    while chunk := stream.read(CHUNK):
        verifier.update(chunk)
        yield chunk
    verifier.verify(f"uncompressed {what} (diff_id)", diff_id, verifier.size)
