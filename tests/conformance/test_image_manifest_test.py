"""containers/image ``manifest/manifest_test.go``, translated to :func:`regpeek.formats.manifest.parse`.

``GuessMIMEType(blob)`` is ``parse(blob).media_type`` (no ``Content-Type``: the body decides), where
upstream's ``""`` ("not recognised") is regpeek refusing the document; ``Digest(blob)`` is
``parse(blob).digest`` and ``MatchesDigest(blob, d)`` is "``d`` parses and equals that digest".
``MIMETypeIsMultiImage`` is :func:`mediatypes.kind_of` giving ``INDEX``; ``NormalizedMIMEType``'s
fallback (anything unknown is tried as signed schema1) is regpeek reading a schema1 body served with
that ``Content-Type``. Not ported: ``TestAddDummyV2S1Signature`` (regpeek never writes schema1).
Fixtures: ``fixtures/containers-image`` (byte for byte, see its LICENSE-NOTE).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.errors import MalformedError, UsageError
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest, compute
from regpeek.formats.schema1 import Schema1Manifest
from tests.conformance._containers_image import fixture, parsed, refused
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "manifest/manifest_test.go")
# manifest/fixtures_info_test.go
V2S2_DIGEST = "sha256:20bf21ed457b390829cdbeec8795a7bea1626991fda603e0d01b4e7f60427e55"
V2S1_DIGEST = "sha256:7364fea9d84ee548ab67d4c46c6006289800c98de3fbf8c0a97138dfcc23f000"
V2S1_UNSIGNED_DIGEST = "sha256:7364fea9d84ee548ab67d4c46c6006289800c98de3fbf8c0a97138dfcc23f000"
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
VALIDATED = "validated-not-guessed"


# -- TestGuessMIMEType (manifest_test.go:19) ---------------------------------------------------------------
class Guess(NamedTuple):
    line: int
    path: str
    mime_type: str
    intentional: str | None = None


GUESS_MIME_TYPE = [
    Guess(24, "v2s2.manifest.json", mt.DOCKER_MANIFEST),
    Guess(25, "v2list.manifest.json", mt.DOCKER_MANIFEST_LIST),
    Guess(26, "v2s1.manifest.json", mt.SCHEMA1_SIGNED),
    Guess(27, "v2s1-unsigned.manifest.json", mt.SCHEMA1),
    Guess(28, "v2s1-invalid-signatures.manifest.json", mt.SCHEMA1_SIGNED, intentional=VALIDATED),
    Guess(29, "v2s2nomime.manifest.json", mt.DOCKER_MANIFEST, intentional="oci-assumed-without-mediatype"),
    Guess(30, "unknown-version.manifest.json", ""),
    Guess(31, "non-json.manifest.json", ""),
    Guess(32, "ociv1.manifest.json", mt.OCI_MANIFEST),
    Guess(33, "ociv1.artifact.json", mt.OCI_MANIFEST, intentional=VALIDATED),
    Guess(34, "ociv1.image.index.json", mt.OCI_INDEX),
    Guess(35, "ociv1nomime.manifest.json", mt.OCI_MANIFEST),
    Guess(36, "ociv1nomime.artifact.json", mt.OCI_MANIFEST, intentional=VALIDATED),
    Guess(37, "ociv1nomime.image.index.json", mt.OCI_INDEX),
]


@pytest.mark.parametrize("row", params(SUITE, GUESS_MIME_TYPE, "TestGuessMIMEType"))
def test_guess_mime_type(row: Guess) -> None:
    body = fixture(row.path)
    if row.intentional == VALIDATED:
        error = refused(body, None)
        assert error is not None
        # recognised as what upstream guesses, then refused for what makes it unusable
        assert str(error).startswith("schema1" if row.mime_type == mt.SCHEMA1_SIGNED else "image manifest")
        return
    if row.intentional == "oci-assumed-without-mediatype":
        assert parsed(body).media_type == mt.OCI_MANIFEST
        assert parsed(body, row.mime_type).media_type == row.mime_type  # served as schema2, it is schema2
        return
    if row.mime_type == "":
        assert refused(body, None) is not None
        return
    assert parsed(body).media_type == row.mime_type


# -- TestDigest (manifest_test.go:48) -----------------------------------------------------------------------
class DigestRow(NamedTuple):
    line: int
    path: str  # "" for the empty blob
    expected: str  # "" when an error is expected
    intentional: str | None = None


DIGEST = [
    DigestRow(53, "v2s2.manifest.json", V2S2_DIGEST),
    DigestRow(54, "v2s1.manifest.json", V2S1_DIGEST),
    DigestRow(55, "v2s1-unsigned.manifest.json", V2S1_UNSIGNED_DIGEST),
    DigestRow(65, "v2s1-invalid-signatures.manifest.json", ""),
    DigestRow(70, "", EMPTY_SHA256, intentional=VALIDATED),
]


@pytest.mark.parametrize("row", params(SUITE, DIGEST, "TestDigest"))
def test_digest(row: DigestRow) -> None:
    body = fixture(row.path) if row.path else b""
    if row.intentional == VALIDATED:
        assert str(compute(body)) == row.expected  # the hash is the same; the empty body is no manifest
        with pytest.raises(MalformedError, match="not valid JSON"):
            parsed(body)
        return
    if not row.expected:
        with pytest.raises(MalformedError, match="schema1"):
            parsed(body)
        return
    assert str(parsed(body).digest) == row.expected


# -- TestMatchesDigest (manifest_test.go:75) -----------------------------------------------------------------
class Matches(NamedTuple):
    line: int
    path: str
    expected_digest: str
    result: bool
    error: bool = False
    intentional: str | None = None


MATCHES_DIGEST = [
    Matches(82, "v2s2.manifest.json", V2S2_DIGEST, True),
    Matches(83, "v2s1.manifest.json", V2S1_DIGEST, True),
    Matches(85, "v2s2.manifest.json", V2S1_DIGEST, False),
    Matches(86, "v2s1.manifest.json", V2S2_DIGEST, False),
    Matches(88, "v2s2.manifest.json", "md5:2872f31c5c1f62a694fbd20c1e85257c", False),
    Matches(90, "v2s2.manifest.json", V2S2_DIGEST + "abc", False),
    Matches(91, "v2s2.manifest.json", V2S2_DIGEST[:20], False),
    Matches(92, "v2s2.manifest.json", "", False),
    # even a correct SHA256 hash is rejected if the JSON signature cannot be stripped
    Matches(102, "v2s1-invalid-signatures.manifest.json", str(compute(fixture("v2s1-invalid-signatures.manifest.json"))),
            False, error=True),
    Matches(109, "", EMPTY_SHA256, True, intentional=VALIDATED),
]  # fmt: skip


def matches_digest(body: bytes, expected: str) -> bool:
    try:
        wanted = Digest.parse(expected)
    except UsageError:
        return False
    return parsed(body).digest == wanted


@pytest.mark.parametrize("row", params(SUITE, MATCHES_DIGEST, "TestMatchesDigest"))
def test_matches_digest(row: Matches) -> None:
    body = fixture(row.path) if row.path else b""
    if row.intentional == VALIDATED:
        with pytest.raises(MalformedError):
            matches_digest(body, row.expected_digest)
        return
    if row.error:
        with pytest.raises(MalformedError):
            matches_digest(body, row.expected_digest)
        return
    assert matches_digest(body, row.expected_digest) is row.result


# -- TestMIMETypeIsMultiImage (manifest_test.go:131) ---------------------------------------------------------
class MultiImage(NamedTuple):
    line: int
    mime_type: str
    expected: bool
    intentional: str | None = None


MIME_TYPE_IS_MULTI_IMAGE = [
    MultiImage(136, mt.DOCKER_MANIFEST_LIST, True),
    MultiImage(137, mt.SCHEMA1, False),
    MultiImage(138, mt.SCHEMA1_SIGNED, False),
    MultiImage(139, mt.DOCKER_MANIFEST, False),
    MultiImage(140, mt.OCI_INDEX, True),
    MultiImage(141, mt.OCI_MANIFEST, False),
]


@pytest.mark.parametrize("row", params(SUITE, MIME_TYPE_IS_MULTI_IMAGE, "TestMIMETypeIsMultiImage"))
def test_mime_type_is_multi_image(row: MultiImage) -> None:
    assert (mt.kind_of(row.mime_type) is mt.Kind.INDEX) is row.expected


# -- TestNormalizedMIMEType (manifest_test.go:148) -----------------------------------------------------------
class Normalized(NamedTuple):
    line: int
    mime_type: str
    expected: str
    intentional: str | None = None


NORMALIZED_MIME_TYPE = [
    Normalized(150, mt.SCHEMA1, mt.SCHEMA1),
    Normalized(151, mt.SCHEMA1_SIGNED, mt.SCHEMA1_SIGNED),
    Normalized(152, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST),
    Normalized(153, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST_LIST),
    Normalized(154, mt.OCI_MANIFEST, mt.OCI_MANIFEST),
    Normalized(155, mt.OCI_INDEX, mt.OCI_INDEX),
    Normalized(161, "application/json", mt.SCHEMA1_SIGNED),
    Normalized(162, "text/plain", mt.SCHEMA1_SIGNED),
    Normalized(163, "not at all a valid MIME type", mt.SCHEMA1_SIGNED),
    Normalized(164, "", mt.SCHEMA1_SIGNED),
]


@pytest.mark.parametrize("row", params(SUITE, NORMALIZED_MIME_TYPE, "TestNormalizedMIMEType"))
def test_normalized_mime_type(row: Normalized) -> None:
    if row.mime_type == row.expected:  # a manifest type is itself
        assert mt.normalize(row.mime_type) == row.mime_type
        assert mt.kind_of(row.mime_type) is not None
        return
    # anything else names no manifest type; a signed schema1 body served with it is read as such
    assert mt.kind_of(row.mime_type) is None
    manifest = parsed(fixture("v2s1.manifest.json"), row.mime_type)
    assert isinstance(manifest, Schema1Manifest)
    assert (manifest.media_type, str(manifest.digest)) == (row.expected, V2S1_DIGEST)


ROWS = [*GUESS_MIME_TYPE, *DIGEST, *MATCHES_DIGEST, *MIME_TYPE_IS_MULTI_IMAGE, *NORMALIZED_MIME_TYPE]
