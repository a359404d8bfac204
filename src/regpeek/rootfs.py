"""From an image to a root filesystem: ``unpack`` into a directory, ``export`` as one flat tar.

The source is a registry reference or ``oci:PATH[:NAME]``. A registry image is first pulled, verified,
into a private OCI layout (:func:`regpeek.pull.pull`, concurrent downloads): with a cache, a work area of
its layer store (0700), so that layers already there are hard links rather than downloads and new ones
are stored without a copy; else a temporary directory. A local layout's
layer blobs are opened safely (regular files only, never through a symlink) and hashed before use. Either
way every layer is read again through a digest check while it is applied (a blob changed in between is
caught and what was written removed), and one layer file is open at a time, whatever their number.

What the layers may write is bounded (:class:`~regpeek.disk.layerentry.Limits`): by default 100 times
their compressed size (at least 1 GiB), never past the free space of the target filesystem less 64 MiB,
1,000,000 entries per layer and names of 4096 bytes; ``max_size`` replaces the first rule and
``limits=Limits.none()`` lifts them all.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from regpeek.disk.cache import LayerStore
from regpeek.disk.layerentry import Limits
from regpeek.disk.layout import Layout, LayoutReference
from regpeek.disk.unpack import LayerOpener, Unpacker, UnpackReport, export_tar, unpack_layers
from regpeek.errors import LocalError, UnsafePathError, UnsupportedError, UsageError, VerificationError
from regpeek.formats.digest import Digest
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import Descriptor, ImageManifest
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference
from regpeek.network._sync.registry import Client, Resolved
from regpeek.network.common import as_reference
from regpeek.pull import PullProgress, pull

__all__ = [
    "ImageLayers",
    "UnpackResult",
    "export_image",
    "image_layers",
    "require_empty_directory",
    "unpack_image",
    "writing",
]


@dataclass
class UnpackResult(JsonResult):
    """What :func:`unpack_image` did: ``reference`` is the source (a registry ``Reference`` or a
    ``LayoutReference``), ``digest`` the image manifest's, ``layers`` those applied, ``report`` the
    counts (files, directories, links, devices, whiteouts, what was skipped)."""

    reference: Reference | LayoutReference
    digest: Digest
    layers: list[Descriptor]
    report: UnpackReport

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "reference": str(self.reference),
            "digest": str(self.digest),
            "layers": [str(layer.digest) for layer in self.layers],
            "files": report.files,
            "directories": report.directories,
            "symlinks": report.symlinks,
            "hardlinks": report.hardlinks,
            "devices": report.devices,
            "whiteouts": report.whiteouts,
            "skipped": dict(report.skipped),
        }


@dataclass
class ImageLayers:
    """An image's verified layers, base first, readable from a layout while :func:`image_layers` lasts."""

    resolved: Resolved
    layout: Layout
    layers: list[Descriptor]
    index_digest: Digest | None = None  # the index the image was chosen from, if any
    source_digest: Digest | None = None  # the image manifest's digest where it came from (schema1: its own)

    @property
    def compressed_size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def names(self) -> list[str]:
        """``layer N (sha256:…)`` for messages, base first."""
        return [f"layer {n} ({layer.digest})" for n, layer in enumerate(self.layers, 1)]

    def streams(self) -> Iterator[tuple[BinaryIO, str]]:
        """Each layer blob in turn, read through its digest check; one open at a time."""
        for layer in self.layers:
            with self.layout.open_verified(layer) as blob:
                yield blob, layer.media_type

    def openers(self) -> list[tuple[LayerOpener, str]]:
        return [(_opener(self.layout, layer), layer.media_type) for layer in self.layers]

    def limits(self, target: Path | int | None, max_size: int | None) -> Limits:
        """The default :class:`Limits` for writing these layers to ``target`` (a path or a descriptor)."""
        return Limits.default(self.compressed_size, free_space(target), max_size)

    def unpack(
        self,
        root: Path,
        *,
        as_root: bool | None = None,
        limits: Limits | None = None,
        max_size: int | None = None,
        then: Callable[[Unpacker], None] | None = None,
    ) -> UnpackReport:
        """Apply the layers into ``root`` (see :func:`unpack_image`); ``then`` as for ``unpack_layers``."""
        chosen = limits if limits is not None else self.limits(root, max_size)
        return unpack_layers(
            self.streams(), root, as_root=as_root, limits=chosen, names=self.names(), then=then
        )


@contextlib.contextmanager
def image_layers(
    client: Client,
    source: str,
    *,
    platform: Platform | str | None = None,
    allow_nondistributable: bool = False,
    progress: PullProgress | None = None,
) -> Iterator[ImageLayers]:
    """The verified layers of an image, base first, readable from a layout while the context lasts."""
    with contextlib.ExitStack() as stack:
        local = source.startswith("oci:")
        index_digest = source_digest = None
        if local:
            reference = LayoutReference.parse(source)
        else:
            workdir, where = _work_layout(client, stack)
            try:
                pulled = pull(
                    client,
                    source,
                    workdir,
                    platform=platform,
                    allow_nondistributable=allow_nondistributable,
                    ref_name="image",
                    progress=progress,
                )
            except LocalError as error:  # name the cache (or the temporary directory's place), not the area
                raise LocalError(
                    f"cannot download the layers into {where}: {error.reason or error}", reason=error.reason
                ) from error
            reference = LayoutReference(workdir, pulled.ref_name)
            index_digest = pulled.index_digest
            if pulled.converted_from_schema1:
                source_digest = pulled.source_digest
        resolved = client.resolve(reference, platform)
        if local and resolved.index is not None:
            index_digest = resolved.index.digest
        manifest = resolved.manifest
        if not isinstance(manifest, ImageManifest):
            raise UnsupportedError(f"{source} is a schema1 image: pull it into a layout first")
        layout = Layout(reference.path)
        for layer in manifest.layers:
            if (
                not layout.blob_path(layer.digest).exists()
                and not layout.blob_path(layer.digest).is_symlink()
            ):
                hint = " (non-distributable: --allow-nondistributable fetches it)" if layer.urls else ""
                raise UnsupportedError(f"layer {layer.digest} of {source} is not available{hint}")
            # a layout we did not write is hashed first (refusing what is not a regular file); the
            # layers pulled just now into our private directory were verified as they arrived
            if local and not layout.has_blob(layer):
                raise VerificationError(
                    f"layer {layer.digest} in {reference.path} does not match its digest or size, "
                    "or is not a regular file"
                )
        yield ImageLayers(
            resolved, layout, list(manifest.layers), index_digest, source_digest or manifest.digest
        )


def free_space(target: Path | int | None) -> int | None:
    """Bytes available to us on the filesystem of ``target`` (its nearest existing ancestor), or of an
    open descriptor; None when unknown or not a filesystem (a pipe)."""
    if target is None:
        return None
    try:
        if isinstance(target, int):
            if not stat.S_ISREG(os.fstat(target).st_mode):
                return None
            info = os.fstatvfs(target)
        else:
            path = Path(target).absolute()
            while not path.exists() and path != path.parent:
                path = path.parent
            info = os.statvfs(path)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def unpack_image(
    client: Client,
    source: str,
    rootfs: Path | str,
    *,
    platform: Platform | str | None = None,
    allow_nondistributable: bool = False,
    as_root: bool | None = None,
    progress: PullProgress | None = None,
    max_size: int | None = None,
    limits: Limits | None = None,
) -> UnpackResult:
    """Apply the image's layers in order into ``rootfs``, which must be missing or empty.

    ``rootfs`` is made a private (0700) directory.  ``max_size`` bounds the bytes written (instead of
    100x the compressed size); ``limits`` sets every limit (``Limits.none()`` for none).  On any error,
    what was written is removed (``rootfs`` too, when it did not exist).

    Raises:
        UsageError: ``rootfs`` exists and is not an empty directory.
        NotFoundError, AuthError, RegistryUnavailableError: as :func:`regpeek.pull.pull`.
        VerificationError: a blob does not match, a layer is unreadable (MalformedError) or writes
            past a limit (TooLargeError), a layer is missing (non-distributable).
        LocalError, OSError: the target cannot be written.
    """
    root = require_empty_directory(rootfs)
    with image_layers(
        client, source, platform=platform, allow_nondistributable=allow_nondistributable, progress=progress
    ) as image:
        with writing(root):
            report = image.unpack(root, as_root=as_root, limits=limits, max_size=max_size)
        return UnpackResult(as_reference(source), image.resolved.manifest.digest, image.layers, report)


def require_empty_directory(path: Path | str) -> Path:
    """``path`` if it is missing or an empty directory (not a symlink to one); else UsageError."""
    root = Path(path)
    if root.is_symlink() or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
        raise UsageError(f"{root} exists and is not an empty directory")
    return root


@contextlib.contextmanager
def writing(target: Path | str) -> Iterator[None]:
    """Turn a file problem while writing ``target`` (no such directory, no permission, a full disk)
    into :class:`~regpeek.errors.LocalError` naming ``target`` and the system's reason (exit 7); on
    any failure, remove the (empty) parent directories of ``target`` that were made meanwhile."""
    missing = []
    parent = Path(target).absolute().parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        yield
    except BaseException as error:
        for directory in missing:
            with contextlib.suppress(OSError):
                directory.rmdir()
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            raise LocalError(f"cannot write {target}: {reason}", reason=reason) from error
        raise


def export_image(
    client: Client,
    source: str,
    out: BinaryIO,
    *,
    platform: Platform | str | None = None,
    allow_nondistributable: bool = False,
    progress: PullProgress | None = None,
    max_size: int | None = None,
    limits: Limits | None = None,
) -> UnpackReport:
    """Write the image's merged root filesystem to ``out`` as one tar, whiteouts applied.

    Limits as for :func:`unpack_image`; the free space counted is that of ``out``'s filesystem when it
    is a regular file.

    Raises:
        As :func:`unpack_image` (but ``out`` is the caller's: what was written to it stays).
    """
    with image_layers(
        client, source, platform=platform, allow_nondistributable=allow_nondistributable, progress=progress
    ) as image:
        if limits is None:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                limits = image.limits(out.fileno(), max_size)
        if limits is None:
            limits = image.limits(None, max_size)
        return export_tar(image.openers(), out, limits=limits, names=image.names())


def _work_layout(client: Client, stack: contextlib.ExitStack) -> tuple[Path, str]:
    """Where a registry image is pulled for unpack or export: a work area of the client's layer store
    (same filesystem as its entries: hard links both ways), else a temporary directory; and how to
    name that place in a message (the cache directory, or the temporary directory's parent)."""
    store: LayerStore | None = getattr(client.cache, "layers", None)
    if store is not None:
        try:
            return stack.enter_context(store.work_area()), f"the cache at {store.root}"
        except UnsafePathError:
            raise
        except OSError:
            pass  # an unwritable or full cache directory: work without it
    try:
        temporary = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="regpeek-")))
    except OSError as error:
        raise LocalError(
            f"cannot make a temporary directory in {tempfile.gettempdir()}: {error.strerror or error}"
        ) from None
    return temporary, f"a temporary directory in {temporary.parent}"


def _opener(layout: Layout, layer: Descriptor) -> LayerOpener:
    return lambda: layout.open_verified(layer)
