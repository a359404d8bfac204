"""containers-registries.conf(5): where the images of a name are pulled from, as podman and skopeo read it.

This module is pure: it takes the TOML documents already parsed (``regpeek.network.registriesconf``
finds and reads the files) and answers, for one reference, which registries to try in which order.

What is honoured, with the semantics of containers/image:

- ``[[registry]]`` tables chosen by the longest ``prefix`` that the reference (``host[:port]/path
  [:tag][@digest]``) starts with, followed by ``/``, ``:`` or ``@`` (or equal to it); ``prefix``
  defaults to ``location``; a prefix ``*.example.com`` matches any subdomain of example.com;
- ``location``: the prefix is replaced by it (``prefix = "example.com/foo"``, ``location =
  "internal.example.net/bar"``: ``example.com/foo/app:1`` is read from ``internal.example.net/bar/app:1``);
  the reference keeps its name in every report;
- ``insecure = true``: TLS without certificate verification, or plain HTTP when the registry does not
  speak TLS;
- ``blocked = true``: the reference is refused before any request;
- ``[[registry.mirror]]`` (``location``, ``insecure``, ``pull-from-mirror``): tried in order before
  the primary location; ``pull-from-mirror = "all"`` (the default) uses a mirror for references by
  tag and by digest, ``"digest-only"`` and ``"tag-only"`` for one kind only; ``mirror-by-digest-only
  = true`` on the registry makes every mirror digest-only;
- drop-in files override earlier files table by table (same ``prefix``), as registries.conf.d(5) says;
- the deprecated version 1 ``[registries.insecure]`` and ``[registries.block]`` lists.

Not used: ``unqualified-search-registries``, ``[aliases]`` and ``short-name-mode`` (a name without a
registry is Docker Hub's, as for docker, skopeo and crane), and ``credential-helpers``.

>>> conf = parse([("registries.conf", {"registry": [{"prefix": "example.com/foo",
...     "location": "internal.example.net/bar", "mirror": [{"location": "mirror.example.net/foo"}]}]})])
>>> [str(source) for source in conf.resolve("example.com/foo/app:1").sources]
['mirror.example.net/foo/app (mirror)', 'internal.example.net/bar/app']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from regpeek.errors import UsageError
from regpeek.formats.reference import DOCKER_HUB, Reference, Repository

__all__ = ["Mirror", "RegistriesConf", "RegistryTable", "Resolution", "Source", "parse"]

PULL_FROM_MIRROR = ("all", "digest-only", "tag-only")
_HOST_RE = re.compile(
    r"(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)+"
    r"|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?=:)|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
)


class RegistriesConfError(UsageError):
    """A registries.conf that cannot be used (exit 2): bad TOML types, a location with a scheme..."""


@dataclass(frozen=True)
class Mirror:
    location: str
    insecure: bool = False
    pull_from_mirror: str = "all"

    def used_for(self, by_digest: bool) -> bool:
        if self.pull_from_mirror == "digest-only":
            return by_digest
        if self.pull_from_mirror == "tag-only":
            return not by_digest
        return True


@dataclass(frozen=True)
class RegistryTable:
    """One ``[[registry]]`` table, and the file it came from (for messages)."""

    prefix: str
    location: str  # "" only for a wildcard prefix: the reference is used as it is
    origin: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Mirror, ...] = ()

    @property
    def wildcard(self) -> bool:
        return self.prefix.startswith("*.")

    def matches(self, name: str) -> int:
        """The length of the match of this table's prefix on ``name`` (0: no match)."""
        if self.wildcard:
            host = name.split("/", 1)[0].partition(":")[0] if not name.startswith("[") else ""
            suffix = self.prefix[1:]  # ".example.com"
            return len(self.prefix) if host.endswith(suffix) and len(host) > len(suffix) else 0
        if name == self.prefix:
            return len(self.prefix)
        if name.startswith(self.prefix) and name[len(self.prefix)] in "/:@":
            return len(self.prefix)
        return 0


@dataclass(frozen=True)
class Source:
    """A place to pull from: a registry and the repository there."""

    repository: Repository
    insecure: bool = False
    mirror: bool = False

    @property
    def registry(self) -> str:
        return self.repository.registry

    def __str__(self) -> str:
        return f"{self.repository}" + (" (mirror)" if self.mirror else "")


@dataclass(frozen=True)
class Resolution:
    """The sources for one reference, mirrors first and the primary location last."""

    sources: tuple[Source, ...]
    table: RegistryTable | None = None

    @property
    def primary(self) -> Source:
        return self.sources[-1]

    @property
    def blocked(self) -> bool:
        return self.table is not None and self.table.blocked

    def blocked_message(self, name: str) -> str:
        assert self.table is not None
        return (
            f"{name} is blocked by registries.conf ([[registry]] prefix {self.table.prefix!r} in "
            f"{self.table.origin})"
        )


@dataclass(frozen=True)
class RegistriesConf:
    """Every ``[[registry]]`` table of the files read, by prefix."""

    tables: tuple[RegistryTable, ...] = ()
    files: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return bool(self.tables)

    def table_for(self, name: str) -> RegistryTable | None:
        """The table with the longest prefix matching ``name`` (a reference, repository or host)."""
        best: RegistryTable | None = None
        length = 0
        for table in self.tables:
            matched = table.matches(name)
            if matched > length:
                best, length = table, matched
        return best

    def resolve(
        self, reference: Reference | Repository | str, *, by_digest: bool | None = None
    ) -> Resolution:
        """Where to pull ``reference`` from (the last source is the primary location).

        ``by_digest`` says which mirrors apply (default: whether the reference has a digest; a bare
        repository counts as by digest: blobs are named by their digest).
        """
        if isinstance(reference, str):
            reference = Reference.parse(reference)
        if by_digest is None:
            by_digest = not isinstance(reference, Reference) or reference.digest is not None
        name = _name(reference)
        repository = reference.repo if isinstance(reference, Reference) else reference
        table = self.table_for(name)
        if table is None:
            return Resolution((Source(repository),))
        sources = [
            Source(_rewrite(repository, table, mirror.location), mirror.insecure, mirror=True)
            for mirror in table.mirrors
            if mirror.used_for(by_digest)
        ]
        primary = _rewrite(repository, table, table.location) if table.location else repository
        sources.append(Source(primary, table.insecure))
        return Resolution(tuple(sources), table)

    def host(self, registry: str) -> Resolution:
        """The settings for a whole registry (``catalog``, ``login``): the table whose prefix is the
        host itself, or a wildcard prefix matching it; its location is used when it is a bare host."""
        table = self.table_for(registry)
        if table is not None and not table.wildcard and table.prefix != registry:
            table = None
        repository = Repository.parse(f"{registry}/x")
        if table is None:
            return Resolution((Source(repository),))
        location = table.location if table.location and "/" not in table.location else registry
        return Resolution((Source(Repository.parse(f"{location}/x"), table.insecure),), table)

    def insecure_hosts(self) -> frozenset[str]:
        """Every host a table or a mirror marks insecure (where TLS need not verify)."""
        hosts: set[str] = set()
        for table in self.tables:
            if table.insecure and table.location:
                hosts.add(_host(table.location))
            for mirror in table.mirrors:
                if mirror.insecure:
                    hosts.add(_host(mirror.location))
        return frozenset(hosts)


def _name(reference: Reference | Repository) -> str:
    """The name a prefix is matched against: ``host/path[:tag][@digest]`` (Docker Hub's ``library/``
    included, as containers/image matches it)."""
    if isinstance(reference, Repository):
        return str(reference)
    name = f"{reference.registry}/{reference.repository}"
    if reference.tag:
        name += f":{reference.tag}"
    if reference.digest:
        name += f"@{reference.digest}"
    return name


def _host(location: str) -> str:
    host = location.split("/", 1)[0]
    return "registry-1.docker.io" if host in (DOCKER_HUB, "index.docker.io") else host


def _rewrite(repository: Repository, table: RegistryTable, location: str) -> Repository:
    """``repository`` with the table's prefix replaced by ``location`` (for a wildcard prefix, the
    host replaced)."""
    name = str(repository)
    if table.wildcard:
        rest = name.split("/", 1)[1]
        rewritten = f"{location}/{rest}"
    elif len(name) >= len(table.prefix):
        rewritten = location + name[len(table.prefix) :]
    else:  # the prefix names a tag or a digest: the repository part is the location's
        rewritten = location.split("@", 1)[0].rsplit(":", 1)[0] if "/" in location else location
    try:
        return Repository.parse(rewritten)
    except UsageError as error:
        raise RegistriesConfError(
            f"{table.origin}: [[registry]] prefix {table.prefix!r} rewrites {name} to {rewritten!r}, "
            f"which is not a repository: {error}"
        ) from None


# -- parsing ------------------------------------------------------------------------------------


def _location(value: Any, what: str, origin: str, *, wildcard_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise RegistriesConfError(f"{origin}: {what} must be a string")
    text = value.strip().rstrip("/")
    if not text:
        raise RegistriesConfError(f"{origin}: {what} is empty")
    if "://" in text:
        raise RegistriesConfError(f"{origin}: {what} {text!r} has a URI scheme; give host[:port][/path]")
    if wildcard_ok and text.startswith("*."):
        if "/" in text or ":" in text or "*" in text[1:]:
            raise RegistriesConfError(
                f"{origin}: {what} {text!r}: a wildcard prefix is *.domain, nothing more"
            )
        return text.lower()
    host = text.split("/", 1)[0]
    if "@" in host or not _HOST_RE.fullmatch(host):
        raise RegistriesConfError(
            f"{origin}: {what} {text!r} does not start with a registry host (a name with a dot, "
            "localhost, or host:port)"
        )
    if host in ("index.docker.io", "registry-1.docker.io"):
        text = DOCKER_HUB + text[len(host) :]
    return text


def _bool(value: Any, what: str, origin: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RegistriesConfError(f"{origin}: {what} must be true or false")
    return value


def _table(entry: Any, origin: str) -> RegistryTable:
    if not isinstance(entry, Mapping):
        raise RegistriesConfError(f"{origin}: every [[registry]] entry must be a table")
    location = (
        _location(entry["location"], "location", origin) if entry.get("location") not in (None, "") else ""
    )
    prefix = (
        _location(entry["prefix"], "prefix", origin, wildcard_ok=True)
        if entry.get("prefix") not in (None, "")
        else location
    )
    if not prefix:
        raise RegistriesConfError(f"{origin}: a [[registry]] entry has neither prefix nor location")
    if not location and not prefix.startswith("*."):
        location = prefix
    if location and prefix.startswith("*.") and entry.get("location") not in (None, ""):
        raise RegistriesConfError(
            f"{origin}: [[registry]] prefix {prefix!r} is a wildcard: it cannot have a location"
        )
    by_digest_only = _bool(entry.get("mirror-by-digest-only"), "mirror-by-digest-only", origin)
    mirrors_value = entry.get("mirror") or []
    if not isinstance(mirrors_value, Sequence) or isinstance(mirrors_value, str):
        raise RegistriesConfError(f"{origin}: [[registry.mirror]] must be an array of tables")
    mirrors = []
    for mirror in mirrors_value:
        if not isinstance(mirror, Mapping):
            raise RegistriesConfError(f"{origin}: every [[registry.mirror]] entry must be a table")
        how = mirror.get("pull-from-mirror") or ""
        if how and how not in PULL_FROM_MIRROR:
            raise RegistriesConfError(
                f"{origin}: pull-from-mirror {how!r} is not one of {', '.join(PULL_FROM_MIRROR)}"
            )
        if how and by_digest_only:
            raise RegistriesConfError(
                f"{origin}: [[registry]] {prefix!r} sets mirror-by-digest-only, so its mirrors cannot "
                "set pull-from-mirror"
            )
        mirrors.append(
            Mirror(
                _location(mirror.get("location"), "mirror location", origin),
                _bool(mirror.get("insecure"), "mirror insecure", origin),
                "digest-only" if by_digest_only else (how or "all"),
            )
        )
    return RegistryTable(
        prefix=prefix,
        location=location,
        origin=origin,
        insecure=_bool(entry.get("insecure"), "insecure", origin),
        blocked=_bool(entry.get("blocked"), "blocked", origin),
        mirrors=tuple(mirrors),
    )


def _v1_tables(document: Mapping[str, Any], origin: str) -> list[RegistryTable]:
    """``[registries.insecure]`` and ``[registries.block]`` lists (version 1) as tables."""
    section = document.get("registries")
    if not isinstance(section, Mapping):
        return []
    flags: dict[str, dict[str, bool]] = {}
    for kind in ("block", "insecure"):
        entry = section.get(kind)
        names = entry.get("registries", []) if isinstance(entry, Mapping) else []
        if not isinstance(names, list):
            raise RegistriesConfError(f"{origin}: registries.{kind}.registries must be a list")
        for name in names:
            location = _location(name, f"registries.{kind} entry", origin)
            flags.setdefault(location, {})["blocked" if kind == "block" else "insecure"] = True
    return [
        RegistryTable(
            prefix=location,
            location=location,
            origin=origin,
            insecure=flag.get("insecure", False),
            blocked=flag.get("blocked", False),
        )
        for location, flag in flags.items()
    ]


def parse(documents: Sequence[tuple[str, Mapping[str, Any]]]) -> RegistriesConf:
    """Merge parsed registries.conf documents, in load order: ``(origin, document)``.

    A later document's table replaces an earlier one with the same prefix. A location listed twice
    with different ``insecure`` or ``blocked`` settings is an error, as in containers/image.
    """
    tables: dict[str, RegistryTable] = {}
    for origin, document in documents:
        entries = document.get("registry") or []
        if not isinstance(entries, Sequence) or isinstance(entries, str):
            raise RegistriesConfError(f"{origin}: [[registry]] must be an array of tables")
        v2 = [_table(entry, origin) for entry in entries]
        v1 = _v1_tables(document, origin)
        if v1 and v2:
            raise RegistriesConfError(
                f"{origin}: mixes version 1 [registries.*] lists and [[registry]] tables"
            )
        for table in v2 or v1:
            tables[table.prefix] = table
    by_location: dict[str, RegistryTable] = {}
    for table in tables.values():
        if not table.location:
            continue
        other = by_location.setdefault(table.location, table)
        for setting in ("insecure", "blocked"):
            if getattr(other, setting) != getattr(table, setting):
                raise RegistriesConfError(
                    f"registries.conf: location {table.location!r} is listed with conflicting {setting!r} "
                    f"settings ({other.origin}, {table.origin})"
                )
    return RegistriesConf(
        tuple(sorted(tables.values(), key=lambda t: t.prefix)), tuple(o for o, _ in documents)
    )
