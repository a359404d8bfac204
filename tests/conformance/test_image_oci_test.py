"""containers/image ``manifest/oci_test.go``, translated to :func:`regpeek.formats.manifest.parse`.

``OCI1FromManifest(blob)`` is ``parse(blob, "application/vnd.oci.image.manifest.v1+json")``: bytes served as an OCI image manifest.
Not ported: ``TestSupportedOCI1MediaType`` (regpeek does not restrict descriptor media types; a
layer it cannot unpack is refused at unpack), ``TestOCI1Clone``, ``TestOCI1UpdateLayerInfos``,
``TestOCI1CanChangeLayerCompression`` (regpeek never edits manifests).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats import mediatypes as mt
from regpeek.formats.manifest import ImageManifest
from tests.conformance._containers_image import check_from_manifest, fixture, parsed, refused
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "manifest/oci_test.go")


# -- TestOCI1FromManifest (oci_test.go:53) ---------------------------------------------------------------------------
class FromManifest(NamedTuple):
    line: int
    case: str  # "valid", "fixture" (refused), "field" (refused as ambiguous)
    value: str = ""
    intentional: str | None = None


OCI1_FROM_MANIFEST = [
    FromManifest(54, "valid"),
    FromManifest(63, "fixture", "schema2-to-schema1-by-docker.json"),
    FromManifest(65, "fixture", "v2list.manifest.json"),
    FromManifest(66, "fixture", "ociv1.image.index.json"),
    FromManifest(69, "field", "fsLayers"),
    FromManifest(69, "field", "history"),
    FromManifest(69, "field", "manifests"),
]


@pytest.mark.parametrize("row", params(SUITE, OCI1_FROM_MANIFEST, "TestOCI1FromManifest"))
def test_oci1_from_manifest(row: FromManifest) -> None:
    check_from_manifest(row.case, row.value, "ociv1.manifest.json", mt.OCI_MANIFEST)


# -- TestOCI1Inspect (oci_test.go:374), TestOCI1ImageID (oci_test.go:387) ------------------------------------
class Image(NamedTuple):
    line: int
    path: str
    image_id: str  # "" when upstream expects NonImageArtifactError
    intentional: str | None = None


OCI1_INSPECT = [Image(376, "ociv1.artifact.json", "")]
OCI1_IMAGE_ID = [
    Image(388, "ociv1.manifest.json", "b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"),
    Image(398, "ociv1.artifact.json", ""),
]


@pytest.mark.parametrize(
    "row", [*params(SUITE, OCI1_INSPECT, "TestOCI1Inspect"), *params(SUITE, OCI1_IMAGE_ID, "TestOCI1ImageID")]
)
def test_oci1_image(row: Image) -> None:
    """The image ID is the config digest; the just-enough artifact is not an image regpeek can inspect."""
    if not row.image_id:
        assert refused(fixture(row.path), mt.OCI_MANIFEST) is not None
        return
    manifest = parsed(fixture(row.path), mt.OCI_MANIFEST)
    assert isinstance(manifest, ImageManifest)
    assert manifest.config.digest.hex == row.image_id


ROWS = [*OCI1_FROM_MANIFEST, *OCI1_INSPECT, *OCI1_IMAGE_ID]
