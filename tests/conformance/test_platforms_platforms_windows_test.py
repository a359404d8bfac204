"""containerd/platforms ``platforms_windows_test.go``, translated to :func:`regpeek.formats.platform.only`.

Not ported: ``TestNormalize`` (it normalises the host's own default platform).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats.platform import Platform, only
from tests.conformance._rows import CONTAINERD_PLATFORMS, Suite, params

SUITE = Suite.of(CONTAINERD_PLATFORMS, "platforms_windows_test.go")


# -- TestFallbackOnOSVersion (platforms_windows_test.go:34) ------------------------------------------
class Fallback(NamedTuple):
    line: int
    wanted: Platform
    other: Platform
    match: bool
    intentional: str | None = None


FALLBACK_ON_OS_VERSION = [
    Fallback(35, Platform.create("windows", "amd64", "", "99.99.99.99"), Platform.create("windows", "amd64"), True,
             intentional="windows-version-prefix"),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, FALLBACK_ON_OS_VERSION, "TestFallbackOnOSVersion"))
def test_fallback_on_os_version(row: Fallback) -> None:
    # an entry that declares no os.version is not taken when the user asked for a version
    assert only(row.wanted, strict=True).matches(row.other) is False
    assert only(row.other, strict=True).matches(row.wanted) is True  # the converse holds


ROWS = [*FALLBACK_ON_OS_VERSION]
