"""containerd/platforms ``compare_test.go``, translated to :func:`regpeek.formats.platform.only`.

``Only(p)`` is ``only(p)`` and ``OnlyStrict(p)`` is ``only(p, strict=True)``; one row per candidate
platform, citing the candidate's line. ``TestCompareOSFeatures`` sorts candidates with each
comparer's ``Less``; the translation sorts them with regpeek's :meth:`Matcher.key` (rank, then more
OS features first) and containerd's documented fallback for candidates that match nothing (compare
them again without OS features), keeping Go's insertion-sort stability. ``Ordered(p)`` and ``Any(p)``
over one platform are ``OnlyStrict(p)`` (all three normalise ``p`` and match it exactly), so those
rows run with ``strict=True``. Not ported: ``TestOnlyOS`` and ``TestOnlyOSLess`` (``OnlyOS`` matches
any architecture of an OS; regpeek never chooses an image by OS alone).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import pytest

from regpeek.formats.platform import Matcher, Platform, only
from tests.conformance._rows import CONTAINERD_PLATFORMS, Suite, params

SUITE = Suite.of(CONTAINERD_PLATFORMS, "compare_test.go")
PREFIX = "windows-version-prefix"


# -- TestOnly (compare_test.go:25), TestOnlyStrict (compare_test.go:324) ----------------------------------
class Match(NamedTuple):
    line: int
    platform: str
    candidate: str
    matches: bool
    intentional: str | None = None


ONLY = [
    Match(34, "linux/amd64", "linux/amd64", True),
    Match(35, "linux/amd64", "linux/386", True),
    Match(38, "linux/amd64", "linux/amd64/v2", False),
    Match(39, "linux/amd64", "linux/arm/v7", False),
    Match(40, "linux/amd64", "linux/arm64", False),
    Match(41, "linux/amd64", "windows/amd64", False),
    Match(42, "linux/amd64", "windows/arm", False),
    Match(50, "linux/amd64/v2", "linux/amd64", True),
    Match(51, "linux/amd64/v2", "linux/amd64/v1", True),
    Match(52, "linux/amd64/v2", "linux/amd64/v2", True),
    Match(53, "linux/amd64/v2", "linux/386", True),
    Match(56, "linux/amd64/v2", "linux/amd64/v3", False),
    Match(57, "linux/amd64/v2", "linux/amd64/v4", False),
    Match(58, "linux/amd64/v2", "linux/arm/v7", False),
    Match(59, "linux/amd64/v2", "linux/arm64", False),
    Match(60, "linux/amd64/v2", "windows/amd64", False),
    Match(61, "linux/amd64/v2", "windows/arm", False),
    Match(69, "linux/386", "linux/386", True),
    Match(72, "linux/386", "linux/amd64", False),
    Match(73, "linux/386", "linux/arm/v7", False),
    Match(74, "linux/386", "linux/arm64", False),
    Match(75, "linux/386", "windows/amd64", False),
    Match(76, "linux/386", "windows/arm", False),
    Match(84, "windows/amd64", "windows/amd64", True),
    Match(85, "windows/amd64", "windows(10.0.17763)/amd64", True),
    Match(88, "windows/amd64", "linux/amd64", False),
    Match(89, "windows/amd64", "linux/arm/v7", False),
    Match(90, "windows/amd64", "linux/arm64", False),
    Match(91, "windows/amd64", "windows/arm", False),
    Match(99, "linux/arm/v8", "linux/arm", True),
    Match(100, "linux/arm/v8", "linux/arm/v5", True),
    Match(101, "linux/arm/v8", "linux/arm/v6", True),
    Match(102, "linux/arm/v8", "linux/arm/v7", True),
    Match(103, "linux/arm/v8", "linux/arm/v8", True),
    Match(106, "linux/arm/v8", "linux/amd64", False),
    Match(107, "linux/arm/v8", "linux/arm/v4", False),
    Match(108, "linux/arm/v8", "linux/arm64", False),
    Match(109, "linux/arm/v8", "windows/amd64", False),
    Match(110, "linux/arm/v8", "windows/arm", False),
    Match(118, "linux/arm/v7", "linux/arm", True),
    Match(119, "linux/arm/v7", "linux/arm/v5", True),
    Match(120, "linux/arm/v7", "linux/arm/v6", True),
    Match(121, "linux/arm/v7", "linux/arm/v7", True),
    Match(124, "linux/arm/v7", "linux/amd64", False),
    Match(125, "linux/arm/v7", "linux/arm/v4", False),
    Match(126, "linux/arm/v7", "linux/arm/v8", False),
    Match(127, "linux/arm/v7", "linux/arm64", False),
    Match(128, "linux/arm/v7", "windows/amd64", False),
    Match(129, "linux/arm/v7", "windows/arm", False),
    Match(137, "linux/arm/v6", "linux/arm/v5", True),
    Match(138, "linux/arm/v6", "linux/arm/v6", True),
    Match(141, "linux/arm/v6", "linux/amd64", False),
    Match(142, "linux/arm/v6", "linux/arm", False),
    Match(143, "linux/arm/v6", "linux/arm/v4", False),
    Match(144, "linux/arm/v6", "linux/arm/v7", False),
    Match(145, "linux/arm/v6", "linux/arm/v8", False),
    Match(146, "linux/arm/v6", "linux/arm64", False),
    Match(147, "linux/arm/v6", "windows/amd64", False),
    Match(148, "linux/arm/v6", "windows/arm", False),
    Match(156, "linux/arm/v5", "linux/arm/v5", True),
    Match(159, "linux/arm/v5", "linux/amd64", False),
    Match(160, "linux/arm/v5", "linux/arm", False),
    Match(161, "linux/arm/v5", "linux/arm/v4", False),
    Match(162, "linux/arm/v5", "linux/arm/v6", False),
    Match(163, "linux/arm/v5", "linux/arm/v7", False),
    Match(164, "linux/arm/v5", "linux/arm/v8", False),
    Match(165, "linux/arm/v5", "linux/arm64", False),
    Match(166, "linux/arm/v5", "windows/amd64", False),
    Match(167, "linux/arm/v5", "windows/arm", False),
    Match(175, "linux/arm/v4", "linux/arm/v4", True),
    Match(178, "linux/arm/v4", "linux/amd64", False),
    Match(179, "linux/arm/v4", "linux/arm", False),
    Match(180, "linux/arm/v4", "linux/arm/v5", False),
    Match(181, "linux/arm/v4", "linux/arm/v6", False),
    Match(182, "linux/arm/v4", "linux/arm/v7", False),
    Match(183, "linux/arm/v4", "linux/arm/v8", False),
    Match(184, "linux/arm/v4", "linux/arm64", False),
    Match(185, "linux/arm/v4", "windows/amd64", False),
    Match(186, "linux/arm/v4", "windows/arm", False),
    Match(194, "linux/arm64/v9.6", "linux/arm", True),
    Match(195, "linux/arm64/v9.6", "linux/arm/v5", True),
    Match(196, "linux/arm64/v9.6", "linux/arm/v6", True),
    Match(197, "linux/arm64/v9.6", "linux/arm/v7", True),
    Match(198, "linux/arm64/v9.6", "linux/arm/v8", True),
    Match(199, "linux/arm64/v9.6", "linux/arm64", True),
    Match(200, "linux/arm64/v9.6", "linux/arm64/v8", True),
    Match(201, "linux/arm64/v9.6", "linux/arm64/v8.1", True),
    Match(202, "linux/arm64/v9.6", "linux/arm64/v8.2", True),
    Match(203, "linux/arm64/v9.6", "linux/arm64/v8.3", True),
    Match(204, "linux/arm64/v9.6", "linux/arm64/v8.4", True),
    Match(205, "linux/arm64/v9.6", "linux/arm64/v8.5", True),
    Match(206, "linux/arm64/v9.6", "linux/arm64/v8.6", True),
    Match(207, "linux/arm64/v9.6", "linux/arm64/v8.7", True),
    Match(208, "linux/arm64/v9.6", "linux/arm64/v8.8", True),
    Match(209, "linux/arm64/v9.6", "linux/arm64/v8.9", True),
    Match(210, "linux/arm64/v9.6", "linux/arm64/v9", True),
    Match(211, "linux/arm64/v9.6", "linux/arm64/v9.0", True),
    Match(212, "linux/arm64/v9.6", "linux/arm64/v9.1", True),
    Match(213, "linux/arm64/v9.6", "linux/arm64/v9.2", True),
    Match(214, "linux/arm64/v9.6", "linux/arm64/v9.3", True),
    Match(215, "linux/arm64/v9.6", "linux/arm64/v9.4", True),
    Match(216, "linux/arm64/v9.6", "linux/arm64/v9.5", True),
    Match(217, "linux/arm64/v9.6", "linux/arm64/v9.6", True),
    Match(220, "linux/arm64/v9.6", "linux/amd64", False),
    Match(221, "linux/arm64/v9.6", "linux/arm/v4", False),
    Match(222, "linux/arm64/v9.6", "windows/amd64", False),
    Match(223, "linux/arm64/v9.6", "windows/arm", False),
    Match(224, "linux/arm64/v9.6", "linux/arm64/v8.10", False),
    Match(232, "linux/arm64/v9", "linux/arm", True),
    Match(233, "linux/arm64/v9", "linux/arm/v5", True),
    Match(234, "linux/arm64/v9", "linux/arm/v6", True),
    Match(235, "linux/arm64/v9", "linux/arm/v7", True),
    Match(236, "linux/arm64/v9", "linux/arm/v8", True),
    Match(237, "linux/arm64/v9", "linux/arm64", True),
    Match(238, "linux/arm64/v9", "linux/arm64/v8", True),
    Match(239, "linux/arm64/v9", "linux/arm64/v8.1", True),
    Match(240, "linux/arm64/v9", "linux/arm64/v8.2", True),
    Match(241, "linux/arm64/v9", "linux/arm64/v8.3", True),
    Match(242, "linux/arm64/v9", "linux/arm64/v8.4", True),
    Match(243, "linux/arm64/v9", "linux/arm64/v8.5", True),
    Match(244, "linux/arm64/v9", "linux/arm64/v9", True),
    Match(245, "linux/arm64/v9", "linux/arm64/v9.0", True),
    Match(248, "linux/arm64/v9", "linux/amd64", False),
    Match(249, "linux/arm64/v9", "linux/arm/v4", False),
    Match(250, "linux/arm64/v9", "windows/amd64", False),
    Match(251, "linux/arm64/v9", "windows/arm", False),
    Match(252, "linux/arm64/v9", "linux/arm64/v8.6", False),
    Match(260, "linux/arm64/v8.1", "linux/arm", True),
    Match(261, "linux/arm64/v8.1", "linux/arm/v5", True),
    Match(262, "linux/arm64/v8.1", "linux/arm/v6", True),
    Match(263, "linux/arm64/v8.1", "linux/arm/v7", True),
    Match(264, "linux/arm64/v8.1", "linux/arm/v8", True),
    Match(265, "linux/arm64/v8.1", "linux/arm64", True),
    Match(266, "linux/arm64/v8.1", "linux/arm64/v8", True),
    Match(267, "linux/arm64/v8.1", "linux/arm64/v8.1", True),
    Match(270, "linux/arm64/v8.1", "linux/amd64", False),
    Match(271, "linux/arm64/v8.1", "linux/arm/v4", False),
    Match(272, "linux/arm64/v8.1", "linux/arm/v9", False),
    Match(273, "linux/arm64/v8.1", "linux/arm64/v9", False),
    Match(274, "linux/arm64/v8.1", "windows/amd64", False),
    Match(275, "linux/arm64/v8.1", "windows/arm", False),
    Match(283, "linux/arm64", "linux/arm", True),
    Match(284, "linux/arm64", "linux/arm/v5", True),
    Match(285, "linux/arm64", "linux/arm/v6", True),
    Match(286, "linux/arm64", "linux/arm/v7", True),
    Match(287, "linux/arm64", "linux/arm/v8", True),
    Match(288, "linux/arm64", "linux/arm64", True),
    Match(289, "linux/arm64", "linux/arm64/v8", True),
    Match(292, "linux/arm64", "linux/amd64", False),
    Match(293, "linux/arm64", "linux/arm/v4", False),
    Match(294, "linux/arm64", "linux/arm/v9", False),
    Match(295, "linux/arm64", "linux/arm64/v9", False),
    Match(296, "linux/arm64", "windows/amd64", False),
    Match(297, "linux/arm64", "windows/arm", False),
]
ONLY_STRICT = [
    Match(333, "linux/amd64", "linux/amd64", True),
    Match(336, "linux/amd64", "linux/386", False),
    Match(337, "linux/amd64", "linux/arm/v7", False),
    Match(338, "linux/amd64", "linux/arm64", False),
    Match(339, "linux/amd64", "windows/amd64", False),
    Match(340, "linux/amd64", "windows/arm", False),
    Match(348, "linux/386", "linux/386", True),
    Match(351, "linux/386", "linux/amd64", False),
    Match(352, "linux/386", "linux/arm/v7", False),
    Match(353, "linux/386", "linux/arm64", False),
    Match(354, "linux/386", "windows/amd64", False),
    Match(355, "linux/386", "windows/arm", False),
    Match(363, "windows/amd64", "windows/amd64", True),
    Match(364, "windows/amd64", "windows(10.0.17763)/amd64", True),
    Match(367, "windows/amd64", "linux/amd64", False),
    Match(368, "windows/amd64", "linux/arm/v7", False),
    Match(369, "windows/amd64", "linux/arm64", False),
    Match(370, "windows/amd64", "windows/arm", False),
    Match(378, "windows(10.0.17763)/amd64", "windows/amd64", True, intentional=PREFIX),
    Match(379, "windows(10.0.17763)/amd64", "windows(10.0.17763)/amd64", True),
    Match(382, "windows(10.0.17763)/amd64", "linux/amd64", False),
    Match(383, "windows(10.0.17763)/amd64", "linux/arm/v7", False),
    Match(384, "windows(10.0.17763)/amd64", "linux/arm64", False),
    Match(385, "windows(10.0.17763)/amd64", "windows/arm", False),
    Match(393, "linux/arm/v8", "linux/arm/v8", True),
    Match(396, "linux/arm/v8", "linux/arm", False),
    Match(397, "linux/arm/v8", "linux/arm/v5", False),
    Match(398, "linux/arm/v8", "linux/arm/v6", False),
    Match(399, "linux/arm/v8", "linux/arm/v7", False),
    Match(400, "linux/arm/v8", "linux/amd64", False),
    Match(401, "linux/arm/v8", "linux/arm/v4", False),
    Match(402, "linux/arm/v8", "linux/arm64", False),
    Match(403, "linux/arm/v8", "windows/amd64", False),
    Match(404, "linux/arm/v8", "windows/arm", False),
    Match(412, "linux/arm/v7", "linux/arm", True),
    Match(413, "linux/arm/v7", "linux/arm/v7", True),
    Match(416, "linux/arm/v7", "linux/arm/v5", False),
    Match(417, "linux/arm/v7", "linux/arm/v6", False),
    Match(418, "linux/arm/v7", "linux/amd64", False),
    Match(419, "linux/arm/v7", "linux/arm/v4", False),
    Match(420, "linux/arm/v7", "linux/arm/v8", False),
    Match(421, "linux/arm/v7", "linux/arm64", False),
    Match(422, "linux/arm/v7", "windows/amd64", False),
    Match(423, "linux/arm/v7", "windows/arm", False),
    Match(431, "linux/arm/v6", "linux/arm/v6", True),
    Match(434, "linux/arm/v6", "linux/arm/v5", False),
    Match(435, "linux/arm/v6", "linux/amd64", False),
    Match(436, "linux/arm/v6", "linux/arm", False),
    Match(437, "linux/arm/v6", "linux/arm/v4", False),
    Match(438, "linux/arm/v6", "linux/arm/v7", False),
    Match(439, "linux/arm/v6", "linux/arm/v8", False),
    Match(440, "linux/arm/v6", "linux/arm64", False),
    Match(441, "linux/arm/v6", "windows/amd64", False),
    Match(442, "linux/arm/v6", "windows/arm", False),
    Match(450, "linux/arm/v5", "linux/arm/v5", True),
    Match(453, "linux/arm/v5", "linux/amd64", False),
    Match(454, "linux/arm/v5", "linux/arm", False),
    Match(455, "linux/arm/v5", "linux/arm/v4", False),
    Match(456, "linux/arm/v5", "linux/arm/v6", False),
    Match(457, "linux/arm/v5", "linux/arm/v7", False),
    Match(458, "linux/arm/v5", "linux/arm/v8", False),
    Match(459, "linux/arm/v5", "linux/arm64", False),
    Match(460, "linux/arm/v5", "windows/amd64", False),
    Match(461, "linux/arm/v5", "windows/arm", False),
    Match(469, "linux/arm/v4", "linux/arm/v4", True),
    Match(472, "linux/arm/v4", "linux/amd64", False),
    Match(473, "linux/arm/v4", "linux/arm", False),
    Match(474, "linux/arm/v4", "linux/arm/v5", False),
    Match(475, "linux/arm/v4", "linux/arm/v6", False),
    Match(476, "linux/arm/v4", "linux/arm/v7", False),
    Match(477, "linux/arm/v4", "linux/arm/v8", False),
    Match(478, "linux/arm/v4", "linux/arm64", False),
    Match(479, "linux/arm/v4", "windows/amd64", False),
    Match(480, "linux/arm/v4", "windows/arm", False),
    Match(488, "linux/arm64/v9.5", "linux/arm64/v9.5", True),
    Match(491, "linux/arm64/v9.5", "linux/arm", False),
    Match(492, "linux/arm64/v9.5", "linux/arm/v5", False),
    Match(493, "linux/arm64/v9.5", "linux/arm/v6", False),
    Match(494, "linux/arm64/v9.5", "linux/arm/v7", False),
    Match(495, "linux/arm64/v9.5", "linux/arm/v8", False),
    Match(496, "linux/arm64/v9.5", "linux/amd64", False),
    Match(497, "linux/arm64/v9.5", "linux/arm/v4", False),
    Match(498, "linux/arm64/v9.5", "linux/arm64/v8", False),
    Match(499, "linux/arm64/v9.5", "linux/arm64/v8.1", False),
    Match(500, "linux/arm64/v9.5", "linux/arm64/v9", False),
    Match(501, "linux/arm64/v9.5", "linux/arm64/v9.1", False),
    Match(502, "linux/arm64/v9.5", "linux/arm64/v9.4", False),
    Match(503, "linux/arm64/v9.5", "windows/amd64", False),
    Match(504, "linux/arm64/v9.5", "windows/arm", False),
    Match(512, "linux/arm64/v9", "linux/arm64/v9", True),
    Match(513, "linux/arm64/v9", "linux/arm64/v9.0", True),
    Match(516, "linux/arm64/v9", "linux/arm", False),
    Match(517, "linux/arm64/v9", "linux/arm/v5", False),
    Match(518, "linux/arm64/v9", "linux/arm/v6", False),
    Match(519, "linux/arm64/v9", "linux/arm/v7", False),
    Match(520, "linux/arm64/v9", "linux/arm/v8", False),
    Match(521, "linux/arm64/v9", "linux/amd64", False),
    Match(522, "linux/arm64/v9", "linux/arm/v4", False),
    Match(523, "linux/arm64/v9", "linux/arm/v9", False),
    Match(524, "linux/arm64/v9", "linux/arm64/v8", False),
    Match(525, "linux/arm64/v9", "linux/arm64/v8.1", False),
    Match(526, "linux/arm64/v9", "windows/amd64", False),
    Match(527, "linux/arm64/v9", "windows/arm", False),
    Match(535, "linux/arm64/v8.1", "linux/arm64/v8.1", True),
    Match(538, "linux/arm64/v8.1", "linux/arm", False),
    Match(539, "linux/arm64/v8.1", "linux/arm/v5", False),
    Match(540, "linux/arm64/v8.1", "linux/arm/v6", False),
    Match(541, "linux/arm64/v8.1", "linux/arm/v7", False),
    Match(542, "linux/arm64/v8.1", "linux/arm/v8", False),
    Match(543, "linux/arm64/v8.1", "linux/amd64", False),
    Match(544, "linux/arm64/v8.1", "linux/arm/v4", False),
    Match(545, "linux/arm64/v8.1", "linux/arm/v9", False),
    Match(546, "linux/arm64/v8.1", "linux/arm64/v8", False),
    Match(547, "linux/arm64/v8.1", "linux/arm64/v9", False),
    Match(548, "linux/arm64/v8.1", "windows/amd64", False),
    Match(549, "linux/arm64/v8.1", "windows/arm", False),
    Match(557, "linux/arm64", "linux/arm64", True),
    Match(558, "linux/arm64", "linux/arm64/v8", True),
    Match(561, "linux/arm64", "linux/arm", False),
    Match(562, "linux/arm64", "linux/arm/v5", False),
    Match(563, "linux/arm64", "linux/arm/v6", False),
    Match(564, "linux/arm64", "linux/arm/v7", False),
    Match(565, "linux/arm64", "linux/arm/v8", False),
    Match(566, "linux/arm64", "linux/amd64", False),
    Match(567, "linux/arm64", "linux/arm/v4", False),
    Match(568, "linux/arm64", "linux/arm/v9", False),
    Match(569, "linux/arm64", "linux/arm64/v9", False),
    Match(570, "linux/arm64", "windows/amd64", False),
    Match(571, "linux/arm64", "windows/arm", False),
]


@pytest.mark.parametrize(
    "row", [*params(SUITE, ONLY, "TestOnly"), *params(SUITE, ONLY_STRICT, "TestOnlyStrict")]
)
def test_only(row: Match) -> None:
    strict = row in ONLY_STRICT
    matcher = only(Platform.parse(row.platform), strict=strict)
    expected = not row.matches if row.intentional == PREFIX else row.matches
    assert matcher.matches(Platform.parse(row.candidate)) is expected


# -- TestCompareOSFeatures (compare_test.go:718) -----------------------------------------------------------
class Ordering(NamedTuple):
    line: int
    platform: str
    comparer: str  # "only", "only strict", "ordered", "any"
    platforms: tuple[str, ...]
    expected: tuple[str, ...]
    intentional: str | None = None


_CASES = [
    (725, "linux/amd64", ("windows/amd64", "linux/amd64", "linux(+other)/amd64", "linux/arm64"),
     ("linux/amd64", "linux(+other)/amd64", "windows/amd64", "linux/arm64")),
    (730, "linux(+none)/amd64", ("windows/amd64", "linux/amd64", "linux/arm64", "linux(+other)/amd64"),
     ("linux/amd64", "linux(+other)/amd64", "windows/amd64", "linux/arm64")),
    (735, "linux(+other)/amd64", ("windows/amd64", "linux/amd64", "linux/arm64", "linux(+other)/amd64"),
     ("linux(+other)/amd64", "linux/amd64", "windows/amd64", "linux/arm64")),
    (740, "linux(+af+other+zf)/amd64", ("windows/amd64", "linux/amd64", "linux/arm64", "linux(+other)/amd64"),
     ("linux(+other)/amd64", "linux/amd64", "windows/amd64", "linux/arm64")),
    (745, "linux(+f1+f2)/amd64", ("linux/amd64", "linux(+f2)/amd64", "linux(+f1)/amd64", "linux(+f1+f2)/amd64"),
     ("linux(+f1+f2)/amd64", "linux(+f2)/amd64", "linux(+f1)/amd64", "linux/amd64")),
    (751, "linux(7.2+other)/amd64", ("linux/amd64", "linux(+other)/amd64", "linux(7.1)/amd64", "linux(7.2+other)/amd64"),
     ("linux(+other)/amd64", "linux(7.2+other)/amd64", "linux/amd64", "linux(7.1)/amd64")),
]  # fmt: skip
COMPARE_OS_FEATURES = [
    Ordering(line, platform, comparer, platforms, expected)
    for line, platform, platforms, expected in _CASES
    for comparer in ("only", "only strict", "ordered", "any")
]


def _sort_key(matcher: Matcher, candidate: Platform) -> tuple[int, tuple[int, int]]:
    key = matcher.key(candidate)
    if key is not None:
        return (0, key)
    # containerd's Less: when neither side matches, compare them again without OS features
    stripped = Matcher(replace(matcher.wanted, os_features=()), matcher.strict).key(
        replace(candidate, os_features=())
    )
    return (1, stripped) if stripped is not None else (2, (0, 0))


@pytest.mark.parametrize("row", params(SUITE, COMPARE_OS_FEATURES, "TestCompareOSFeatures"))
def test_compare_os_features(row: Ordering) -> None:
    matcher = only(Platform.parse(row.platform), strict=row.comparer != "only")
    candidates = [Platform.parse(text) for text in row.platforms]
    ordered = sorted(
        candidates, key=lambda candidate: _sort_key(matcher, candidate)
    )  # stable, like Go's here
    assert [candidate.format_all() for candidate in ordered] == list(row.expected)


ROWS = [*ONLY, *ONLY_STRICT, *COMPARE_OS_FEATURES]
