"""Platforms: normalisation, parsing and containerd-style matching."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings

from regpeek.errors import UsageError
from regpeek.formats.platform import Platform, host_platform, only
from tests.unit.strategies import ARCH_SPELLINGS, VARIANT_SPELLINGS, platforms

# (os, architecture, variant) as given -> str() of the normalised platform
NORMALISE = [
    pytest.param("linux", "x86_64", "", "linux/amd64", id="x86_64"),
    pytest.param("linux", "x86-64", "", "linux/amd64", id="x86-64"),
    pytest.param("linux", "amd64", "v1", "linux/amd64", id="amd64-v1"),
    pytest.param("linux", "amd64", "v3", "linux/amd64/v3", id="amd64-v3-kept"),
    pytest.param("linux", "AMD64", "", "linux/amd64", id="uppercase-arch"),
    pytest.param("linux", "aarch64", "", "linux/arm64", id="aarch64"),
    pytest.param("linux", "arm64", "v8", "linux/arm64", id="arm64-v8"),
    pytest.param("linux", "arm64", "8", "linux/arm64", id="arm64-8"),
    pytest.param("linux", "aarch64", "v8", "linux/arm64", id="aarch64-v8"),
    pytest.param("linux", "arm64", "v8.0", "linux/arm64", id="arm64-v8.0"),
    pytest.param("linux", "arm64", "8.0", "linux/arm64", id="arm64-8.0-like-v8.0"),
    pytest.param("linux", "arm64", "V8", "linux/arm64", id="arm64-uppercase-V8"),
    pytest.param("linux", "arm64", "v9.0", "linux/arm64/v9", id="arm64-v9.0-is-v9"),
    pytest.param("linux", "arm64", "9", "linux/arm64/v9", id="arm64-9-is-v9"),
    pytest.param("linux", "arm64", "v9.2", "linux/arm64/v9.2", id="arm64-v9.2-kept"),
    pytest.param("linux", "armhf", "", "linux/arm/v7", id="armhf"),
    pytest.param("linux", "armel", "", "linux/arm/v6", id="armel"),
    pytest.param("linux", "arm", "", "linux/arm/v7", id="arm-defaults-to-v7"),
    pytest.param("linux", "arm", "7", "linux/arm/v7", id="arm-7"),
    pytest.param("linux", "arm", "6", "linux/arm/v6", id="arm-6"),
    pytest.param("linux", "arm", "v5", "linux/arm/v5", id="arm-v5"),
    pytest.param("linux", "i386", "", "linux/386", id="i386"),
    pytest.param("linux", "i686", "", "linux/386", id="i686"),
    pytest.param("macos", "arm64", "", "darwin/arm64", id="macos"),
    pytest.param("Linux", "amd64", "", "linux/amd64", id="uppercase-os"),
    pytest.param("windows", "amd64", "", "windows/amd64", id="windows"),
    pytest.param("linux", "ppc64le", "", "linux/ppc64le", id="ppc64le-untouched"),
    pytest.param("linux", "riscv64", "", "linux/riscv64", id="riscv64-untouched"),
]


@pytest.mark.parametrize(("os", "architecture", "variant", "expected"), NORMALISE)
def test_normalise(os: str, architecture: str, variant: str, expected: str) -> None:
    platform = Platform.create(os, architecture, variant)
    assert str(platform) == expected
    assert Platform.from_json({"os": os, "architecture": architecture, "variant": variant}) == platform


PARSE = [
    pytest.param("linux/amd64", Platform("linux", "amd64"), id="os-arch"),
    pytest.param("linux/arm/v7", Platform("linux", "arm", "v7"), id="os-arch-variant"),
    pytest.param("linux/arm", Platform("linux", "arm", "v7"), id="arm-default-variant"),
    pytest.param("linux/aarch64", Platform("linux", "arm64"), id="aarch64"),
    pytest.param("linux/arm64/v8", Platform("linux", "arm64"), id="arm64-v8"),
    pytest.param("arm64", Platform("linux", "arm64"), id="bare-arch-is-linux"),
    pytest.param("x86_64", Platform("linux", "amd64"), id="bare-x86_64"),
    pytest.param("armhf", Platform("linux", "arm", "v7"), id="bare-armhf"),
    pytest.param("windows/amd64", Platform("windows", "amd64"), id="windows"),
    pytest.param(
        "windows(10.0.17763.4010)/amd64",
        Platform("windows", "amd64", "", "10.0.17763.4010"),
        id="windows-os-version",
    ),
    pytest.param("macos/arm64", Platform("darwin", "arm64"), id="macos"),
    pytest.param("  linux/amd64  ", Platform("linux", "amd64"), id="surrounding-space"),
    pytest.param("LINUX/AMD64", Platform("linux", "amd64"), id="uppercase"),
    pytest.param("linux(+gpu)/amd64", Platform("linux", "amd64", "", "", ("gpu",)), id="os-feature"),
    pytest.param("linux(+simd+gpu+gpu)/amd64", Platform("linux", "amd64", "", "", ("gpu", "simd")),
                 id="os-features-sorted-deduplicated"),
    pytest.param("windows(10.0.17763+win32k)/amd64", Platform("windows", "amd64", "", "10.0.17763", ("win32k",)),
                 id="version-and-feature"),
    pytest.param("windows(10.0.17763%2Bbuild.42)/amd64", Platform("windows", "amd64", "", "10.0.17763+build.42"),
                 id="percent-encoded-plus"),
    pytest.param("windows(50%25done)/amd64", Platform("windows", "amd64", "", "50%done"), id="percent-encoded-percent"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), PARSE)
def test_parse(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("/", id="slash"),
        pytest.param("linux/", id="trailing-slash"),
        pytest.param("/amd64", id="leading-slash"),
        pytest.param("linux//amd64", id="double-slash"),
        pytest.param("linux/arm/v7/extra", id="four-parts"),
        pytest.param("linux", id="bare-os"),
        pytest.param("windows", id="bare-windows"),
        pytest.param("linux/amd 64", id="space-inside"),
        pytest.param("linux/amd64;rm", id="semicolon"),
        pytest.param("windows(10.0/amd64", id="unclosed-version"),
        pytest.param("windows(10 0)/amd64", id="space-in-version"),
        pytest.param("linux/amd64/v1)", id="paren-in-variant"),
        # `$` matches before a trailing newline in Python: an embedded newline must not slip through.
        pytest.param("linux/amd64\n/v2", id="newline-inside-architecture"),
        pytest.param("linux\n/amd64", id="newline-inside-os"),
        pytest.param("macOS", id="bare-macos-is-an-os"),
        pytest.param("linux(+gpu)", id="bare-os-with-feature"),
        pytest.param("linux(++gpu)/amd64", id="empty-feature"),
        pytest.param("windows(10.0%zz)/amd64", id="bad-percent-escape"),
        pytest.param("windows(10.0%2)/amd64", id="short-percent-escape"),
        pytest.param("windows(%ff)/amd64", id="escape-not-utf8"),
        pytest.param("*/amd64", id="wildcard"),
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(UsageError, match="invalid platform"):
        Platform.parse(text)


@pytest.mark.parametrize("text", ["macOS", "MacOS", "macos", "darwin"])
def test_bare_macos_asks_for_an_architecture(text: str) -> None:
    """The OS alias applies before the bare-OS check: never ``linux/macos`` (issue 10, item 3)."""
    with pytest.raises(UsageError, match=r"give an architecture too, e\.g\. darwin/amd64"):
        Platform.parse(text)


@pytest.mark.parametrize(
    "platform",
    [
        Platform.create("windows", "amd64", "", "10.0.17763+build.42", ["win32k"]),
        Platform.create("windows", "amd64", "", "1.0(beta)/x%"),
        Platform.create("linux", "arm64", "v8.2", "", ["feat+v2", "100%gpu", ""]),
        Platform.create("linux", "arm", "v6"),
    ],
)
def test_format_all_round_trip(platform: Platform) -> None:
    assert Platform.parse(platform.format_all()) == platform


def test_describe_and_to_json() -> None:
    windows = Platform.parse("windows(10.0.17763.4010)/amd64")
    assert str(windows) == "windows/amd64"
    assert windows.describe() == "windows/amd64 (10.0.17763.4010)"
    assert windows.to_dict() == {
        "os": "windows",
        "architecture": "amd64",
        "variant": None,
        "os_version": "10.0.17763.4010",
    }
    arm = Platform.parse("linux/arm/v6")
    assert arm.describe() == "linux/arm/v6"
    assert arm.to_dict() == {"os": "linux", "architecture": "arm", "variant": "v6", "os_version": None}


def test_from_json_reads_os_version_and_features() -> None:
    platform = Platform.from_json(
        {"os": "windows", "architecture": "amd64", "os.version": "10.0.1", "os.features": ["win32k", 3]}
    )
    assert platform == Platform("windows", "amd64", "", "10.0.1", ("win32k",))
    assert platform.without_version() == Platform("windows", "amd64")


def test_from_json_tolerates_wrong_types() -> None:
    assert Platform.from_json({"os": 1, "architecture": None, "os.features": "x"}) == Platform("", "")


# -- matching ----------------------------------------------------------------------------------

# wanted, platforms it must match, platforms it must not match (strict=False: containerd's Only)
ONLY = [
    pytest.param("linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"],
                 ["linux/amd64/v4", "linux/arm64", "windows/amd64"], id="amd64-v3-falls-back"),
    pytest.param("linux/amd64", ["linux/amd64", "linux/amd64/v1", "linux/386", "linux/x86_64"],
                 ["linux/amd64/v2", "linux/arm64", "linux/arm/v7"], id="amd64"),
    pytest.param("linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5", "linux/armhf", "linux/arm"],
                 ["linux/arm/v8", "linux/arm64", "linux/amd64"], id="arm-v7"),
    pytest.param("linux/arm/v6", ["linux/arm/v6", "linux/arm/v5", "linux/armel"],
                 ["linux/arm/v7", "linux/arm"], id="arm-v6"),
    pytest.param("linux/arm64", ["linux/arm64", "linux/arm64/v8", "linux/aarch64", "linux/arm/v8",
                                 "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
                 ["linux/amd64", "linux/386", "darwin/arm64", "linux/arm64/v9"], id="arm64"),
    pytest.param("linux/386", ["linux/386", "linux/i386"], ["linux/amd64"], id="386-no-upgrade"),
    pytest.param("linux/ppc64le", ["linux/ppc64le"], ["linux/ppc64", "linux/amd64"], id="ppc64le-exact"),
    pytest.param("windows/amd64", ["windows/amd64", "windows(10.0.17763.4010)/amd64"],
                 ["linux/amd64"], id="windows-any-version"),
    pytest.param("linux/arm64/v8.1", ["linux/arm64/v8.1", "linux/arm64", "linux/arm/v8", "linux/arm/v5"],
                 ["linux/arm64/v8.2", "linux/arm64/v9"], id="arm64-v8.1-runs-plain-arm64"),
    pytest.param("linux/arm64/v9.2", ["linux/arm64/v9.2", "linux/arm64/v9.1", "linux/arm64/v9.0",
                                      "linux/arm64/v8.7", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v7"],
                 ["linux/arm64/v9.3", "linux/arm64/v8.8"], id="arm64-v9.2"),
    pytest.param("linux/arm/vfoo", ["linux/arm/vfoo"], ["linux/arm/v6", "linux/arm/v5", "linux/arm"],
                 id="unknown-arm-variant-no-fallback"),
    pytest.param("linux/arm64/v10", ["linux/arm64/v10"], ["linux/arm64", "linux/arm/v7"],
                 id="unknown-arm64-variant-no-fallback"),
    pytest.param("linux(+gpu)/amd64", ["linux/amd64", "linux(+gpu)/amd64"], ["linux(+gpu+simd)/amd64"],
                 id="features-subset"),
    pytest.param("linux/amd64", ["linux/amd64"], ["linux(+gpu)/amd64"], id="candidate-feature-not-wanted"),
    pytest.param("windows/amd64", ["windows(10.0.17763+win32k)/amd64"], [], id="win32k-ignored-on-windows"),
    pytest.param("linux(5.10)/amd64", ["linux/amd64", "linux(4.19)/amd64"], [], id="version-ignored-off-windows"),
]  # fmt: skip


@pytest.mark.parametrize(("wanted", "matching", "not_matching"), ONLY)
def test_only(wanted: str, matching: list[str], not_matching: list[str]) -> None:
    matcher = only(Platform.parse(wanted))
    for candidate in matching:
        assert matcher.matches(Platform.parse(candidate)), candidate
    for candidate in not_matching:
        assert not matcher.matches(Platform.parse(candidate)), candidate


@pytest.mark.parametrize(
    ("wanted", "ordered"),
    [
        pytest.param("linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"],
                     id="amd64-v3"),
        pytest.param("linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"], id="arm-v7"),
        pytest.param("linux/arm64", ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6",
                                     "linux/arm/v5"], id="arm64-before-arm"),
    ],
)  # fmt: skip
def test_only_ranks_best_first(wanted: str, ordered: list[str]) -> None:
    matcher = only(Platform.parse(wanted))
    ranks = [matcher.rank(Platform.parse(candidate)) for candidate in ordered]
    assert ranks == list(range(len(ordered)))


def test_more_matching_features_rank_first() -> None:
    matcher = only(Platform.parse("linux(+f1+f2)/amd64"))
    keys = [
        matcher.key(Platform.parse(text))
        for text in ["linux(+f1+f2)/amd64", "linux(+f2)/amd64", "linux/amd64"]
    ]
    assert keys == [(0, -2), (0, -1), (0, 0)]
    assert matcher.key(Platform.parse("linux(+f3)/amd64")) is None


@pytest.mark.parametrize(
    ("wanted", "candidate", "expected"),
    [
        pytest.param("linux/amd64/v3", "linux/amd64/v3", True, id="exact"),
        pytest.param("linux/amd64/v3", "linux/amd64/v2", False, id="no-amd64-fallback"),
        pytest.param("linux/arm/v7", "linux/arm/v6", False, id="no-arm-fallback"),
        pytest.param("linux/arm64", "linux/arm/v7", False, id="no-arm64-to-arm"),
        pytest.param("linux/arm64", "linux/arm64/v8", True, id="normalised-equal"),
        pytest.param("linux/amd64", "linux/386", False, id="no-386"),
        pytest.param("linux/arm64/v9", "linux/arm64/v9.0", True, id="v9.0-is-v9"),
    ],
)
def test_only_strict(wanted: str, candidate: str, expected: bool) -> None:
    assert only(Platform.parse(wanted), strict=True).matches(Platform.parse(candidate)) is expected


@pytest.mark.parametrize(
    ("wanted", "candidate", "expected"),
    [
        pytest.param("windows(10.0.17763)/amd64", "windows(10.0.17763.4010)/amd64", True, id="prefix"),
        pytest.param("windows(10.0.17763.4010)/amd64", "windows(10.0.17763.4010)/amd64", True, id="exact"),
        pytest.param("windows(10.0.1776)/amd64", "windows(10.0.17763.4010)/amd64", False,
                     id="prefix-must-end-at-a-dot"),
        pytest.param("windows(10.0.17763)/amd64", "windows(10.0.20348.2113)/amd64", False, id="other-build"),
        pytest.param("windows(10.0.17763)/amd64", "windows/amd64", False, id="candidate-without-version"),
        pytest.param("windows/amd64", "windows(10.0.20348.2113)/amd64", True, id="wanted-without-version"),
    ],
)  # fmt: skip
def test_os_version_prefix_matching(wanted: str, candidate: str, expected: bool) -> None:
    assert only(Platform.parse(wanted)).matches(Platform.parse(candidate)) is expected


def test_matcher_str_describes_wanted() -> None:
    assert str(only(Platform.parse("windows(10.0.17763)/amd64"))) == "windows/amd64 (10.0.17763)"


@pytest.mark.parametrize(
    ("machine", "arm_version", "expected"),
    [
        pytest.param("x86_64", "", "linux/amd64", id="x86_64"),
        pytest.param("AMD64", "", "linux/amd64", id="windows-AMD64"),
        pytest.param("aarch64", "", "linux/arm64", id="aarch64"),
        pytest.param("arm64", "", "linux/arm64", id="macos-arm64"),
        pytest.param("armv7l", "", "linux/arm/v7", id="armv7l"),
        pytest.param("armv6l", "6", "linux/arm/v6", id="armv6l"),
        pytest.param("armv6l", "", "linux/arm/v6", id="armv6l-from-the-machine-name"),
        pytest.param("armv5tel", "", "linux/arm/v5", id="armv5tel"),
        pytest.param("aarch64_be", "", "linux/arm64", id="aarch64_be"),
        pytest.param("armv7l", "6", "linux/arm/v6", id="cpuinfo-wins"),
        pytest.param("arm", "", "linux/arm/v7", id="plain-arm"),
        pytest.param("i686", "", "linux/386", id="i686"),
        pytest.param("ppc64le", "", "linux/ppc64le", id="ppc64le"),
        pytest.param("s390x", "", "linux/s390x", id="s390x"),
    ],
)
def test_host_platform(machine: str, arm_version: str, expected: str) -> None:
    assert str(host_platform(machine, arm_version)) == expected


# -- properties ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(platforms(with_version=True))
def test_only_matches_itself(platform: Platform) -> None:
    assert only(platform).matches(platform)
    assert only(platform, strict=True).matches(platform)
    assert only(platform).rank(platform) == 0


@settings(max_examples=150, deadline=None)
@given(platforms(with_version=True))
def test_normalise_is_idempotent(platform: Platform) -> None:
    again = Platform.create(
        platform.os, platform.architecture, platform.variant, platform.os_version, platform.os_features
    )
    assert again == platform


def test_normalise_is_idempotent_for_known_spellings() -> None:
    not_idempotent = []
    for architecture, variant in itertools.product(ARCH_SPELLINGS, VARIANT_SPELLINGS):
        once = Platform.create("linux", architecture, variant)
        if Platform.create(once.os, once.architecture, once.variant) != once:
            not_idempotent.append(f"{architecture}/{variant} -> {once}")
    assert not_idempotent == []


@settings(max_examples=150, deadline=None)
@given(platforms())
def test_parse_str_round_trip(platform: Platform) -> None:
    assert Platform.parse(str(platform)) == platform
