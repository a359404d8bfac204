"""regclient/regclient ``types/manifest/manifest_test.go``: its signed schema1 cases, translated to
:func:`regpeek.formats.manifest.parse`.

The fixture (``rawDockerSchema1Signed``, lines 365-404, in ``fixtures/regclient``) is a signed schema1
body with a newline before it and ``" \\n"`` after it: ``formatLength`` counts from the ``{``. regclient
(through Go's JSON decoder and libtrust) trims that whitespace before applying ``formatLength``, and so
does regpeek. Only the cases about reading this fixture are ported; the rest of ``TestNew`` exercises
regclient's manifest editing API.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest
from regpeek.formats.manifest import ensure_expected, parse
from regpeek.formats.schema1 import Schema1Manifest
from tests.conformance._rows import FIXTURES, REGCLIENT, Suite, params

SUITE = Suite.of(REGCLIENT, "types/manifest/manifest_test.go")
RAW = (FIXTURES / "regclient" / "rawDockerSchema1Signed.json").read_bytes()
DIGEST = "sha256:f3ef067962554c3352dc0c659ca563f73cc396fe0dea2a2c23a7964c6290f782"  # manifest_test.go:411


# -- TestNew (manifest_test.go:420) -------------------------------------------------------------------------
class Signed(NamedTuple):
    line: int
    name: str
    content_type: str | None
    expected_digest: str  # "" when the case gives no descriptor to check against
    intentional: str | None = None


SIGNED = [
    Signed(763, "Docker Schema 1 Signed", None, ""),
    Signed(774, "Docker Schema 1 Signed Manifest", mt.SCHEMA1_SIGNED, DIGEST),
]


@pytest.mark.parametrize("row", params(SUITE, SIGNED, "TestNew"))
def test_signed_schema1_with_surrounding_whitespace(row: Signed) -> None:
    assert RAW.startswith(b"\n{") and RAW.endswith(b"} \n")
    manifest = parse(RAW, row.content_type)
    assert isinstance(manifest, Schema1Manifest)
    assert manifest.signed and manifest.media_type == mt.SCHEMA1_SIGNED
    assert manifest.raw == RAW  # kept as served
    assert (manifest.name, manifest.tag, len(manifest.layers)) == ("library/debian", "6", 2)
    if row.expected_digest:
        ensure_expected(manifest, Digest.parse(row.expected_digest), "manifest")  # WithDesc: no mismatch
    assert str(manifest.digest) == DIGEST


ROWS = [*SIGNED]
