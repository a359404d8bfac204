"""Platforms (``os/architecture[/variant]``): parse, normalise and match them the way containerd does.

Syntax (containerd's ``platforms.Parse``): ``linux/amd64``, ``linux/arm/v7``, ``linux/arm64``,
``windows/amd64``; OS options go in parentheses after the OS: an OS version and ``+``-prefixed OS
features, ``windows(10.0.17763.4010)/amd64``, ``linux(+gpu)/amd64``, ``windows(10.0.17763+win32k)/amd64``.
``%``, ``+``, ``(``, ``)`` and ``/`` inside a version or a feature are %-encoded
(``windows(10.0.17763%2Bbuild.42)/amd64`` is version ``10.0.17763+build.42``); :meth:`Platform.format_all`
writes that form back. A single architecture such as ``arm64`` means ``linux/arm64``; a single OS
(``linux``, ``macOS``) is refused with "give an architecture" (containerd would fill in the host's).

Normalisation (both sides are normalised before comparing; regpeek normalises when parsing):

============================  =====================
given                          normalised
============================  =====================
x86_64, x86-64, amd64/v1       amd64
i386 .. i686                   386
aarch64, arm64/v8, arm64/8     arm64
arm64/9, arm64/9.0, v9.0       arm64/v9
armhf, arm, arm/7              arm/v7
armel                          arm/v6
macos (os)                     darwin
os features                    sorted, without duplicates or empty entries
============================  =====================

Matching (:func:`only`) follows containerd's ``platforms.Only``: an exact match first, then fallbacks in
order: amd64/vN -> ... -> amd64 -> 386; arm/vN -> ... -> arm/v5; arm64/v9.x -> ... -> arm64/v9 ->
arm64/v8.(x+5) -> ... -> arm64 (v8) -> arm/v8 -> ... -> arm/v5; arm64/v8.x -> ... -> arm64 -> arm/v8 ... .
A variant with no known fallbacks (``arm/vfoo``, ``arm64/v10``) matches only itself (containerd's
``Only`` matches nothing at all for an unknown arm64 variant; an exact entry is still the one asked
for). A candidate's OS features must be a subset of the wanted ones (Windows' ``win32k`` is ignored);
among equal matches the one with more features wins, then the first. ``os.version`` is compared for Windows only: a wanted
version matches a candidate whose version equals it or starts with it followed by ``.``; a candidate
without a version does not match a wanted version. The host default is passed in by the caller; nothing
here reads the host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from regpeek.errors import UsageError

__all__ = ["Matcher", "Platform", "host_platform", "only"]

# containerd's isKnownOS (generated from Go's syslist) plus wasip1.
_KNOWN_OS = {
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
}
_OS_ALIASES = {"macos": "darwin"}
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
# arm64 variant -> (major, highest minor) pairs it can run, best first (containerd's arm64variantToVersion).
_ARM64_VERSIONS: dict[str, tuple[tuple[int, int], ...]] = {
    **{("v8" if minor == 0 else f"v8.{minor}"): ((8, minor),) for minor in range(10)},
    **{("v9" if minor == 0 else f"v9.{minor}"): ((9, minor), (8, min(minor + 5, 9))) for minor in range(8)},
}
_PART_RE = re.compile(r"[A-Za-z0-9_.-]+")
_OS_RE = re.compile(
    r"(?P<os>[A-Za-z0-9_-]+)(?:\((?P<version>[A-Za-z0-9_.%-]*)(?P<features>(?:\+[A-Za-z0-9_.%-]+)*)\))?"
)
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPE_RE = re.compile(rb"%([0-9A-Fa-f]{2})")
_NUMBER_RE = re.compile(r"[0-9]+")


def _normalize_os(os: str) -> str:
    os = os.lower()
    return _OS_ALIASES.get(os, os)


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
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        elif re.fullmatch(r"[0-9]+(\.[0-9]+)?", variant):
            variant = "v" + variant
    elif architecture == "arm":
        if variant == "":
            variant = "v7"
        elif _NUMBER_RE.fullmatch(variant):
            variant = "v" + variant
    return architecture, variant


def _normalize_features(features: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({feature for feature in features if feature}))


def _encode_option(value: str) -> str:
    """%-encode what would be read as syntax inside ``os(...)`` (``%`` first, so nothing is encoded twice)."""
    for char, code in (("%", "%25"), ("+", "%2B"), ("(", "%28"), (")", "%29"), ("/", "%2F")):
        value = value.replace(char, code)
    return value


def _decode_option(value: str, text: str) -> str:
    if "%" not in value:
        return value
    if _BAD_ESCAPE_RE.search(value):
        raise UsageError(f"invalid platform {text!r}: bad %-escape in {value!r}")
    try:  # Go's url.PathUnescape
        return _ESCAPE_RE.sub(lambda match: bytes.fromhex(match.group(1).decode()), value.encode()).decode()
    except UnicodeDecodeError:
        raise UsageError(f"invalid platform {text!r}: %-escape in {value!r} is not UTF-8") from None


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
        os_features: Iterable[str] = (),
    ) -> Platform:
        """A normalised platform from its parts."""
        architecture, variant = _normalize_arch(architecture, variant)
        return cls(_normalize_os(os), architecture, variant, os_version, _normalize_features(os_features))

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os[(version[+feature]...)]/arch[/variant]`` (or a bare architecture); raises ``UsageError``.

        >>> str(Platform.parse("linux/aarch64"))
        'linux/arm64'
        >>> Platform.parse("windows(10.0.17763)/amd64").os_version
        '10.0.17763'
        >>> Platform.parse("linux(+gpu)/amd64").os_features
        ('gpu',)
        """
        parts = text.strip().split("/")
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise UsageError(f"invalid platform {text!r}: expected os/architecture[/variant]")
        match = _OS_RE.fullmatch(parts[0])
        if not match or not all(_PART_RE.fullmatch(part) for part in parts[1:]):
            raise UsageError(f"invalid platform {text!r}: unexpected characters")
        os = _normalize_os(match["os"])
        has_options = match["version"] is not None
        version = _decode_option(match["version"] or "", text)
        features = [_decode_option(f, text) for f in (match["features"] or "").split("+")[1:]]
        if len(parts) == 1:
            if os in _KNOWN_OS or has_options:
                example = f"{os}/amd64" if os in _KNOWN_OS else "linux/amd64"
                raise UsageError(f"invalid platform {text!r}: give an architecture too, e.g. {example}")
            return cls.create("linux", parts[0])
        variant = parts[2] if len(parts) == 3 else ""
        return cls.create(os, parts[1], variant, version, features)

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

    def format_all(self) -> str:
        """containerd's ``FormatAll``: ``str()`` plus the OS version and features, %-encoded.

        >>> Platform.create("windows", "amd64", "", "10.0.17763+build.42", ["win32k"]).format_all()
        'windows(10.0.17763%2Bbuild.42+win32k)/amd64'
        """
        if not self.os:
            return "unknown"
        head = self.os
        version = _encode_option(self.os_version)
        features = "+".join(_encode_option(feature) for feature in _normalize_features(self.os_features))
        if version or features:
            head += f"({version}{'+' + features if features else ''})"
        return "/".join(part for part in (head, self.architecture, self.variant) if part)

    def describe(self) -> str:
        """``str()`` plus the OS version and features when there are some: ``windows/amd64 (10.0.17763.4010)``,
        ``linux/amd64 (+gpu)``."""
        extra = self.os_version + "".join(f"+{feature}" for feature in self.os_features)
        return f"{self} ({extra})" if extra else str(self)

    def to_dict(self) -> dict[str, str | None]:
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


def _number(variant: str) -> int | None:
    """The number in a variant such as ``v7`` or ``7`` (containerd: ``Atoi(TrimPrefix(variant, "v"))``)."""
    digits = variant[1:] if variant.startswith("v") else variant
    return int(digits) if _NUMBER_RE.fullmatch(digits) else None


def _vector(wanted: Platform) -> list[Platform]:
    """The platforms a ``wanted`` host can run, most preferred first (containerd's platformVector)."""
    arch, variant = wanted.architecture, wanted.variant
    if arch == "amd64":
        level = _number(variant) or 1
        lower = [replace(wanted, variant=f"v{v}" if v > 1 else "") for v in range(level - 1, 0, -1)]
        return [wanted, *lower, replace(wanted, architecture="386", variant="")]
    if arch == "arm":
        arm_level = _number(variant)
        if arm_level is None or arm_level <= 5:
            return [wanted]  # an unknown variant has no fallbacks: never another variant's image
        return [wanted, *(replace(wanted, variant=f"v{v}") for v in range(arm_level - 1, 4, -1))]
    if arch == "arm64":
        versions = _ARM64_VERSIONS.get(variant or "v8")
        if versions is None:
            return [wanted]
        vector = [
            Platform.create(wanted.os, "arm64", f"v{major}.{minor}" if minor else f"v{major}",
                            wanted.os_version, wanted.os_features)
            for major, top in versions
            for minor in range(top, -1, -1)
        ]  # fmt: skip
        return vector + _vector(replace(wanted, architecture="arm", variant="v8"))
    return [wanted]


@dataclass(frozen=True)
class Matcher:
    """Ranks candidate platforms for a wanted one: lower is better, None means no match."""

    wanted: Platform
    strict: bool = False

    def _version_matches(self, candidate: Platform) -> bool:
        wanted = self.wanted.os_version
        if self.wanted.os != "windows" or not wanted:
            return True
        return candidate.os_version == wanted or candidate.os_version.startswith(wanted + ".")

    def _features(self, candidate: Platform) -> set[str]:
        features = set(candidate.os_features)
        if self.wanted.os == "windows":
            features.discard("win32k")  # containerd ignores it on Windows, as older clients did
        return features

    def rank(self, candidate: Platform) -> int | None:
        """The position of ``candidate`` in the wanted platform's fallback list, or None."""
        if not self._version_matches(candidate):
            return None
        if not self._features(candidate) <= set(self.wanted.os_features):
            return None
        plain = candidate.without_version()
        vector = [self.wanted] if self.strict else _vector(self.wanted)
        for rank, option in enumerate(vector):
            if plain == option.without_version():
                return rank
        return None

    def key(self, candidate: Platform) -> tuple[int, int] | None:
        """Sort key among matches: the rank, then more OS features first; None when not a match."""
        rank = self.rank(candidate)
        return None if rank is None else (rank, -len(self._features(candidate)))

    def matches(self, candidate: Platform) -> bool:
        return self.rank(candidate) is not None

    def __str__(self) -> str:
        return self.wanted.describe()


def only(wanted: Platform, *, strict: bool = False) -> Matcher:
    """A matcher for ``wanted`` with containerd's fallbacks (or exact matching when ``strict``)."""
    return Matcher(wanted, strict)
