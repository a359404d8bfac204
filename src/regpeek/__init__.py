"""regpeek: read container images straight from Docker/OCI registries, every manifest schema, verified.

>>> import regpeek
>>> with regpeek.Client() as client:                      # doctest: +SKIP
...     image = client.inspect("alpine:3.20", platform="linux/arm64")
...     print(image.digest, image.config.env)
"""

from typing import TYPE_CHECKING, Any

from regpeek._version import __version__

# Public names and the module each lives in. They are imported on first use (PEP 562), so that
# ``import regpeek`` and the CLI start fast: httpx, asyncio and rich load only when needed.
_LAZY = {
    "BlobCache": "regpeek.disk.cache",
    "AsyncClient": "regpeek.network._async.registry",
    "Resolved": "regpeek.network._async.registry",
    "Client": "regpeek.network._sync.registry",
    "HistoryEntry": "regpeek.formats.config",
    "ImageConfig": "regpeek.formats.config",
    "InspectResult": "regpeek.formats.config",
    "Layer": "regpeek.formats.config",
    "PlatformEntry": "regpeek.formats.config",
    "Credentials": "regpeek.network.credentials",
    "CredentialStore": "regpeek.network.credentials",
    "Digest": "regpeek.formats.digest",
    "AuthError": "regpeek.errors",
    "DigestMismatchError": "regpeek.errors",
    "MalformedError": "regpeek.errors",
    "NotFoundError": "regpeek.errors",
    "PlatformNotFoundError": "regpeek.errors",
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
    "Descriptor": "regpeek.formats.manifest",
    "ImageManifest": "regpeek.formats.manifest",
    "Index": "regpeek.formats.manifest",
    "Manifest": "regpeek.formats.manifest",
    "Platform": "regpeek.formats.platform",
    "PullResult": "regpeek.pull",
    "Reference": "regpeek.formats.reference",
    "Repository": "regpeek.formats.reference",
    "Schema1Manifest": "regpeek.formats.schema1",
    "HttpOptions": "regpeek.network.transport",
}

if TYPE_CHECKING:
    from regpeek.disk.cache import BlobCache
    from regpeek.disk.layout import Layout, LayoutReference
    from regpeek.errors import (
        AuthError,
        DigestMismatchError,
        LocalError,
        MalformedError,
        NotFoundError,
        PlatformNotFoundError,
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
    from regpeek.formats.digest import Digest
    from regpeek.formats.manifest import Descriptor, ImageManifest, Index, Manifest
    from regpeek.formats.platform import Platform
    from regpeek.formats.reference import Reference, Repository
    from regpeek.formats.schema1 import Schema1Manifest
    from regpeek.network._async.registry import AsyncClient, Resolved
    from regpeek.network._sync.registry import Client
    from regpeek.network.credentials import Credentials, CredentialStore
    from regpeek.network.transport import HttpOptions
    from regpeek.pull import PullResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'regpeek' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AsyncClient",
    "AuthError",
    "BlobCache",
    "Client",
    "CredentialStore",
    "Credentials",
    "Descriptor",
    "Digest",
    "DigestMismatchError",
    "HistoryEntry",
    "HttpOptions",
    "ImageConfig",
    "ImageManifest",
    "Index",
    "InspectResult",
    "Layer",
    "Layout",
    "LayoutReference",
    "MalformedError",
    "Manifest",
    "NotFoundError",
    "Platform",
    "PlatformEntry",
    "PlatformNotFoundError",
    "PullResult",
    "Reference",
    "LocalError",
    "RegistryUnavailableError",
    "UnsafePathError",
    "RegpeekError",
    "Repository",
    "Resolved",
    "Schema1Manifest",
    "SizeMismatchError",
    "TooLargeError",
    "UnsupportedError",
    "UsageError",
    "VerificationError",
    "__version__",
    "exit_code_for",
]
