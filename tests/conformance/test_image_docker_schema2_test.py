"""containers/image ``manifest/docker_schema2_test.go``, translated to :func:`regpeek.formats.manifest.parse`.

``Schema2FromManifest(blob)`` is ``parse(blob, "application/vnd.docker.distribution.manifest.v2+json")``: bytes served as a Docker schema2 manifest.
Not ported: ``TestSupportedSchema2MediaType`` (regpeek does not restrict descriptor media types),
``TestSchema2Clone``, ``TestSchema2UpdateLayerInfos``, ``TestSchema2CanChangeLayerCompression``
(regpeek never edits manifests).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats import mediatypes as mt
from regpeek.formats.manifest import ImageManifest
from tests.conformance._containers_image import check_from_manifest, fixture, parsed
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "manifest/docker_schema2_test.go")


# -- TestSchema2FromManifest (docker_schema2_test.go:49) ---------------------------------------------------------------------------
class FromManifest(NamedTuple):
    line: int
    case: str  # "valid", "fixture" (refused), "field" (refused as ambiguous)
    value: str = ""
    intentional: str | None = None


SCHEMA2_FROM_MANIFEST = [
    FromManifest(50, "valid"),
    FromManifest(59, "fixture", "schema2-to-schema1-by-docker.json"),
    FromManifest(60, "fixture", "v2list.manifest.json"),
    FromManifest(61, "fixture", "ociv1.manifest.json"),
    FromManifest(61, "fixture", "ociv1.image.index.json"),
    FromManifest(64, "field", "fsLayers"),
    FromManifest(64, "field", "history"),
    FromManifest(64, "field", "manifests"),
]


@pytest.mark.parametrize("row", params(SUITE, SCHEMA2_FROM_MANIFEST, "TestSchema2FromManifest"))
def test_schema2_from_manifest(row: FromManifest) -> None:
    check_from_manifest(row.case, row.value, "v2s2.manifest.json", mt.DOCKER_MANIFEST)


# -- TestSchema2ImageID (docker_schema2_test.go:272) ---------------------------------------------------------
class ImageID(NamedTuple):
    line: int
    path: str
    image_id: str
    intentional: str | None = None


SCHEMA2_IMAGE_ID = [
    ImageID(273, "v2s2.manifest.json", "b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7")
]


@pytest.mark.parametrize("row", params(SUITE, SCHEMA2_IMAGE_ID, "TestSchema2ImageID"))
def test_schema2_image_id(row: ImageID) -> None:
    manifest = parsed(fixture(row.path), mt.DOCKER_MANIFEST)
    assert isinstance(manifest, ImageManifest)
    assert manifest.config.digest.hex == row.image_id


ROWS = [*SCHEMA2_FROM_MANIFEST, *SCHEMA2_IMAGE_ID]
