"""containerd/platforms ``platform_windows_compat_test.go``, translated to :func:`regpeek.formats.platform.only`.

containerd answers "can a Windows host of this build run a container of that build" (LTSC ABI
compatibility); regpeek answers "which image did the user ask for": a wanted ``os.version`` is a prefix
of the entry's (see the ``windows-version-prefix`` intentional difference). Rows where the two agree
pass as they are; the others assert regpeek's rule. ``checkWindowsHostAndContainerCompat(host, ctr)``
is ``only(windows(10.0.<host>)/amd64).matches(windows(10.0.<ctr>)/amd64)``; the ``Less`` ordering is
regpeek's choice among index entries (:meth:`Matcher.key`, first among equals).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats.platform import Platform, only
from tests.conformance._rows import CONTAINERD_PLATFORMS, Suite, params

SUITE = Suite.of(CONTAINERD_PLATFORMS, "platform_windows_compat_test.go")
PREFIX = "windows-version-prefix"
LTSC2019, LTSC2022, V22H2_WIN11, V23H2, LTSC2025 = 17763, 20348, 22621, 25398, 26100


def windows(version: str) -> Platform:
    return Platform.create("windows", "amd64", "", version)


# -- Test_PlatformCompat (platform_windows_compat_test.go:28) ----------------------------------------
class Compat(NamedTuple):
    line: int
    host: int
    ctr: int
    should_run: bool
    intentional: str | None = None


PLATFORM_COMPAT = [
    Compat(35, LTSC2019, LTSC2019, True),
    Compat(40, LTSC2019, LTSC2022, False),
    Compat(45, LTSC2022, LTSC2019, False),
    Compat(50, LTSC2022, LTSC2022, True),
    Compat(55, V22H2_WIN11, LTSC2019, False),
    Compat(60, V22H2_WIN11, LTSC2022, True, intentional=PREFIX),
    Compat(65, V23H2, LTSC2019, False),
    Compat(70, V23H2, LTSC2022, True, intentional=PREFIX),
    Compat(75, LTSC2025, LTSC2022, True, intentional=PREFIX),
    Compat(80, LTSC2022, LTSC2025, False),
    Compat(85, LTSC2022, V22H2_WIN11, False),
    Compat(90, LTSC2025, V22H2_WIN11, True, intentional=PREFIX),
]


@pytest.mark.parametrize("row", params(SUITE, PLATFORM_COMPAT, "Test_PlatformCompat"))
def test_platform_compat(row: Compat) -> None:
    matches = only(windows(f"10.0.{row.host}")).matches(windows(f"10.0.{row.ctr}"))
    if row.intentional == PREFIX:
        assert matches is False  # another build is another image
        assert only(windows(f"10.0.{row.ctr}")).matches(windows(f"10.0.{row.ctr}.1234"))
        return
    assert matches is row.should_run


# -- Test_PlatformOrder (platform_windows_compat_test.go:117) -------------------------------------------
LINUX = Platform.create("linux", "amd64")
WS2022 = windows("10.0.20348.3091")
WS2025 = windows("10.0.26100.2894")
WS2025_REV3000 = windows("10.0.26100.3000")


class Order(NamedTuple):
    line: int
    name: str
    host: Platform
    platforms: tuple[Platform, ...]
    want: Platform
    intentional: str | None = None


PLATFORM_ORDER = [
    Order(154, "Windows Server 2022 should select 2022", WS2022, (LINUX, WS2022, WS2025), WS2022),
    Order(160, "Windows Server 2025 should select 2025", WS2025, (LINUX, WS2022, WS2025), WS2025),
    Order(166, "Windows Server 2025 should select 2025 latest rev", WS2025, (LINUX, WS2022, WS2025_REV3000),
          WS2025_REV3000, intentional=PREFIX),
]  # fmt: skip


def choose(wanted: Platform, candidates: tuple[Platform, ...]) -> Platform | None:
    """What ``Index.select`` picks: the lowest key, the first among equals."""
    matcher = only(wanted, strict=True)  # the test wraps NewMatcher: no architecture fallbacks
    keyed = [(key, i) for i, c in enumerate(candidates) if (key := matcher.key(c)) is not None]
    return candidates[min(keyed)[1]] if keyed else None


@pytest.mark.parametrize("row", params(SUITE, PLATFORM_ORDER, "Test_PlatformOrder"))
def test_platform_order(row: Order) -> None:
    if row.intentional == PREFIX:
        assert choose(row.host, row.platforms) is None  # a full version selects that revision only
        assert choose(windows("10.0.26100"), row.platforms) == row.want  # a build selects any revision
        return
    assert choose(row.host, row.platforms) == row.want


ROWS = [*PLATFORM_COMPAT, *PLATFORM_ORDER]
