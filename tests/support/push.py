"""A tiny registry client over plain httpx, independent of regpeek, used to seed test registries.

It answers 401 challenges itself (``Bearer`` through the token realm with a ``pull,push`` scope, or
``Basic``), uploads blobs monolithically (``POST`` then ``PUT ?digest=``) and puts manifests.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from .util import sha256_digest

if TYPE_CHECKING:
    from .registry import Registry

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)')


class PushError(RuntimeError):
    """A registry answered a push step with an unexpected status."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split a ``WWW-Authenticate`` value into (lower-cased scheme, params)."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for match in _PARAM_RE.finditer(rest):
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
    return scheme.lower(), params


def _check(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise PushError(
            f"{response.request.method} {response.request.url} -> {response.status_code}"
            f" (expected {expected}): {response.text[:2000]}"
        )
    return response


class Pusher:
    """Push blobs and manifests to a registry.

    ``verify`` is passed to httpx (an SSL context or a CA bundle path for a TLS registry).
    Credentials are used for Basic challenges and for token requests; without them token requests
    are anonymous.
    """

    def __init__(
        self,
        registry_url: str,
        *,
        verify: ssl.SSLContext | str | bool = True,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.registry_url = registry_url.rstrip("/")
        self.username = username
        self.password = password
        if isinstance(verify, str):  # a CA bundle path
            verify = ssl.create_default_context(cafile=verify)
        self.client = httpx.Client(verify=verify, timeout=timeout, follow_redirects=False)
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._basic = False
        self.token_requests = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- auth ----------------------------------------------------------------------------------
    def _auth_headers(self, scope: str | None) -> dict[str, str]:
        if scope is not None and scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if self._basic and self.username is not None:
            pair = f"{self.username}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def _answer_challenge(self, response: httpx.Response, scope: str | None) -> bool:
        """React to a 401; return True when a retry makes sense."""
        header = response.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if self._basic or self.username is None:
                return False
            self._basic = True
            return True
        if scheme == "bearer" and "realm" in params:
            query: dict[str, list[str]] = {}
            if "service" in params:
                query["service"] = [params["service"]]
            wanted = scope or params.get("scope")
            if wanted:
                query["scope"] = wanted.split(" ")
            auth = (self.username, self.password or "") if self.username is not None else None
            self.token_requests += 1
            token_response = _check(self.client.get(params["realm"], params=query, auth=auth), 200)
            body = token_response.json()
            token = body.get("access_token") or body.get("token")
            if not token:
                raise PushError(f"token response without a token: {body!r}")
            self._tokens[scope or ""] = token
            return True
        return False

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send a request, answering at most one auth challenge.  ``url`` may be relative."""
        full = url if url.startswith(("http://", "https://")) else self.registry_url + url
        for _attempt in range(2):
            merged = {**(headers or {}), **self._auth_headers(scope if scope is not None else "")}
            response = self.client.request(method, full, headers=merged, content=content)
            if response.status_code != 401 or not self._answer_challenge(response, scope or ""):
                return response
        return response

    # -- API -----------------------------------------------------------------------------------
    def get_raw(
        self, path: str, headers: Mapping[str, str] | None = None, *, repo: str | None = None
    ) -> httpx.Response:
        """GET ``path`` (relative to the registry URL) with ``headers``, authenticating as needed."""
        scope = f"repository:{repo}:pull,push" if repo else _scope_for_path(path)
        return self.request("GET", path, scope=scope, headers=headers)

    def blob_exists(self, repo: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=_push_scope(repo))
        return response.status_code == 200

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload ``data`` monolithically (POST, then PUT ``?digest=``); return its digest."""
        digest = sha256_digest(data)
        scope = _push_scope(repo)
        start = _check(self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope), 202)
        location = start.headers.get("Location")
        if not location:
            raise PushError(f"upload start for {repo} returned no Location")
        url = httpx.URL(self.registry_url + "/").join(location)  # Location may be relative
        url = url.copy_merge_params({"digest": digest})
        put = self.request(
            "PUT",
            str(url),
            scope=scope,
            headers={"Content-Type": "application/octet-stream"},
            content=data,
        )
        _check(put, 201)
        returned = put.headers.get("Docker-Content-Digest")
        if returned is not None and returned != digest:
            raise PushError(f"registry stored blob {returned}, expected {digest}")
        return digest

    def push_manifest(
        self,
        repo: str,
        reference: str,
        body: bytes,
        media_type: str,
        *,
        expected_digest: str | None = None,
    ) -> str:
        """PUT a manifest; return the sha256 of ``body`` (or ``expected_digest`` for signed schema1).

        The registry's ``Docker-Content-Digest`` must equal that digest.
        """
        digest = expected_digest or sha256_digest(body)
        response = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scope=_push_scope(repo),
            headers={"Content-Type": media_type},
            content=body,
        )
        _check(response, 201)
        returned = response.headers.get("Docker-Content-Digest")
        if returned != digest:
            raise PushError(f"registry reports {returned} for manifest {repo}:{reference}, expected {digest}")
        return digest

    def push_json_blob(self, repo: str, document: Any) -> tuple[str, bytes]:
        """Serialize ``document`` compactly, push it, return (digest, bytes)."""
        data = json.dumps(document, separators=(",", ":")).encode()
        return self.push_blob(repo, data), data

    def delete_manifest(self, repo: str, digest: str) -> httpx.Response:
        return self.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope=_push_scope(repo, "*"))


def _push_scope(repo: str, actions: str = "pull,push") -> str:
    return f"repository:{repo}:{actions}"


def _scope_for_path(path: str) -> str | None:
    """Guess the scope for a GET: ``/v2/<name>/(manifests|blobs|tags|referrers)/...`` or the catalog."""
    bare = path.split("?", 1)[0]
    if bare.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    match = re.match(r"^/v2/(.+?)/(?:manifests|blobs|tags|referrers)/", bare)
    return f"repository:{match.group(1)}:pull,push" if match else None


def pusher_for(
    registry: Registry, *, username: str | None = None, password: str | None = None, anonymous: bool = False
) -> Pusher:
    """A :class:`Pusher` for ``registry``: trusts its CA; unless ``anonymous``, logs in as its first user."""
    if username is None and not anonymous and registry.users:
        username, password = next(iter(registry.users.items()))
    if (
        registry.token_server is not None
        and username is None
        and not anonymous
        and registry.token_server.users
    ):
        username, password = next(iter(registry.token_server.users.items()))
    return Pusher(registry.url, verify=registry.verify(), username=username, password=password)
