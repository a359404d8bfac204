"""regpeek: read container images straight from Docker/OCI registries, every manifest schema, verified.

>>> import regpeek
>>> with regpeek.Client() as client:                      # doctest: +SKIP
...     image = client.image("alpine:3.20", platform="linux/arm64")
...     print(image.digest, image.config.env)
...     with image.layers[0].open(decompress=True) as tar:  # the layer's tar, verified as it is read
...         head = tar.read(512)

Every public name is listed in ``docs/api.md``. Submodules load on first use: ``regpeek.pull``,
``regpeek.rootfs``, ``regpeek.batch``, ``regpeek.sif``, ``regpeek.aio`` (the async operations),
``regpeek.errors``, and ``regpeek.cache`` (another name for :mod:`regpeek.disk.cache`).
"""

from __future__ import annotations

import sys
import types

from regpeek._version import __version__

TYPE_CHECKING = False  # typing itself costs a few ms at every start; mypy reads this as typing's
if TYPE_CHECKING:
    from typing import Any


def _defer_httpx_cli() -> None:
    """Importing httpx imports its own command line, ``httpx._main`` (click, rich, pygments' lexers):
    about 0.1 s at every regpeek start for something regpeek never runs. A stand-in takes its place
    until ``httpx.main()`` is called, which then imports the real one."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def main(*args: Any, **kwargs: Any) -> Any:
        del sys.modules["httpx._main"]
        import importlib

        return importlib.import_module("httpx._main").main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


_defer_httpx_cli()

# Public names and the module each lives in. They are imported on first use (PEP 562), so that
# ``import regpeek`` and the CLI start fast: httpx, asyncio and rich load only when needed.
_LAZY = {
    "BlobCache": "regpeek.disk.cache",
    "AsyncClient": "regpeek.network._async.registry",
    "AsyncBlobStream": "regpeek.network._async.blobs",
    "AsyncImage": "regpeek.network._async.image",
    "AsyncImageLayer": "regpeek.network._async.image",
    "Client": "regpeek.network._sync.registry",
    "BlobStream": "regpeek.network._sync.blobs",
    "Image": "regpeek.network._sync.image",
    "ImageLayer": "regpeek.network._sync.image",
    "DownloadedBlob": "regpeek.network.common",
    "Resolved": "regpeek.network.common",
    "HistoryEntry": "regpeek.formats.config",
    "ImageConfig": "regpeek.formats.config",
    "InspectResult": "regpeek.formats.config",
    "Layer": "regpeek.formats.config",
    "PlatformEntry": "regpeek.formats.config",
    "ImageDiff": "regpeek.formats.diff",
    "diff_images": "regpeek.formats.diff",
    "Listing": "regpeek.formats.listing",
    "RateLimit": "regpeek.formats.listing",
    "Referrers": "regpeek.formats.listing",
    "Credentials": "regpeek.network.credentials",
    "CredentialStore": "regpeek.network.credentials",
    "Digest": "regpeek.formats.digest",
    "AuthError": "regpeek.errors",
    "BlockedError": "regpeek.errors",
    "DigestMismatchError": "regpeek.errors",
    "MalformedError": "regpeek.errors",
    "NotFoundError": "regpeek.errors",
    "PlatformNotFoundError": "regpeek.errors",
    "RegistryErrorDetail": "regpeek.errors",
    "RegistryUnavailableError": "regpeek.errors",
    "LocalError": "regpeek.errors",
    "UnsafePathError": "regpeek.errors",
    "RegpeekError": "regpeek.errors",
    "SizeMismatchError": "regpeek.errors",
    "TooLargeError": "regpeek.errors",
    "UnsupportedError": "regpeek.errors",
    "UsageError": "regpeek.errors",
    "VerificationError": "regpeek.errors",
    "exit_code_for": "regpeek.errors",
    "Layout": "regpeek.disk.layout",
    "LayoutReference": "regpeek.disk.layout",
    "Limits": "regpeek.disk.layerentry",
    "Descriptor": "regpeek.formats.manifest",
    "ImageManifest": "regpeek.formats.manifest",
    "Index": "regpeek.formats.manifest",
    "Manifest": "regpeek.formats.manifest",
    "Matcher": "regpeek.formats.platform",
    "Platform": "regpeek.formats.platform",
    "only": "regpeek.formats.platform",
    "PullResult": "regpeek.pull",
    "Outcome": "regpeek.batch",
    "inspect_many": "regpeek.batch",
    "UnpackResult": "regpeek.rootfs",
    "Reference": "regpeek.formats.reference",
    "Repository": "regpeek.formats.reference",
    "Schema1Manifest": "regpeek.formats.schema1",
    "HttpOptions": "regpeek.network.transport",
}

# Submodules reachable as attributes of the package without importing them first (PEP 562).
_SUBMODULES = {
    "aio": "regpeek.aio",
    "batch": "regpeek.batch",
    "cache": "regpeek.disk.cache",  # its home before the package was grouped
    "cli": "regpeek.cli",
    "disk": "regpeek.disk",
    "errors": "regpeek.errors",
    "formats": "regpeek.formats",
    "hostinfo": "regpeek.hostinfo",
    "network": "regpeek.network",
    "pull": "regpeek.pull",
    "rootfs": "regpeek.rootfs",
    "sif": "regpeek.sif",
}

if TYPE_CHECKING:
    from regpeek import aio as aio
    from regpeek import batch as batch
    from regpeek import cli as cli
    from regpeek import disk as disk
    from regpeek import errors as errors
    from regpeek import formats as formats
    from regpeek import hostinfo as hostinfo
    from regpeek import network as network
    from regpeek import pull as pull
    from regpeek import rootfs as rootfs
    from regpeek import sif as sif
    from regpeek.batch import Outcome, inspect_many
    from regpeek.disk import cache as cache
    from regpeek.disk.cache import BlobCache
    from regpeek.disk.layerentry import Limits
    from regpeek.disk.layout import Layout, LayoutReference
    from regpeek.errors import (
        AuthError,
        BlockedError,
        DigestMismatchError,
        LocalError,
        MalformedError,
        NotFoundError,
        PlatformNotFoundError,
        RegistryErrorDetail,
        RegistryUnavailableError,
        RegpeekError,
        SizeMismatchError,
        TooLargeError,
        UnsafePathError,
        UnsupportedError,
        UsageError,
        VerificationError,
        exit_code_for,
    )
    from regpeek.formats.config import HistoryEntry, ImageConfig, InspectResult, Layer, PlatformEntry
    from regpeek.formats.diff import ImageDiff, diff_images
    from regpeek.formats.digest import Digest
    from regpeek.formats.listing import Listing, RateLimit, Referrers
    from regpeek.formats.manifest import Descriptor, ImageManifest, Index, Manifest
    from regpeek.formats.platform import Matcher, Platform, only
    from regpeek.formats.reference import Reference, Repository
    from regpeek.formats.schema1 import Schema1Manifest
    from regpeek.network._async.blobs import AsyncBlobStream
    from regpeek.network._async.image import AsyncImage, AsyncImageLayer
    from regpeek.network._async.registry import AsyncClient
    from regpeek.network._sync.blobs import BlobStream
    from regpeek.network._sync.image import Image, ImageLayer
    from regpeek.network._sync.registry import Client
    from regpeek.network.common import DownloadedBlob, Resolved
    from regpeek.network.credentials import Credentials, CredentialStore
    from regpeek.network.transport import HttpOptions
    from regpeek.pull import PullResult
    from regpeek.rootfs import UnpackResult


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:
        module = importlib.import_module(_SUBMODULES[name])
        globals()[name] = module
        return module
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'regpeek' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})


__all__ = [
    "AsyncBlobStream",
    "AsyncClient",
    "AsyncImage",
    "AsyncImageLayer",
    "AuthError",
    "BlobCache",
    "BlockedError",
    "BlobStream",
    "Client",
    "CredentialStore",
    "Credentials",
    "Descriptor",
    "Digest",
    "DigestMismatchError",
    "DownloadedBlob",
    "HistoryEntry",
    "HttpOptions",
    "Image",
    "ImageConfig",
    "ImageDiff",
    "ImageLayer",
    "ImageManifest",
    "Index",
    "InspectResult",
    "Layer",
    "Layout",
    "LayoutReference",
    "Limits",
    "Listing",
    "LocalError",
    "MalformedError",
    "Manifest",
    "Matcher",
    "NotFoundError",
    "Outcome",
    "Platform",
    "PlatformEntry",
    "PlatformNotFoundError",
    "PullResult",
    "RateLimit",
    "Reference",
    "Referrers",
    "RegistryErrorDetail",
    "RegistryUnavailableError",
    "RegpeekError",
    "Repository",
    "Resolved",
    "Schema1Manifest",
    "SizeMismatchError",
    "TooLargeError",
    "UnpackResult",
    "UnsafePathError",
    "UnsupportedError",
    "UsageError",
    "VerificationError",
    "__version__",
    "diff_images",
    "exit_code_for",
    "inspect_many",
    "only",
]
