"""Registry authentication as one httpx auth flow, shared by the sync and the async client.

The handshake (Docker token spec), with no ``/v2/`` ping first:

1. A request to a registry host goes out with whatever this flow already holds for that host and
   the request's scope: a cached, unexpired Bearer token, or Basic credentials once the host has asked
   for Basic. If the host has asked for Bearer before, a token for a new scope is fetched up front.
2. On a 401, the ``WWW-Authenticate`` challenges are parsed. Bearer: ask the realm for a token for the
   challenge's scopes plus the request's own (GET with Basic credentials when there are any; POST with
   an identity token), cache it per (host, scope) until ``expires_in`` runs out, resend once.
   Basic: resend once with credentials. A second 401 is returned as it is and becomes an AuthError.
3. Requests to any other host (a blob redirect to a CDN, say) pass through untouched: credentials and
   tokens go only to the registry host and the token realm.

What the flow did (which challenge, which scope the token was asked for, whether credentials were
sent and where they came from) is kept on the final response as an
:class:`~regpeek.network.transport.AuthOutcome` (``response.extensions[AUTH_OUTCOME]``). That one record
is what a 401 or 403 that stands becomes: an :class:`~regpeek.errors.AuthError` whose ``reason`` and
message both come from it (:func:`~regpeek.network.transport.auth_failure`). With ``--debug`` (the
``regpeek.auth`` logger) each step is logged, never a secret. A failure of the token service itself
(or of the credential source) is raised here, as an AuthError with its ``reason``, ``host`` and
``scope``.

Tokens are shared by concurrent requests, in threads (the sync client) and in tasks (the async one):
while no token is live for a host and scope, requests for it go one at a time, so the first fetches the
token and the others find it cached. A host that has answered without asking for auth is never waited
on.

Scopes: a read asks for ``repository:<name>:pull``, a write (POST, PUT, PATCH, DELETE) for
``repository:<name>:pull,push``. A repository a copy writes to is registered with :meth:`RegistryAuth.allow_push`,
so its reads ask for ``pull,push`` too and one token serves the existence checks, uploads and manifest puts.
A cross-repository mount (``POST .../blobs/uploads/?mount=<digest>&from=<other>``) needs pull on ``other``
as well: both scopes go into one token request, as the registry's challenge asks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from regpeek.errors import AuthError, TooLargeError
from regpeek.formats.challenge import Challenge, answerable, parse_all
from regpeek.network.credentials import Credentials, CredentialStore
from regpeek.network.transport import (
    AUTH_OUTCOME,
    RETRY_STATUSES,
    AuthOutcome,
    RetryableStatusError,
    describe_url,
    login_hint,
)

if TYPE_CHECKING:
    import asyncio

    from regpeek.disk.state import AuthState

__all__ = ["AUTH_OUTCOME", "RegistryAuth", "scope_for_path"]

log = logging.getLogger("regpeek.auth")

MAX_TOKEN_RESPONSE = 1024 * 1024
_DEFAULT_EXPIRY = 60
_EXPIRY_MARGIN = 5.0
_OAUTH_FALLBACK = frozenset({400, 401, 404, 405})
_REPO_PATH_RE = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)(?:/|$)")

Step = tuple[httpx.Request, bool]  # a request to send, and whether its response body is needed


def scope_for_path(
    path: str, method: str = "GET", *, push: bool = False, mount_from: str | None = None
) -> str | None:
    """The token scope a registry API path needs, e.g. ``repository:library/ubuntu:pull``.

    ``push`` asks for ``pull,push`` whatever the method; ``mount_from`` adds pull on the repository a
    blob is mounted from (several scopes are separated by spaces, as in a challenge).

    >>> scope_for_path("/v2/b/blobs/uploads/", "POST", mount_from="a")
    'repository:b:pull,push repository:a:pull'
    """
    if path.rstrip("/") == "/v2/_catalog":
        return "registry:catalog:*"
    match = _REPO_PATH_RE.match(path)
    if not match:
        return None
    action = "pull" if method in ("GET", "HEAD") and not push else "pull,push"
    scope = f"repository:{match['name']}:{action}"
    if mount_from and mount_from != match["name"]:
        scope += f" repository:{mount_from}:pull"
    return scope


@dataclass
class _Token:
    value: str
    expires_at: float
    scopes: tuple[str, ...] = ()
    source: str = ""  # where the credentials it was obtained with came from ("" anonymous)
    username: str = ""


@dataclass
class _Steps:
    """What the flow did for one request (becomes the response's AuthOutcome)."""

    registry: str
    scheme: str | None = None
    source: str = ""
    username: str = ""
    scopes: tuple[str, ...] = ()
    error: str | None = None

    def token(self, token: _Token) -> None:
        self.scheme, self.source, self.username, self.scopes = (
            "bearer",
            token.source,
            token.username,
            token.scopes,
        )

    def outcome(self) -> AuthOutcome:
        return AuthOutcome(self.registry, self.scheme, self.source, self.username, self.scopes, self.error)


def _describe(challenge: Challenge) -> str:
    parts = [challenge.scheme]
    for name in ("realm", "service", "scope", "error"):
        value = challenge.params.get(name)
        if value:
            parts.append(f"{name}={describe_url(httpx.URL(value)) if name == 'realm' else value}")
    return " ".join(parts)


class RegistryAuth(httpx.Auth):
    """Authenticates requests to the registry hosts it is told about, and to no other host."""

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        state: AuthState | None = None,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._state = state  # challenges and tokens kept on disk between processes (the cache's)
        self._recalled: set[str] = set()  # api hosts whose kept challenge was looked up
        self._unconfirmed: set[str] = set()  # api hosts whose challenge came from disk, not yet used
        self._registries: dict[str, str] = {}  # api host (host:port) -> registry name for credentials
        self._bearer: dict[str, Challenge] = {}  # api host -> its last Bearer challenge
        self._basic: set[str] = set()  # api hosts that asked for Basic
        self._push: set[tuple[str, str]] = set()  # (api host, repository) that requests write to
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._open: set[str] = set()  # api hosts that answered without asking for auth
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._thread_locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()  # for the two lock tables
        self.token_requests = 0

    def register(self, api_host: str, registry: str) -> None:
        """Allow auth for ``api_host``, looking credentials up under ``registry``."""
        self._registries[api_host] = registry

    def allow_push(self, api_host: str, name: str) -> None:
        """Ask for ``pull,push`` on every request to repository ``name`` of ``api_host`` (a copy's
        destination), so that one token serves its reads and its writes."""
        self._push.add((api_host, name))

    def scope(self, request: httpx.Request) -> str | None:
        """The scope (or space-separated scopes) a token for ``request`` must carry."""
        url = request.url
        match = _REPO_PATH_RE.match(url.path)
        push = match is not None and (url.netloc.decode(), match["name"]) in self._push
        mount_from = url.params.get("from") if request.method == "POST" and "mount" in url.params else None
        return scope_for_path(url.path, request.method, push=push, mount_from=mount_from)

    def registry_for(self, api_host: str) -> str | None:
        """The registry name ``api_host`` was registered under, if any."""
        return self._registries.get(api_host)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential and token this flow holds: never to be printed."""
        known = [token.value for token in self._tokens.values()]
        return (*self._credentials.secrets, *known)

    # -- the two drivers: httpx calls one or the other; the protocol lives in _flow ----------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Threads share tokens as tasks do (see async_auth_flow); httpx drives this generator in the
        # calling thread and closes it on any failure, so the lock is always released by its holder.
        key = self._first_request_key(request)
        lock = self._thread_lock(key) if key is not None else None
        if lock is not None:
            lock.acquire()
            if self._first_request_key(request) is None:  # the token came (or no auth) while it waited
                lock.release()
                lock = None
        try:
            flow = self._flow(request)
            step = next(flow)
            while True:
                outgoing, needs_body = step
                response = yield outgoing
                if needs_body:
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        _check_cap(len(body))
                    _set_body(response, bytes(body))
                try:
                    step = flow.send(response)
                except StopIteration:
                    return
        finally:
            if lock is not None:
                lock.release()

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # Concurrent tasks share tokens: while no token is live for this host and scope, requests for
        # it go one at a time, so the first fetches the token and the others find it cached.
        key = self._first_request_key(request)
        lock = self._task_lock(key) if key is not None else None
        if lock is not None:
            await lock.acquire()
            if self._first_request_key(request) is None:  # the token came (or no auth) while it waited
                lock.release()
                lock = None
        try:
            flow = self._flow(request)
            step = next(flow)
            while True:
                outgoing, needs_body = step
                response = yield outgoing
                if needs_body:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        _check_cap(len(body))
                    _set_body(response, bytes(body))
                try:
                    step = flow.send(response)
                except StopIteration:
                    return
        finally:
            if lock is not None:
                lock.release()

    def _first_request_key(self, request: httpx.Request) -> tuple[str, str] | None:
        """(host, scope) when requests for it should wait for a first token, else None."""
        host = request.url.netloc.decode()
        if host not in self._registries or host in self._basic:
            return None
        if host in self._open and host not in self._bearer:
            return None  # it has answered without a challenge: nothing to wait for
        key = (host, self.scope(request) or "")
        return None if key in self._live_tokens() else key

    def _task_lock(self, key: tuple[str, str]) -> asyncio.Lock:
        import asyncio  # only async clients get here; the sync CLI never loads asyncio

        with self._guard:
            return self._locks.setdefault(key, asyncio.Lock())

    def _thread_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._thread_locks.setdefault(key, threading.Lock())

    # -- the protocol -------------------------------------------------------------------------

    def _flow(self, request: httpx.Request) -> Generator[Step, httpx.Response, None]:
        host = request.url.netloc.decode()
        registry = self._registries.get(host)
        if registry is None:
            request.headers.pop("Authorization", None)
            yield request, False
            return
        steps = _Steps(registry)
        scope = self.scope(request)
        self._recall_challenge(host)
        sent: _Token | None = None
        if scope and host in self._bearer and (host, scope) not in self._live_tokens():
            token = self._recall_token(host, registry, scope)
            if token is None:
                try:
                    token = yield from self._fetch_token(request, host, registry, self._bearer[host], scope)
                except AuthError as failure:
                    if host not in self._unconfirmed or failure.reason != "token_service":
                        raise
                    # the challenge kept from an earlier process led nowhere: forget it, ask the registry
                    log.debug("the kept challenge of %s failed (%s): asking the registry", host, failure)
                    self._forget_challenge(host)
            if token is not None:
                request.headers["Authorization"] = f"Bearer {token.value}"
                steps.token(token)
                sent = token
        else:
            sent = self._attach(request, host, registry, scope, steps)
        response = yield request, False
        if response.status_code != 401:
            if "Authorization" not in request.headers:
                self._open.add(host)
            self._unconfirmed.discard(host)
            _note(response, steps)
            return
        if (
            sent is not None
        ):  # the registry rejected this token: dropped (here and on disk), fetched again once
            self._drop_token(host, scope, sent)
        challenges = parse_all(response.headers.get_list("WWW-Authenticate"))
        log.debug(
            "%s answered 401 for %s: %s",
            host,
            request.url.path,
            "; ".join(_describe(c) for c in challenges) or "no challenge",
        )
        challenge = answerable(challenges)
        self._unconfirmed.discard(host)
        if challenge is not None:
            self._remember_challenge(host, challenge)
        if challenge is not None and challenge.scheme == "bearer":
            # kept for this host's next scopes: realm and service only (its scope was this request's)
            self._bearer[host] = _reusable(challenge)
            self._basic.discard(host)
            token = yield from self._fetch_token(request, host, registry, challenge, scope)
            request.headers["Authorization"] = f"Bearer {token.value}"
            steps.token(token)
        elif challenge is not None:  # basic
            steps.scheme = "basic"
            credentials = self._credentials_for(registry, host, scope)
            if not credentials.username:
                log.debug("no credentials for %s: the 401 stands", registry)
                _note(response, steps)
                return  # nothing to offer: the 401 stands
            self._basic.add(host)
            self._bearer.pop(host, None)
            request.headers["Authorization"] = _basic_header(credentials)
            steps.source, steps.username = credentials.source or "?", credentials.username
            log.debug(
                "sending Basic credentials for %s (user %s, from %s)",
                host,
                credentials.username,
                steps.source,
            )
        else:  # no challenge this flow can answer: the 401 stands
            _note(response, steps)
            return
        response = yield request, False
        if response.status_code in (401, 403):
            log.debug(
                "%s answered %s again%s",
                host,
                response.status_code,
                f" ({error})" if (error := _challenge_error(response)) else "",
            )
        _note(response, steps)

    def _live_tokens(self) -> set[tuple[str, str]]:
        now = self._clock()
        return {key for key, token in list(self._tokens.items()) if token.expires_at > now}

    def _credentials_for(self, registry: str, host: str, scope: str | None) -> Credentials:
        """The credentials for ``registry``; a source that fails is an AuthError naming the host."""
        try:
            return self._credentials.get(registry)
        except AuthError as error:
            error.host = error.host or host
            error.scope = error.scope or scope
            raise

    def _attach(
        self, request: httpx.Request, host: str, registry: str, scope: str | None, steps: _Steps
    ) -> _Token | None:
        """Put what this flow holds for ``host`` and ``scope`` on the request; the token sent, if any."""
        token = self._tokens.get((host, scope or ""))
        if token is not None and token.expires_at > self._clock():
            request.headers["Authorization"] = f"Bearer {token.value}"
            steps.token(token)
            return token
        if host in self._basic:
            credentials = self._credentials_for(registry, host, scope)
            if credentials.username:
                request.headers["Authorization"] = _basic_header(credentials)
                steps.scheme, steps.source, steps.username = (
                    "basic",
                    credentials.source or "?",
                    credentials.username,
                )
        return None

    # -- what is kept between processes (the cache's auth state) ---------------------------------

    def _recall_challenge(self, host: str) -> None:
        """Once per host: the challenge an earlier process met there, so that this one goes straight
        to the token service (or sends Basic credentials) without a 401 first."""
        if self._state is None or host in self._recalled:
            return
        self._recalled.add(host)
        if host in self._bearer or host in self._basic or host in self._open:
            return
        kept = self._state.challenge(host)
        if kept is None:
            return
        log.debug("challenge of %s kept from an earlier run: %s", host, _describe(kept))
        self._unconfirmed.add(host)
        if kept.scheme == "bearer":
            self._bearer[host] = kept
        else:
            self._basic.add(host)

    def _remember_challenge(self, host: str, challenge: Challenge) -> None:
        if self._state is None:
            return
        kept = self._state.challenge(host)
        wanted = (challenge.scheme, challenge.realm, challenge.service)
        if kept is None or (kept.scheme, kept.realm, kept.service) != wanted:
            if kept is not None:
                log.debug("%s changed its challenge: the kept one is replaced", host)
            self._state.save_challenge(host, challenge)

    def kept_realm_failed(self, host: str, failed: httpx.URL | None) -> bool:
        """A connection to the token realm of a challenge kept from an earlier process failed (the
        service moved, say): forget that challenge, so that the request's next try asks the registry.
        True when it was forgotten; False for every other failure, which is the request loop's."""
        if host not in self._unconfirmed or failed is None or failed.netloc.decode() == host:
            return False
        log.debug("the kept token realm of %s cannot be reached: asking the registry", host)
        self._forget_challenge(host)
        return True

    def _forget_challenge(self, host: str) -> None:
        self._unconfirmed.discard(host)
        self._bearer.pop(host, None)
        self._basic.discard(host)
        if self._state is not None:
            self._state.forget_challenge(host)

    def _identity(self, registry: str, host: str, scope: str | None) -> str:
        """A hash of who tokens are obtained as (registry, credential source and user name; never
        the secret): a token kept on disk serves only the same identity."""
        credentials = self._credentials_for(registry, host, scope)
        kind = "identity-token" if credentials.identity_token else "password" if credentials else "anonymous"
        text = "\0".join((registry, kind, credentials.source, credentials.username))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _recall_token(self, host: str, registry: str, scope: str) -> _Token | None:
        """A token kept on disk for this host, scope and identity that has not expired."""
        if self._state is None:
            return None
        kept = self._state.token(host, scope, self._identity(registry, host, scope))
        if kept is None:
            return None
        remaining = kept.expires - self._state.now()
        token = _Token(kept.value, self._clock() + remaining, kept.scopes, kept.source, kept.username)
        self._tokens[(host, scope)] = token
        log.debug("token for %s kept from an earlier run (valid %ds)", registry, int(remaining))
        return token

    def _keep_token(self, host: str, registry: str, scope: str, token: _Token) -> None:
        if self._state is None:
            return
        from regpeek.disk.state import StoredToken

        expires = self._state.now() + (token.expires_at - self._clock())
        stored = StoredToken(token.value, expires, token.scopes, token.source, token.username)
        self._state.save_token(host, scope, self._identity(registry, host, scope), stored)

    def _drop_token(self, host: str, scope: str | None, token: _Token) -> None:
        key = (host, scope or "")
        if self._tokens.get(key) is token:
            del self._tokens[key]
        registry = self._registries.get(host)
        if self._state is not None and registry is not None:
            log.debug("%s rejected the token for %s: dropped", host, scope or "(no scope)")
            self._state.drop_token(host, scope or "", self._identity(registry, host, scope))

    def _fetch_token(
        self, request: httpx.Request, host: str, registry: str, challenge: Challenge, scope: str | None
    ) -> Generator[Step, httpx.Response, _Token]:
        realm = httpx.URL(challenge.realm or "")
        if realm.scheme not in ("http", "https") or not realm.host:
            raise AuthError(
                f"registry {host} sent an unusable token realm",
                reason="token_service",
                host=host,
                scope=scope,
            )
        where = describe_url(realm)
        credentials = self._credentials_for(registry, host, scope)
        if credentials and realm.scheme == "http" and request.url.scheme == "https":
            raise AuthError(
                f"refusing to send credentials for {host} to a plain-http token realm ({where})",
                reason="token_service",
                host=host,
                scope=scope,
            )
        scopes = _merged([*challenge.scopes, *(scope or "").split()])
        source = (credentials.source or "?") if credentials else ""
        log.debug(
            "token request to %s for %s, scope %s, %s",
            realm.netloc.decode(),
            registry,
            " ".join(scopes) or "(none)",
            f"with credentials of {credentials.username or '<token>'} from {source}"
            if credentials
            else "anonymous",
        )
        self.token_requests += 1
        if credentials.identity_token:
            response = yield _oauth_request(realm, challenge, scopes, credentials), True
            if response.status_code in _OAUTH_FALLBACK:  # GCR 404, Artifactory 401, ACR 400, others 405
                self.token_requests += 1
                response = yield _token_request(realm, challenge, scopes, credentials), True
        else:
            response = yield _token_request(realm, challenge, scopes, credentials), True
        if response.status_code in RETRY_STATUSES:  # busy, not a refusal: the request loop retries
            raise RetryableStatusError(
                f"token service at {where} failed: HTTP {response.status_code}", response
            )
        wanted = " ".join(scopes) or None
        if response.status_code == 401:  # the token service's own refusal of what was sent
            if credentials:
                raise AuthError(
                    f"credentials for {registry} were refused (from {source}) by the token service at {where} "
                    f"(HTTP 401)",
                    reason="refused",
                    host=host,
                    scope=wanted,
                )
            raise AuthError(
                f"no credentials for {registry} ({login_hint(registry)}): the token service at {where} "
                "refused anonymous access (HTTP 401)",
                reason="missing_credentials",
                host=host,
                scope=wanted,
            )
        if response.status_code != 200:  # any other status, a 403 too, is the service failing
            raise AuthError(
                f"token service at {where} failed: HTTP {response.status_code}",
                reason="token_service",
                host=host,
                scope=wanted,
            )
        value, expires_in = _token_from_body(response.content, where, host, wanted)
        token = _Token(
            value,
            self._clock() + expires_in - _EXPIRY_MARGIN,
            tuple(scopes),
            source,
            credentials.username,
        )
        self._tokens[(host, scope or "")] = token
        self._keep_token(host, registry, scope or "", token)
        log.debug("token for %s received (valid %ds)", registry, int(expires_in))
        return token


def _reusable(challenge: Challenge) -> Challenge:
    """A challenge without what belonged to the request it answered (``scope``, ``error``)."""
    return Challenge(
        challenge.scheme, {k: v for k, v in challenge.params.items() if k not in ("scope", "error")}
    )


def _challenge_error(response: httpx.Response) -> str | None:
    """The ``error`` parameter of a response's challenges (``insufficient_scope``, ``invalid_token``)."""
    return next((c.error for c in parse_all(response.headers.get_list("WWW-Authenticate")) if c.error), None)


def _note(response: httpx.Response, steps: _Steps) -> None:
    """Keep what the flow did on the response: a 401 or 403 becomes an error from this record."""
    if response.status_code in (401, 403):
        steps.error = _challenge_error(response)
    response.extensions[AUTH_OUTCOME] = steps.outcome()


def _merged(scopes: list[str]) -> list[str]:
    """Scopes with one entry per resource, its actions united in order of appearance:
    ``repository:a:pull`` and ``repository:a:pull,push`` ask for ``repository:a:pull,push``."""
    actions: dict[str, list[str]] = {}
    for scope in scopes:
        resource, sep, wanted = scope.rpartition(":")
        if not sep or not resource:
            resource, wanted = scope, ""
        known = actions.setdefault(resource, [])
        known += [action for action in wanted.split(",") if action and action not in known]
    return [f"{resource}:{','.join(wanted)}" if wanted else resource for resource, wanted in actions.items()]


def _basic_header(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _oauth_request(
    realm: httpx.URL, challenge: Challenge, scopes: list[str], credentials: Credentials
) -> httpx.Request:
    """The OAuth2 form POST that trades an identity (refresh) token for an access token."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": credentials.identity_token,
        "service": challenge.service or "",
        "client_id": "regpeek",
        "scope": " ".join(scopes),
    }
    return httpx.Request("POST", realm, data=form)


def _token_request(
    realm: httpx.URL, challenge: Challenge, scopes: list[str], credentials: Credentials
) -> httpx.Request:
    """The Docker token GET, with Basic credentials when there are any (an identity token as password)."""
    params: list[tuple[str, str | int | float | bool | None]] = []
    if challenge.service:
        params.append(("service", challenge.service))
    params += [("scope", scope) for scope in scopes]
    secret = credentials.password or credentials.identity_token
    username = credentials.username or ("<token>" if credentials.identity_token else "")
    if username and credentials.username:
        params.append(("account", credentials.username))
    headers = {"Authorization": _basic_header(Credentials(username, secret))} if username else {}
    return httpx.Request("GET", realm.copy_merge_params(params), headers=headers)


def _token_from_body(body: bytes, where: str, host: str, scope: str | None) -> tuple[str, float]:
    def failure(text: str) -> AuthError:
        return AuthError(
            f"token service at {where} answered {text}", reason="token_service", host=host, scope=scope
        )

    try:
        document = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise failure("with something that is not JSON") from None
    if not isinstance(document, dict):
        raise failure("with something that is not a JSON object")
    value = document.get("access_token") or document.get("token")
    if not isinstance(value, str) or not value:
        raise failure("without a token")
    expires_in = document.get("expires_in")
    if (
        not isinstance(expires_in, (int, float))
        or isinstance(expires_in, bool)
        or expires_in < _DEFAULT_EXPIRY
    ):
        expires_in = _DEFAULT_EXPIRY
    return value, float(expires_in)


def _set_body(response: httpx.Response, body: bytes) -> None:
    """Mark a streamed response as read with ``body``, as ``Response.read()`` would, but capped."""
    response._content = body


def _check_cap(total: int) -> None:
    if total > MAX_TOKEN_RESPONSE:
        raise TooLargeError(
            f"token response over {MAX_TOKEN_RESPONSE} bytes", size=total, limit=MAX_TOKEN_RESPONSE
        )
