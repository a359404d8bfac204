"""regpeek: read container images straight from Docker/OCI registries, every manifest schema, verified.

>>> import regpeek
>>> with regpeek.Client() as client:                      # doctest: +SKIP
...     image = client.inspect("alpine:3.20", platform="linux/arm64")
...     print(image.digest, image.config.env)
"""

from regpeek._async.registry import AsyncClient, Resolved
from regpeek._sync.registry import Client
from regpeek._version import __version__
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
from regpeek.manifest import Descriptor, ImageManifest, Index, Manifest
from regpeek.platform import Platform
from regpeek.reference import Reference, Repository
from regpeek.schema1 import Schema1Manifest
from regpeek.transport import HttpOptions

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
    "MalformedError",
    "Manifest",
    "NotFoundError",
    "Platform",
    "PlatformEntry",
    "PlatformNotFoundError",
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
