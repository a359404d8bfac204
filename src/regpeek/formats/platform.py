"""Platforms (``os/architecture[/variant]``): parse, normalise and match them the way containerd does.

Syntax: ``linux/amd64``, ``linux/arm/v7``, ``linux/arm64``, ``windows/amd64``; an OS version is written
in parentheses after the OS, ``windows(10.0.17763.4010)/amd64``. A single architecture such as ``arm64``
means ``linux/arm64``.

Normalisation (both sides are normalised before comparing):

============================  =====================
given                          normalised
============================  =====================
x86_64, x86-64, amd64/v1       amd64
i386 .. i686                   386
aarch64, arm64/v8, arm64/8     arm64
armhf, arm, arm/7              arm/v7
armel                          arm/v6
macos (os)                     darwin
============================  =====================

Matching (:func:`only`) follows containerd's ``platforms.Only``: an exact match first, then fallbacks in
order, amd64/vN -> ... -> amd64 -> 386, arm/vN -> ... -> arm/v5, arm64 -> arm/v8 -> ... -> arm/v5. When
several index entries match equally well the first one wins. The host default is passed in by the caller;
nothing here reads the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from regpeek.errors import UsageError

__all__ = ["Matcher", "Platform", "host_platform", "only"]

_KNOWN_OS = {
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
}
_ARCH_ALIASES = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "i386": ("386", ""),
    "i486": ("386", ""),
    "i586": ("386", ""),
    "i686": ("386", ""),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
}
_PART_RE = re.compile(r"[A-Za-z0-9_.-]+")
_OS_RE = re.compile(r"(?P<os>[A-Za-z0-9_-]+)(?:\((?P<version>[A-Za-z0-9_.-]*)\))?")


def _normalize_arch(architecture: str, variant: str) -> tuple[str, str]:
    architecture = architecture.lower()
    variant = variant.lower()
    if architecture in _ARCH_ALIASES:
        architecture, forced = _ARCH_ALIASES[architecture]
        if forced is not None:
            variant = forced
    if architecture == "amd64" and variant == "v1":
        variant = ""
    elif architecture == "arm64":
        if variant in ("8", "v8", "8.0", "v8.0"):
            variant = ""
        elif re.fullmatch(r"[0-9]+(\.[0-9]+)?", variant):
            variant = "v" + variant
    elif architecture == "arm":
        if variant == "":
            variant = "v7"
        elif re.fullmatch(r"[0-9]+", variant):
            variant = "v" + variant
    return architecture, variant


@dataclass(frozen=True)
class Platform:
    """A normalised platform. Build it with :meth:`parse` or :meth:`from_json` to get normalisation."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def create(
        cls,
        os: str,
        architecture: str,
        variant: str = "",
        os_version: str = "",
        os_features: tuple[str, ...] = (),
    ) -> Platform:
        """A normalised platform from its parts."""
        os = os.lower()
        if os == "macos":
            os = "darwin"
        architecture, variant = _normalize_arch(architecture, variant)
        return cls(os, architecture, variant, os_version, tuple(os_features))

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os[(version)]/arch[/variant]`` (or a bare architecture); raises ``UsageError``.

        >>> str(Platform.parse("linux/aarch64"))
        'linux/arm64'
        >>> Platform.parse("windows(10.0.17763)/amd64").os_version
        '10.0.17763'
        """
        parts = text.strip().split("/")
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise UsageError(f"invalid platform {text!r}: expected os/architecture[/variant]")
        if len(parts) == 1:
            if parts[0].lower() in _KNOWN_OS:
                raise UsageError(
                    f"invalid platform {text!r}: give an architecture too, e.g. {parts[0]}/amd64"
                )
            parts = ["linux", *parts]
        match = _OS_RE.fullmatch(parts[0])
        if not match or not all(_PART_RE.fullmatch(part) for part in parts[1:]):
            raise UsageError(f"invalid platform {text!r}: unexpected characters")
        variant = parts[2] if len(parts) == 3 else ""
        return cls.create(match["os"], parts[1], variant, match["version"] or "")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        """A platform from an index entry's ``platform`` object or an image config."""

        def text(key: str) -> str:
            value = data.get(key)
            return value if isinstance(value, str) else ""

        features = data.get("os.features")
        feature_list = tuple(f for f in features if isinstance(f, str)) if isinstance(features, list) else ()
        return cls.create(text("os"), text("architecture"), text("variant"), text("os.version"), feature_list)

    def without_version(self) -> Platform:
        return replace(self, os_version="", os_features=())

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out

    def describe(self) -> str:
        """``str()`` plus the OS version when there is one: ``windows/amd64 (10.0.17763.4010)``."""
        return f"{self} ({self.os_version})" if self.os_version else str(self)

    def to_json(self) -> dict[str, str | None]:
        return {
            "os": self.os,
            "architecture": self.architecture,
            "variant": self.variant or None,
            "os_version": self.os_version or None,
        }


def host_platform(machine: str, arm_version: str = "") -> Platform:
    """The default platform for a host whose ``platform.machine()`` is ``machine``: always Linux.

    Container images are Linux images whatever OS runs the client (macOS included), so the OS is
    ``linux``; ``arm_version`` is the CPU architecture version for 32-bit ARM hosts (``"7"``).

    >>> str(host_platform("x86_64")), str(host_platform("aarch64")), str(host_platform("armv6l", "6"))
    ('linux/amd64', 'linux/arm64', 'linux/arm/v6')
    """
    machine = machine.lower()
    if machine.startswith("armv") or machine == "arm":
        found = re.match(r"armv([0-9]+)", machine)
        return Platform.create("linux", "arm", arm_version or (found.group(1) if found else ""))
    if machine in ("arm64", "aarch64_be"):
        machine = "arm64"
    return Platform.create("linux", machine)


def _vector(wanted: Platform) -> list[Platform]:
    """The platforms a ``wanted`` host can run, most preferred first (containerd's platformVector)."""
    vector = [wanted]
    arch, variant = wanted.architecture, wanted.variant
    if arch == "amd64":
        level = int(variant[1:]) if re.fullmatch(r"v[0-9]+", variant) else 1
        vector += [replace(wanted, variant=f"v{v}" if v > 1 else "") for v in range(level - 1, 0, -1)]
        vector.append(replace(wanted, architecture="386", variant=""))
    elif arch == "arm":
        level = int(variant[1:]) if re.fullmatch(r"v[0-9]+", variant) else 7
        vector += [replace(wanted, variant=f"v{v}") for v in range(level - 1, 4, -1)]
    elif arch == "arm64":
        if variant.startswith("v9"):
            vector.append(replace(wanted, variant=""))
        vector += [replace(wanted, architecture="arm", variant=f"v{v}") for v in range(8, 4, -1)]
    return vector


@dataclass(frozen=True)
class Matcher:
    """Ranks candidate platforms for a wanted one: lower is better, None means no match."""

    wanted: Platform
    strict: bool = False

    def rank(self, candidate: Platform) -> int | None:
        if self.wanted.os_version and not (
            candidate.os_version == self.wanted.os_version
            or candidate.os_version.startswith(self.wanted.os_version + ".")
        ):
            return None
        plain = candidate.without_version()
        vector = [self.wanted.without_version()] if self.strict else _vector(self.wanted.without_version())
        for rank, option in enumerate(vector):
            if plain == option:
                return rank
        return None

    def matches(self, candidate: Platform) -> bool:
        return self.rank(candidate) is not None

    def __str__(self) -> str:
        return self.wanted.describe()


def only(wanted: Platform, *, strict: bool = False) -> Matcher:
    """A matcher for ``wanted`` with containerd's fallbacks (or exact matching when ``strict``)."""
    return Matcher(wanted, strict)
