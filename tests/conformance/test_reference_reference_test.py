"""distribution/reference ``reference_test.go``, translated to :mod:`regpeek.formats.reference`.

Upstream's ``Parse`` keeps names as written; regpeek always normalises, like ``ParseNormalizedNamed``
(and, for a name without tag or digest, ``TagNameOnly``: ``latest``). Each row keeps upstream's
expected values verbatim and compares them through :func:`normalized`, a transcription of
``splitDockerDomain`` (normalize.go:146-190). ``ParseNamed``'s ``ErrNameNotCanonical`` means "the
normalised form differs from the input", which is what those rows assert. Upstream error values are
matched by the part of regpeek's message that names the same fault.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.errors import UsageError
from regpeek.formats.digest import Digest
from regpeek.formats.reference import Reference, Repository
from tests.conformance._rows import DISTRIBUTION_REFERENCE, Suite, params

SUITE = Suite.of(DISTRIBUTION_REFERENCE, "reference_test.go")
F64 = "f" * 64
SHORT = "sha256:1234567890098765432112345667890098765"  # 37 hex digits: WithTag/WithDigest rows

# upstream error -> what regpeek's message says about the same fault
ERRORS = {
    "ErrNameEmpty": "empty name",
    "ErrReferenceInvalidFormat": "invalid reference",
    "digest.ErrDigestInvalidLength": "needs 64 lowercase hex digits",
    "digest.ErrDigestUnsupported": "unsupported digest algorithm",
    "ErrNameContainsUppercase": "must be lowercase",
    "ErrNameTooLong": "longer than 255 characters",
    "ErrNameNotCanonical": "",
}


def normalized(name: str) -> tuple[str, str]:
    """``splitDockerDomain`` (normalize.go:146): the (domain, path) ParseNormalizedNamed gives ``name``."""
    domain, sep, rest = name.partition("/")
    if not sep:
        return "docker.io", "library/" + name
    if domain == "localhost" or any(c in domain for c in ".:") or domain.lower() != domain:
        domain, path = ("docker.io" if domain == "index.docker.io" else domain), rest
    else:
        domain, path = "docker.io", name
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    return domain, path


def expected_string(name: str, tag: str, digest: str) -> str:
    domain, path = normalized(name)
    effective_tag = tag or ("" if digest else "latest")
    return (
        f"{domain}/{path}" + (f":{effective_tag}" if effective_tag else "") + (f"@{digest}" if digest else "")
    )


# -- TestReferenceParse (reference_test.go:13) ---------------------------------------------------
class Parse(NamedTuple):
    line: int
    input: str
    err: str = ""
    repository: str = ""
    domain: str = ""
    tag: str = ""
    digest: str = ""
    intentional: str | None = None


PARSE = [
    Parse(32, "test_com", repository="test_com"),
    Parse(36, "test.com:tag", repository="test.com", tag="tag"),
    Parse(41, "test.com:5000", repository="test.com", tag="5000"),
    Parse(46, "test.com/repo:tag", domain="test.com", repository="test.com/repo", tag="tag"),
    Parse(52, "test:5000/repo", domain="test:5000", repository="test:5000/repo"),
    Parse(57, "test:5000/repo:tag", domain="test:5000", repository="test:5000/repo", tag="tag"),
    Parse(63, f"test:5000/repo@sha256:{F64}", domain="test:5000", repository="test:5000/repo",
          digest=f"sha256:{F64}"),
    Parse(69, f"test:5000/repo:tag@sha256:{F64}", domain="test:5000", repository="test:5000/repo", tag="tag",
          digest=f"sha256:{F64}"),
    Parse(76, "test:5000/repo", domain="test:5000", repository="test:5000/repo"),
    Parse(81, "", err="ErrNameEmpty"),
    Parse(85, ":justtag", err="ErrReferenceInvalidFormat"),
    Parse(89, f"@sha256:{F64}", err="ErrReferenceInvalidFormat"),
    Parse(93, "repo@sha256:" + "f" * 34, err="digest.ErrDigestInvalidLength"),
    Parse(97, f"validname@invaliddigest:{F64}", err="digest.ErrDigestUnsupported"),
    Parse(102, "validname@sha512:" + "f" * 128, err="digest.ErrDigestUnsupported", intentional="sha512-accepted"),
    Parse(106, "Uppercase:tag", err="ErrNameContainsUppercase"),
    Parse(116, "test:5000/Uppercase/lowercase:tag", err="ErrNameContainsUppercase"),
    Parse(120, "lowercase:Uppercase", repository="lowercase", tag="Uppercase"),
    Parse(125, "domain/" + "a" * 256 + ":tag", err="ErrNameTooLong"),
    Parse(129, "a/" * 127 + "a:tag-puts-this-over-max", domain="a", repository="a/" * 127 + "a",
          tag="tag-puts-this-over-max"),
    Parse(135, "aa/asdf$$^/aa", err="ErrReferenceInvalidFormat"),
    Parse(139, "sub-dom1.foo.com/bar/baz/quux", domain="sub-dom1.foo.com", repository="sub-dom1.foo.com/bar/baz/quux"),
    Parse(144, "sub-dom1.foo.com/bar/baz/quux:some-long-tag", domain="sub-dom1.foo.com",
          repository="sub-dom1.foo.com/bar/baz/quux", tag="some-long-tag"),
    Parse(150, "b.gcr.io/test.example.com/my-app:test.example.com", domain="b.gcr.io",
          repository="b.gcr.io/test.example.com/my-app", tag="test.example.com"),
    Parse(156, "xn--n3h.com/myimage:xn--n3h.com", domain="xn--n3h.com", repository="xn--n3h.com/myimage",
          tag="xn--n3h.com"),
    Parse(162, f"xn--7o8h.com/myimage:xn--7o8h.com@sha256:{F64}", domain="xn--7o8h.com",
          repository="xn--7o8h.com/myimage", tag="xn--7o8h.com", digest=f"sha256:{F64}"),
    Parse(169, "foo_bar.com:8080", repository="foo_bar.com", tag="8080"),
    Parse(174, "foo/foo_bar.com:8080", domain="foo", repository="foo/foo_bar.com", tag="8080"),
    Parse(180, "192.168.1.1", repository="192.168.1.1"),
    Parse(184, "192.168.1.1:tag", repository="192.168.1.1", tag="tag"),
    Parse(189, "192.168.1.1:5000", repository="192.168.1.1", tag="5000"),
    Parse(194, "192.168.1.1/repo", domain="192.168.1.1", repository="192.168.1.1/repo"),
    Parse(199, "192.168.1.1:5000/repo", domain="192.168.1.1:5000", repository="192.168.1.1:5000/repo"),
    Parse(204, "192.168.1.1:5000/repo:5050", domain="192.168.1.1:5000", repository="192.168.1.1:5000/repo",
          tag="5050"),
    Parse(210, "[2001:db8::1]", err="ErrReferenceInvalidFormat"),
    Parse(214, "[2001:db8::1]:5000", err="ErrReferenceInvalidFormat"),
    Parse(218, "[2001:db8::1]:tag", err="ErrReferenceInvalidFormat"),
    Parse(222, "[2001:db8::1]/repo", domain="[2001:db8::1]", repository="[2001:db8::1]/repo"),
    Parse(227, "[2001:db8:1:2:3:4:5:6]/repo:tag", domain="[2001:db8:1:2:3:4:5:6]",
          repository="[2001:db8:1:2:3:4:5:6]/repo", tag="tag"),
    Parse(233, "[2001:db8::1]:5000/repo", domain="[2001:db8::1]:5000", repository="[2001:db8::1]:5000/repo"),
    Parse(238, "[2001:db8::1]:5000/repo:tag", domain="[2001:db8::1]:5000", repository="[2001:db8::1]:5000/repo",
          tag="tag"),
    Parse(244, f"[2001:db8::1]:5000/repo@sha256:{F64}", domain="[2001:db8::1]:5000",
          repository="[2001:db8::1]:5000/repo", digest=f"sha256:{F64}"),
    Parse(250, f"[2001:db8::1]:5000/repo:tag@sha256:{F64}", domain="[2001:db8::1]:5000",
          repository="[2001:db8::1]:5000/repo", tag="tag", digest=f"sha256:{F64}"),
    Parse(257, "[2001:db8::]:5000/repo", domain="[2001:db8::]:5000", repository="[2001:db8::]:5000/repo"),
    Parse(262, "[::1]:5000/repo", domain="[::1]:5000", repository="[::1]:5000/repo"),
    Parse(267, "[fe80::1%eth0]:5000/repo", err="ErrReferenceInvalidFormat"),
    Parse(271, "[fe80::1%@invalidzone]:5000/repo", err="ErrReferenceInvalidFormat"),
    Parse(275, "example.com/" + "a" * 255 + ":tag", domain="example.com", repository="example.com/" + "a" * 255,
          tag="tag"),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, PARSE, "TestReferenceParse"))
def test_reference_parse(row: Parse) -> None:
    if row.intentional == "sha512-accepted":
        ref = Reference.parse(row.input)
        assert ref.digest is not None and ref.digest.algorithm == "sha512"
        assert str(ref) == "docker.io/library/" + row.input
        return
    if row.err:
        with pytest.raises(UsageError, match=ERRORS[row.err]):
            Reference.parse(row.input)
        return
    ref = Reference.parse(row.input)
    domain, path = normalized(row.repository)
    assert (ref.registry, ref.repository) == (domain, path)
    if row.domain:  # a domain upstream finds is a domain (or, lowercase without . or :, a path component)
        assert row.repository.startswith(row.domain + "/")
    assert ref.tag == (row.tag or (None if row.digest else "latest"))
    assert (str(ref.digest) if ref.digest else "") == row.digest
    assert str(ref) == expected_string(row.repository, row.tag, row.digest)
    assert Reference.parse(str(ref)) == ref  # upstream: repo.String() == input, so it parses back


# -- TestWithNameFailure (reference_test.go:343) --------------------------------------------------
class NameFailure(NamedTuple):
    line: int
    input: str
    err: str
    intentional: str | None = None


NAME_FAILURE = [
    NameFailure(350, "", "ErrReferenceInvalidFormat"),
    NameFailure(354, ":justtag", "ErrReferenceInvalidFormat"),
    NameFailure(358, f"@sha256:{F64}", "ErrReferenceInvalidFormat"),
    NameFailure(362, f"validname@invaliddigest:{F64}", "ErrReferenceInvalidFormat"),
    NameFailure(366, "example.com/repo:tag", "ErrReferenceInvalidFormat"),
    NameFailure(370, "example.com/" + "a" * 256, "ErrNameTooLong"),
    NameFailure(374, "aa/asdf$$^/aa", "ErrReferenceInvalidFormat"),
]


@pytest.mark.parametrize("row", params(SUITE, NAME_FAILURE, "TestWithNameFailure"))
def test_with_name_failure(row: NameFailure) -> None:
    """``WithName`` is a bare repository name: :meth:`Repository.parse`."""
    pattern = ERRORS[row.err] if row.err != "ErrReferenceInvalidFormat" else "invalid"
    with pytest.raises(UsageError, match=pattern):
        Repository.parse(row.input)


# -- TestDomainAndPath (reference_test.go:390) ----------------------------------------------------
class DomainAndPath(NamedTuple):
    line: int
    input: str
    domain: str
    path: str
    intentional: str | None = None


DOMAIN_AND_PATH = [
    DomainAndPath(398, "test.com/foo", "test.com", "foo"),
    DomainAndPath(403, "test_com/foo", "", "test_com/foo"),
    DomainAndPath(408, "test:8080/foo", "test:8080", "foo"),
    DomainAndPath(413, "test.com:8080/foo", "test.com:8080", "foo"),
    DomainAndPath(418, "test-com:8080/foo", "test-com:8080", "foo"),
    DomainAndPath(423, "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
]


@pytest.mark.parametrize("row", params(SUITE, DOMAIN_AND_PATH, "TestDomainAndPath"))
def test_domain_and_path(row: DomainAndPath) -> None:
    repository = Repository.parse(row.input)
    name = f"{row.domain}/{row.path}" if row.domain else row.path
    assert (repository.registry, repository.name) == normalized(name)


# -- TestSerialization (reference_test.go:451) ----------------------------------------------------
class Serialization(NamedTuple):
    line: int
    input: str
    name: str = ""
    tag: str = ""
    digest: str = ""
    err: str = ""
    intentional: str | None = None


SERIALIZATION = [
    Serialization(462, "", err="ErrNameEmpty"),
    Serialization(467, "example.com:8000/named", name="example.com:8000/named"),
    Serialization(472, "example.com:8000/named:tagged", name="example.com:8000/named", tag="tagged"),
    Serialization(478, "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
                  name="other.com/named",
                  digest="sha256:1234567890098765432112345667890098765432112345667890098765432112"),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, SERIALIZATION, "TestSerialization"))
def test_serialization(row: Serialization) -> None:
    """A reference written out and read back (upstream: a JSON ``Field``) is the same reference."""
    if row.err:
        with pytest.raises(UsageError, match=ERRORS[row.err]):
            Reference.parse(row.input)
        return
    ref = Reference.parse(row.input)
    assert (ref.registry, ref.repository) == normalized(row.name)
    assert ref.tag == (row.tag or (None if row.digest else "latest"))
    assert (str(ref.digest) if ref.digest else "") == row.digest
    assert Reference.parse(str(ref)) == ref


# -- TestWithTag (reference_test.go:574) and TestWithDigest (reference_test.go:636) ---------------
class Combine(NamedTuple):
    line: int
    name: str
    digest: str
    tag: str
    combined: str
    intentional: str | None = None


WITH_TAG = [
    Combine(583, "test.com/foo", "", "tag", "test.com/foo:tag"),
    Combine(588, "foo", "", "tag2", "foo:tag2"),
    Combine(593, "test.com:8000/foo", "", "tag4", "test.com:8000/foo:tag4"),
    Combine(598, "test.com:8000/foo", "", "TAG5", "test.com:8000/foo:TAG5"),
    Combine(603, "test.com:8000/foo", SHORT, "TAG5", f"test.com:8000/foo:TAG5@{SHORT}",
            intentional="digest-exact-length"),
]  # fmt: skip
WITH_DIGEST = [
    Combine(645, "test.com/foo", SHORT, "", f"test.com/foo@{SHORT}", intentional="digest-exact-length"),
    Combine(650, "foo", SHORT, "", f"foo@{SHORT}", intentional="digest-exact-length"),
    Combine(655, "test.com:8000/foo", SHORT, "", f"test.com:8000/foo@{SHORT}", intentional="digest-exact-length"),
    Combine(660, "test.com:8000/foo", SHORT, "latest", f"test.com:8000/foo:latest@{SHORT}",
            intentional="digest-exact-length"),
]  # fmt: skip


@pytest.mark.parametrize(
    "row", [*params(SUITE, WITH_TAG, "TestWithTag"), *params(SUITE, WITH_DIGEST, "TestWithDigest")]
)
def test_with_tag_and_digest(row: Combine) -> None:
    if row.intentional == "digest-exact-length":
        with pytest.raises(UsageError, match="needs 64 lowercase hex digits"):
            Digest.parse(row.digest)
        return
    ref = Reference.parse(f"{row.name}:{row.tag}" if row.tag else row.name)
    if row.digest:
        ref = ref.with_digest(Digest.parse(row.digest))
    domain, path = normalized(row.name)
    assert str(ref) == f"{domain}/{path}" + row.combined[len(row.name) :]


# -- TestParseNamed (reference_test.go:692) --------------------------------------------------------
class ParseNamed(NamedTuple):
    line: int
    input: str
    domain: str = ""
    path: str = ""
    err: str = ""
    intentional: str | None = None


PARSE_NAMED = [
    ParseNamed(701, "test.com/foo", domain="test.com", path="foo"),
    ParseNamed(706, "test:8080/foo", domain="test:8080", path="foo"),
    ParseNamed(711, "test_com/foo", err="ErrNameNotCanonical"),
    ParseNamed(715, "test.com", err="ErrNameNotCanonical"),
    ParseNamed(719, "foo", err="ErrNameNotCanonical"),
    ParseNamed(723, "library/foo", err="ErrNameNotCanonical"),
    ParseNamed(727, "docker.io/library/foo", domain="docker.io", path="library/foo"),
    ParseNamed(733, "docker.io/foo", err="ErrNameNotCanonical"),
]


@pytest.mark.parametrize("row", params(SUITE, PARSE_NAMED, "TestParseNamed"))
def test_parse_named(row: ParseNamed) -> None:
    """``ParseNamed`` accepts exactly the names ``ParseNormalizedNamed`` leaves unchanged."""
    repository = Repository.parse(row.input)
    assert (repository.registry, repository.name) == normalized(row.input)
    if row.err == "ErrNameNotCanonical":
        assert str(repository) != row.input
    else:
        assert (repository.registry, repository.name) == (row.domain, row.path)
        assert str(repository) == row.input


ROWS = [*PARSE, *NAME_FAILURE, *DOMAIN_AND_PATH, *SERIALIZATION, *WITH_TAG, *WITH_DIGEST, *PARSE_NAMED]
