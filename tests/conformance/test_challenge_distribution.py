"""distribution/distribution ``internal/client/auth/challenge/authchallenge_test.go`` (formerly
``registry/client/auth/challenge``), translated to :mod:`regpeek.formats.challenge`.

``parseAuthHeader`` is :func:`challenge.parse_all` over the ``WWW-Authenticate`` headers. The challenge
*managers* (per-host storage keyed by the canonical address, concurrency, ``FilteringManager``'s
predicate) have no pure counterpart: regpeek's ``RegistryAuth`` keeps one challenge per registry host.
Their rows check what they parse.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats.challenge import parse_all
from tests.conformance._rows import DISTRIBUTION, Suite, params

SUITE = Suite.of(DISTRIBUTION, "internal/client/auth/challenge/authchallenge_test.go")
PARSE_HEADER = r'Bearer realm="https://auth.example.com/token",service="registry.example.com",other=fun,slashed="he\"\l\lo"'


class Param(NamedTuple):
    line: int
    headers: tuple[str, ...]
    position: int  # which challenge
    name: str  # "scheme" or a parameter name
    expected: str
    intentional: str | None = None


# -- TestAuthChallengeParse (authchallenge_test.go:12) ---------------------------------------------------
AUTH_CHALLENGE_PARSE = [
    Param(22, (PARSE_HEADER,), 0, "scheme", "bearer"),
    Param(26, (PARSE_HEADER,), 0, "realm", "https://auth.example.com/token"),
    Param(30, (PARSE_HEADER,), 0, "service", "registry.example.com"),
    Param(34, (PARSE_HEADER,), 0, "other", "fun"),
    Param(38, (PARSE_HEADER,), 0, "slashed", 'he"llo'),
]

# -- TestAuthChallengeNormalization (authchallenge_test.go:43): the headers it adds, per host --------------
NORMALIZATION = [
    Param(line, (f'Bearer realm="https://{host}/token",service="registry.example.com"',), 0, "realm",
          f"https://{host}/token")
    for line, host in ((44, "reg.EXAMPLE.com"), (45, "bɿɒʜɔiɿ-ɿɘƚƨim-ƚol-ɒ-ƨʞnɒʜƚ.com"), (46, "reg.example.com:80"))
]  # fmt: skip

# -- TestFilteringManager (authchallenge_test.go:125): both challenges parsed, in order -------------------
FILTERING_HEADERS = (
    'Bearer realm="https://auth.example.com/token",service="keep.example.com"',
    'Bearer realm="https://evil.example.net/token",service="drop.example.net"',
)
FILTERING_MANAGER = [
    Param(145, FILTERING_HEADERS, 0, "service", "keep.example.com"),
    Param(146, FILTERING_HEADERS, 1, "service", "drop.example.net"),
]


@pytest.mark.parametrize(
    "row",
    [
        *params(SUITE, AUTH_CHALLENGE_PARSE, "TestAuthChallengeParse"),
        *params(SUITE, NORMALIZATION, "TestAuthChallengeNormalization"),
        *params(SUITE, FILTERING_MANAGER, "TestFilteringManager"),
    ],
)
def test_auth_challenge(row: Param) -> None:
    challenges = parse_all(row.headers)
    assert len(challenges) == len(row.headers)
    challenge = challenges[row.position]
    value = challenge.scheme if row.name == "scheme" else challenge.params.get(row.name)
    assert value == row.expected


ROWS = [*AUTH_CHALLENGE_PARSE, *NORMALIZATION, *FILTERING_MANAGER]
