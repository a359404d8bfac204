"""Images you can open, in go-containerregistry's spirit: :meth:`AsyncClient.image` gives an
:class:`AsyncImage` whose layers are :class:`AsyncImageLayer` values, each a
:class:`~regpeek.formats.config.Layer` (so a :class:`~regpeek.formats.manifest.Descriptor` with a
``diff_id``) bound to the client that read it, so that ``layer.open()`` and ``layer.download(path)``
need nothing else.

Written once in ``_async/image.py``; ``_sync/image.py`` (``Image``, ``ImageLayer``) is generated from it
by ``scripts/unasync.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regpeek.formats.config import ImageConfig, InspectResult, Layer
from regpeek.formats.digest import Digest
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.manifest import ImageManifest, Index
from regpeek.formats.platform import Platform
from regpeek.formats.schema1 import Schema1Manifest
from regpeek.network._async.blobs import AsyncBlobStream, ProgressCallback
from regpeek.network.common import AnyReference, DownloadedBlob, Resolved

if TYPE_CHECKING:
    from regpeek.network._async.registry import AsyncClient

__all__ = ["AsyncImage", "AsyncImageLayer"]


@dataclass(frozen=True, kw_only=True)
class AsyncImageLayer(Layer):
    """A layer of an :class:`AsyncImage`: its descriptor and ``diff_id``, readable through the client.

    It is a :class:`~regpeek.formats.config.Layer` (and a ``Descriptor``), so any blob method takes it
    too. ``source`` is the reference of the image it belongs to.
    """

    client: AsyncClient = field(repr=False, compare=False)
    source: AnyReference = field(repr=False, compare=False)

    def open(self, *, decompress: bool = False) -> contextlib.AbstractAsyncContextManager[AsyncBlobStream]:
        """The layer blob as a verified stream (``decompress=True``: its uncompressed tar); see
        ``AsyncClient.open_blob``. ``async with layer.open() as blob: ...``"""
        return self.client.open_blob(self.source, self, decompress=decompress, use_urls=bool(self.urls))

    async def download(
        self, path: str | os.PathLike[str], *, on_progress: ProgressCallback | None = None
    ) -> DownloadedBlob:
        """Save the layer blob at ``path``, verified and atomically; see ``AsyncClient.download_blob``."""
        return await self.client.download_blob(
            self.source, self, path, use_urls=bool(self.urls), on_progress=on_progress
        )


@dataclass(frozen=True)
class AsyncImage(JsonResult):
    """One image, resolved for a platform: what :meth:`AsyncClient.image` returns.

    ``reference`` is what was asked for (a :class:`~regpeek.formats.reference.Reference`, or an
    ``oci:`` layout reference), ``digest`` the image manifest's, ``index_digest`` the index's it was
    chosen from (None without one), ``manifest`` and ``config`` the verified documents, ``platform``
    the image's, ``layers`` base first. :meth:`inspect` gives the same
    :class:`~regpeek.formats.config.InspectResult` as ``client.inspect()``, without another request.
    """

    reference: AnyReference
    digest: Digest
    index_digest: Digest | None
    platform: Platform
    manifest: ImageManifest | Schema1Manifest = field(repr=False)
    config: ImageConfig = field(repr=False)
    layers: tuple[AsyncImageLayer, ...] = field(repr=False)
    result: InspectResult = field(repr=False, compare=False)
    index: Index | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls, client: AsyncClient, resolved: Resolved, config: ImageConfig, result: InspectResult
    ) -> AsyncImage:
        """The image for a resolved reference, its config and its inspect result."""
        names = [f.name for f in dataclasses.fields(Layer)]
        layers = tuple(
            AsyncImageLayer(
                **{name: getattr(layer, name) for name in names}, client=client, source=resolved.reference
            )
            for layer in result.layers
        )
        return cls(
            reference=resolved.reference,
            digest=result.digest,
            index_digest=result.index_digest,
            manifest=resolved.manifest,
            config=config,
            platform=result.platform,
            layers=layers,
            index=resolved.index,
            result=result,
        )

    def inspect(self) -> InspectResult:
        """What ``client.inspect()`` reports for this image (already built: no request)."""
        return self.result

    def to_dict(self) -> dict[str, Any]:
        """The documented ``inspect --json`` keys."""
        return self.result.to_dict()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's display: the summary ``regpeek inspect`` prints."""
        self.result._repr_pretty_(printer, cycle)
