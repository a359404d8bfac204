"""containerd/platforms ``defaults_test.go`` (its Windows matcher tests), translated to regpeek.

``NewMatcher(host).Match(test)`` is ``only(host, strict=True).matches(test)``; the ``Less`` ordering
is regpeek's ordering of index entries (matches by :meth:`Matcher.key`, the rest in their order).
See ``platform_windows_compat_test.go``'s module for why Windows versions differ.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats.platform import Platform, only
from tests.conformance._rows import CONTAINERD_PLATFORMS, Suite, params

SUITE = Suite.of(CONTAINERD_PLATFORMS, "defaults_test.go")
PREFIX = "windows-version-prefix"


def windows(version: str = "") -> Platform:
    return Platform.create("windows", "amd64", "", version)


NO_VERSION, WS2019, WS2022, WIN11 = (
    windows(),
    windows("10.0.17763"),
    windows("10.0.20348"),
    windows("10.0.22621"),
)


# -- TestMatchComparerMatch_ABICheckWCOW (defaults_test.go:30) -------------------------------------------
class Wcow(NamedTuple):
    line: int
    host: Platform
    test: Platform
    match: bool
    intentional: str | None = None


ABI_CHECK_WCOW = [
    Wcow(57, WS2019, windows("10.0.17763"), True),
    Wcow(66, WS2019, windows("10.0.20348"), False),
    Wcow(75, WS2022, windows("10.0.17763"), False),
    Wcow(84, WS2022, windows("10.0.20348"), True),
    Wcow(93, WIN11, windows("10.0.17763"), False),
    Wcow(102, WIN11, windows("10.0.20348"), True, intentional=PREFIX),
    Wcow(111, NO_VERSION, WS2019, True),
    Wcow(116, NO_VERSION, NO_VERSION, True),
    Wcow(121, NO_VERSION, WIN11, True),
]


@pytest.mark.parametrize("row", params(SUITE, ABI_CHECK_WCOW, "TestMatchComparerMatch_ABICheckWCOW"))
def test_match_comparer_match_abi_check_wcow(row: Wcow) -> None:
    matches = only(row.host, strict=True).matches(row.test)
    if row.intentional == PREFIX:
        assert matches is False  # a Windows 11 build is not a Server 2022 image
        return
    assert matches is row.match


# -- TestWindowsMatchComparerLess (defaults_test.go:133) ---------------------------------------------------
class Less(NamedTuple):
    line: int
    host: Platform
    platforms: tuple[Platform, ...]
    expected: tuple[Platform, ...]
    intentional: str | None = None


WINDOWS_LESS = [
    Less(134, windows("10.0.17763.1"),
         (windows("10.0.17764.1"), windows(), windows("10.0.17763.1"), windows("10.0.17763.2"), windows("10.0.17762.1")),
         (windows("10.0.17763.2"), windows("10.0.17763.1"), windows(), windows("10.0.17764.1"), windows("10.0.17762.1")),
         intentional=PREFIX),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, WINDOWS_LESS, "TestWindowsMatchComparerLess"))
def test_windows_match_comparer_less(row: Less) -> None:
    matcher = only(row.host, strict=True)

    def key(candidate: Platform) -> tuple[int, tuple[int, int]]:
        found = matcher.key(candidate)
        return (0, found) if found is not None else (1, (0, 0))

    ordered = tuple(sorted(row.platforms, key=key))
    assert row.intentional == PREFIX
    # only the exact revision asked for matches; containerd ranks every 10.0.17763.* and unversioned entry
    assert ordered == (windows("10.0.17763.1"), windows("10.0.17764.1"), windows(), windows("10.0.17763.2"),
                       windows("10.0.17762.1"))  # fmt: skip
    assert [c for c in row.expected if only(windows("10.0.17763")).matches(c)] == list(row.expected[:2])


ROWS = [*ABI_CHECK_WCOW, *WINDOWS_LESS]
