"""What an authentication failure says, what ``--debug`` logs of the auth steps, and two transport
rules: a name that does not resolve is not retried, and a loopback registry that answers TLS with plain
HTTP is talked to in plain HTTP. Both clients, one MockTransport handler (see test_auth.py)."""

# ruff: noqa: F811 - the fixtures of test_auth.py are imported, and test parameters name them
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from regpeek.errors import AuthError, RegistryUnavailableError
from regpeek.network.credentials import CredentialStore
from tests.unit.test_auth import (  # noqa: F401 - fixtures among them
    CHALLENGE,
    MANIFEST_PATH,
    REF,
    REGISTRY,
    SCOPE,
    MakeDriver,
    Server,
    basic,
    challenge_response,
    json_response,
    make,
    manifest_response,
    mode,
    sleeps,
    token_server,
)

PASSWORD = "hunter2-secret"
TOKEN = "tok-very-secret"
HINT = f"(run `regpeek login {REGISTRY}` or pass --username)"


def _basic_only(user: str, password: str) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == basic(user, password):
            return manifest_response()
        return challenge_response('Basic realm="registry"')

    return respond


def _error(make: MakeDriver, server: Server, **options: object) -> str:
    return _refusal(make, server, **options)[1]


def _refusal(make: MakeDriver, server: Server, **options: object) -> tuple[str, str]:
    """(reason, message) of the AuthError: both from the one record the auth flow kept."""
    with pytest.raises(AuthError) as info:
        make(server, **options).call("fetch_manifest", REF)
    assert info.value.host == REGISTRY and info.value.scope is not None and SCOPE in info.value.scope
    return info.value.reason, str(info.value)


def test_no_credentials_for_a_basic_registry(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, _basic_only("alice", PASSWORD))
    assert _refusal(make, server) == (
        "missing_credentials",
        f"no credentials for {REGISTRY} {HINT}: HTTP 401 for manifest {REF}: UNAUTHORIZED: authentication required",
    )


def test_basic_credentials_refused_say_where_they_came_from(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, _basic_only("alice", PASSWORD))
    assert _refusal(make, server, username="alice", password="wrong") == (
        "refused",
        f"credentials for {REGISTRY} were refused (from --username): HTTP 401 for manifest {REF}: "
        "UNAUTHORIZED: authentication required",
    )


def test_credentials_from_an_auth_file_are_named(make: MakeDriver, tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = home / ".docker" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"auths": {REGISTRY: {"auth": "YWxpY2U6d3Jvbmc="}}}))  # alice:wrong
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, _basic_only("alice", PASSWORD))
    store = CredentialStore(environ={}, home=home)
    message = _error(make, server, credentials=store)
    assert f"credentials for {REGISTRY} were refused (from ~/.docker/config.json)" in message


def _bearer_denying(status: int, error: str | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return challenge_response(CHALLENGE)
        header = CHALLENGE + (f',error="{error}"' if error else "")
        return json_response(
            {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]},
            status,
            **{"WWW-Authenticate": header},
        )

    return respond


def test_a_token_without_the_access_names_the_scope(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, _bearer_denying(401, "insufficient_scope"))
    server.route("auth.test", "/token", token_server({"token": TOKEN}))
    assert _refusal(make, server, username="alice", password=PASSWORD) == (
        "forbidden",
        f"{REGISTRY} refused access to manifest {REF} (HTTP 401 insufficient_scope; the token had scope "
        f"{SCOPE}; credentials from --username): DENIED: requested access to the resource is denied",
    )


def test_403_names_the_token_scope(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, _bearer_denying(403))
    server.route("auth.test", "/token", token_server({"token": TOKEN}))
    assert _refusal(make, server) == (
        "forbidden",
        f"{REGISTRY} refused access to manifest {REF} (HTTP 403; the token had scope {SCOPE}): "
        "DENIED: requested access to the resource is denied",
    )


@pytest.mark.parametrize(
    ("credentials", "status", "reason", "expected"),
    [
        pytest.param(True, 401, "refused", f"credentials for {REGISTRY} were refused (from --username) by the token "
                     "service at https://auth.test/token (HTTP 401)", id="credentials-refused"),
        pytest.param(False, 401, "missing_credentials", f"no credentials for {REGISTRY} {HINT}: the token service at "
                     "https://auth.test/token refused anonymous access (HTTP 401)", id="anonymous-refused"),
        pytest.param(True, 404, "token_service", "token service at https://auth.test/token failed: HTTP 404",
                     id="not-found"),
        pytest.param(True, 403, "token_service", "token service at https://auth.test/token failed: HTTP 403",
                     id="forbidden-by-the-service"),
    ],
)  # fmt: skip
def test_token_service_failures(
    make: MakeDriver, credentials: bool, status: int, reason: str, expected: str
) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: challenge_response(CHALLENGE))
    server.route("auth.test", "/token", lambda r: json_response({"details": "no"}, status))
    logins = {"username": "alice", "password": PASSWORD} if credentials else {}
    assert _refusal(make, server, **logins) == (reason, expected)


def test_debug_logs_the_auth_steps_and_no_secret(make: MakeDriver, caplog: pytest.LogCaptureFixture) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, _bearer_denying(401, "insufficient_scope"))
    server.route("auth.test", "/token", token_server({"token": TOKEN}))
    with caplog.at_level(logging.DEBUG, logger="regpeek"), pytest.raises(AuthError):
        make(server, username="alice", password=PASSWORD).call("fetch_manifest", REF)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{REGISTRY} answered 401 for {MANIFEST_PATH}: bearer realm=https://auth.test/token" in text
    assert (
        f"token request to auth.test for {REGISTRY}, scope {SCOPE}, with credentials of alice from --username"
        in text
    )
    assert "answered 401 again (insufficient_scope)" in text
    assert PASSWORD not in text and TOKEN not in text


# -- transport rules ----------------------------------------------------------------------------


def test_a_name_that_does_not_resolve_is_not_retried(make: MakeDriver) -> None:
    def unresolvable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, unresolvable)
    with pytest.raises(RegistryUnavailableError) as info:
        make(server, retries=3).call("fetch_manifest", REF)
    assert str(info.value) == f"cannot resolve host {REGISTRY} (for manifest {REF})"
    assert len(server.requests) == 1


def _plain_http(server: Server, host: str, paths: list[str]) -> list[str]:
    """Routes for a registry that speaks plain HTTP: a TLS handshake gets an HTTP answer
    (WRONG_VERSION_NUMBER). Returns the list of URLs asked, filled as requests arrive."""
    answered: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        answered.append(f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}")
        if request.url.scheme == "https":
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
        return manifest_response()

    for path in paths:
        server.route(host, path, respond)
    return answered


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:5000", "127.8.9.10:8080", "[::1]:5000"])
def test_a_loopback_registry_without_tls_is_read_over_http_once_found(make: MakeDriver, host: str) -> None:
    server = Server()
    answered = _plain_http(server, host, ["/v2/org/app/manifests/1", "/v2/org/app/manifests/2"])
    driver = make(server)
    driver.call("fetch_manifest", f"{host}/org/app:1")
    driver.call("fetch_manifest", f"{host}/org/app:2")
    assert answered == [
        f"https://{host}/v2/org/app/manifests/1",  # the one TLS attempt
        f"http://{host}/v2/org/app/manifests/1",
        f"http://{host}/v2/org/app/manifests/2",  # remembered: no second TLS attempt
    ]


def test_another_host_without_tls_is_not_downgraded(make: MakeDriver) -> None:
    server = Server()
    answered = _plain_http(server, REGISTRY, [MANIFEST_PATH])
    with pytest.raises(RegistryUnavailableError, match="may speak plain HTTP"):
        make(server).call("fetch_manifest", REF)
    assert answered == [f"https://{REGISTRY}{MANIFEST_PATH}"]


def test_an_insecure_host_falls_back_too(make: MakeDriver) -> None:
    server = Server()
    answered = _plain_http(server, REGISTRY, [MANIFEST_PATH])
    make(server, insecure_hosts=frozenset({REGISTRY})).call("fetch_manifest", REF)
    assert answered == [f"https://{REGISTRY}{MANIFEST_PATH}", f"http://{REGISTRY}{MANIFEST_PATH}"]


def test_loopback_fallback_can_be_turned_off(make: MakeDriver) -> None:
    server = Server()
    answered = _plain_http(server, "127.0.0.1:5000", ["/v2/org/app/manifests/1"])
    with pytest.raises(RegistryUnavailableError):
        make(server, loopback_http=False).call("fetch_manifest", "127.0.0.1:5000/org/app:1")
    assert answered == ["https://127.0.0.1:5000/v2/org/app/manifests/1"]
