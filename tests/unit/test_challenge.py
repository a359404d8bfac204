"""WWW-Authenticate parsing: every registry's spelling of a challenge, and garbage that must not raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from regpeek.formats.challenge import Challenge, answerable, parse, parse_all
from tests.unit.strategies import header_text

HUB = "https://auth.docker.io/token"

CASES = [
    pytest.param(
        f'Bearer realm="{HUB}",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
        [Challenge("bearer", {"realm": HUB, "service": "registry.docker.io",
                              "scope": "repository:library/ubuntu:pull"})],
        id="docker-hub",
    ),
    pytest.param(
        'Bearer scope="repository:nvidia/cuda:pull",service="nvcr.io",realm="https://nvcr.io/proxy_auth"',
        [Challenge("bearer", {"scope": "repository:nvidia/cuda:pull", "service": "nvcr.io",
                              "realm": "https://nvcr.io/proxy_auth"})],
        id="nvcr-scope-first",
    ),
    pytest.param(
        'Bearer service="ghcr.io",realm="https://ghcr.io/token"',
        [Challenge("bearer", {"service": "ghcr.io", "realm": "https://ghcr.io/token"})],
        id="ghcr-service-before-realm",
    ),
    pytest.param(
        'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
        [Challenge("bearer", {"realm": "https://quay.io/v2/auth", "service": "quay.io"})],
        id="quay",
    ),
    pytest.param(
        'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
        [Challenge("basic", {"realm": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",
                             "service": "ecr.amazonaws.com"})],
        id="ecr-basic",
    ),
    pytest.param('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})],
                 id="distribution-htpasswd"),
    pytest.param("Basic", [Challenge("basic", {})], id="basic-without-params"),
    pytest.param(
        'Bearer realm="https://a/token",service="a",scope="repository:x:pull repository:y:pull"',
        [Challenge("bearer", {"realm": "https://a/token", "service": "a",
                              "scope": "repository:x:pull repository:y:pull"})],
        id="several-scopes",
    ),
    pytest.param(
        'Bearer realm="https://a/token",scope="repository:x:pull,push"',
        [Challenge("bearer", {"realm": "https://a/token", "scope": "repository:x:pull,push"})],
        id="comma-inside-quotes",
    ),
    pytest.param(
        r'Bearer realm="https://a/to\"ken",service="a\\b"',
        [Challenge("bearer", {"realm": 'https://a/to"ken', "service": "a\\b"})],
        id="backslash-escapes",
    ),
    pytest.param(
        'Bearer realm="https://a/token",error="invalid_token"',
        [Challenge("bearer", {"realm": "https://a/token", "error": "invalid_token"})],
        id="error-invalid-token",
    ),
    pytest.param(
        'Bearer realm="https://a/token",scope="repository:x:pull",error="insufficient_scope"',
        [Challenge("bearer", {"realm": "https://a/token", "scope": "repository:x:pull",
                              "error": "insufficient_scope"})],
        id="error-insufficient-scope",
    ),
    pytest.param(
        'BEARER REALM="https://a/token", Service="a"',
        [Challenge("bearer", {"realm": "https://a/token", "service": "a"})],
        id="case-insensitive-scheme-and-names",
    ),
    pytest.param(
        "Bearer realm=https://a/token,service=registry.example.com",
        [Challenge("bearer", {"realm": "https://a/token", "service": "registry.example.com"})],
        id="unquoted-values",
    ),
    pytest.param(
        'Bearer realm = "https://a/token" , service = "a"',
        [Challenge("bearer", {"realm": "https://a/token", "service": "a"})],
        id="spaces-around-equals",
    ),
    pytest.param(
        'Bearer realm="https://a/token", Basic realm="b"',
        [Challenge("bearer", {"realm": "https://a/token"}), Challenge("basic", {"realm": "b"})],
        id="two-challenges-one-header",
    ),
    pytest.param(
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        [Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
         Challenge("basic", {"realm": "simple"})],
        id="rfc7235-example",
    ),
    pytest.param("Negotiate abc==", [Challenge("negotiate", {"": "abc=="})], id="token68"),
    pytest.param("Negotiate abc==, Basic realm=x",
                 [Challenge("negotiate", {"": "abc=="}), Challenge("basic", {"realm": "x"})],
                 id="token68-then-basic"),
    pytest.param("Negotiate, Basic realm=x", [Challenge("negotiate", {}), Challenge("basic", {"realm": "x"})],
                 id="bare-scheme-then-basic"),
    pytest.param('Bearer realm="a",realm="b"', [Challenge("bearer", {"realm": "a"})], id="first-duplicate-wins"),
    pytest.param('Bearer realm=""', [Challenge("bearer", {"realm": ""})], id="empty-quoted-value"),
    pytest.param('Bearer realm="https://a/token', [Challenge("bearer", {"realm": "https://a/token"})],
                 id="unterminated-quote"),
    pytest.param("", [], id="empty"),
    pytest.param(" , ,", [], id="only-separators"),
]  # fmt: skip


@pytest.mark.parametrize(("header", "expected"), CASES)
def test_parse(header: str, expected: list[Challenge]) -> None:
    assert parse(header) == expected


def test_properties() -> None:
    [challenge] = parse(
        'Bearer realm="https://a/token",service="a",scope="repository:x:pull  repository:y:pull",'
        'error="insufficient_scope"'
    )
    assert challenge.realm == "https://a/token"
    assert challenge.service == "a"
    assert challenge.scopes == ("repository:x:pull", "repository:y:pull")
    assert challenge.error == "insufficient_scope"
    [basic] = parse("Basic")
    assert (basic.realm, basic.service, basic.scopes, basic.error) == (None, None, (), None)


def test_parse_all_keeps_header_order() -> None:
    challenges = parse_all(
        ['Basic realm="first"', 'Bearer realm="https://a/token",service="a", Negotiate', ""]
    )
    assert [c.scheme for c in challenges] == ["basic", "bearer", "negotiate"]
    assert challenges[1].params == {"realm": "https://a/token", "service": "a"}


def test_parse_all_of_nothing() -> None:
    assert parse_all([]) == []


@settings(max_examples=200, deadline=None)
@given(header_text())
def test_garbage_never_raises(header: str) -> None:
    challenges = parse(header)
    assert isinstance(challenges, list)
    for challenge in challenges:
        assert isinstance(challenge, Challenge)
        assert challenge.scheme == challenge.scheme.lower()
        assert challenge.scheme
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in challenge.params.items())
    assert parse_all([header, header]) == challenges + challenges


# -- which challenge is answered ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="b", Bearer realm="https://t/token"', ("bearer", "https://t/token")),
        ('Bearer realm="", Basic realm="b"', ("basic", "b")),  # a Bearer without a realm cannot be answered
        ('Bearer service="s", Basic realm="b"', ("basic", "b")),
        ('Negotiate, Basic realm="first", Basic realm="second"', ("basic", "first")),
        ('Bearer realm="one", Bearer realm="two"', ("bearer", "one")),
        ('Negotiate abc, Digest realm="d"', None),
        ("", None),
    ],
)
def test_answerable_prefers_a_bearer_with_a_realm_then_basic(
    header: str, expected: tuple[str, str] | None
) -> None:
    chosen = answerable(iter(parse(header)))  # any iterable, consumed twice inside
    assert (None if chosen is None else (chosen.scheme, chosen.realm)) == expected


def test_names_starting_with_x_are_not_separators() -> None:
    assert parse('Xauth realm="r",Bearer Xa=1,Xb="2"') == [
        Challenge("xauth", {"realm": "r"}),
        Challenge("bearer", {"xa": "1", "xb": "2"}),
    ]
    assert parse("Bearer realm=Xr,scope=X") == [Challenge("bearer", {"realm": "Xr", "scope": "X"})]


def test_an_escape_at_the_very_end_is_kept_literally() -> None:
    [challenge] = parse('Bearer realm="a\\')
    assert challenge.realm == "a\\"  # unterminated: the backslash kept, never an IndexError


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('@Bearer realm="r"', [Challenge("bearer", {"realm": "r"})]),  # one junk character skipped, no more
        ("Negotiate abc=", [Challenge("negotiate", {"": "abc="})]),  # "abc=" at the end: a token68
        ('Negotiate abc=, Basic realm="x"', [Challenge("negotiate", {"": "abc="}), Challenge("basic", {"realm": "x"})]),
    ],
)  # fmt: skip
def test_token68_and_junk_boundaries(header: str, expected: list[Challenge]) -> None:
    assert parse(header) == expected
