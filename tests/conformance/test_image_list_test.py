"""containers/image ``manifest/list_test.go``, translated to :mod:`regpeek.formats.manifest`.

``ListFromBlob(blob, type)`` is ``parse(blob, type)`` giving an :class:`Index`; ``FromBlob`` refusing a
list "as a single image" is ``parse`` giving an ``Index``, never an ``ImageManifest``.
``ChooseInstance`` with ``OSChoice: linux`` is ``Index.select(only(linux/<arch>[/<variant>]))``.
Platform choice follows containerd (see the ``containerd-variants`` and ``containerd-os-features``
reasons). Not ported: the Clone and ``ConvertToMIMEType`` steps of ``TestParseLists`` (regpeek never
rewrites an index). The three ChooseInstance fixtures are read from
``fixtures/containers-image/internal/manifest/testdata``, as upstream does.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.errors import PlatformNotFoundError
from regpeek.formats import mediatypes as mt
from regpeek.formats.manifest import ImageManifest, Index
from regpeek.formats.platform import Platform, only
from tests.conformance._containers_image import fixture, internal_testdata, parsed
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "manifest/list_test.go")
VARIANTS = "containerd-variants"


# -- TestParseLists (list_test.go:28) -----------------------------------------------------------------------
class ParseList(NamedTuple):
    line: int
    path: str
    mime_type: str
    intentional: str | None = None


PARSE_LISTS = [
    ParseList(33, "ociv1.image.index.json", mt.OCI_INDEX),
    ParseList(34, "v2list.manifest.json", mt.DOCKER_MANIFEST_LIST),
]


@pytest.mark.parametrize("row", params(SUITE, PARSE_LISTS, "TestParseLists"))
def test_parse_lists(row: ParseList) -> None:
    body = fixture(row.path)
    assert parsed(body).media_type == row.mime_type  # GuessMIMEType
    as_list = parsed(body, row.mime_type)  # ListFromBlob
    assert isinstance(as_list, Index) and not isinstance(as_list, ImageManifest)  # never a single image
    assert as_list.media_type == row.mime_type
    assert as_list.raw == body


# -- TestChooseInstance (list_test.go:69) -------------------------------------------------------------------
class Choose(NamedTuple):
    line: int
    list_file: str
    arch: str
    variant: str
    digest: str  # "" for the unmatched rows
    intentional: str | None = None


C84B = "sha256:c84b0a3a07b628bc4d62e5047d0f8dff80f7c00979e1e28a821a033ecda8fe53"
F365 = "sha256:f365626a556e58189fc21d099fc64603db0f440bff07f77c740989515c544a39"
CHOOSE_INSTANCE = [
    Choose(82, "schema2list.json", "amd64", "", "sha256:030fcb92e1487b18c974784dcc110a93147c9fc402188370fbfd17efabffc6af"),
    Choose(83, "schema2list.json", "s390x", "", "sha256:e5aa1b0a24620228b75382997a0977f609b3ca3a95533dafdef84c74cc8df642"),
    Choose(84, "schema2list.json", "arm", "v7", "sha256:b5dbad4bdb4444d919294afe49a095c23e86782f98cdf0aa286198ddb814b50b"),
    Choose(85, "schema2list.json", "arm64", "", "sha256:dc472a59fb006797aa2a6bfb54cc9c57959bb0a6d11fadaa608df8c16dea39cf"),
    Choose(88, "schema2list.json", "unmatched", "", ""),
    Choose(94, "schema2list-variants.json", "amd64", "", "sha256:59eec8837a4d942cc19a52b8c09ea75121acc38114a2c68b98983ce9356b8610"),
    Choose(95, "schema2list-variants.json", "arm", "v7", F365, intentional=VARIANTS),
    Choose(96, "schema2list-variants.json", "arm", "v6", F365),
    Choose(97, "schema2list-variants.json", "arm", "v5", C84B, intentional=VARIANTS),
    Choose(98, "schema2list-variants.json", "arm", "", C84B),
    Choose(99, "schema2list-variants.json", "arm", "unrecognized-present",
           "sha256:bcf9771c0b505e68c65440474179592ffdfa98790eb54ffbf129969c5e429990"),
    Choose(100, "schema2list-variants.json", "arm", "unrecognized-not-present", C84B, intentional=VARIANTS),
    Choose(103, "schema2list-variants.json", "unmatched", "", ""),
    Choose(109, "oci1index.json", "amd64", "", "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
           intentional="containerd-os-features"),
    Choose(110, "oci1index.json", "ppc64le", "", "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"),
    Choose(113, "oci1index.json", "unmatched", "", ""),
]  # fmt: skip


def choose(list_file: str, wanted: Platform) -> str:
    index = parsed(internal_testdata(list_file))  # ListFromBlob(raw, GuessMIMEType(raw))
    assert isinstance(index, Index)
    return str(index.select(only(wanted)).digest)


@pytest.mark.parametrize("row", params(SUITE, CHOOSE_INSTANCE, "TestChooseInstance"))
def test_choose_instance(row: Choose) -> None:
    wanted = Platform.create("linux", row.arch, row.variant)
    if row.intentional == VARIANTS:
        if row.variant == "v7":  # an arm entry without a variant is arm/v7: the exact match wins over v6
            assert choose(row.list_file, wanted) == C84B
        else:  # v5 cannot run v7 (the variant-less entry); an unknown variant has no fallbacks
            with pytest.raises(PlatformNotFoundError) as info:
                choose(row.list_file, wanted)
            assert "linux/arm/v6" in info.value.available and "linux/arm/v7" in info.value.available
        return
    if row.intentional == "containerd-os-features":
        with pytest.raises(PlatformNotFoundError) as info:
            choose(row.list_file, wanted)
        assert "linux/amd64 (+sse4)" in info.value.available  # the error names what there is
        assert choose(row.list_file, Platform.parse("linux(+sse4)/amd64")) == row.digest
        return
    if not row.digest:
        with pytest.raises(PlatformNotFoundError):
            choose(row.list_file, wanted)
        return
    assert choose(row.list_file, wanted) == row.digest


ROWS = [*PARSE_LISTS, *CHOOSE_INSTANCE]
