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
    "AsyncClient": "regpeek._async.registry",
    "Resolved": "regpeek._async.registry",
    "Client": "regpeek._sync.registry",
    "HistoryEntry": "regpeek.config",
    "ImageConfig": "regpeek.config",
    "InspectResult": "regpeek.config",
    "Layer": "regpeek.config",
    "PlatformEntry": "regpeek.config",
    "Credentials": "regpeek.credentials",
    "CredentialStore": "regpeek.credentials",
    "Digest": "regpeek.digest",
    "AuthError": "regpeek.errors",
    "DigestMismatchError": "regpeek.errors",
    "MalformedError": "regpeek.errors",
    "NotFoundError": "regpeek.errors",
    "PlatformNotFoundError": "regpeek.errors",
    "RegistryUnavailableError": "regpeek.errors",
    "RegpeekError": "regpeek.errors",
    "SizeMismatchError": "regpeek.errors",
    "TooLargeError": "regpeek.errors",
    "UnsupportedError": "regpeek.errors",
    "UsageError": "regpeek.errors",
    "VerificationError": "regpeek.errors",
    "exit_code_for": "regpeek.errors",
    "Layout": "regpeek.layout",
    "LayoutReference": "regpeek.layout",
    "Descriptor": "regpeek.manifest",
    "ImageManifest": "regpeek.manifest",
    "Index": "regpeek.manifest",
    "Manifest": "regpeek.manifest",
    "Platform": "regpeek.platform",
    "PullResult": "regpeek.pull",
    "Reference": "regpeek.reference",
    "Repository": "regpeek.reference",
    "Schema1Manifest": "regpeek.schema1",
    "HttpOptions": "regpeek.transport",
}

if TYPE_CHECKING:
    from regpeek._async.registry import AsyncClient, Resolved
    from regpeek._sync.registry import Client
    from regpeek.config import HistoryEntry, ImageConfig, InspectResult, Layer, PlatformEntry
    from regpeek.credentials import Credentials, CredentialStore
    from regpeek.digest import Digest
    from regpeek.errors import (
        AuthError,
        DigestMismatchError,
        MalformedError,
        NotFoundError,
        PlatformNotFoundError,
        RegistryUnavailableError,
        RegpeekError,
        SizeMismatchError,
        TooLargeError,
        UnsupportedError,
        UsageError,
        VerificationError,
        exit_code_for,
    )
    from regpeek.layout import Layout, LayoutReference
    from regpeek.manifest import Descriptor, ImageManifest, Index, Manifest
    from regpeek.platform import Platform
    from regpeek.pull import PullResult
    from regpeek.reference import Reference, Repository
    from regpeek.schema1 import Schema1Manifest
    from regpeek.transport import HttpOptions


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
    "RegistryUnavailableError",
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
