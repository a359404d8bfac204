"""containers/image ``docker/wwwauthenticate_test.go``, translated to :func:`regpeek.formats.challenge.parse`.

``parseValueAndParams(header)`` returns the lowercased scheme and the parameters of one challenge.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from regpeek.formats.challenge import parse
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "docker/wwwauthenticate_test.go")


# -- TestParseValueAndParams (wwwauthenticate_test.go:11) -------------------------------------------------
class ValueAndParams(NamedTuple):
    line: int
    input: str
    scope: str  # upstream's name for the scheme
    params: dict[str, str]
    intentional: str | None = None


PARSE_VALUE_AND_PARAMS = [
    ValueAndParams(
        18,
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
        "bearer",
        {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
         "scope": "repository:library/busybox:pull"},
    ),
    ValueAndParams(
        27,
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"',
        "bearer",
        {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
         "scope": "repository:library/busybox:pull,push"},
    ),
    ValueAndParams(36, 'Bearer realm="http://127.0.0.1:5000/openshift/token"', "bearer",
                   {"realm": "http://127.0.0.1:5000/openshift/token"}),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, PARSE_VALUE_AND_PARAMS, "TestParseValueAndParams"))
def test_parse_value_and_params(row: ValueAndParams) -> None:
    challenges = parse(row.input)
    assert len(challenges) == 1  # a comma inside a quoted scope separates nothing
    assert challenges[0].scheme == row.scope
    assert challenges[0].params == row.params


ROWS = [*PARSE_VALUE_AND_PARAMS]
