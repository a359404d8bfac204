"""Reference parsing and normalisation, as distribution/reference does it."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regpeek.errors import UsageError
from regpeek.formats.digest import Digest
from regpeek.formats.reference import Reference, Repository
from tests.unit.strategies import reference_texts, references

HEX = "0123456789abcdef" * 4
SHA = f"sha256:{HEX}"
SHA512 = "sha512:" + "ab" * 64


# (input, registry, repository, tag, digest, str)
VALID = [
    pytest.param("ubuntu", "docker.io", "library/ubuntu", "latest", None,
                 "docker.io/library/ubuntu:latest", id="bare-name"),
    pytest.param("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None,
                 "docker.io/library/ubuntu:22.04", id="name-tag"),
    pytest.param("index.docker.io/x", "docker.io", "library/x", "latest", None,
                 "docker.io/library/x:latest", id="index.docker.io-alias"),
    pytest.param("registry-1.docker.io/x/y:1", "docker.io", "x/y", "1", None,
                 "docker.io/x/y:1", id="registry-1-alias"),
    pytest.param("docker.io/org/app", "docker.io", "org/app", "latest", None,
                 "docker.io/org/app:latest", id="docker.io-org"),
    pytest.param("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None,
                 "docker.io/library/ubuntu:latest", id="docker.io-single-component"),
    pytest.param("org/app", "docker.io", "org/app", "latest", None,
                 "docker.io/org/app:latest", id="hub-org-without-host"),
    pytest.param("localhost/name", "localhost", "name", "latest", None,
                 "localhost/name:latest", id="localhost-no-library"),
    pytest.param("localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", None,
                 "localhost:5000/a/b:tag", id="localhost-port-nested"),
    pytest.param("myhost:5000/name", "myhost:5000", "name", "latest", None,
                 "myhost:5000/name:latest", id="host-port"),
    pytest.param("Foo/bar", "Foo", "bar", "latest", None, "Foo/bar:latest", id="uppercase-first-is-host"),
    pytest.param("ghcr.io/org/app:v1.2.3", "ghcr.io", "org/app", "v1.2.3", None,
                 "ghcr.io/org/app:v1.2.3", id="ghcr"),
    pytest.param("[::1]:5000/a", "[::1]:5000", "a", "latest", None, "[::1]:5000/a:latest", id="ipv6-host"),
    pytest.param(f"name@{SHA}", "docker.io", "library/name", None, SHA,
                 f"docker.io/library/name@{SHA}", id="digest-only"),
    pytest.param(f"name:tag@{SHA}", "docker.io", "library/name", "tag", SHA,
                 f"docker.io/library/name:tag@{SHA}", id="tag-and-digest"),
    pytest.param(f"localhost:5000/a/b:t@{SHA512}", "localhost:5000", "a/b", "t", SHA512,
                 f"localhost:5000/a/b:t@{SHA512}", id="sha512-digest"),
    pytest.param("docker://alpine:3.20", "docker.io", "library/alpine", "3.20", None,
                 "docker.io/library/alpine:3.20", id="docker-transport-prefix"),
    pytest.param("a.b-c--d:1/g:_T.a-G", "a.b-c--d:1", "g", "_T.a-G", None,
                 "a.b-c--d:1/g:_T.a-G", id="dotted-first-is-host"),
    pytest.param("a_b__c-d---e/f.g", "docker.io", "a_b__c-d---e/f.g", "latest", None,
                 "docker.io/a_b__c-d---e/f.g:latest", id="separators-in-components"),
    pytest.param("localhost:5000", "docker.io", "library/localhost", "5000", None,
                 "docker.io/library/localhost:5000", id="localhost-colon-is-a-tag"),
    pytest.param("ubuntu:" + "t" * 128, "docker.io", "library/ubuntu", "t" * 128, None,
                 "docker.io/library/ubuntu:" + "t" * 128, id="tag-128-chars"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest", "canonical"), VALID)
def test_parse_valid(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None, canonical: str
) -> None:
    ref = Reference.parse(text)
    assert ref.registry == registry
    assert ref.repository == repository
    assert ref.tag == tag
    assert (str(ref.digest) if ref.digest else None) == digest
    assert str(ref) == canonical


@pytest.mark.parametrize(
    ("text", "target"),
    [
        pytest.param("ubuntu", "latest", id="default-tag"),
        pytest.param("ubuntu:22.04", "22.04", id="tag"),
        pytest.param(f"ubuntu@{SHA}", SHA, id="digest"),
        pytest.param(f"ubuntu:22.04@{SHA}", SHA, id="digest-wins-over-tag"),
    ],
)
def test_target(text: str, target: str) -> None:
    assert Reference.parse(text).target == target


@pytest.mark.parametrize(
    ("text", "api_host"),
    [
        pytest.param("ubuntu", "registry-1.docker.io", id="hub-default"),
        pytest.param("docker.io/org/app", "registry-1.docker.io", id="hub-explicit"),
        pytest.param("index.docker.io/org/app", "registry-1.docker.io", id="hub-alias"),
        pytest.param("ghcr.io/org/app", "ghcr.io", id="ghcr"),
        pytest.param("localhost:5000/app", "localhost:5000", id="local-port"),
    ],
)
def test_api_host(text: str, api_host: str) -> None:
    ref = Reference.parse(text)
    assert ref.api_host == api_host
    assert ref.repo.api_host == api_host


def test_tag_and_digest_both_kept() -> None:
    ref = Reference.parse(f"name:tag@{SHA}")
    assert ref.tag == "tag"
    assert ref.digest == Digest("sha256", HEX)
    assert ref.target == SHA


INVALID = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("Ubuntu", id="uppercase-single-component"),
    pytest.param("docker.io/Org/app", id="uppercase-repo-component"),
    pytest.param("localhost/App", id="uppercase-after-host"),
    pytest.param("ubuntu:-bad", id="tag-leading-dash"),
    pytest.param("ubuntu:.bad", id="tag-leading-dot"),
    pytest.param("ubuntu:" + "t" * 129, id="tag-129-chars"),
    pytest.param("ubuntu:a+b", id="tag-plus"),
    pytest.param("ubuntu:", id="empty-tag"),
    pytest.param(HEX, id="64-hex-image-id"),
    pytest.param("ubuntu@sha256:abc", id="digest-short"),
    pytest.param("ubuntu@sha256:" + "0" * 63, id="sha256-63-hex"),
    pytest.param("ubuntu@sha256:" + "0" * 65, id="sha256-65-hex"),
    pytest.param("ubuntu@sha256:" + "A" * 64, id="sha256-uppercase-hex"),
    pytest.param("ubuntu@sha256:" + "g" * 64, id="sha256-non-hex"),
    pytest.param("ubuntu@sha512:" + "0" * 64, id="sha512-wrong-length"),
    pytest.param("ubuntu@md5:" + "0" * 32, id="unknown-algorithm"),
    pytest.param("ubuntu@", id="empty-digest"),
    pytest.param(f"ubuntu@{SHA}@{SHA}", id="two-digests"),
    pytest.param("https://ghcr.io/org/app", id="https-url"),
    pytest.param("http://localhost:5000/app", id="http-url"),
    pytest.param("oci://x/y", id="other-url-scheme"),
    pytest.param("localhost/" + "a" * 256, id="path-256-chars"),
    pytest.param("a" * 248, id="hub-path-256-chars-after-normalising"),
    pytest.param("ubuntu/", id="trailing-slash"),
    pytest.param("org//app", id="double-slash"),
    pytest.param("/ubuntu", id="leading-slash"),
    pytest.param("ubuntu-", id="trailing-separator"),
    pytest.param("ubu..ntu", id="double-dot"),
    pytest.param("ubu___ntu", id="triple-underscore"),
    pytest.param("-host.io/app", id="bad-host-label"),
    pytest.param("host:port/app", id="non-numeric-port"),
    pytest.param("[2001:db8:3:4::192.0.2.33]:5000/debian", id="ipv6-with-dotted-quad"),
    pytest.param("[fe80::1%eth0]:5000/debian", id="ipv6-zone"),
    pytest.param(":tag", id="tag-without-name"),
    pytest.param(f"@{SHA}", id="digest-without-name"),
    # Python's `$` matches before a trailing newline and `\w` matches non-ASCII letters:
    # distribution's (RE2, ASCII) grammar accepts neither.
    pytest.param("ubuntu\n:latest", id="newline-inside-name"),
    pytest.param("foo\n/bar", id="newline-in-first-component"),
    pytest.param(f"ubuntu:latest\n@{SHA}", id="newline-inside-tag"),
    pytest.param("ubuntu:t\u00e9st", id="non-ascii-letter-in-tag"),
    pytest.param("ubuntu:\u0663", id="non-ascii-digit-tag"),
]


@pytest.mark.parametrize("text", INVALID)
def test_parse_invalid_raises_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="invalid reference"):
        Reference.parse(text)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        pytest.param("localhost/" + "a" * 255, 255, id="local-255"),
        pytest.param("a" * 247, 255, id="hub-255-after-normalising"),
        pytest.param("registry.example.com:5000/" + "a" * 255, 255, id="host-not-counted"),
    ],
)
def test_path_length_limit_is_inclusive(text: str, length: int) -> None:
    """The 255-character limit is on the repository path only (distribution/reference since 2024)."""
    ref = Reference.parse(text)
    assert len(ref.repository) == length


def test_usage_error_is_value_error_with_exit_code_2() -> None:
    with pytest.raises(ValueError) as info:
        Reference.parse("UPPER")
    assert isinstance(info.value, UsageError)
    assert info.value.exit_code == 2


def test_with_digest_keeps_tag() -> None:
    ref = Reference.parse("ubuntu:22.04").with_digest(Digest("sha256", HEX))
    assert str(ref) == f"docker.io/library/ubuntu:22.04@{SHA}"
    assert ref.target == SHA


@pytest.mark.parametrize(
    ("text", "registry", "name", "canonical"),
    [
        pytest.param("ubuntu", "docker.io", "library/ubuntu", "docker.io/library/ubuntu", id="bare"),
        pytest.param("index.docker.io/org/app", "docker.io", "org/app", "docker.io/org/app", id="hub-alias"),
        pytest.param("localhost:5000/a/b", "localhost:5000", "a/b", "localhost:5000/a/b", id="local"),
        pytest.param("docker://ghcr.io/o/a", "ghcr.io", "o/a", "ghcr.io/o/a", id="transport-prefix"),
    ],
)
def test_repository_parse(text: str, registry: str, name: str, canonical: str) -> None:
    repo = Repository.parse(text)
    assert (repo.registry, repo.name, str(repo)) == (registry, name, canonical)
    assert repo.pull_scope == f"repository:{name}:pull"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("ubuntu:22.04", id="tag"),
        pytest.param(f"ubuntu@{SHA}", id="digest"),
        pytest.param("Ubuntu", id="uppercase"),
        pytest.param("https://ghcr.io/o/a", id="url"),
        pytest.param("", id="empty"),
    ],
)
def test_repository_parse_invalid(text: str) -> None:
    with pytest.raises(UsageError):
        Repository.parse(text)


def test_repository_api_host_for_hub() -> None:
    assert Repository.parse("ubuntu").api_host == "registry-1.docker.io"
    assert Repository.parse("quay.io/a/b").api_host == "quay.io"


# -- properties ------------------------------------------------------------------------------------

_CANONICAL_CHARS = set(string.ascii_letters + string.digits + "._-/:@[]")


@settings(max_examples=100, deadline=None)
@given(references())
def test_round_trip(ref: Reference) -> None:
    assert Reference.parse(str(ref)) == ref


@settings(max_examples=80, deadline=None)
@given(references(), st.booleans())
def test_normalisation_is_idempotent(ref: Reference, transport: bool) -> None:
    once = Reference.parse(("docker://" if transport else "") + str(ref))
    twice = Reference.parse(str(once))
    assert twice == once
    assert str(twice) == str(once)


@settings(max_examples=200, deadline=None)
@given(reference_texts())
def test_arbitrary_text_parses_or_raises_usage_error(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except UsageError:
        return
    canonical = str(ref)
    assert set(canonical) <= _CANONICAL_CHARS, canonical
    assert Reference.parse(canonical) == ref


# -- error messages name the input and the reason (what the CLI prints) --------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Ubuntu/App",
            "invalid reference 'Ubuntu/App': bad path component 'App' (repository names must be lowercase)",
        ),
        ("ubuntu/a!pp", "invalid reference 'ubuntu/a!pp': bad path component 'a!pp'"),
        (
            "  https://ghcr.io/org/app",
            "invalid reference 'https://ghcr.io/org/app': give a reference like host/name:tag, not a URL",
        ),
        (
            "HTTPS://ghcr.io/org/app",
            "invalid reference 'HTTPS://ghcr.io/org/app': give a reference like host/name:tag, not a URL",
        ),
        (
            "git+ssh://x/y",
            "invalid reference 'git+ssh://x/y': give a reference like host/name:tag, not a URL",
        ),
        (
            " [::1]:5000/a/B:1",
            "invalid reference ' [::1]:5000/a/B:1': bad path component 'B' (repository names must be lowercase)",
        ),
    ],
)
def test_reference_errors_say_why(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        Reference.parse(text)
    assert str(info.value) == message


def test_a_bracketed_first_component_is_a_host_without_dots() -> None:
    """``[...]`` is taken as an IPv6 host (and refused as a bad one here), not as a Docker Hub path."""
    with pytest.raises(UsageError) as info:
        Reference.parse("[fe80/app")
    assert str(info.value) == "invalid reference '[fe80/app': bad registry host '[fe80'"
    assert Reference.parse("[fe80::1]/app").registry == "[fe80::1]"


def test_a_digest_with_an_at_sign_after_it_is_refused() -> None:
    """Only the first ``@`` separates the digest: anything after it is part of (an invalid) digest."""
    digest = "sha256:" + "a" * 64
    with pytest.raises(UsageError, match="invalid digest"):
        Reference.parse(f"ghcr.io/org/app@{digest}@{digest}")


def test_a_port_and_a_tag_are_told_apart() -> None:
    ref = Reference.parse("localhost:5000/org/app:1.2")
    assert (ref.registry, ref.repository, ref.tag) == ("localhost:5000", "org/app", "1.2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ghcr.io/org/app:1",
            "invalid repository 'ghcr.io/org/app:1': give a repository without a tag or digest",
        ),
        ("ghcr.io/org/app@sha256:" + "a" * 64, "give a repository without a tag or digest"),
        (
            "Org/App",
            "invalid reference 'Org/App': bad path component 'App' (repository names must be lowercase)",
        ),
    ],
)
def test_repository_errors_say_why(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        Repository.parse(text)
    assert message in str(info.value)


def test_a_repository_with_a_port_is_not_a_tag() -> None:
    repository = Repository.parse("localhost:5000/org/app")
    assert (repository.registry, repository.name) == ("localhost:5000", "org/app")


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (Reference.parse, "ghcr.io/a:b/c", "invalid reference 'ghcr.io/a:b/c': bad path component 'a:b'"),
        (Repository.parse, "ghcr.io/org/app@latest", "invalid repository 'ghcr.io/org/app@latest': give a repository without a tag or digest"),
        (Repository.parse, "ghcr.io/org:1/app", "invalid reference 'ghcr.io/org:1/app': bad path component 'org:1'"),
    ],
)  # fmt: skip
def test_a_colon_or_at_sign_is_judged_where_it_stands(parse: Any, text: str, message: str) -> None:
    """A colon before the last slash is part of a path component (refused as one), not a tag."""
    with pytest.raises(UsageError) as info:
        parse(text)
    assert str(info.value) == message
