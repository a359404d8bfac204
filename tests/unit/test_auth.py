"""The client's HTTP behaviour against httpx.MockTransport: auth, redirects, retries, verification.

Every scenario runs twice, through ``regpeek.Client`` and through ``regpeek.AsyncClient``, with one
handler serving both.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

import regpeek
from regpeek.errors import (
    AuthError,
    DigestMismatchError,
    MalformedError,
    NotFoundError,
    PlatformNotFoundError,
    RegistryUnavailableError,
    RegpeekError,
    SizeMismatchError,
    TooLargeError,
    UnsupportedError,
    UsageError,
    VerificationError,
    exit_code_for,
)
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest
from regpeek.network.auth import MAX_TOKEN_RESPONSE, RegistryAuth, scope_for_path
from regpeek.network.credentials import CredentialStore
from regpeek.network.transport import HttpOptions
from tests.unit.builders import dumps, entry, image_manifest, index, sha256

REGISTRY = "registry.test"
REALM = "https://auth.test/token"
REPO = "org/app"
REF = f"{REGISTRY}/{REPO}:1"
MANIFEST_PATH = f"/v2/{REPO}/manifests/1"
SCOPE = f"repository:{REPO}:pull"
CHALLENGE = f'Bearer realm="{REALM}",service="{REGISTRY}",scope="{SCOPE}"'

CONFIG = dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"]}})
MANIFEST = dumps(
    image_manifest(config={"mediaType": mt.OCI_CONFIG, "digest": sha256(CONFIG), "size": len(CONFIG)})
)
MANIFEST_DIGEST = sha256(MANIFEST)

Handler = Callable[[httpx.Request], httpx.Response]


def manifest_response(
    body: bytes = MANIFEST, media_type: str = mt.OCI_MANIFEST, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": media_type, **(headers or {})})


def json_response(document: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(document).encode(), headers=headers)


def challenge_response(header: str = CHALLENGE) -> httpx.Response:
    return json_response(
        {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
        401,
        **{"WWW-Authenticate": header},
    )


@dataclass
class Server:
    """Routes (host, path) to responders and records every request it sees."""

    routes: dict[tuple[str, str], Handler | list[httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def route(self, host: str, path: str, respond: Handler | list[httpx.Response]) -> None:
        self.routes[(host, path)] = respond

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # A snapshot: the auth flow mutates and resends the same Request object.
        self.requests.append(
            httpx.Request(
                request.method, request.url, headers=request.headers.copy(), content=request.content
            )
        )
        respond = self.routes.get((request.url.netloc.decode(), request.url.path))
        if respond is None:
            return json_response(
                {"errors": [{"code": "NOT_FOUND_IN_TEST", "message": str(request.url)}]}, 404
            )
        if isinstance(respond, list):
            return respond.pop(0) if len(respond) > 1 else respond[0]
        return respond(request)

    def to(self, host: str, path: str | None = None) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.url.netloc.decode() == host and (path is None or r.url.path == path)
        ]

    def token_requests(self) -> list[httpx.Request]:
        return self.to("auth.test", "/token")

    def trace(self) -> list[tuple[str, str, str | None]]:
        return [
            (r.method, f"{r.url.netloc.decode()}{r.url.path}", r.headers.get("Authorization"))
            for r in self.requests
        ]


def bearer_only(token: str, inner: Handler, header: str = CHALLENGE) -> Handler:
    """A registry endpoint answering 401 + challenge unless it gets ``Bearer token``."""

    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return challenge_response(header)
        return inner(request)

    return respond


def token_server(*bodies: dict[str, Any]) -> Handler:
    """Token endpoint handing out the given JSON bodies in turn (the last one repeatedly)."""
    queue = list(bodies)

    def respond(request: httpx.Request) -> httpx.Response:
        body = queue.pop(0) if len(queue) > 1 else queue[0]
        return json_response(body)

    return respond


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode())


# -- driving both clients with one handler -----------------------------------------------------------


class Driver:
    """One regpeek client, sync or async, with a synchronous calling convention for the tests."""

    def __init__(self, mode: str, server: Server, options: HttpOptions, credentials: CredentialStore) -> None:
        self.mode = mode
        self.server = server
        self.sync: regpeek.Client | None = None
        self.async_: regpeek.AsyncClient | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        if mode == "sync":
            self.sync = regpeek.Client(options=options, credentials=credentials, platform="linux/amd64")
        else:
            self.loop = asyncio.new_event_loop()
            self.async_ = regpeek.AsyncClient(
                options=options, credentials=credentials, platform="linux/amd64"
            )

    @property
    def auth(self) -> RegistryAuth:
        client = self.sync or self.async_
        assert client is not None
        return client.auth

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.sync is not None:
            return getattr(self.sync, name)(*args, **kwargs)
        assert self.loop is not None and self.async_ is not None
        return self.loop.run_until_complete(getattr(self.async_, name)(*args, **kwargs))

    def close(self) -> None:
        if self.sync is not None:
            self.sync.close()
        if self.loop is not None and self.async_ is not None:
            self.loop.run_until_complete(self.async_.aclose())
            self.loop.close()


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """Record retry sleeps instead of sleeping (in both the sync and the async request loop)."""
    record = Sleeps()

    def fake_sleep(seconds: float) -> None:
        record.delays.append(seconds)

    async def fake_async_sleep(seconds: float) -> None:
        record.delays.append(seconds)

    # The request loops call time.sleep (sync) and asyncio.sleep (async) through their modules.
    monkeypatch.setattr(time, "sleep", fake_sleep)
    monkeypatch.setattr(asyncio, "sleep", fake_async_sleep)
    return record


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


MakeDriver = Callable[..., Driver]


@pytest.fixture
def make(mode: str, tmp_path: Path, sleeps: Sleeps) -> Iterator[MakeDriver]:
    drivers: list[Driver] = []

    def build(
        server: Server,
        *,
        username: str | None = None,
        password: str | None = None,
        credentials: CredentialStore | None = None,
        **options: Any,
    ) -> Driver:
        settings: dict[str, Any] = {
            "retries": 0, "backoff": 0.01, "max_backoff": 0.02, "max_retry_after": 0.05,
            "insecure": True,  # no TLS with a MockTransport; skips loading the CA bundle for every client
        }  # fmt: skip
        settings.update(options)
        store = credentials or CredentialStore(
            username=username, password=password, environ={}, home=tmp_path / "nohome"
        )
        driver = Driver(mode, server, HttpOptions(transport=httpx.MockTransport(server), **settings), store)
        drivers.append(driver)
        return driver

    yield build
    for driver in drivers:
        driver.close()


# -- Bearer --------------------------------------------------------------------------------------


def test_bearer_handshake(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok-1", lambda r: manifest_response()))
    server.route("auth.test", "/token", token_server({"token": "tok-1", "expires_in": 300}))
    client = make(server)
    manifest = client.call("fetch_manifest", REF)
    assert str(manifest.digest) == MANIFEST_DIGEST
    assert server.trace() == [
        ("GET", f"{REGISTRY}{MANIFEST_PATH}", None),
        ("GET", "auth.test/token", None),  # anonymous: no credentials to send
        ("GET", f"{REGISTRY}{MANIFEST_PATH}", "Bearer tok-1"),
    ]
    assert query(server.token_requests()[0]) == {"service": [REGISTRY], "scope": [SCOPE]}
    assert server.requests[0].headers["Accept"] == mt.MANIFEST_ACCEPT
    assert client.auth.token_requests == 1
    assert "tok-1" in client.auth.secrets


def test_token_request_carries_every_scope(make: MakeDriver) -> None:
    header = f'Bearer realm="{REALM}",service="{REGISTRY}",scope="repository:org/base:pull {SCOPE}"'
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok", lambda r: manifest_response(), header))
    server.route("auth.test", "/token", token_server({"token": "tok"}))
    make(server).call("fetch_manifest", REF)
    assert query(server.token_requests()[0])["scope"] == ["repository:org/base:pull", SCOPE]


def test_token_request_adds_the_request_scope_when_challenge_has_none(make: MakeDriver) -> None:
    header = f'Bearer realm="{REALM}",service="{REGISTRY}"'
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok", lambda r: manifest_response(), header))
    server.route("auth.test", "/token", token_server({"token": "tok"}))
    make(server).call("fetch_manifest", REF)
    assert query(server.token_requests()[0]) == {"service": [REGISTRY], "scope": [SCOPE]}


@pytest.mark.parametrize(
    ("body", "used"),
    [
        pytest.param({"token": "t-token"}, "t-token", id="token-only"),
        pytest.param({"access_token": "t-access"}, "t-access", id="access_token-only"),
        pytest.param({"token": "t-token", "access_token": "t-access"}, "t-access", id="prefer-access_token"),
        pytest.param({"token": "t-token", "access_token": ""}, "t-token", id="empty-access_token"),
    ],
)
def test_token_field(make: MakeDriver, body: dict[str, Any], used: str) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only(used, lambda r: manifest_response()))
    server.route("auth.test", "/token", token_server(body))
    make(server).call("fetch_manifest", REF)
    assert server.requests[-1].headers["Authorization"] == f"Bearer {used}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"nothing": 1}, "without a token", id="no-token"),
        pytest.param({"token": 5}, "without a token", id="token-not-string"),
        pytest.param(["tok"], "not a JSON object", id="not-an-object"),
    ],
)
def test_unusable_token_responses(make: MakeDriver, body: Any, message: str) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok", lambda r: manifest_response()))
    server.route("auth.test", "/token", lambda r: json_response(body))
    with pytest.raises(AuthError, match=message):
        make(server).call("fetch_manifest", REF)


def test_token_cached_for_the_same_repository(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok", lambda r: manifest_response()))
    server.route("auth.test", "/token", token_server({"token": "tok", "expires_in": 300}))
    client = make(server)
    client.call("fetch_manifest", REF)
    client.call("fetch_manifest", REF)
    assert len(server.token_requests()) == 1
    assert [a for _, _, a in server.trace()] == [None, None, "Bearer tok", "Bearer tok"]


def test_new_repository_fetches_its_token_up_front(make: MakeDriver) -> None:
    other = "/v2/org/other/manifests/1"
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok-a", lambda r: manifest_response()))
    server.route(REGISTRY, other, bearer_only("tok-b", lambda r: manifest_response()))
    server.route("auth.test", "/token", token_server({"token": "tok-a"}, {"token": "tok-b"}))
    client = make(server)
    client.call("fetch_manifest", REF)
    client.call("fetch_manifest", f"{REGISTRY}/org/other:1")
    assert server.trace()[3:] == [
        ("GET", "auth.test/token", None),
        ("GET", f"{REGISTRY}{other}", "Bearer tok-b"),
    ]
    assert "repository:org/other:pull" in query(server.token_requests()[1])["scope"]


def test_fresh_token_refused_is_auth_error(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: challenge_response())
    server.route("auth.test", "/token", token_server({"token": "useless"}))
    with pytest.raises(AuthError, match="HTTP 401") as info:
        make(server).call("fetch_manifest", REF)
    assert info.value.exit_code == 4
    assert len(server.to(REGISTRY)) == 2
    assert len(server.token_requests()) == 1
    assert "useless" not in str(info.value)


@pytest.mark.parametrize("status", [401, 403, 500])
def test_token_endpoint_refusal(make: MakeDriver, status: int) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: challenge_response())
    server.route("auth.test", "/token", lambda r: json_response({"details": "no"}, status))
    with pytest.raises(AuthError, match=f"HTTP {status}"):
        make(server).call("fetch_manifest", REF)


def test_token_response_over_1_mib(make: MakeDriver) -> None:
    huge = json.dumps({"token": "t" * MAX_TOKEN_RESPONSE}).encode()
    assert len(huge) > MAX_TOKEN_RESPONSE
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: challenge_response())
    server.route("auth.test", "/token", lambda r: httpx.Response(200, content=huge))
    with pytest.raises(TooLargeError):
        make(server).call("fetch_manifest", REF)


def test_unusable_realm(make: MakeDriver) -> None:
    server = Server()
    server.route(
        REGISTRY, MANIFEST_PATH, lambda r: challenge_response('Bearer realm="ftp://auth.test/token"')
    )
    with pytest.raises(AuthError, match="realm"):
        make(server).call("fetch_manifest", REF)
    assert server.token_requests() == []


# -- credentials -----------------------------------------------------------------------------------


def test_basic_challenge_with_credentials(make: MakeDriver) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != basic("alice", "s3cret"):
            return challenge_response('Basic realm="Registry Realm"')
        return manifest_response()

    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, respond)
    client = make(server, username="alice", password="s3cret")
    client.call("fetch_manifest", REF)
    client.call("fetch_manifest", REF)
    assert [a for _, _, a in server.trace()] == [None, basic("alice", "s3cret"), basic("alice", "s3cret")]
    assert server.token_requests() == []


def test_basic_challenge_without_credentials(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: challenge_response('Basic realm="Registry Realm"'))
    with pytest.raises(AuthError, match="HTTP 401"):
        make(server).call("fetch_manifest", REF)
    assert len(server.requests) == 1


def test_basic_credentials_go_to_the_token_realm(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok", lambda r: manifest_response()))
    server.route("auth.test", "/token", token_server({"token": "tok"}))
    make(server, username="alice", password="s3cret").call("fetch_manifest", REF)
    [token_request] = server.token_requests()
    assert token_request.headers["Authorization"] == basic("alice", "s3cret")
    assert query(token_request) == {"service": [REGISTRY], "scope": [SCOPE], "account": ["alice"]}
    assert [a for _, _, a in server.trace()] == [None, basic("alice", "s3cret"), "Bearer tok"]


def test_credentials_never_sent_to_plain_http_realm(make: MakeDriver) -> None:
    server = Server()
    server.route(
        REGISTRY, MANIFEST_PATH, lambda r: challenge_response('Bearer realm="http://auth.test/token"')
    )
    with pytest.raises(AuthError, match="plain-http"):
        make(server, username="alice", password="s3cret").call("fetch_manifest", REF)
    assert server.token_requests() == []


def _identity_store(tmp_path: Path) -> CredentialStore:
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {REGISTRY: {"identitytoken": "refresh-123"}}}))
    return CredentialStore(authfile=authfile, environ={}, home=tmp_path)


def test_identity_token_uses_oauth2_post(make: MakeDriver, tmp_path: Path) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok", lambda r: manifest_response()))
    server.route("auth.test", "/token", token_server({"access_token": "tok"}))
    make(server, credentials=_identity_store(tmp_path)).call("fetch_manifest", REF)
    [token_request] = server.token_requests()
    assert token_request.method == "POST"
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["refresh-123"],
        "service": [REGISTRY],
        "client_id": ["regpeek"],
        "scope": [SCOPE],
    }


@pytest.mark.parametrize("status", [404, 401, 400, 405])
def test_identity_token_post_refused_falls_back_to_get(make: MakeDriver, tmp_path: Path, status: int) -> None:
    """REFERENCE: fall back to GET on 404/401/400/405 (GCR 404, Artifactory 401, ACR 400)."""

    def token(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response({"error": "unsupported"}, status)
        return json_response({"token": "tok"})

    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("tok", lambda r: manifest_response()))
    server.route("auth.test", "/token", token)
    make(server, credentials=_identity_store(tmp_path)).call("fetch_manifest", REF)
    assert [r.method for r in server.token_requests()] == ["POST", "GET"]
    assert query(server.token_requests()[1])["scope"] == [SCOPE]


# -- expiry, with an injected clock ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "lifetime"),
    [
        pytest.param({"token": "t"}, 60, id="default-60"),
        pytest.param({"token": "t", "expires_in": 10}, 60, id="minimum-60"),
        pytest.param({"token": "t", "expires_in": 300}, 300, id="expires_in-300"),
        pytest.param({"token": "t", "expires_in": "300"}, 60, id="expires_in-string-ignored"),
    ],
)
def test_token_expiry(mode: str, tmp_path: Path, body: dict[str, Any], lifetime: int) -> None:
    now = [1000.0]
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, bearer_only("t", lambda r: manifest_response()))
    server.route("auth.test", "/token", token_server(body))
    auth = RegistryAuth(CredentialStore(environ={}, home=tmp_path), clock=lambda: now[0])
    auth.register(REGISTRY, REGISTRY)
    url = f"https://{REGISTRY}{MANIFEST_PATH}"

    def get() -> int:
        if mode == "sync":
            with httpx.Client(transport=httpx.MockTransport(server)) as client:
                return client.get(url, auth=auth).status_code

        async def go() -> int:
            async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
                return (await client.get(url, auth=auth)).status_code

        return asyncio.run(go())

    assert get() == 200
    assert auth.token_requests == 1
    now[0] += lifetime - 10
    assert get() == 200
    assert auth.token_requests == 1  # still valid
    now[0] += 11
    assert get() == 200
    assert auth.token_requests == 2  # expired: fetched again
    assert server.requests[-1].headers["Authorization"] == "Bearer t"


@pytest.mark.parametrize(
    ("path", "method", "scope"),
    [
        pytest.param("/v2/library/ubuntu/manifests/latest", "GET", "repository:library/ubuntu:pull", id="manifest"),
        pytest.param("/v2/a/b/c/blobs/sha256:x", "HEAD", "repository:a/b/c:pull", id="blob-head"),
        pytest.param("/v2/a/tags/list", "GET", "repository:a:pull", id="tags"),
        pytest.param("/v2/a/referrers/sha256:x", "GET", "repository:a:pull", id="referrers"),
        pytest.param("/v2/a/blobs/uploads/", "POST", "repository:a:pull,push", id="push"),
        pytest.param("/v2/_catalog", "GET", "registry:catalog:*", id="catalog"),
        pytest.param("/v2/", "GET", None, id="ping"),
        pytest.param("/somewhere/else", "GET", None, id="not-registry-api"),
    ],
)  # fmt: skip
def test_scope_for_path(path: str, method: str, scope: str | None) -> None:
    assert scope_for_path(path, method) == scope


# -- redirects ---------------------------------------------------------------------------------------

BLOB_PATH = f"/v2/{REPO}/blobs/{sha256(CONFIG)}"


def _config_descriptor() -> regpeek.Descriptor:
    return regpeek.Descriptor(mt.OCI_CONFIG, regpeek.Digest.parse(sha256(CONFIG)), len(CONFIG))


def test_blob_redirect_to_another_host_drops_authorization(make: MakeDriver) -> None:
    cdn = "https://cdn.test/blobs/abc?X-Amz-Signature=secret"
    server = Server()
    server.route(
        REGISTRY, BLOB_PATH, bearer_only("tok", lambda r: httpx.Response(307, headers={"Location": cdn}))
    )
    server.route("auth.test", "/token", token_server({"token": "tok"}))
    server.route("cdn.test", "/blobs/abc", lambda r: httpx.Response(200, content=CONFIG))
    client = make(server, username="alice", password="s3cret")
    body = client.call("blob_bytes", f"{REGISTRY}/{REPO}", _config_descriptor())
    assert body == CONFIG
    [cdn_request] = server.to("cdn.test")
    assert "Authorization" not in cdn_request.headers
    assert server.trace()[-2:] == [
        ("GET", f"{REGISTRY}{BLOB_PATH}", "Bearer tok"),
        ("GET", "cdn.test/blobs/abc", None),
    ]


def test_relative_redirect_on_the_same_host_keeps_auth(make: MakeDriver) -> None:
    server = Server()
    server.route(
        REGISTRY,
        BLOB_PATH,
        bearer_only("tok", lambda r: httpx.Response(302, headers={"Location": "/storage/x"})),
    )
    server.route(REGISTRY, "/storage/x", lambda r: httpx.Response(200, content=CONFIG))
    server.route("auth.test", "/token", token_server({"token": "tok", "expires_in": 300}))
    assert make(server).call("blob_bytes", f"{REGISTRY}/{REPO}", _config_descriptor()) == CONFIG
    assert server.to(REGISTRY, "/storage/x")[0].url.scheme == "https"


def test_https_to_http_redirect_refused(make: MakeDriver) -> None:
    server = Server()
    server.route(
        REGISTRY, BLOB_PATH, lambda r: httpx.Response(302, headers={"Location": "http://cdn.test/blob"})
    )
    with pytest.raises(RegistryUnavailableError, match="https to http"):
        make(server).call("blob_bytes", f"{REGISTRY}/{REPO}", _config_descriptor())
    assert server.to("cdn.test") == []


def _redirect_chain(server: Server, hops: int) -> None:
    def hop(n: int) -> Handler:
        return lambda r: httpx.Response(302, headers={"Location": f"https://cdn.test/hop/{n + 1}"})

    server.route(
        REGISTRY, BLOB_PATH, lambda r: httpx.Response(302, headers={"Location": "https://cdn.test/hop/1"})
    )
    for n in range(1, hops):
        server.route("cdn.test", f"/hop/{n}", hop(n))
    server.route("cdn.test", f"/hop/{hops}", lambda r: httpx.Response(200, content=CONFIG))


def test_ten_redirects_followed(make: MakeDriver) -> None:
    server = Server()
    _redirect_chain(server, 10)
    assert make(server).call("blob_bytes", f"{REGISTRY}/{REPO}", _config_descriptor()) == CONFIG
    assert len(server.requests) == 11


def test_eleven_redirects_refused(make: MakeDriver) -> None:
    server = Server()
    _redirect_chain(server, 11)
    with pytest.raises(RegistryUnavailableError, match="too many redirects"):
        make(server, retries=3).call("blob_bytes", f"{REGISTRY}/{REPO}", _config_descriptor())
    assert len(server.requests) == 11  # the 11th redirect is never followed, and not retried


# -- retries -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        pytest.param("0", 0.0, id="retry-after-0"),
        pytest.param("1", 0.05, id="retry-after-capped"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="retry-after-date-in-the-past"),
    ],
)
def test_429_retry_after_then_success(
    make: MakeDriver, sleeps: Sleeps, retry_after: str, delay: float
) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, [
        json_response({"errors": [{"code": "TOOMANYREQUESTS"}]}, 429, **{"Retry-After": retry_after}),
        manifest_response(),
    ])  # fmt: skip
    manifest = make(server, retries=2).call("fetch_manifest", REF)
    assert str(manifest.digest) == MANIFEST_DIGEST
    assert len(server.requests) == 2
    assert sleeps.delays == [delay]


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_503_until_retries_run_out(make: MakeDriver, sleeps: Sleeps, retries: int) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: httpx.Response(503, content=b"busy"))
    with pytest.raises(RegistryUnavailableError, match="HTTP 503") as info:
        make(server, retries=retries, backoff=0.01, max_backoff=0.02).call("fetch_manifest", REF)
    assert len(server.requests) == retries + 1
    assert info.value.exit_code == 6
    if retries:
        assert f"after {retries + 1} attempts" in str(info.value)
    assert len(sleeps.delays) == retries
    for attempt, delay in enumerate(sleeps.delays, 1):
        ceiling = min(0.01 * 2 ** (attempt - 1), 0.02)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize("status", [502, 503, 504])
def test_transient_statuses_retried(make: MakeDriver, status: int) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, [httpx.Response(status), manifest_response()])
    make(server, retries=1).call("fetch_manifest", REF)
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 403, 404, 405, 500])
def test_other_statuses_not_retried(make: MakeDriver, status: int) -> None:
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: httpx.Response(status))
    with pytest.raises(RegpeekError):
        make(server, retries=3).call("fetch_manifest", REF)
    assert len(server.requests) == 1


def test_connection_errors_retried_then_unavailable(make: MakeDriver, sleeps: Sleeps) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, refuse)
    with pytest.raises(RegistryUnavailableError, match=r"cannot reach registry\.test") as info:
        make(server, retries=2).call("fetch_manifest", REF)
    assert len(server.requests) == 3
    assert "after 3 attempts" in str(info.value)
    assert len(sleeps.delays) == 2


# -- responses -----------------------------------------------------------------------------------------


def test_warning_header_delivered_once(make: MakeDriver) -> None:
    warnings: list[str] = []
    headers = [("Warning", '299 - "this registry is deprecated"'), ("Warning", '199 - "ignored, not 299"'),
               ("Content-Type", mt.OCI_MANIFEST)]  # fmt: skip
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: httpx.Response(200, content=MANIFEST, headers=headers))
    client = make(server, on_warning=warnings.append)
    client.call("fetch_manifest", REF)
    client.call("fetch_manifest", REF)
    assert warnings == ["this registry is deprecated"]


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        pytest.param(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                       "detail": {"Tag": "1"}}]},
                     NotFoundError, f"manifest {REF} not found (HTTP 404): MANIFEST_UNKNOWN: manifest unknown",
                     id="manifest-unknown"),
        pytest.param(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"},
                                      {"code": "X", "message": ""}]},
                     NotFoundError, f"manifest {REF} not found (HTTP 404): NAME_UNKNOWN: repository name not "
                     "known; X", id="two-errors"),
        pytest.param(403, {"errors": [{"code": "DENIED", "message": "requested access is denied"}]},
                     AuthError, f"registry.test refused access to manifest {REF} (HTTP 403): DENIED: requested access "
                     "is denied",
                     id="denied"),
        pytest.param(401, True, AuthError, "no credentials for registry.test (run `regpeek login registry.test` or "
                     f"pass --username): HTTP 401 for manifest {REF}",
                     id="quay-true-body"),
        pytest.param(400, {"errors": [{"code": "TAG_INVALID"}]}, UsageError,
                     f"registry rejected the request for manifest {REF} (HTTP 400): TAG_INVALID", id="bad-request"),
        pytest.param(405, {"errors": [{"code": "UNSUPPORTED", "message": "nope"}]}, UnsupportedError,
                     f"registry does not support the request for manifest {REF} (HTTP 405): UNSUPPORTED: nope",
                     id="unsupported"),
        pytest.param(500, "<html>oops</html>", RegistryUnavailableError,
                     f"registry failed for manifest {REF}: HTTP 500", id="html-500"),
        pytest.param(418, {}, RegpeekError, f"unexpected HTTP 418 for manifest {REF}", id="teapot"),
    ],
)  # fmt: skip
def test_registry_errors(
    make: MakeDriver, status: int, body: Any, error: type[RegpeekError], message: str
) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: httpx.Response(status, content=content))
    with pytest.raises(error) as info:
        make(server).call("fetch_manifest", REF)
    assert type(info.value) is error
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("header", "error"),
    [
        pytest.param(MANIFEST_DIGEST, None, id="matching"),
        pytest.param(sha256(b"something else"), DigestMismatchError, id="mismatch"),
        pytest.param("sha512:" + "0" * 128, DigestMismatchError, id="sha512-mismatch"),
        pytest.param("sha256:nothex", MalformedError, id="invalid"),
    ],
)
def test_docker_content_digest_checked(make: MakeDriver, header: str, error: type[Exception] | None) -> None:
    server = Server()
    server.route(
        REGISTRY, MANIFEST_PATH, lambda r: manifest_response(headers={"Docker-Content-Digest": header})
    )
    client = make(server)
    if error is None:
        assert str(client.call("fetch_manifest", REF).digest) == MANIFEST_DIGEST
    else:
        with pytest.raises(error):
            client.call("fetch_manifest", REF)


def test_manifest_by_digest_must_hash_to_it(make: MakeDriver) -> None:
    wanted = sha256(b"the manifest I asked for")
    server = Server()
    server.route(REGISTRY, f"/v2/{REPO}/manifests/{wanted}", lambda r: manifest_response())
    with pytest.raises(DigestMismatchError) as info:
        make(server).call("fetch_manifest", f"{REGISTRY}/{REPO}@{wanted}")
    assert (str(info.value.expected), str(info.value.actual)) == (wanted, MANIFEST_DIGEST)
    assert isinstance(info.value, VerificationError)


def test_manifest_by_digest_ok(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, f"/v2/{REPO}/manifests/{MANIFEST_DIGEST}", lambda r: manifest_response())
    manifest = make(server).call("fetch_manifest", f"{REGISTRY}/{REPO}:1@{MANIFEST_DIGEST}")
    assert str(manifest.digest) == MANIFEST_DIGEST


def test_manifest_over_4_mib_refused(make: MakeDriver) -> None:
    big = MANIFEST + b" " * (4 * 1024 * 1024)
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: manifest_response(big))
    with pytest.raises(TooLargeError):
        make(server).call("fetch_manifest", REF)


def test_blob_must_match_descriptor(make: MakeDriver) -> None:
    server = Server()
    server.route(REGISTRY, BLOB_PATH, lambda r: httpx.Response(200, content=CONFIG[:-1] + b" "))
    with pytest.raises(DigestMismatchError):
        make(server).call("blob_bytes", f"{REGISTRY}/{REPO}", _config_descriptor())
    server = Server()
    server.route(REGISTRY, BLOB_PATH, lambda r: httpx.Response(200, content=CONFIG[:-1]))
    with pytest.raises(SizeMismatchError):
        make(server).call("blob_bytes", f"{REGISTRY}/{REPO}", _config_descriptor())


def test_inspect_through_an_index(make: MakeDriver) -> None:
    arm = dumps(image_manifest(layers=[]))
    index_body = dumps(index([
        {**entry("linux/arm64"), "digest": sha256(arm), "size": len(arm)},
        {**entry("linux/amd64"), "digest": MANIFEST_DIGEST, "size": len(MANIFEST)},
    ]))  # fmt: skip
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: manifest_response(index_body, mt.OCI_INDEX))
    server.route(REGISTRY, f"/v2/{REPO}/manifests/{MANIFEST_DIGEST}", lambda r: manifest_response())
    server.route(REGISTRY, BLOB_PATH, lambda r: httpx.Response(200, content=CONFIG))
    result = make(server).call("inspect", REF)
    data = result.to_dict()
    assert data["digest"] == MANIFEST_DIGEST
    assert data["index_digest"] == sha256(index_body)
    assert data["config_digest"] == sha256(CONFIG)
    assert data["env"] == ["A=1"]
    assert [p["architecture"] for p in data["platforms"]] == ["arm64", "amd64"]
    assert [r.url.path for r in server.requests] == [MANIFEST_PATH, f"/v2/{REPO}/manifests/{MANIFEST_DIGEST}",
                                                     BLOB_PATH]  # fmt: skip
    with pytest.raises(PlatformNotFoundError, match="available: linux/arm64, linux/amd64"):
        make(server).call("inspect", REF, "linux/s390x")


def test_child_manifest_size_must_match_index_entry(make: MakeDriver) -> None:
    index_body = dumps(
        index([{**entry("linux/amd64"), "digest": MANIFEST_DIGEST, "size": len(MANIFEST) + 1}])
    )
    server = Server()
    server.route(REGISTRY, MANIFEST_PATH, lambda r: manifest_response(index_body, mt.OCI_INDEX))
    server.route(REGISTRY, f"/v2/{REPO}/manifests/{MANIFEST_DIGEST}", lambda r: manifest_response())
    with pytest.raises(SizeMismatchError):
        make(server).call("resolve", REF)


def test_digest_uses_head(make: MakeDriver) -> None:
    server = Server()
    server.route(
        REGISTRY,
        MANIFEST_PATH,
        lambda r: httpx.Response(200, headers={"Docker-Content-Digest": MANIFEST_DIGEST}),
    )
    assert str(make(server).call("digest", REF)) == MANIFEST_DIGEST
    assert [r.method for r in server.requests] == ["HEAD"]


def test_transport_argument_used_alongside_options(mode: str, tmp_path: Path) -> None:
    """``Client(transport=..., options=...)`` must not silently drop the transport and go to the network."""
    server = Server()
    server.route("127.0.0.1:1", "/v2/org/app/manifests/1", lambda r: manifest_response())
    options = HttpOptions(plain_http=True, retries=0, timeout=2)
    store = CredentialStore(environ={}, home=tmp_path)
    transport = httpx.MockTransport(server)

    if mode == "sync":
        with regpeek.Client(transport=transport, options=options, credentials=store) as client:
            manifest = client.fetch_manifest("127.0.0.1:1/org/app:1")
    else:

        async def go() -> regpeek.Manifest:
            async with regpeek.AsyncClient(transport=transport, options=options, credentials=store) as client:
                return await client.fetch_manifest("127.0.0.1:1/org/app:1")

        manifest = asyncio.run(go())
    assert str(manifest.digest) == MANIFEST_DIGEST
    assert len(server.requests) == 1


# -- exit codes ----------------------------------------------------------------------------------------

EXIT_CODES: Sequence[Any] = [
    pytest.param(RegpeekError("x"), 1, id="base"),
    pytest.param(UsageError("x"), 2, id="usage"),
    pytest.param(NotFoundError("x"), 3, id="not-found"),
    pytest.param(PlatformNotFoundError("linux/amd64", []), 3, id="platform-not-found"),
    pytest.param(AuthError("x", reason="refused"), 4, id="auth"),
    pytest.param(VerificationError("x"), 5, id="verification"),
    pytest.param(
        DigestMismatchError("x", Digest.parse("sha256:" + "a" * 64), Digest.parse("sha256:" + "b" * 64)),
        5,
        id="digest-mismatch",
    ),
    pytest.param(SizeMismatchError("x", 1, 2), 5, id="size-mismatch"),
    pytest.param(TooLargeError("x"), 5, id="too-large"),
    pytest.param(MalformedError("x"), 5, id="malformed"),
    pytest.param(UnsupportedError("x"), 5, id="unsupported"),
    pytest.param(RegistryUnavailableError("x"), 6, id="unavailable"),
    pytest.param(ValueError("x"), 1, id="foreign-exception"),
    pytest.param(KeyError("x"), 1, id="foreign-key-error"),
]


@pytest.mark.parametrize(("error", "code"), EXIT_CODES)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code
    if isinstance(error, RegpeekError):
        assert error.exit_code == code
