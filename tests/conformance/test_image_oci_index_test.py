"""containers/image ``manifest/oci_index_test.go``, translated to :func:`regpeek.formats.manifest.parse`.

``OCI1IndexFromManifest(blob)`` is ``parse(blob, "application/vnd.oci.image.index.v1+json")``: bytes served as an OCI image index.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats import mediatypes as mt
from tests.conformance._containers_image import check_from_manifest
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "manifest/oci_index_test.go")


# -- TestOCI1IndexFromManifest (oci_index_test.go:11) ---------------------------------------------------------------------------
class FromManifest(NamedTuple):
    line: int
    case: str  # "valid", "fixture" (refused), "field" (refused as ambiguous)
    value: str = ""
    intentional: str | None = None


OCI1_INDEX_FROM_MANIFEST = [
    FromManifest(12, "valid"),
    FromManifest(21, "fixture", "schema2-to-schema1-by-docker.json"),
    FromManifest(22, "fixture", "v2s2.manifest.json"),
    FromManifest(24, "fixture", "ociv1.manifest.json"),
    FromManifest(27, "field", "config"),
    FromManifest(27, "field", "fsLayers"),
    FromManifest(27, "field", "history"),
    FromManifest(27, "field", "layers"),
]


@pytest.mark.parametrize("row", params(SUITE, OCI1_INDEX_FROM_MANIFEST, "TestOCI1IndexFromManifest"))
def test_oci1_index_from_manifest(row: FromManifest) -> None:
    check_from_manifest(row.case, row.value, "ociv1.image.index.json", mt.OCI_INDEX)


ROWS = [*OCI1_INDEX_FROM_MANIFEST]
