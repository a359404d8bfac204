"""From an image to a root filesystem: ``unpack`` into a directory, ``export`` as one flat tar.

The source is a registry reference or ``oci:PATH[:NAME]``. A registry image is first pulled, verified,
into a temporary OCI layout (:func:`regpeek.pull.pull`, concurrent downloads): with a cache, a work area
of its layer store, so that layers already there are hard links rather than downloads and new ones are
stored without a copy; else a temporary directory. A local layout's layer blobs are hashed before use. Only verified layers reach :mod:`regpeek.disk.unpack`, which applies them in
order without ever writing outside the root.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from regpeek.disk.cache import LayerStore
from regpeek.disk.layout import Layout, LayoutReference
from regpeek.disk.unpack import LayerOpener, UnpackReport, export_tar, unpack_layers
from regpeek.errors import UnsafePathError, UnsupportedError, UsageError, VerificationError
from regpeek.formats.digest import Digest
from regpeek.formats.manifest import Descriptor, ImageManifest
from regpeek.formats.platform import Platform
from regpeek.network._sync.registry import Client, Resolved
from regpeek.pull import PullProgress, pull

__all__ = ["UnpackResult", "export_image", "image_layers", "unpack_image"]


@dataclass
class UnpackResult:
    reference: str
    digest: Digest
    layers: list[Descriptor]
    report: UnpackReport

    def to_json(self) -> dict[str, Any]:
        report = self.report
        return {
            "reference": self.reference,
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


@contextlib.contextmanager
def image_layers(
    client: Client,
    source: str,
    *,
    platform: Platform | str | None = None,
    allow_nondistributable: bool = False,
    progress: PullProgress | None = None,
) -> Iterator[tuple[Resolved, Layout, list[Descriptor]]]:
    """The verified layers of an image, base first, readable from a layout while the context lasts."""
    with contextlib.ExitStack() as stack:
        if source.startswith("oci:"):
            reference = LayoutReference.parse(source)
        else:
            workdir = _work_layout(client, stack)
            pulled = pull(
                client,
                source,
                workdir,
                platform=platform,
                allow_nondistributable=allow_nondistributable,
                ref_name="image",
                progress=progress,
            )
            reference = LayoutReference(workdir, pulled.ref_name)
        resolved = client.resolve(reference, platform)
        manifest = resolved.manifest
        if not isinstance(manifest, ImageManifest):
            raise UnsupportedError(f"{source} is a schema1 image: pull it into a layout first")
        layout = Layout(reference.path)
        for layer in manifest.layers:
            if not layout.blob_path(layer.digest).exists():
                hint = " (non-distributable: --allow-nondistributable fetches it)" if layer.urls else ""
                raise UnsupportedError(f"layer {layer.digest} of {source} is not available{hint}")
            if not layout.has_blob(layer):
                raise VerificationError(f"layer {layer.digest} in {reference.path} does not match its digest")
        yield resolved, layout, list(manifest.layers)


def unpack_image(
    client: Client,
    source: str,
    rootfs: Path | str,
    *,
    platform: Platform | str | None = None,
    allow_nondistributable: bool = False,
    as_root: bool | None = None,
    progress: PullProgress | None = None,
) -> UnpackResult:
    """Apply the image's layers in order into ``rootfs``, which must be missing or empty."""
    root = Path(rootfs)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{root} exists and is not an empty directory")
    with image_layers(
        client, source, platform=platform, allow_nondistributable=allow_nondistributable, progress=progress
    ) as (resolved, layout, layers):
        root.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as files:
            streams = [
                (files.enter_context(layout.open_blob(layer.digest)), layer.media_type) for layer in layers
            ]
            report = unpack_layers(streams, root, as_root=as_root)
        return UnpackResult(source, resolved.manifest.digest, layers, report)


def export_image(
    client: Client,
    source: str,
    out: BinaryIO,
    *,
    platform: Platform | str | None = None,
    allow_nondistributable: bool = False,
    progress: PullProgress | None = None,
) -> UnpackReport:
    """Write the image's merged root filesystem to ``out`` as one tar, whiteouts applied."""
    with image_layers(
        client, source, platform=platform, allow_nondistributable=allow_nondistributable, progress=progress
    ) as (_, layout, layers):
        openers = [(_opener(layout, layer.digest), layer.media_type) for layer in layers]
        return export_tar(openers, out)


def _work_layout(client: Client, stack: contextlib.ExitStack) -> Path:
    """Where a registry image is pulled for unpack or export: a work area of the client's layer store
    (same filesystem as its entries: hard links both ways), else a temporary directory."""
    store: LayerStore | None = getattr(client.cache, "layers", None)
    if store is not None:
        try:
            return stack.enter_context(store.work_area())
        except UnsafePathError:
            raise
        except OSError:
            pass  # an unwritable or full cache directory: work without it
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="regpeek-")))


def _opener(layout: Layout, digest: Digest) -> LayerOpener:
    return lambda: layout.open_blob(digest)
