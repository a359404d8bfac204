"""google/go-containerregistry ``pkg/v1/remote/transport`` challenge handling, translated to
:mod:`regpeek.formats.challenge`.

Ported from ``ping_test.go`` and ``transport_test.go``: the ``WWW-Authenticate`` headers their test
servers send and what the transport makes of them. ``Ping``'s scheme and parameter count are
:func:`challenge.parse_all`; which challenge gets answered (ggcr's ``pickFromMultipleChallenges``, then
its transport selection) is :func:`challenge.answerable`, the rule regpeek's ``RegistryAuth`` applies.
Not ported: tests of plain-HTTP fallback, token refresh and realm validation (transport behaviour, not
header parsing; regpeek's counterparts are in tests/unit/test_auth.py).
"""

from __future__ import annotations

from typing import NamedTuple

import httpx
import pytest

from regpeek.errors import AuthError
from regpeek.formats.challenge import answerable, parse_all
from regpeek.network.transport import error_for_status
from tests.conformance._rows import GO_CONTAINERREGISTRY, Suite, params

PING = Suite.of(GO_CONTAINERREGISTRY, "pkg/v1/remote/transport/ping_test.go")
TRANSPORT = Suite.of(GO_CONTAINERREGISTRY, "pkg/v1/remote/transport/transport_test.go")
SUITES = {"ping": PING, "transport": TRANSPORT}


class Challenged(NamedTuple):
    line: int
    headers: tuple[str, ...]
    schemes: tuple[str, ...]  # every challenge parsed, in order
    answered: str | None  # the scheme that gets answered, None when none can be
    params: int | None = None  # the answered (or, with none, the first) challenge's parameter count
    status: int = 401
    intentional: str | None = None


PING_ROWS = [
    # TestPingBasicChallengeNoParams (ping_test.go:58)
    Challenged(61, ("BASIC",), ("basic",), "basic", 0),
    # TestPingBearerChallengeWithParams (ping_test.go:81)
    Challenged(84, ('Bearer realm="http://auth.example.com/token"',), ("bearer",), "bearer", 1),
    # TestPingMultipleChallenges (ping_test.go:104)
    Challenged(107, ("Negotiate", 'Basic realm="http://auth.example.com/token"'), ("negotiate", "basic"), "basic", 1),
    # TestPingMultipleNotSupportedChallenges (ping_test.go:128): ggcr reports Negotiate, then cannot answer it
    Challenged(131, ("Negotiate", "Digest"), ("negotiate", "digest"), None, 0),
    # TestUnsupportedStatus (ping_test.go:149): a 403 is refused whatever it says (note the unclosed quote)
    Challenged(152, ('Bearer realm="http://auth.example.com/token',), ("bearer",), "bearer", 1, status=403,
               intentional="lenient-challenge"),
]  # fmt: skip
TRANSPORT_ROWS = [
    # TestTransportSelectionBasic (transport_test.go:88)
    Challenged(91, ("Basic",), ("basic",), "basic", 0),
    # TestTransportSelectionBearer (transport_test.go:134)
    Challenged(144, ('Bearer realm="http://foo.io"',), ("bearer",), "bearer", 1),
    # TestTransportSelectionBearerMissingRealm (transport_test.go:179): an error, no token to fetch
    Challenged(182, ('Bearer service="gcr.io"',), ("bearer",), None, 1),
]
ROWS_BY_SUITE = {"ping": PING_ROWS, "transport": TRANSPORT_ROWS}


@pytest.mark.parametrize(
    "row", [*params(PING, PING_ROWS, "ping"), *params(TRANSPORT, TRANSPORT_ROWS, "transport")]
)
def test_challenge(row: Challenged) -> None:
    challenges = parse_all(row.headers)
    assert tuple(c.scheme for c in challenges) == row.schemes
    chosen = answerable(challenges)
    assert (chosen.scheme if chosen else None) == row.answered
    shown = chosen or challenges[0]
    assert len(shown.params) == row.params
    if row.intentional == "lenient-challenge":
        # distribution's parser (which ggcr uses) drops an unterminated quoted value; regpeek keeps it
        assert shown.realm == "http://auth.example.com/token"
    if row.status != 401:  # not a challenge at all: access is refused
        response = httpx.Response(row.status, headers=[("WWW-Authenticate", h) for h in row.headers])
        assert isinstance(error_for_status(response, b"", "a manifest"), AuthError)


ROWS = [*PING_ROWS, *TRANSPORT_ROWS]
