"""containers/image ``manifest/docker_schema2_list_test.go``, translated to :func:`regpeek.formats.manifest.parse`.

``Schema2ListFromManifest(blob)`` is ``parse(blob, "application/vnd.docker.distribution.manifest.list.v2+json")``: bytes served as a Docker manifest list.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats import mediatypes as mt
from tests.conformance._containers_image import check_from_manifest
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "manifest/docker_schema2_list_test.go")


# -- TestSchema2ListFromManifest (docker_schema2_list_test.go:11) ---------------------------------------------------------------------------
class FromManifest(NamedTuple):
    line: int
    case: str  # "valid", "fixture" (refused), "field" (refused as ambiguous)
    value: str = ""
    intentional: str | None = None


SCHEMA2_LIST_FROM_MANIFEST = [
    FromManifest(12, "valid"),
    FromManifest(21, "fixture", "schema2-to-schema1-by-docker.json"),
    FromManifest(22, "fixture", "v2s2.manifest.json"),
    FromManifest(23, "fixture", "ociv1.manifest.json"),
    FromManifest(27, "field", "config"),
    FromManifest(27, "field", "fsLayers"),
    FromManifest(27, "field", "history"),
    FromManifest(27, "field", "layers"),
]


@pytest.mark.parametrize("row", params(SUITE, SCHEMA2_LIST_FROM_MANIFEST, "TestSchema2ListFromManifest"))
def test_schema2_list_from_manifest(row: FromManifest) -> None:
    check_from_manifest(row.case, row.value, "v2list.manifest.json", mt.DOCKER_MANIFEST_LIST)


ROWS = [*SCHEMA2_LIST_FROM_MANIFEST]
