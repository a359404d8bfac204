"""Image references: the grammar and normalisation of distribution/reference.

``ubuntu`` is ``docker.io/library/ubuntu:latest``; ``index.docker.io`` is ``docker.io``; the first path
component is a registry host when it is ``localhost``, contains ``.`` or ``:``, or has an uppercase
letter; with both a tag and a digest the digest decides what is fetched and the tag is kept for display.
A bare 64-hex string is an image ID, not a name, and is refused. The 255-character limit applies to the
repository path (``library/ubuntu``), not to ``registry/path``, as in distribution/reference; an IPv6
host is hex digits and colons in brackets (no zone, no embedded dotted quad).

>>> str(Reference.parse("ubuntu"))
'docker.io/library/ubuntu:latest'
>>> Reference.parse("localhost:5000/a/b@sha256:" + "0" * 64).target
'sha256:0000000000000000000000000000000000000000000000000000000000000000'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from regpeek.errors import UsageError
from regpeek.formats.digest import Digest

__all__ = ["DOCKER_HUB", "DOCKER_HUB_API", "Reference", "Repository"]

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
NAME_MAX = 255

# One path component: lowercase alphanumerics joined by '.', '_', '__' or a run of '-'.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(_COMPONENT)
# A host: dotted labels of letters, digits and inner hyphens, or a bracketed IPv6 literal of hex digits
# and colons only (distribution/reference excludes zones and IPv4-mapped forms); optional port.
_HOST_RE = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")


def _is_host(component: str) -> bool:
    return (
        component == "localhost"
        or "." in component
        or ":" in component
        or component.startswith("[")
        or component != component.lower()
    )


def _split_name(name: str, original: str) -> tuple[str, str]:
    """Split a name into (registry, repository), normalising Docker Hub."""
    if not name:
        raise UsageError(f"invalid reference {original!r}: empty name")
    first, sep, rest = name.partition("/")
    if sep and _is_host(first):
        if not _HOST_RE.fullmatch(first):
            raise UsageError(f"invalid reference {original!r}: bad registry host {first!r}")
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    for component in repository.split("/"):
        if not _COMPONENT_RE.fullmatch(component):
            hint = " (repository names must be lowercase)" if component.lower() != component else ""
            raise UsageError(f"invalid reference {original!r}: bad path component {component!r}{hint}")
    if len(repository) > NAME_MAX:
        raise UsageError(f"invalid reference {original!r}: repository path longer than {NAME_MAX} characters")
    return registry, repository


def _strip_transport(text: str) -> str:
    if text.startswith("docker://"):
        return text[len("docker://") :]
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        raise UsageError(f"invalid reference {text!r}: give a reference like host/name:tag, not a URL")
    return text


@dataclass(frozen=True)
class Repository:
    """A repository on a registry, e.g. ``docker.io/library/ubuntu``."""

    registry: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Repository:
        """Parse a repository name; a tag or digest is an error here."""
        text = _strip_transport(text.strip())
        if "@" in text or ":" in text.rpartition("/")[2]:
            raise UsageError(f"invalid repository {text!r}: give a repository without a tag or digest")
        registry, name = _split_name(text, text)
        return cls(registry, name)

    @property
    def api_host(self) -> str:
        """The host to talk to: Docker Hub's API lives on ``registry-1.docker.io``."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def pull_scope(self) -> str:
        return f"repository:{self.name}:pull"

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: registry, repository, and a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse and normalise ``text``; raises :class:`~regpeek.errors.UsageError` when invalid."""
        original = text
        text = _strip_transport(text.strip())
        if _IMAGE_ID_RE.fullmatch(text):
            raise UsageError(f"invalid reference {original!r}: a 64-hex image ID is not a name")
        digest = None
        if "@" in text:
            text, _, digest_text = text.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except UsageError as error:
                raise UsageError(f"invalid reference {original!r}: {error}") from None
        tag = None
        last_slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > last_slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not _TAG_RE.fullmatch(tag):
                raise UsageError(f"invalid reference {original!r}: bad tag {tag!r}")
        registry, repository = _split_name(text, original)
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, repository, tag, digest)

    @property
    def repo(self) -> Repository:
        return Repository(self.registry, self.repository)

    @property
    def api_host(self) -> str:
        return self.repo.api_host

    @property
    def target(self) -> str:
        """What the manifests endpoint is asked for: the digest when there is one, else the tag."""
        return str(self.digest) if self.digest else (self.tag or "latest")

    def with_digest(self, digest: Digest | None) -> Reference:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out
