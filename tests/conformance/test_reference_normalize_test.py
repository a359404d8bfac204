"""distribution/reference ``normalize_test.go``, translated to :mod:`regpeek.formats.reference`.

These tests exercise ``ParseNormalizedNamed``, which is what regpeek implements. Not ported, for lack
of a counterpart: ``FamiliarName``/``FamiliarString`` (regpeek always shows the full name),
``TestMatch``/``TestMatchError`` (``FamiliarMatch`` glob patterns). ``TestParseAnyReference`` rows that
are valid names are compared with regpeek's normalised form (``latest`` added to a name alone).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.errors import UsageError
from regpeek.formats.digest import Digest
from regpeek.formats.reference import Reference, Repository
from tests.conformance._rows import DISTRIBUTION_REFERENCE, Suite, params

SUITE = Suite.of(DISTRIBUTION_REFERENCE, "normalize_test.go")
TOO_LONG = (
    "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_"
    "lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_"
    "valid_namespace_because_its_lenth_is_greater_than_255/docker"
)


# -- TestValidateReferenceName (normalize_test.go:10), TestValidateRemoteName (normalize_test.go:77) -----
class Valid(NamedTuple):
    line: int
    name: str
    valid: bool
    intentional: str | None = None


VALIDATE_REFERENCE_NAME = [
    Valid(13, "docker/docker", True),
    Valid(14, "library/debian", True),
    Valid(15, "debian", True),
    Valid(16, "localhost/library/debian", True),
    Valid(17, "localhost/debian", True),
    Valid(18, "LOCALDOMAIN/library/debian", True),
    Valid(19, "LOCALDOMAIN/debian", True),
    Valid(20, "docker.io/docker/docker", True),
    Valid(21, "docker.io/library/debian", True),
    Valid(22, "docker.io/debian", True),
    Valid(23, "index.docker.io/docker/docker", True),
    Valid(24, "index.docker.io/library/debian", True),
    Valid(25, "index.docker.io/debian", True),
    Valid(26, "127.0.0.1:5000/docker/docker", True),
    Valid(27, "127.0.0.1:5000/library/debian", True),
    Valid(28, "127.0.0.1:5000/debian", True),
    Valid(29, "192.168.0.1", True),
    Valid(30, "192.168.0.1:80", True),
    Valid(31, "192.168.0.1:8/debian", True),
    Valid(32, "192.168.0.2:25000/debian", True),
    Valid(33, "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", True),
    Valid(34, "[fc00::1]:5000/docker", True),
    Valid(35, "[fc00::1]:5000/docker/docker", True),
    Valid(36, "[fc00:1:2:3:4:5:6:7]:5000/library/debian", True),
    Valid(41, "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", True),
    Valid(42, "Docker/docker", True),
    Valid(43, "DOCKER/docker", True),
    Valid(46, "https://github.com/docker/docker", False),
    Valid(47, "docker/Docker", False),
    Valid(48, "-docker", False),
    Valid(49, "-docker/docker", False),
    Valid(50, "-docker.io/docker/docker", False),
    Valid(51, "docker///docker", False),
    Valid(52, "docker.io/docker/Docker", False),
    Valid(53, "docker.io/docker///docker", False),
    Valid(54, "[fc00::1]", False),
    Valid(55, "[fc00::1]:5000", False),
    Valid(56, "fc00::1:5000/debian", False),
    Valid(57, "[fe80::1%eth0]:5000/debian", False),
    Valid(58, "[2001:db8:3:4::192.0.2.33]:5000/debian", False),
    Valid(59, "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", False),
]
VALIDATE_REMOTE_NAME = [
    Valid(81, "docker/docker", True),
    Valid(84, "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", True),
    Valid(87, "docker-rules/docker", True),
    Valid(90, "docker---rules/docker", True),
    Valid(93, "doc/docker", True),
    Valid(96, "d/docker", True),
    Valid(97, "jess/t", True),
    Valid(100, "dock__er/docker", True),
    Valid(111, "docker/Docker", False),
    Valid(114, "docker///docker", False),
    Valid(117, "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", False),
    Valid(120, "-docker/docker", False),
    Valid(121, "docker-/docker", False),
    Valid(122, "-docker-/docker", False),
    Valid(125, "____/____", False),
    Valid(127, "_docker/_docker", False),
    Valid(130, "dock..er/docker", False),
    Valid(131, "dock_.er/docker", False),
    Valid(132, "dock-.er/docker", False),
    Valid(135, "docker/", False),
    Valid(138, TOO_LONG, False),
]


@pytest.mark.parametrize(
    "row",
    [
        *params(SUITE, VALIDATE_REFERENCE_NAME, "TestValidateReferenceName"),
        *params(SUITE, VALIDATE_REMOTE_NAME, "TestValidateRemoteName"),
    ],
)
def test_validate_name(row: Valid) -> None:
    if row.valid:
        Reference.parse(row.name)
    else:
        with pytest.raises(UsageError, match="invalid"):
            Reference.parse(row.name)


# -- TestParseRepositoryInfo (normalize_test.go:147): one row per reference string ----------------
class Info(NamedTuple):
    line: int
    ref: str
    full_name: str
    domain: str
    remote_name: str
    intentional: str | None = None


PARSE_REPOSITORY_INFO = [
    Info(155, "localhost/fooo", "localhost/fooo", "localhost", "fooo"),
    Info(155, "localhost/fooo", "localhost/fooo", "localhost", "fooo"),
    Info(155, "localhost/fooo", "localhost/fooo", "localhost", "fooo"),
    Info(162, "localhost/fooo/bar", "localhost/fooo/bar", "localhost", "fooo/bar"),
    Info(162, "localhost/fooo/bar", "localhost/fooo/bar", "localhost", "fooo/bar"),
    Info(162, "localhost/fooo/bar", "localhost/fooo/bar", "localhost", "fooo/bar"),
    Info(169, "LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo", "LOCALDOMAIN", "fooo"),
    Info(169, "LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo", "LOCALDOMAIN", "fooo"),
    Info(169, "LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo", "LOCALDOMAIN", "fooo"),
    Info(176, "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN", "fooo/bar"),
    Info(176, "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN", "fooo/bar"),
    Info(176, "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN/fooo/bar", "LOCALDOMAIN", "fooo/bar"),
    Info(183, "fooo/bar", "docker.io/fooo/bar", "docker.io", "fooo/bar"),
    Info(183, "docker.io/fooo/bar", "docker.io/fooo/bar", "docker.io", "fooo/bar"),
    Info(183, "index.docker.io/fooo/bar", "docker.io/fooo/bar", "docker.io", "fooo/bar"),
    Info(190, "ubuntu", "docker.io/library/ubuntu", "docker.io", "library/ubuntu"),
    Info(190, "docker.io/library/ubuntu", "docker.io/library/ubuntu", "docker.io", "library/ubuntu"),
    Info(190, "library/ubuntu", "docker.io/library/ubuntu", "docker.io", "library/ubuntu"),
    Info(197, "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", "docker.io", "nonlibrary/ubuntu"),
    Info(197, "docker.io/nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", "docker.io", "nonlibrary/ubuntu"),
    Info(204, "other/library", "docker.io/other/library", "docker.io", "other/library"),
    Info(204, "docker.io/other/library", "docker.io/other/library", "docker.io", "other/library"),
    Info(
        211,
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000",
        "private/moonbase",
    ),
    Info(
        211,
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000/private/moonbase",
        "127.0.0.1:8000",
        "private/moonbase",
    ),
    Info(218, "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase"),
    Info(218, "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase"),
    Info(
        225, "example.com/private/moonbase", "example.com/private/moonbase", "example.com", "private/moonbase"
    ),
    Info(
        225, "example.com/private/moonbase", "example.com/private/moonbase", "example.com", "private/moonbase"
    ),
    Info(232, "example.com/privatebase", "example.com/privatebase", "example.com", "privatebase"),
    Info(232, "example.com/privatebase", "example.com/privatebase", "example.com", "privatebase"),
    Info(
        239,
        "example.com:8000/private/moonbase",
        "example.com:8000/private/moonbase",
        "example.com:8000",
        "private/moonbase",
    ),
    Info(
        239,
        "example.com:8000/private/moonbase",
        "example.com:8000/private/moonbase",
        "example.com:8000",
        "private/moonbase",
    ),
    Info(
        246,
        "example.com:8000/privatebasee",
        "example.com:8000/privatebasee",
        "example.com:8000",
        "privatebasee",
    ),
    Info(
        246,
        "example.com:8000/privatebasee",
        "example.com:8000/privatebasee",
        "example.com:8000",
        "privatebasee",
    ),
    Info(
        253,
        "ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        "docker.io",
        "library/ubuntu-12.04-base",
    ),
    Info(
        253,
        "docker.io/library/ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        "docker.io",
        "library/ubuntu-12.04-base",
    ),
    Info(
        253,
        "index.docker.io/library/ubuntu-12.04-base",
        "docker.io/library/ubuntu-12.04-base",
        "docker.io",
        "library/ubuntu-12.04-base",
    ),
    Info(260, "foo", "docker.io/library/foo", "docker.io", "library/foo"),
    Info(260, "docker.io/library/foo", "docker.io/library/foo", "docker.io", "library/foo"),
    Info(260, "docker.io/foo", "docker.io/library/foo", "docker.io", "library/foo"),
    Info(267, "library/foo/bar", "docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    Info(267, "docker.io/library/foo/bar", "docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
    Info(274, "store/foo/bar", "docker.io/store/foo/bar", "docker.io", "store/foo/bar"),
    Info(274, "docker.io/store/foo/bar", "docker.io/store/foo/bar", "docker.io", "store/foo/bar"),
    Info(281, "Foo/bar", "Foo/bar", "Foo", "bar"),
    Info(281, "Foo/bar", "Foo/bar", "Foo", "bar"),
    Info(288, "FOO/bar", "FOO/bar", "FOO", "bar"),
    Info(288, "FOO/bar", "FOO/bar", "FOO", "bar"),
]


@pytest.mark.parametrize("row", params(SUITE, PARSE_REPOSITORY_INFO, "TestParseRepositoryInfo"))
def test_parse_repository_info(row: Info) -> None:
    """FullName, Domain and RemoteName (FamiliarName has no counterpart: regpeek shows full names)."""
    repository = Repository.parse(row.ref)
    assert str(repository) == row.full_name
    assert repository.registry == row.domain
    assert repository.name == row.remote_name
    assert Reference.parse(row.ref).repo == repository


# -- TestParseReferenceWithTagAndDigest (normalize_test.go:336) ------------------------------------
class TagAndDigest(NamedTuple):
    line: int
    short_ref: str
    intentional: str | None = None


TAG_AND_DIGEST = [
    TagAndDigest(
        338, "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
    ),
]


@pytest.mark.parametrize("row", params(SUITE, TAG_AND_DIGEST, "TestParseReferenceWithTagAndDigest"))
def test_parse_reference_with_tag_and_digest(row: TagAndDigest) -> None:
    ref = Reference.parse(row.short_ref)
    assert str(ref) == "docker.io/library/" + row.short_ref
    assert ref.tag == "latest"  # NamedTagged
    assert ref.digest is not None  # Canonical


# -- TestInvalidReferenceComponents (normalize_test.go:358) ----------------------------------------
class Component(NamedTuple):
    line: int
    what: str
    value: str
    intentional: str | None = None


INVALID_COMPONENTS = [
    Component(360, "name", "-foo"),
    Component(367, "tag", "-foo"),
    Component(370, "digest", "foo"),
]


@pytest.mark.parametrize("row", params(SUITE, INVALID_COMPONENTS, "TestInvalidReferenceComponents"))
def test_invalid_reference_components(row: Component) -> None:
    Reference.parse("busybox")
    with pytest.raises(UsageError):
        if row.what == "name":
            Reference.parse(row.value)
        elif row.what == "tag":
            Reference.parse(f"busybox:{row.value}")
        else:
            Digest.parse(row.value)


# -- TestParseAnyReference (normalize_test.go:401) --------------------------------------------------
class AnyReference(NamedTuple):
    line: int
    reference: str
    equivalent: str
    intentional: str | None = None


PARSE_ANY_REFERENCE = [
    AnyReference(409, "redis", "docker.io/library/redis"),
    AnyReference(413, "redis:latest", "docker.io/library/redis:latest"),
    AnyReference(417, "docker.io/library/redis:latest", "docker.io/library/redis:latest"),
    AnyReference(
        421,
        "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
    ),
    AnyReference(
        425,
        "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
    ),
    AnyReference(429, "dmcgowan/myapp", "docker.io/dmcgowan/myapp"),
    AnyReference(433, "dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"),
    AnyReference(437, "docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest"),
    AnyReference(
        441,
        "dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        "docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
    ),
    AnyReference(
        445,
        "docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        "docker.io/dmcgowan/myapp@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
    ),
    AnyReference(
        449,
        "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        intentional="image-id-refused",
    ),
    AnyReference(
        454,
        "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        intentional="digest-only-is-a-name",
    ),
    AnyReference(
        459,
        "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
        "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
    ),
    AnyReference(463, "dbcc1", "docker.io/library/dbcc1"),
]


@pytest.mark.parametrize("row", params(SUITE, PARSE_ANY_REFERENCE, "TestParseAnyReference"))
def test_parse_any_reference(row: AnyReference) -> None:
    if row.intentional == "image-id-refused":
        with pytest.raises(UsageError, match="image ID"):
            Reference.parse(row.reference)
        return
    if row.intentional == "digest-only-is-a-name":
        ref = Reference.parse(row.reference)
        assert (ref.repository, ref.tag, ref.digest) == ("library/sha256", row.reference[7:], None)
        return
    ref = Reference.parse(row.reference)
    equivalent = Reference.parse(row.equivalent)
    assert ref == equivalent
    suffix = "" if ("@" in row.equivalent or row.equivalent.count(":") > 0) else ":latest"
    assert str(ref) == row.equivalent + suffix


# -- TestNormalizedSplitHostname (normalize_test.go:496) --------------------------------------------
class SplitHostname(NamedTuple):
    line: int
    input: str
    domain: str
    path: str
    intentional: str | None = None


NORMALIZED_SPLIT_HOSTNAME = [
    SplitHostname(504, "test.com/foo", "test.com", "foo"),
    SplitHostname(509, "test_com/foo", "docker.io", "test_com/foo"),
    SplitHostname(514, "docker/migrator", "docker.io", "docker/migrator"),
    SplitHostname(519, "test.com:8080/foo", "test.com:8080", "foo"),
    SplitHostname(524, "test-com:8080/foo", "test-com:8080", "foo"),
    SplitHostname(529, "foo", "docker.io", "library/foo"),
    SplitHostname(534, "xn--n3h.com/foo", "xn--n3h.com", "foo"),
    SplitHostname(539, "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
    SplitHostname(544, "docker.io/foo", "docker.io", "library/foo"),
    SplitHostname(549, "docker.io/library/foo", "docker.io", "library/foo"),
    SplitHostname(554, "docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
]


@pytest.mark.parametrize("row", params(SUITE, NORMALIZED_SPLIT_HOSTNAME, "TestNormalizedSplitHostname"))
def test_normalized_split_hostname(row: SplitHostname) -> None:
    ref = Reference.parse(row.input)
    assert (ref.registry, ref.repository) == (row.domain, row.path)


# -- TestParseDockerRef (normalize_test.go:662) -----------------------------------------------------
class DockerRef(NamedTuple):
    line: int
    name: str
    input: str
    expected: str
    intentional: str | None = None


PARSE_DOCKER_REF = [
    DockerRef(670, "nothing", "busybox", "docker.io/library/busybox:latest"),
    DockerRef(675, "tag only", "busybox:latest", "docker.io/library/busybox:latest"),
    DockerRef(680, "digest only", "busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582", "docker.io/library/busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"),
    DockerRef(685, "path only", "library/busybox", "docker.io/library/busybox:latest"),
    DockerRef(690, "hostname only", "docker.io/busybox", "docker.io/library/busybox:latest"),
    DockerRef(695, "no tag", "docker.io/library/busybox", "docker.io/library/busybox:latest"),
    DockerRef(700, "no path", "docker.io/busybox:latest", "docker.io/library/busybox:latest"),
    DockerRef(705, "no hostname", "library/busybox:latest", "docker.io/library/busybox:latest"),
    DockerRef(710, "full reference with tag", "docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
    DockerRef(715, "gcr reference without tag", "gcr.io/library/busybox", "gcr.io/library/busybox:latest"),
    DockerRef(720, "both tag and digest", "gcr.io/library/busybox:latest@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582", "gcr.io/library/busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
              intentional="tag-kept-with-digest"),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, PARSE_DOCKER_REF, "TestParseDockerRef"))
def test_parse_docker_ref(row: DockerRef) -> None:
    ref = Reference.parse(row.input)
    if row.intentional == "tag-kept-with-digest":
        assert (
            str(ref)
            == "gcr.io/library/busybox:latest@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"
        )
        assert (
            ref.target == "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"
        )  # the digest decides what is fetched
        return
    assert str(ref) == row.expected
    assert Reference.parse(str(ref)) == ref


ROWS = [
    *VALIDATE_REFERENCE_NAME,
    *VALIDATE_REMOTE_NAME,
    *PARSE_REPOSITORY_INFO,
    *TAG_AND_DIGEST,
    *INVALID_COMPONENTS,
    *PARSE_ANY_REFERENCE,
    *NORMALIZED_SPLIT_HOSTNAME,
    *PARSE_DOCKER_REF,
]
