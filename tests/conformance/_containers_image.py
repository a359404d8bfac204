"""Fixtures and helpers shared by the containers/image suites (see fixtures/containers-image/LICENSE-NOTE)."""

from __future__ import annotations

from regpeek.errors import MalformedError
from regpeek.formats import mediatypes as mt
from regpeek.formats.manifest import Manifest, parse
from tests.conformance._rows import FIXTURES

MANIFEST_FIXTURES = FIXTURES / "containers-image" / "manifest" / "fixtures"
TESTDATA = FIXTURES / "containers-image" / "internal" / "manifest" / "testdata"
SCHEMA1_BY_DOCKER = "schema2-to-schema1-by-docker.json"
STALE = "stale-signature"


def fixture(name: str) -> bytes:
    return (MANIFEST_FIXTURES / name).read_bytes()


def internal_testdata(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


def without_signature(body: bytes) -> bytes:
    """A pretty signed schema1 body as it was before signing: the signatures cut out."""
    return body[: body.index(b',\n   "signatures"')] + b"\n}"


def with_extra_field(valid: bytes, field: str) -> bytes:
    """containers/image's testValidManifestWithExtraFieldsIsRejected: ``,"<field>":[]`` before the last ``}``."""
    end = valid.rindex(b"}")
    return valid[:end] + f',"{field}":[]}}'.encode()


def refused(body: bytes, content_type: str | None) -> MalformedError | None:
    """The error regpeek refuses ``body`` served as ``content_type`` with, or None when it parses."""
    try:
        parse(body, content_type)
    except MalformedError as error:
        return error
    return None


def parsed(body: bytes, content_type: str | None = None) -> Manifest:
    return parse(body, content_type)


# containers/image's MIME type names -> regpeek's constants
OCI_MANIFEST, OCI_INDEX = mt.OCI_MANIFEST, mt.OCI_INDEX
DOCKER_V2_SCHEMA2, DOCKER_V2_LIST = mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST
DOCKER_V2_SCHEMA1, DOCKER_V2_SCHEMA1_SIGNED = mt.SCHEMA1, mt.SCHEMA1_SIGNED


def check_from_manifest(case: str, value: str, valid_fixture: str, content_type: str) -> None:
    """One row of a ``<Format>FromManifest`` test: regpeek reading bytes served as ``content_type``.

    ``case`` is ``"valid"`` (the valid fixture parses), ``"fixture"`` (another format's fixture is
    refused: testManifestFixturesAreRejected) or ``"field"`` (the valid fixture with ``,"<value>":[]``
    added is refused as ambiguous: testValidManifestWithExtraFieldsIsRejected).
    """
    if case == "valid":
        assert parsed(fixture(valid_fixture), content_type).media_type == content_type
    elif case == "fixture":
        assert refused(fixture(value), content_type) is not None
    else:
        error = refused(with_extra_field(fixture(valid_fixture), value), content_type)
        assert error is not None and "ambiguous manifest" in str(error)
