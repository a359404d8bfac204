"""containers/image ``docker/docker_image_src_test.go``: its pure case, translated to regpeek.

``simplifyContentType`` is :func:`regpeek.formats.mediatypes.normalize`, which the manifest parser
applies to ``Content-Type`` before classifying (and so before any digest is computed). Not ported:
``TestDockerImageSourceReference`` (registries.conf mirrors), ``TestSplitHTTP200ResponseToPartial``,
``TestHandle206Response`` and ``TestParseMediaType`` (multipart range responses for partial pulls):
regpeek has none of these.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats import mediatypes as mt
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "docker/docker_image_src_test.go")


# -- TestSimplifyContentType (docker_image_src_test.go:87) ------------------------------------------------
class Simplify(NamedTuple):
    line: int
    input: str
    expected: str
    intentional: str | None = None


SIMPLIFY_CONTENT_TYPE = [
    Simplify(89, "", ""),
    Simplify(90, "application/json", "application/json"),
    Simplify(91, "application/json;charset=utf-8", "application/json"),
    Simplify(92, "application/json; charset=utf-8", "application/json"),
    Simplify(93, "application/json ; charset=utf-8", "application/json"),
    Simplify(94, "application/json\t;\tcharset=utf-8", "application/json"),
    Simplify(95, "application/json    ;charset=utf-8", "application/json"),
    Simplify(96, 'application/json; charset="utf-8"', "application/json"),
    Simplify(97, "completely invalid", ""),
]


@pytest.mark.parametrize("row", params(SUITE, SIMPLIFY_CONTENT_TYPE, "TestSimplifyContentType"))
def test_simplify_content_type(row: Simplify) -> None:
    assert mt.normalize(row.input) == row.expected


ROWS = [*SIMPLIFY_CONTENT_TYPE]
