"""A Docker-token-spec authorization server for tests, running in a background thread.

``GET /token?service=S&scope=repository:NAME:pull,push&scope=...`` (optionally with Basic credentials)
returns a JWT that a ``docker-registry`` configured with ``auth.token`` accepts: it is signed with a
fresh key (ES256 by default, or RS256) whose self-signed certificate travels in the JWT header
``x5c`` and is also written to :attr:`TokenServer.cert_path` for the registry's ``rootcertbundle``.

Policy: anonymous callers get ``pull`` on every repository (``anonymous_pull=True``); callers with
valid credentials from ``users`` get ``pull`` and ``push`` on everything but the ``denied``
repositories, on which nobody gets anything (the token is issued, without that access); a wrong
password is a 401.
``registry:catalog:*`` is granted to whoever may pull.  Every request is recorded in
:attr:`TokenServer.requests` so tests can count token round trips.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization

from .certs import cert_pem, new_key, self_signed_cert
from .util import LOOPBACK

TokenField = Literal["token", "access_token", "both"]

DEFAULT_SERVICE = "regpeek-test-registry"
DEFAULT_ISSUER = "regpeek-test-token-issuer"


@dataclass(frozen=True)
class Scope:
    """A parsed ``type:name:actions`` scope."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        head, sep, actions = text.rpartition(":")
        kind, sep2, name = head.partition(":")
        if not sep or not sep2 or not kind or not name:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server received."""

    method: str
    path: str
    params: dict[str, list[str]]  # query string (GET) or form body (POST)
    scopes: list[str]  # every scope, space-separated values split
    service: str | None
    authorization: bool  # an Authorization header was present
    username: str | None
    status: int
    granted: list[dict[str, Any]] = field(default_factory=list)


class TokenServer:
    """Threaded token server on a free 127.0.0.1 port.  Use as a context manager or start/stop."""

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        anonymous_pull: bool = True,
        field: TokenField = "token",
        expires_in: int | None = 300,
        jwt_lifetime: int | None = None,
        oauth_post: bool = False,
        algorithm: Literal["ES256", "RS256"] = "ES256",
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        denied: tuple[str, ...] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.denied = frozenset(denied)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.field: TokenField = field
        self.expires_in = expires_in
        self.jwt_lifetime = jwt_lifetime
        self.oauth_post = oauth_post
        self.algorithm = algorithm
        self.service = service
        self.issuer = issuer
        self._key = new_key("ec" if algorithm == "ES256" else "rsa")
        self._cert = self_signed_cert(self._key, "regpeek test token signer", ca=False)
        self._x5c = [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.cert_path = self.workdir / "token-signer.crt"
        self.cert_path.write_bytes(cert_pem(self._cert))
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []
        self._forced_statuses: list[int] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> TokenServer:
        server = ThreadingHTTPServer((LOOPBACK, 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="token-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def realm(self) -> str:
        """The token endpoint URL, as the registry puts it in its Bearer challenge."""
        return f"{self.url}/token"

    # -- recording -----------------------------------------------------------------------------
    @property
    def requests(self) -> list[TokenRequest]:
        """A snapshot of every request received so far."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self._requests.clear()

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these HTTP statuses (no token), in order."""
        with self._lock:
            self._forced_statuses.extend(statuses)

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _pop_forced(self) -> int | None:
        with self._lock:
            return self._forced_statuses.pop(0) if self._forced_statuses else None

    # -- tokens --------------------------------------------------------------------------------
    def grant(self, username: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The ``access`` claim this policy grants for the requested scopes."""
        allowed = {"pull", "push"} if username is not None else ({"pull"} if self.anonymous_pull else set())
        access: list[dict[str, Any]] = []
        for text in scopes:
            scope = Scope.parse(text)
            if scope is None:
                continue
            if scope.type == "repository" and scope.name in self.denied:
                actions = []
            elif scope.type == "repository":
                actions = [a for a in scope.actions if a in allowed or (a == "*" and "push" in allowed)]
            elif scope.type == "registry" and scope.name == "catalog":
                actions = ["*"] if "*" in scope.actions and "pull" in allowed else []
            else:
                actions = []
            access.append({"type": scope.type, "name": scope.name, "actions": actions})
        return access

    def issue(
        self,
        access: list[dict[str, Any]],
        *,
        subject: str = "",
        lifetime: int | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        not_before: int | None = None,
    ) -> str:
        """Mint a signed JWT directly (tests may use odd values to provoke rejections)."""
        now = int(time.time())
        lifetime = lifetime if lifetime is not None else (self.jwt_lifetime or self.expires_in or 300)
        claims = {
            "iss": issuer if issuer is not None else self.issuer,
            "sub": subject,
            "aud": audience if audience is not None else self.service,
            "exp": now + lifetime,
            "nbf": not_before if not_before is not None else now - 5,
            "iat": now,
            "jti": secrets.token_hex(12),
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"x5c": self._x5c})

    def token_response(self, token: str, *, oauth: bool = False) -> dict[str, Any]:
        """The JSON body returned for a successful request."""
        body: dict[str, Any] = {}
        if oauth:
            body["access_token"] = token
        else:
            if self.field in ("token", "both"):
                body["token"] = token
            if self.field in ("access_token", "both"):
                body["access_token"] = token
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        body["issued_at"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return body

    def check_credentials(self, username: str, password: str) -> bool:
        expected = self.users.get(username)
        return expected is not None and secrets.compare_digest(expected, password)


def _split_scopes(values: list[str]) -> list[str]:
    return [part for value in values for part in value.split(" ") if part]


def _parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _first(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


def _make_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default stderr logging."""

        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            params = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
            self._handle("GET", parsed.path, params)

        def do_POST(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            params = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            self._handle("POST", parsed.path, params)

        def _reply(
            self,
            request: tuple[str, str, dict[str, list[str]]],
            status: int,
            body: dict[str, Any],
            *,
            username: str | None,
            granted: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None,
        ) -> None:
            """Record the request, then send ``body`` as JSON."""
            method, path, params = request
            server._record(
                TokenRequest(
                    method=method,
                    path=path,
                    params=params,
                    scopes=_split_scopes(params.get("scope", [])),
                    service=_first(params, "service"),
                    authorization="Authorization" in self.headers,
                    username=username,
                    status=status,
                    granted=granted or [],
                )
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str, path: str, params: dict[str, list[str]]) -> None:
            request = (method, path, params)
            creds = _parse_basic(self.headers.get("Authorization"))
            oauth = method == "POST"
            if oauth:
                creds = (_first(params, "username") or "", _first(params, "password") or "")
            username = creds[0] if creds else None
            if path != "/token" or (oauth and not server.oauth_post):
                error = {"code": "NOT_FOUND", "message": f"no {method} {path} here"}
                self._reply(request, 404, {"errors": [error]}, username=username)
                return
            if oauth and _first(params, "grant_type") != "password":
                self._reply(request, 400, {"error": "unsupported_grant_type"}, username=username)
                return
            forced = server._pop_forced()
            if forced is not None:
                error = {"code": "FORCED", "message": "injected failure"}
                self._reply(request, forced, {"errors": [error]}, username=username)
                return
            if creds is not None and not server.check_credentials(*creds):
                error = {"code": "UNAUTHORIZED", "message": "invalid username or password"}
                challenge = {"WWW-Authenticate": 'Basic realm="regpeek-test-token"'}
                self._reply(request, 401, {"errors": [error]}, username=username, headers=challenge)
                return
            granted = server.grant(username, _split_scopes(params.get("scope", [])))
            token = server.issue(granted, subject=username or "", audience=_first(params, "service"))
            body = server.token_response(token, oauth=oauth)
            self._reply(request, 200, body, username=username, granted=granted)

    return Handler
