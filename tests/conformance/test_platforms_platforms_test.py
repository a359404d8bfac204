"""containerd/platforms ``platforms_test.go``, translated to :mod:`regpeek.formats.platform`.

``Parse`` is :meth:`Platform.parse`, ``NewMatcher(p).Match`` is ``only(p, strict=True).matches``
(containerd's matcher normalises both sides and compares exactly), ``Format`` is ``str()`` and
``FormatAll`` is :meth:`Platform.format_all`. Upstream's expected values are the raw ``Parse`` output;
regpeek normalises when parsing, so they are compared after :meth:`Platform.create` normalises them.
Host-dependent values are those of containerd on linux/amd64, the host regpeek's rules assume
(``defaultOS`` is ``linux``: a bare architecture means Linux; ``defaultArch`` is ``amd64``). Not
ported: ``FuzzPlatformsParse`` (its one seed parses; the property holds by construction) and the
benchmarks, which assert nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.errors import UsageError
from regpeek.formats.platform import Platform, only
from tests.conformance._rows import CONTAINERD_PLATFORMS, Suite, params

SUITE = Suite.of(CONTAINERD_PLATFORMS, "platforms_test.go")
DEFAULT_OS = "linux"
DEFAULT_ARCH = "amd64"


class Spec(NamedTuple):
    """An image-spec ``Platform`` literal as the Go test writes it."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    def normalised(self) -> Platform:
        return Platform.create(self.os, self.architecture, self.variant, self.os_version, self.os_features)


# -- TestParseSelector (platforms_test.go:30) ----------------------------------------------------------
class Selector(NamedTuple):
    line: int
    input: str
    expected: Spec
    formatted: str  # for bare-OS rows: the first part of upstream's path.Join(...), the OS specifier
    matches: tuple[Spec, ...] = ()
    v2: bool = False
    skip: bool = False  # upstream skips the wildcard rows: "not yet supported"
    intentional: str | None = None


BARE = "bare-os-refused"
NORMALISED = "normalised-at-parse"
AARCH64_MATCHES = (Spec("linux", "aarch64"), Spec("linux", "aarch64", "v8"))
PARSE_SELECTOR = [
    Selector(55, "*", Spec("*", "*"), "*/*", skip=True),
    Selector(65, "linux/*", Spec("linux", "*"), "linux/*", skip=True),
    Selector(75, "*/arm64", Spec("*", "arm64"), "*/arm64",
             (Spec("*", "aarch64"), Spec("*", "aarch64", "v8"), Spec("*", "arm64", "v8")), skip=True),
    Selector(100, "linux/arm64", Spec("linux", "arm64"), "linux/arm64",
             (*AARCH64_MATCHES, Spec("linux", "arm64", "v8"))),
    Selector(125, "linux/arm64/v8", Spec("linux", "arm64", "v8"), "linux/arm64/v8",
             (*AARCH64_MATCHES, Spec("linux", "arm64")), intentional=NORMALISED),
    Selector(153, "linux/arm", Spec("linux", "arm"), "linux/arm",
             (Spec("linux", "arm", "v7"), Spec("linux", "armhf"), Spec("linux", "arm", "7")), intentional=NORMALISED),
    Selector(178, "linux/arm/v6", Spec("linux", "arm", "v6"), "linux/arm/v6", (Spec("linux", "armel"),)),
    Selector(194, "linux/arm/v7", Spec("linux", "arm", "v7"), "linux/arm/v7",
             (Spec("linux", "arm"), Spec("linux", "armhf"))),
    Selector(214, "arm", Spec(DEFAULT_OS, "arm"), "linux/arm", intentional=NORMALISED),
    Selector(223, "armel", Spec(DEFAULT_OS, "arm", "v6"), "linux/arm/v6"),
    Selector(233, "armhf", Spec(DEFAULT_OS, "arm"), "linux/arm", intentional=NORMALISED),
    Selector(242, "Aarch64", Spec(DEFAULT_OS, "arm64"), "linux/arm64"),
    Selector(251, "x86_64", Spec(DEFAULT_OS, "amd64"), "linux/amd64"),
    Selector(260, "Linux/x86_64", Spec("linux", "amd64"), "linux/amd64"),
    Selector(269, "i386", Spec(DEFAULT_OS, "386"), "linux/386"),
    Selector(278, "linux", Spec("linux", DEFAULT_ARCH), "linux", intentional=BARE),
    Selector(288, "s390x", Spec(DEFAULT_OS, "s390x"), "linux/s390x"),
    Selector(297, "linux/s390x", Spec("linux", "s390x"), "linux/s390x"),
    Selector(306, "macOS", Spec("darwin", DEFAULT_ARCH), "darwin", intentional=BARE),
    Selector(316, "windows", Spec("windows", DEFAULT_ARCH), "windows", intentional=BARE),
    Selector(327, "windows()", Spec("windows", DEFAULT_ARCH), "windows", v2=True, intentional=BARE),
    Selector(338, "windows(10.0.17763)", Spec("windows", DEFAULT_ARCH, os_version="10.0.17763"),
             "windows(10.0.17763)", v2=True, intentional=BARE),
    Selector(349, "windows(10.0.17763+win32k)", Spec("windows", DEFAULT_ARCH, "", "10.0.17763", ("win32k",)),
             "windows(10.0.17763+win32k)", v2=True, intentional=BARE),
    Selector(361, "linux(+gpu)", Spec("linux", DEFAULT_ARCH, os_features=("gpu",)), "linux(+gpu)", v2=True,
             intentional=BARE),
    Selector(373, "linux(+gpu+simd)", Spec("linux", DEFAULT_ARCH, os_features=("gpu", "simd")),
             "linux(+gpu+simd)", v2=True, intentional=BARE),
    Selector(385, "linux(+unsorted+erofs)", Spec("linux", DEFAULT_ARCH, os_features=("unsorted", "erofs")),
             "linux(+erofs+unsorted)", v2=True, intentional=BARE),
    Selector(397, "windows(10.0.17763%2Bbuild.42)", Spec("windows", DEFAULT_ARCH, os_version="10.0.17763+build.42"),
             "windows(10.0.17763%2Bbuild.42)", v2=True, intentional=BARE),
    Selector(408, "windows(10.0.17763%2Bbuild.42+win32k)",
             Spec("windows", DEFAULT_ARCH, "", "10.0.17763+build.42", ("win32k",)),
             "windows(10.0.17763%2Bbuild.42+win32k)", v2=True, intentional=BARE),
    Selector(420, "windows(50%25done)", Spec("windows", DEFAULT_ARCH, os_version="50%done"),
             "windows(50%25done)", v2=True, intentional=BARE),
]  # fmt: skip


def _format(platform: Platform, v2: bool) -> str:
    return platform.format_all() if v2 else str(platform)


def _check_parsed(row: Selector, text: str, formatted: str) -> None:
    platform = Platform.parse(text)
    assert platform == row.expected.normalised()
    matcher = only(platform, strict=True)  # NewMatcher
    assert matcher.matches(row.expected.normalised())
    for candidate in row.matches:
        assert matcher.matches(candidate.normalised()), candidate
    assert _format(platform, row.v2) == formatted
    assert _format(Platform.parse(formatted), row.v2) == formatted  # stable round trip


@pytest.mark.parametrize("row", params(SUITE, PARSE_SELECTOR, "TestParseSelector"))
def test_parse_selector(row: Selector) -> None:
    if row.skip:  # containerd's Parse refuses wildcards ("not yet supported"); so does regpeek
        with pytest.raises(UsageError):
            Platform.parse(row.input)
        return
    if row.intentional == BARE:
        with pytest.raises(UsageError, match="give an architecture too"):
            Platform.parse(row.input)
        # what the message asks for: the same OS options with the architecture containerd would pick
        _check_parsed(row, f"{row.input}/{DEFAULT_ARCH}", f"{row.formatted}/{DEFAULT_ARCH}")
        return
    if row.intentional == NORMALISED:
        normalised = _format(row.expected.normalised(), row.v2)
        assert normalised != row.formatted
        _check_parsed(row, row.input, normalised)
        assert Platform.parse(row.formatted) == Platform.parse(row.input)  # upstream's form reads the same
        return
    _check_parsed(row, row.input, row.formatted)


# -- TestFormatAllEncoding (platforms_test.go:485) -------------------------------------------------------
class Encoding(NamedTuple):
    line: int
    platform: Spec
    expected: str
    intentional: str | None = None


FORMAT_ALL_ENCODING = [
    Encoding(491, Spec("windows", "amd64", os_version="10.0.17763+build.42"), "windows(10.0.17763%2Bbuild.42)/amd64"),
    Encoding(495, Spec("windows", "amd64", "", "10.0.17763+build.42", ("win32k",)),
             "windows(10.0.17763%2Bbuild.42+win32k)/amd64"),
    Encoding(499, Spec("windows", "amd64", os_version="50%done"), "windows(50%25done)/amd64"),
    Encoding(503, Spec("windows", "amd64", os_version="1.0(beta)"), "windows(1.0%28beta%29)/amd64"),
    Encoding(507, Spec("windows", "amd64", os_version="a/b"), "windows(a%2Fb)/amd64"),
    Encoding(512, Spec("windows", "amd64", os_version="10.0.17763"), "windows(10.0.17763)/amd64"),
    Encoding(517, Spec("linux", "amd64", os_features=("feat+v2",)), "linux(+feat%2Bv2)/amd64"),
    Encoding(522, Spec("linux", "amd64", os_features=("100%gpu",)), "linux(+100%25gpu)/amd64"),
    Encoding(527, Spec("windows", "amd64", "", "10.0+build", ("feat+1",)), "windows(10.0%2Bbuild+feat%2B1)/amd64"),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, FORMAT_ALL_ENCODING, "TestFormatAllEncoding"))
def test_format_all_encoding(row: Encoding) -> None:
    platform = row.platform.normalised()
    assert platform.format_all() == row.expected
    reparsed = Platform.parse(row.expected)
    assert reparsed.os_version == row.platform.os_version
    assert reparsed.os_features == row.platform.os_features


# -- TestParseSelectorInvalid (platforms_test.go:552) ----------------------------------------------------
class Invalid(NamedTuple):
    line: int
    input: str
    intentional: str | None = None


PARSE_SELECTOR_INVALID = [
    Invalid(557, ""),
    Invalid(560, "/linux/arm"),
    Invalid(563, "linux/arm/"),
    Invalid(566, "linux /arm"),
    Invalid(569, "linux/&arm"),
    Invalid(572, "linux/arm/foo/bar"),
]


@pytest.mark.parametrize("row", params(SUITE, PARSE_SELECTOR_INVALID, "TestParseSelectorInvalid"))
def test_parse_selector_invalid(row: Invalid) -> None:
    with pytest.raises(UsageError, match="invalid platform"):
        Platform.parse(row.input)


# -- TestFormatAllSkipsEmptyOSFeatures (platforms_test.go:583) -------------------------------------------
class SkipsEmpty(NamedTuple):
    line: int
    platform: Spec
    expected: str
    intentional: str | None = None


SKIPS_EMPTY = [
    SkipsEmpty(584, Spec("linux", "amd64", os_features=("", "gpu", "", "simd")), "linux(+gpu+simd)/amd64")
]


@pytest.mark.parametrize("row", params(SUITE, SKIPS_EMPTY, "TestFormatAllSkipsEmptyOSFeatures"))
def test_format_all_skips_empty_os_features(row: SkipsEmpty) -> None:
    assert row.platform.normalised().format_all() == row.expected
    # also when the platform is built without normalising, as a Go struct literal would be
    raw = Platform(row.platform.os, row.platform.architecture, "", "", row.platform.os_features)
    assert raw.format_all() == row.expected


ROWS = [*PARSE_SELECTOR, *FORMAT_ALL_ENCODING, *PARSE_SELECTOR_INVALID, *SKIPS_EMPTY]
