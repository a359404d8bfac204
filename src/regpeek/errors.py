"""The exceptions regpeek raises, each mapped to one CLI exit code.

::

    RegpeekError                      exit 1  internal error, or anything unexpected
    ├── UsageError                    exit 2  bad arguments, invalid reference, digest or platform
    │   ├── UnsafePathError                   a cache directory owned by another user, a symbolic
    │   │                                     link where a cache or lock file should be
    │   └── BlockedError                      a registry that registries.conf blocks (no request sent)
    ├── NotFoundError                 exit 3  repository, tag, digest, blob or platform not there
    │   └── PlatformNotFoundError             no index entry matches the wanted platform
    ├── AuthError                     exit 4  credentials refused, token refused, access denied
    ├── VerificationError             exit 5  content that cannot be trusted or used
    │   ├── DigestMismatchError               bytes do not hash to the digest they should
    │   ├── SizeMismatchError                 bytes are not as long as the descriptor says
    │   ├── TooLargeError                     a manifest, config or token response over its cap
    │   ├── MalformedError                    unparseable or structurally invalid (ambiguous too)
    │   └── UnsupportedError                  a media type or schema regpeek cannot use here
    ├── RegistryUnavailableError      exit 6  unreachable, timing out, or failing after retries
    └── LocalError                    exit 7  a local file or program failed: a path that cannot be
                                              written, a full disk, a squashfs tool that fails

Every class carries ``exit_code``; the CLI maps an exception to its code with :func:`exit_code_for`.
Messages never contain credentials or tokens.

What a program can branch on, beside the class:

- an error that comes from a registry's answer carries ``status`` (the HTTP status), ``method``,
  ``url`` (without query string or credentials), ``reference`` (the
  :class:`~regpeek.formats.reference.Reference` asked for, ``repo@digest`` for a blob, or the
  :class:`~regpeek.formats.reference.Repository` of a tag list; ``None`` when the URL names neither)
  and ``errors`` (the body's ``errors[]`` as :class:`RegistryErrorDetail`); on other errors they are
  ``None`` (``()`` for ``errors``);
- :class:`NotFoundError` has ``what``: ``"manifest"``, ``"blob"``, ``"tag list"``, ``"repository"``,
  ``"platform"`` (or ``None`` when it is none of those, a local file say);
- :class:`AuthError` has ``reason`` (:data:`AUTH_REASONS`), ``host`` and ``scope``;
- :class:`DigestMismatchError` has ``expected`` and ``actual`` (:class:`~regpeek.formats.digest.Digest`)
  and ``what``; :class:`SizeMismatchError` the same with sizes; :class:`TooLargeError` ``size`` and
  ``limit``; :class:`PlatformNotFoundError` ``wanted`` and ``available``;
- :class:`LocalError` has ``reason``: the operating system's words (``No space left on device``), or
  ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from regpeek.formats.digest import Digest
    from regpeek.formats.reference import Reference, Repository

__all__ = [
    "AUTH_REASONS",
    "AuthError",
    "AuthReason",
    "BlockedError",
    "DigestMismatchError",
    "LocalError",
    "MalformedError",
    "NotFoundError",
    "PlatformNotFoundError",
    "RegistryErrorDetail",
    "RegistryUnavailableError",
    "RegpeekError",
    "SizeMismatchError",
    "TooLargeError",
    "UnsafePathError",
    "UnsupportedError",
    "UsageError",
    "VerificationError",
    "exit_code_for",
    "parse_error_body",
]


class RegpeekError(Exception):
    """Base of every regpeek error; on its own it means an internal error (exit 1).

    ``status``, ``method``, ``url``, ``reference`` and ``errors`` describe the registry answer behind
    the error, when there is one (see the module documentation); they are ``None`` and ``()``
    otherwise.
    """

    exit_code = 1
    kind = "internal"
    status: int | None = None
    method: str | None = None
    url: str | None = None
    reference: Reference | Repository | None = None
    errors: tuple[RegistryErrorDetail, ...] = ()


class UsageError(RegpeekError, ValueError):
    """Invalid arguments: a malformed reference, digest or platform string (exit 2)."""

    exit_code = 2
    kind = "usage"


class UnsafePathError(UsageError):
    """A local path regpeek refuses to use (exit 2): a cache directory owned by another user (as ssh
    refuses such files), or a symbolic link or non-regular file where a cache file or a lock file
    belongs. Following it could make regpeek, often run as root, create or truncate files elsewhere."""


class BlockedError(UsageError):
    """A reference that registries.conf blocks (``blocked = true``): refused before any request (exit 2)."""

    kind = "blocked"


class NotFoundError(RegpeekError):
    """The registry has no such repository, tag, manifest or blob (exit 3).

    ``what`` says which: ``"manifest"``, ``"blob"``, ``"tag list"``, ``"repository"`` (the registry
    does not know the repository at all) or ``"platform"`` (in an ``oci:`` layout: ``"repository"``
    for a missing layout, ``"manifest"`` for a missing image name, ``"blob"``); ``None`` for anything
    else (a missing SIF file, say).
    """

    exit_code = 3
    kind = "not_found"

    def __init__(self, message: str, *, what: str | None = None) -> None:
        super().__init__(message)
        self.what = what


class PlatformNotFoundError(NotFoundError):
    """An index has no runnable entry for the wanted platform (exit 3).

    ``wanted`` is the platform asked for, ``available`` the platforms the index offers (both as text).
    """

    def __init__(self, wanted: str, available: list[str]) -> None:
        self.wanted = wanted
        self.available = available
        there = ", ".join(available) if available else "none"
        super().__init__(f"no image for platform {wanted}; available: {there}", what="platform")


#: Why authentication failed, as :attr:`AuthError.reason` gives it.
AuthReason = Literal["missing_credentials", "refused", "forbidden", "token_service"]
AUTH_REASONS: tuple[AuthReason, ...] = ("missing_credentials", "refused", "forbidden", "token_service")


class AuthError(RegpeekError):
    """Authentication or authorization was refused (exit 4).

    ``reason`` is one of:

    - ``"missing_credentials"``: the registry (or its token service) wants credentials and there are
      none to send: none configured for the host, or the configured source (auth file, credential
      helper) failed; logging in may help;
    - ``"refused"``: the credentials sent were refused (by the registry or the token service), or the
      registry refused a token it had just been given, or an HTTP proxy refused the request (407);
    - ``"forbidden"``: the credentials are accepted but do not give access (HTTP 403, or a token
      without the scope asked for);
    - ``"token_service"``: the token service failed otherwise (an unexpected status, an answer that is
      not a token, an unusable realm).

    ``host`` is the registry host (``host:port``) and ``scope`` the token scope asked for
    (``repository:NAME:pull``), when known.
    """

    exit_code = 4
    kind = "auth"

    def __init__(
        self, message: str, *, reason: AuthReason, host: str | None = None, scope: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason: AuthReason = reason
        self.host = host
        self.scope = scope


class VerificationError(RegpeekError):
    """Content failed verification or cannot be used safely (exit 5)."""

    exit_code = 5
    kind = "verification"


class DigestMismatchError(VerificationError):
    """Bytes whose digest is not the one they were asked for or announced with.

    ``expected`` and ``actual`` are :class:`~regpeek.formats.digest.Digest` values; ``what`` names the
    content as the message does (``"blob library/alpine@sha256:…"``).
    """

    def __init__(self, what: str, expected: Digest, actual: Digest) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"digest mismatch for {what}: expected {expected}, got {actual}")


class SizeMismatchError(VerificationError):
    """Bytes whose length differs from their descriptor's size (``expected``, ``actual``, ``what``)."""

    def __init__(self, what: str, expected: int, actual: int) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"size mismatch for {what}: expected {expected} bytes, got {actual}")


class TooLargeError(VerificationError):
    """Content larger than regpeek accepts: manifests and configs over 4 MiB, layers expanding past a limit.

    ``size`` (what was seen or announced, when known) and ``limit`` are in bytes (entries, for an
    entry-count limit).
    """

    def __init__(self, message: str, *, size: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class MalformedError(VerificationError):
    """A document that does not parse, or whose structure is invalid or ambiguous."""


class UnsupportedError(VerificationError):
    """A media type or schema regpeek cannot handle for the operation asked."""


class RegistryUnavailableError(RegpeekError):
    """The registry could not be reached or kept failing after retries (exit 6)."""

    exit_code = 6
    kind = "unavailable"


class LocalError(RegpeekError):
    """Something on this machine failed: a file that cannot be written, a full disk, an external
    program (a squashfs tool) that fails (exit 7).  Not a bug of regpeek's, and not the registry.

    ``reason`` is the operating system's words (``No space left on device``) when there are some."""

    exit_code = 7
    kind = "local"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def exit_code_for(error: BaseException) -> int:
    """The CLI exit code for an exception: its class's code, 1 for anything not ours."""
    return error.exit_code if isinstance(error, RegpeekError) else 1


@dataclass(frozen=True)
class RegistryErrorDetail:
    """One entry of a registry's ``{"errors": [...]}`` body: ``code`` (``MANIFEST_UNKNOWN``...),
    ``message``, and ``detail`` (any JSON value, ``None`` when absent)."""

    code: str
    message: str
    detail: Any = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.message and self.code:
            return f"{self.code}: {self.message}"
        return self.code or self.message


def parse_error_body(body: bytes) -> list[RegistryErrorDetail]:
    """Parse a registry error body; anything that is not the standard JSON shape gives ``[]``.

    >>> parse_error_body(b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
    [RegistryErrorDetail(code='MANIFEST_UNKNOWN', message='manifest unknown', detail=None)]
    >>> parse_error_body(b'true')
    []
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict) or not isinstance(document.get("errors"), list):
        return []
    details = []
    for entry in document["errors"]:
        if isinstance(entry, dict):
            code = entry.get("code")
            message = entry.get("message")
            details.append(
                RegistryErrorDetail(
                    code=code if isinstance(code, str) else "",
                    message=message if isinstance(message, str) else "",
                    detail=entry.get("detail"),
                )
            )
    return details
