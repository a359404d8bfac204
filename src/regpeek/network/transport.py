"""HTTP settings shared by both clients: the only place httpx clients are built.

Also the policy around a response that the request loops in ``_async/http.py`` (and its generated sync
twin) apply: which statuses are retried and how long to wait, how a registry error becomes a regpeek
exception, and how ``Warning`` headers are read.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from regpeek._version import __version__
from regpeek.errors import (
    AuthError,
    MalformedError,
    NotFoundError,
    RegistryUnavailableError,
    RegpeekError,
    UnsupportedError,
    UsageError,
    parse_error_body,
)
from regpeek.formats.digest import Digest
from regpeek.formats.proxy import ProxyConfig, describe_proxy, is_loopback
from regpeek.formats.reference import Reference, Repository

__all__ = [
    "AUTH_OUTCOME",
    "Attempts",
    "AuthOutcome",
    "HttpOptions",
    "ProxyConfig",
    "RetryableStatusError",
    "Trust",
    "async_client",
    "auth_failure",
    "error_for_status",
    "login_hint",
    "next_link",
    "next_page",
    "reference_for_url",
    "retry_delay",
    "sync_client",
    "warnings_in",
]

USER_AGENT = f"regpeek/{__version__}"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class HttpOptions:
    """Connection settings for one client."""

    timeout: float = 30.0
    ca_file: str | None = None
    insecure: bool = False  # skip TLS verification
    plain_http: bool = False  # talk http:// to registries
    retries: int = 3  # extra attempts after the first, for transient failures
    backoff: float = 0.5  # first retry delay, doubled each time
    max_backoff: float = 8.0
    max_retry_after: float = 30.0
    max_connections: int = 100
    user_agent: str = USER_AGENT
    #: HTTP proxies (none by default; the CLI reads ``HTTPS_PROXY``... and ``--proxy``)
    proxies: ProxyConfig = field(default_factory=ProxyConfig)
    #: hosts (``host[:port]``) where TLS is not verified and plain HTTP is allowed (registries.conf ``insecure``)
    insecure_hosts: frozenset[str] = frozenset()
    #: try TLS first, then plain HTTP, for a loopback registry (``localhost``, ``127.0.0.0/8``, ``::1``)
    loopback_http: bool = True
    on_warning: Callable[[str], None] | None = field(default=None, compare=False)
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = field(default=None, compare=False)

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    def host_insecure(self, host: str) -> bool:
        """Whether TLS to ``host`` (``host[:port]``) goes unverified: ``insecure``, or an insecure host."""
        return self.insecure or host in self.insecure_hosts or _bare(host) in self.insecure_hosts

    def may_fall_back(self, host: str) -> bool:
        """Whether ``host`` may be talked to in plain HTTP when it does not speak TLS: a loopback
        registry (unless ``loopback_http`` is off), or a host registries.conf marks insecure."""
        if host in self.insecure_hosts or _bare(host) in self.insecure_hosts:
            return True
        return self.loopback_http and is_loopback(_bare(host))


def _bare(host: str) -> str:
    """``host:port`` -> ``host`` (``[::1]:5000`` -> ``[::1]``)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Trust:
    """The TLS settings of one client, with the trust store loaded only when first needed.

    Loading the system's CA certificates costs about 50 ms, which a client that only talks plain HTTP
    (a local registry) never needs: :meth:`ensure` is called before each https request and loads them
    once. Verification is on unless ``insecure``.
    """

    def __init__(self, options: HttpOptions) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname checks and verification on
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ca_file = options.ca_file
        self._loaded = options.insecure
        self._lock = threading.Lock()
        if options.insecure:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        if self._ca_file and not os.path.isfile(self._ca_file):
            raise UsageError(f"CA file {self._ca_file} does not exist")

    def ensure(self) -> None:
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:
        self.context.load_default_certs()
        if self._ca_file:
            try:
                self.context.load_verify_locations(cafile=self._ca_file)
            except (OSError, ssl.SSLError) as error:
                raise UsageError(f"cannot load CA file {self._ca_file}: {error}") from None


def _common(options: HttpOptions, trust: Trust) -> dict[str, object]:
    return {
        "timeout": httpx.Timeout(options.timeout),
        "verify": trust.context,
        "headers": {"User-Agent": options.user_agent},
        "follow_redirects": False,  # redirects are followed by hand: see _async/http.py
        "limits": httpx.Limits(max_connections=options.max_connections, max_keepalive_connections=32),
        "trust_env": False,  # proxies come from HttpOptions.proxies only; no netrc credentials
    }


class _Routes:
    """Which connection pool a request goes through: one per (proxy, TLS verification) pair.

    httpx's own proxy selection (``trust_env``) knows neither ``NO_PROXY`` CIDR blocks nor per-host TLS
    settings, so the choice is made here, per request, and each pool is an ordinary httpx transport:
    an https request through a proxy is a ``CONNECT`` tunnel (the proxy sees the host and port, never
    the registry's headers), an http request is forwarded in absolute form. ``Proxy-Authorization``
    comes only from the proxy URL's user and password; the registry's ``Authorization`` never goes
    on a ``CONNECT``.
    """

    def __init__(self, options: HttpOptions, trust: Trust) -> None:
        self.options = options
        self.trust = trust
        self._unverified: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def key(self, url: httpx.URL) -> tuple[str | None, bool]:
        host = url.netloc.decode()
        proxy = self.options.proxies.proxy_for(url.scheme, url.host, url.port)
        return proxy, url.scheme == "https" and self.options.host_insecure(host)

    def arguments(self, key: tuple[str | None, bool]) -> dict[str, object]:
        proxy, unverified = key
        if unverified:
            with self._lock:
                if self._unverified is None:
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    self._unverified = context
            verify: ssl.SSLContext = self._unverified
        else:
            verify = self.trust.context
        arguments: dict[str, object] = {
            "verify": verify,
            "limits": httpx.Limits(
                max_connections=self.options.max_connections, max_keepalive_connections=32
            ),
        }
        if proxy is not None:
            if proxy.lower().startswith("https://"):  # TLS to the proxy itself, trusted like a registry
                self.trust.ensure()
                arguments["proxy"] = httpx.Proxy(proxy, ssl_context=self.trust.context)
            else:
                arguments["proxy"] = httpx.Proxy(proxy)
        return arguments


class RoutingTransport(httpx.BaseTransport):
    """The sync client's transport: each request to the pool :class:`_Routes` chooses for it."""

    def __init__(self, routes: _Routes) -> None:
        self.routes = routes
        self._pools: dict[tuple[str | None, bool], httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = self.routes.key(request.url)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = httpx.HTTPTransport(**self.routes.arguments(key))  # type: ignore[arg-type]
        return pool.handle_request(request)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


class AsyncRoutingTransport(httpx.AsyncBaseTransport):
    """The async client's transport: each request to the pool :class:`_Routes` chooses for it."""

    def __init__(self, routes: _Routes) -> None:
        self.routes = routes
        self._pools: dict[tuple[str | None, bool], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = self.routes.key(request.url)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = httpx.AsyncHTTPTransport(**self.routes.arguments(key))  # type: ignore[arg-type]
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


def sync_client(options: HttpOptions, trust: Trust) -> httpx.Client:
    transport = options.transport
    if transport is not None and not isinstance(transport, httpx.BaseTransport):
        raise TypeError("the sync client needs a sync transport")
    if transport is None:
        transport = RoutingTransport(_Routes(options, trust))
    return httpx.Client(transport=transport, **_common(options, trust))  # type: ignore[arg-type]


def _remember_no_sniffio() -> None:
    """httpcore runs ``import sniffio`` for every lock it makes on the async path (several per request);
    without sniffio installed each of those searches ``sys.path`` again, which took more CPU than the
    requests themselves in a 200-image batch (``bench/inspect_speed.py``). A ``None`` entry in
    ``sys.modules`` is Python's record of a module that is not there: the import then fails at once,
    and httpcore takes asyncio, as it does anyway when sniffio is missing."""
    if "sniffio" not in sys.modules:
        import importlib.util

        if importlib.util.find_spec("sniffio") is None:
            sys.modules["sniffio"] = None  # type: ignore[assignment]


def async_client(options: HttpOptions, trust: Trust) -> httpx.AsyncClient:
    _remember_no_sniffio()
    transport = options.transport
    if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
        raise TypeError("the async client needs an async transport")
    if transport is None:
        transport = AsyncRoutingTransport(_Routes(options, trust))
    return httpx.AsyncClient(transport=transport, **_common(options, trust))  # type: ignore[arg-type]


# -- what a transport failure means --------------------------------------------------------------

_NO_TLS_SIGNS = ("WRONG_VERSION_NUMBER", "record layer failure", "HTTP_REQUEST", "packet length too long")


def speaks_no_tls(error: httpx.TransportError) -> bool:
    """A TLS handshake answered by something that is not TLS (a plain HTTP server)."""
    text = str(error)
    return isinstance(error, httpx.ConnectError) and any(sign in text for sign in _NO_TLS_SIGNS)


def name_not_resolved(error: BaseException) -> bool:
    """A failure to resolve a host name (no such host, or no DNS at all): retrying will not help."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, socket.gaierror):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    text = str(error)
    return any(
        sign in text
        for sign in (
            "Name or service not known",
            "nodename nor servname provided",
            "Temporary failure in name resolution",
            "No address associated with hostname",
        )
    )


def describe_route(options: HttpOptions, url: httpx.URL) -> str:
    """`` through proxy http://proxy:3128`` when ``url`` goes through a proxy, else ``""``."""
    proxy = options.proxies.proxy_for(url.scheme, url.host, url.port)
    return f" through proxy {describe_proxy(proxy)}" if proxy else ""


class Attempts:
    """The tries one request may make: the first one plus ``retries``.

    One budget is shared by every kind of transient failure the request meets (a 503, a reset before
    the headers, a body cut short, a token service answering 503), so mixing them cannot multiply the
    number of requests sent.
    """

    def __init__(self, retries: int) -> None:
        self.allowed = retries + 1
        self.made = 0

    def start(self) -> int:
        """Count one more try and return its number (1-based)."""
        self.made += 1
        return self.made

    @property
    def last(self) -> bool:
        """Whether the try just started is the last one allowed."""
        return self.made >= self.allowed


class RetryableStatusError(RegistryUnavailableError):
    """A transient status (429, 502, 503, 504) met inside the auth flow (a token request), where the
    request loop does not see the response: raised so that the loop retries the whole request."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


def retry_delay(options: HttpOptions, attempt: int, response: httpx.Response | None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``Retry-After`` or capped backoff."""
    if response is not None:
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, options.max_retry_after)
    delay = min(options.backoff * 2 ** (attempt - 1), options.max_backoff)
    jittered: float = delay * random.uniform(0.5, 1.0)  # jitter spreads out simultaneous clients
    return jittered


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe_url(url: httpx.URL) -> str:
    """A URL for messages: no query string (signed redirect URLs carry secrets there), no user info."""
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


_API_PATH_RE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)(?:/(?P<rest>.*))?$")
_KIND_WHAT = {"manifests": "manifest", "blobs": "blob", "tags": "tag list", "referrers": "referrers"}
_CODE_WHAT = {"NAME_UNKNOWN": "repository", "MANIFEST_UNKNOWN": "manifest", "BLOB_UNKNOWN": "blob"}


def reference_for_url(url: httpx.URL, registry: str | None) -> Reference | Repository | None:
    """What a registry API URL asks about: ``repo:tag`` or ``repo@digest`` for a manifest, ``repo@digest``
    for a blob, the repository for a tag list or referrers; None for anything else.

    >>> str(reference_for_url(httpx.URL("http://r:5000/v2/a/b/manifests/1.0"), "r:5000"))
    'r:5000/a/b:1.0'
    """
    match = _API_PATH_RE.match(url.path)
    if registry is None or match is None:
        return None
    name, kind, rest = match["name"], match["kind"], match["rest"] or ""
    if kind in ("tags", "referrers"):
        return Repository(registry, name)
    try:
        if ":" in rest:
            return Reference(registry, name, digest=Digest.parse(rest))
        return Reference(registry, name, tag=rest) if kind == "manifests" and rest else None
    except UsageError:
        return None


def _what_for(url: httpx.URL, codes: list[str]) -> str | None:
    for code in codes:
        if code in _CODE_WHAT:
            return _CODE_WHAT[code]
    match = _API_PATH_RE.match(url.path)
    return _KIND_WHAT[match["kind"]] if match else None


#: The key of ``response.extensions`` under which the auth flow keeps its :class:`AuthOutcome`.
AUTH_OUTCOME = "regpeek.auth"


@dataclass(frozen=True)
class AuthOutcome:
    """What the auth flow did for a request, kept on its final response: the one record a 401 or 403
    that stands is explained from (:func:`auth_failure` gives both the message and the ``reason``).

    ``source`` is where the credentials came from (``--username``, ``~/.docker/config.json``,
    ``docker-credential-pass``), empty when none were sent; ``scopes`` is what the token was asked
    for; ``error`` the ``error`` parameter of the registry's last challenge (``insufficient_scope``).
    """

    registry: str
    scheme: str | None  # "bearer", "basic" or None (no challenge answered)
    source: str = ""
    username: str = ""
    scopes: tuple[str, ...] = ()
    error: str | None = None


def login_hint(registry: str) -> str:
    """What to do about missing credentials, for messages."""
    return f"run `regpeek login {registry}` or pass --username"


def auth_failure(
    outcome: AuthOutcome | None,
    response: httpx.Response,
    what: str,
    suffix: str,
    *,
    host: str | None,
    scope: str | None,
) -> AuthError:
    """The AuthError for a 401 or 403 that stands: its message and its ``reason`` decided together,
    from what the auth flow recorded (``outcome``; None when the flow did not see the request)."""
    status = response.status_code
    if outcome is None:  # not a registry host this client authenticates: the bare status
        request = _request_of(response)
        sent = request is not None and "Authorization" in request.headers
        if status == 403:
            message = f"access denied to {what} (HTTP 403){suffix}"
            return AuthError(message, reason="forbidden", host=host, scope=scope)
        return AuthError(
            f"authentication required or refused for {what} (HTTP 401){suffix}",
            reason="refused" if sent else "missing_credentials",
            host=host,
            scope=scope,
        )
    registry = outcome.registry
    had = f"; the token had scope {' '.join(outcome.scopes)}" if outcome.scopes else ""
    if status == 403:
        who = f"; as {outcome.username} from {outcome.source}" if outcome.scheme == "basic" else had
        message = f"{registry} refused access to {what} (HTTP 403{who}){suffix}"
        return AuthError(message, reason="forbidden", host=host, scope=scope)
    if not outcome.source:  # nothing was sent (an anonymous token lacking the scope too): log in
        message = f"no credentials for {registry} ({login_hint(registry)}): HTTP 401 for {what}{suffix}"
        return AuthError(message, reason="missing_credentials", host=host, scope=scope)
    if outcome.scheme == "bearer" and outcome.error == "insufficient_scope":
        message = (
            f"{registry} refused access to {what} (HTTP 401 insufficient_scope{had}; credentials from "
            f"{outcome.source}){suffix}"
        )
        return AuthError(message, reason="forbidden", host=host, scope=scope)
    message = f"credentials for {registry} were refused (from {outcome.source}): HTTP 401 for {what}{suffix}"
    return AuthError(message, reason="refused", host=host, scope=scope)


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:  # a response built by hand has no request
        return None


def error_for_status(
    response: httpx.Response,
    body: bytes,
    what: str,
    *,
    url: httpx.URL | None = None,
    method: str | None = None,
    registry: str | None = None,
    scope: str | None = None,
) -> RegpeekError:
    """The exception for a final non-success response to a request for ``what``.

    ``url`` and ``method`` are the request's as sent (before any redirect; the response's own request
    otherwise), ``registry`` the name the URL's host is known by (for the error's ``reference``) and
    ``scope`` the token scope it needed. The error carries ``status``, ``method``, ``url`` (the URL
    that answered, without query), ``reference`` and ``errors``; a 401 or 403 is explained from the
    auth flow's :class:`AuthOutcome` (see :func:`auth_failure`).
    """
    status = response.status_code
    parsed = parse_error_body(body)
    details = "; ".join(str(detail) for detail in parsed)
    suffix = f": {details}" if details else ""
    request = _request_of(response)
    asked = url if url is not None else (request.url if request is not None else httpx.URL(""))
    answered = request.url if request is not None else asked
    error: RegpeekError
    if status in (401, 403):
        outcome = response.extensions.get(AUTH_OUTCOME)
        error = auth_failure(
            outcome if isinstance(outcome, AuthOutcome) else None,
            response,
            what,
            suffix,
            host=asked.netloc.decode() or None,
            scope=scope,
        )
    elif status == 407:  # a forwarding proxy (a CONNECT tunnel's 407 is a transport error)
        error = AuthError(
            f"the proxy refused the request for {what}: HTTP 407 (give its user and password in the proxy URL)",
            reason="refused",
            host=asked.netloc.decode() or None,
            scope=scope,
        )
    elif status == 404:
        error = NotFoundError(
            f"{what} not found (HTTP 404){suffix}", what=_what_for(asked, [d.code for d in parsed])
        )
    elif status == 400 and b"HTTP request to an HTTPS server" in body:
        error = UsageError(f"{answered.netloc.decode()} speaks HTTPS: drop --plain-http")
    elif status == 400:
        error = UsageError(f"registry rejected the request for {what} (HTTP 400){suffix}")
    elif status in (405, 501):
        error = UnsupportedError(f"registry does not support the request for {what} (HTTP {status}){suffix}")
    elif status in RETRY_STATUSES or status >= 500:
        error = RegistryUnavailableError(f"registry failed for {what}: HTTP {status}{suffix}")
    else:
        error = RegpeekError(f"unexpected HTTP {status} for {what}{suffix}")
    error.status = status
    error.method = method or (request.method if request is not None else None)
    error.url = describe_url(answered) if str(answered) else None
    error.reference = reference_for_url(asked, registry)
    error.errors = tuple(parsed)
    return error


_WARNING_RE = re.compile(r'^\s*299\s+\S+\s+"((?:[^"\\]|\\.)*)"')


def warnings_in(response: httpx.Response) -> list[str]:
    """The texts of ``Warning: 299 - "text"`` headers (to show, never to act on)."""
    texts = []
    for header in response.headers.get_list("Warning"):
        match = _WARNING_RE.match(header)
        if match:
            texts.append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return texts


_LINK_RE = re.compile(r"<(?P<url>[^>]*)>\s*((?:;\s*[^;,]*)*)")


def next_link(header: str | None) -> str | None:
    """The target of the ``rel="next"`` entry of a ``Link`` header (maybe relative), if any.

    >>> next_link('</v2/a/tags/list?last=b&n=2>; rel="next"')
    '/v2/a/tags/list?last=b&n=2'
    """
    if not header:
        return None
    for match in _LINK_RE.finditer(header):
        params = match.group(2)
        if re.search(r';\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?', params, re.IGNORECASE):
            return match.group("url")
    return None


def next_page(current: httpx.URL, header: str | None, what: str) -> httpx.URL | None:
    """The URL of the next page of a paginated listing (tags, catalog, referrers), if any.

    Only the path and query of the ``rel="next"`` link are kept, on the scheme, host and port of the
    page that sent it, as containers/image does: a ``Link: <http://same-host/...>`` from an https
    registry, or a link to another host, can never take the next request (and its ``Authorization``)
    into cleartext or elsewhere.

    >>> str(next_page(httpx.URL("https://r.example/v2/a/tags/list"), '<http://r.example/v2/a/tags/list?last=b>; rel="next"', "tags"))
    'https://r.example/v2/a/tags/list?last=b'
    """
    link = next_link(header)
    if link is None:
        return None
    try:
        target = current.join(link)
    except httpx.InvalidURL:
        raise MalformedError(f"{what}: the registry sent an invalid Link header") from None
    return current.copy_with(raw_path=target.raw_path)
