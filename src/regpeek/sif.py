"""Singularity/Apptainer images from any registry or layout: a SIF file, or a sandbox directory.

:func:`build_sif` does what ``apptainer pull out.sif docker://IMAGE`` (or ``apptainer build``) does,
without Apptainer, privileges or a container runtime:

1. the image's verified layers, as :mod:`regpeek.rootfs` gets them (pulled through the shared layer
   store of the cache, or read from an ``oci:`` layout);
2. flattened top layer first (:func:`regpeek.disk.flatten.export_tar`: whiteouts applied, the image's
   owners, modes, times, links and device nodes kept, bounded by the same limits as ``unpack``),
   merged on the fly with the runtime tree Apptainer's OCI conversion adds
   (:class:`regpeek.disk.apptainer.ApptainerSink`: ``/.singularity.d``, mount points, ``/singularity``);
3. streamed into a squashfs tool (:mod:`regpeek.disk.squashfs`: ``tar2sqfs`` or ``mksquashfs``), so
   ownership and device nodes survive without root;
4. written with the definition, ``inspect-metadata.json`` and ``oci-config.json`` as a SIF
   (:func:`regpeek.disk.sif.write_apptainer_sif`), under a temporary name beside OUT, then renamed.

Any failure (and Ctrl-C) leaves neither OUT nor a temporary file.  :func:`build_sandbox` makes the
same tree as a directory (``apptainer build --sandbox``).  See ``docs/sif.md`` for what goes where.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import stat
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from regpeek._version import __version__
from regpeek.disk.apptainer import ApptainerSink, append_entries
from regpeek.disk.flatten import TarSink, export_tar
from regpeek.disk.layerentry import Limits, UnpackReport
from regpeek.disk.sif import write_apptainer_sif
from regpeek.disk.squashfs import RootAttributes, build_squashfs, find_tool
from regpeek.disk.tarstream import _tar_writer
from regpeek.disk.unpack import Unpacker
from regpeek.errors import LocalError, MalformedError, UsageError
from regpeek.formats.apptainer import (
    Existing,
    SifMetadata,
    TreeEntry,
    merge_tree,
    sif_metadata,
    watched_paths,
)
from regpeek.formats.digest import Digest
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference
from regpeek.network._sync.registry import Client
from regpeek.pull import PullProgress
from regpeek.rootfs import ImageLayers, image_layers, require_empty_directory, writing

__all__ = ["SandboxResult", "SifResult", "build_sandbox", "build_sif"]

#: Called with a short line as the build moves on ("building squashfs with tar2sqfs (gzip)").
StageCallback = Callable[[str], None]


@dataclass
class SandboxResult(JsonResult):
    """What :func:`build_sandbox` wrote (and, extended by :class:`SifResult`, :func:`build_sif`)."""

    reference: str
    path: Path
    digest: Digest  # the image manifest (as pulled: converted for schema1)
    index_digest: Digest | None
    source_digest: Digest  # what the definition pins (the registry's digest of the image)
    platform: Platform
    seconds: float
    report: UnpackReport

    def to_dict(self) -> dict[str, Any]:
        """The ``sif --json`` summary."""
        return {
            "reference": self.reference,
            "path": str(self.path),
            "digest": str(self.digest),
            "index_digest": str(self.index_digest) if self.index_digest else None,
            "source_digest": str(self.source_digest),
            "platform": str(self.platform),
            "seconds": round(self.seconds, 3),
            "skipped": dict(self.report.skipped),
        }


@dataclass
class SifResult(SandboxResult):
    """What :func:`build_sif` wrote."""

    sif_id: str = ""
    partition_size: int = 0
    size: int = 0
    squashfs_tool: str = ""
    compression: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "sif_id": self.sif_id,
            "partition_size": self.partition_size,
            "size": self.size,
            "squashfs_tool": self.squashfs_tool,
            "compression": self.compression,
        }


# -- what the image is -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Image:
    layers: ImageLayers
    metadata: SifMetadata
    reference: str
    platform: Platform


def _describe(source: str, image: ImageLayers, created: int) -> _Image:
    manifest = image.resolved.manifest
    config_descriptor = getattr(manifest, "config", None)
    if config_descriptor is None:
        raise MalformedError(f"{source} has no config")
    config = image.layout.read_blob(config_descriptor)
    try:
        document = json.loads(config)
    except (ValueError, RecursionError):
        raise MalformedError(f"the config of {source} is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedError(f"the config of {source} is not a JSON object")
    platform = Platform.from_json(document)
    if source.startswith("oci:"):
        reference, bootstrap = source[len("oci:") :], "oci"
        origin = reference
    else:
        parsed = Reference.parse(source)
        reference, bootstrap, origin = str(parsed), "docker", str(parsed)
    metadata = sif_metadata(
        config,
        source=origin,
        digest=str(image.source_digest or manifest.digest),
        resolved_digest=str(image.index_digest) if image.index_digest else None,
        architecture=platform.architecture,
        variant=platform.variant,
        created=created,
        tool_version=__version__,
        bootstrap=bootstrap,
    )
    return _Image(image, metadata, reference, platform)


def _build_time(created: int | None) -> int:
    """``created``, else ``$SOURCE_DATE_EPOCH`` (reproducible builds), else now."""
    if created is not None:
        return created
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return int(epoch)
    return int(time.time())


# -- temporary files beside OUT ----------------------------------------------------------------
@contextlib.contextmanager
def _temporary(directory: Path, name: str, suffix: str) -> Iterator[Path]:
    """A path for a temporary file beside OUT (same filesystem: the rename is atomic); always removed."""
    path = directory / f".{name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}"
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _check_output(out: Path, force: bool) -> None:
    if out.is_dir() and not out.is_symlink():
        raise UsageError(f"{out} is a directory")
    if (out.exists() or out.is_symlink()) and not force:
        raise UsageError(f"{out} exists (--force replaces it)")
    parent = out.parent
    if not parent.is_dir():
        raise LocalError(f"cannot write {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LocalError(f"cannot write {out}: {parent} is not writable")


# -- SIF ---------------------------------------------------------------------------------------
def build_sif(
    client: Client,
    source: str,
    path: Path | str,
    *,
    platform: Platform | str | None = None,
    compression: str = "gzip",
    squashfs_tool: str = "auto",
    force: bool = False,
    allow_nondistributable: bool = False,
    progress: PullProgress | None = None,
    on_stage: StageCallback | None = None,
    max_size: int | None = None,
    limits: Limits | None = None,
    created: int | None = None,
) -> SifResult:
    """Write the image ``source`` (a registry reference or ``oci:PATH[:NAME]``) as the SIF ``path``.

    ``compression`` is the squashfs compressor (``gzip``, the default every kernel and squashfuse read;
    ``zstd``; ``xz``); ``squashfs_tool`` is ``auto``, ``tar2sqfs``, ``mksquashfs``,
    ``mksquashfs-tar`` or ``mksquashfs-pseudo`` (:mod:`regpeek.disk.squashfs`). An existing ``path``
    is replaced only with ``force``. ``created`` (Unix seconds; default ``$SOURCE_DATE_EPOCH`` or now)
    is the build time recorded in the labels, the SIF and the added files. Limits as for
    :func:`regpeek.rootfs.unpack_image`.

    Raises:
        UsageError: ``path`` exists (without ``force``) or is a directory; no squashfs tool is installed.
        LocalError: the squashfs tool failed, or ``path``'s directory cannot be written.
        TooLargeError: the layers expand past the limits.
        NotFoundError, AuthError, VerificationError, RegistryUnavailableError: as for a pull.
    """
    started = time.monotonic()
    out = Path(path)
    _check_output(out, force)
    tool = find_tool(squashfs_tool)
    stage = on_stage or (lambda _: None)
    build_time = _build_time(created)
    with (
        writing(out),
        image_layers(
            client,
            source,
            platform=platform,
            allow_nondistributable=allow_nondistributable,
            progress=progress,
        ) as layers,
        _temporary(out.parent, out.name, ".squashfs") as squashfs,
        _temporary(out.parent, out.name, ".sif") as temporary,
    ):
        image = _describe(source, layers, build_time)
        chosen = limits if limits is not None else layers.limits(out.parent, max_size)
        reports: list[UnpackReport] = []

        def write_tar(sink: TarSink | tarfile.TarFile) -> None:
            squashable = _Squashable(sink)
            merged = ApptainerSink(squashable, image.metadata.entries, spool_dir=str(out.parent))
            report = export_tar(layers.openers(), merged, limits=chosen, names=layers.names())
            for _ in range(squashable.too_long):
                report.skip(NAME_TOO_LONG)
            reports.append(report)

        stage(f"building squashfs with {tool.method} ({compression})")
        build_squashfs(
            tool,
            write_tar,
            squashfs,
            compression=compression,
            root=RootAttributes(0o755, 0, 0, build_time),
            workdir=out.parent,
        )
        stage("writing SIF")
        partition_size = squashfs.stat().st_size
        with open(temporary, "wb") as sif_file, open(squashfs, "rb") as partition:
            header = write_apptainer_sif(
                sif_file,
                image.metadata,
                partition,
                architecture=image.platform.architecture,
                squashfs_size=partition_size,
                created_at=build_time,
            )
            sif_file.flush()
            os.fsync(sif_file.fileno())
        os.replace(temporary, out)
    return SifResult(
        reference=image.reference,
        path=out,
        digest=layers.resolved.manifest.digest,
        index_digest=layers.index_digest,
        source_digest=layers.source_digest or layers.resolved.manifest.digest,
        platform=image.platform,
        sif_id=header.uuid,
        partition_size=partition_size,
        size=out.stat().st_size,
        squashfs_tool=tool.method,
        compression=compression,
        seconds=time.monotonic() - started,
        report=reports[0],
    )


#: Why an entry with a path component over :data:`NAME_MAX` bytes (or a hard link to one) is left out.
NAME_TOO_LONG = "name too long (a path component over 255 bytes)"
#: The longest path component a SIF's squashfs gets: squashfs holds 256 bytes, but tar2sqfs writes
#: longer ones into a file system readers reject, and the pseudo-file way extracts the tree on a Linux
#: file system first (255), as ``unpack`` and ``--sandbox`` do.
NAME_MAX = 255


class _Squashable(TarSink):
    """The entries a squashfs can hold, the same whichever tool builds it.

    Leaves out the image's ``./`` entry (the squashfs root is 0755, root's, with the build time;
    ``mksquashfs -tar`` ignores ``./`` entries), and entries with a path component longer than
    :data:`NAME_MAX` bytes and the hard links to them, counted in :attr:`too_long`.
    """

    def __init__(self, out: TarSink | tarfile.TarFile) -> None:
        self._out = out
        self._dropped: set[str] = set()
        self.too_long = 0

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: BinaryIO | None = None) -> None:
        name = tarinfo.name.strip("/")
        if name in ("", "."):
            return
        if _too_long(name) or (tarinfo.islnk() and tarinfo.linkname.strip("/") in self._dropped):
            self._dropped.add(name)
            self.too_long += 1
            return
        self._out.addfile(tarinfo, fileobj)

    def close(self) -> None:
        self._out.close()


def _too_long(name: str) -> bool:
    return any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in name.split("/"))


# -- sandbox -----------------------------------------------------------------------------------
def build_sandbox(
    client: Client,
    source: str,
    directory: Path | str,
    *,
    platform: Platform | str | None = None,
    allow_nondistributable: bool = False,
    as_root: bool | None = None,
    progress: PullProgress | None = None,
    max_size: int | None = None,
    limits: Limits | None = None,
    created: int | None = None,
) -> SandboxResult:
    """Unpack ``source`` into ``directory`` (missing or empty; made 0700) as an Apptainer sandbox.

    The layers are applied as :func:`regpeek.rootfs.unpack_image` applies them, then the runtime tree
    of :func:`build_sif`, merged with what the image has, as one more layer. On any failure what was
    written is removed.

    Raises:
        As :func:`regpeek.rootfs.unpack_image`.
    """
    started = time.monotonic()
    root = require_empty_directory(directory)
    build_time = _build_time(created)
    with image_layers(
        client, source, platform=platform, allow_nondistributable=allow_nondistributable, progress=progress
    ) as layers:
        image = _describe(source, layers, build_time)

        def add_tree(unpacker: Unpacker) -> None:
            existing = _existing_paths(unpacker, watched_paths(image.metadata.entries))
            merge = merge_tree(image.metadata.entries, existing)
            unpacker.apply(_tree_tar(merge.write), name="the Apptainer runtime tree")

        with writing(root):
            report = layers.unpack(root, as_root=as_root, limits=limits, max_size=max_size, then=add_tree)
    return SandboxResult(
        reference=image.reference,
        path=root,
        digest=layers.resolved.manifest.digest,
        index_digest=layers.index_digest,
        source_digest=layers.source_digest or layers.resolved.manifest.digest,
        platform=image.platform,
        seconds=time.monotonic() - started,
        report=report,
    )


def _existing_paths(unpacker: Unpacker, paths: frozenset[str]) -> dict[str, Existing]:
    """What the unpacked tree has at ``paths`` (never following a symlink)."""
    found: dict[str, Existing] = {}
    for path in sorted(paths):
        *parents, name = path.split("/")
        fd = unpacker.dir.open_resolved(parents)
        if fd is None:
            continue
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        finally:
            os.close(fd)
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            kind = "dir"
        elif stat.S_ISREG(mode):
            kind = "file"
        elif stat.S_ISLNK(mode):
            kind = "symlink"
        else:
            kind = "other"
        found[path] = Existing(kind, stat.S_IMODE(mode), info.st_uid, info.st_gid)
    return found


def _tree_tar(entries: Iterable[TreeEntry]) -> BinaryIO:
    buffer = io.BytesIO()
    writer = _tar_writer(buffer)
    append_entries(writer, entries)
    writer.close()
    buffer.seek(0)
    return buffer
