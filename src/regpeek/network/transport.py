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
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from regpeek._version import __version__
from regpeek.errors import (
    AuthError,
    AuthReason,
    MalformedError,
    NotFoundError,
    RegistryUnavailableError,
    RegpeekError,
    UnsupportedError,
    UsageError,
    parse_error_body,
)
from regpeek.formats.digest import Digest
from regpeek.formats.reference import Reference, Repository

__all__ = [
    "Attempts",
    "HttpOptions",
    "RetryableStatusError",
    "Trust",
    "async_client",
    "error_for_status",
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
    on_warning: Callable[[str], None] | None = field(default=None, compare=False)
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = field(default=None, compare=False)

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"


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
        "trust_env": False,  # no proxies or netrc credentials picked up behind the user's back
    }


def sync_client(options: HttpOptions, trust: Trust) -> httpx.Client:
    transport = options.transport
    if transport is not None and not isinstance(transport, httpx.BaseTransport):
        raise TypeError("the sync client needs a sync transport")
    return httpx.Client(transport=transport, **_common(options, trust))  # type: ignore[arg-type]


def async_client(options: HttpOptions, trust: Trust) -> httpx.AsyncClient:
    transport = options.transport
    if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
        raise TypeError("the async client needs an async transport")
    return httpx.AsyncClient(transport=transport, **_common(options, trust))  # type: ignore[arg-type]


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

#: The key of ``response.extensions`` under which the auth flow notes why a 401 stands.
AUTH_REASON = "regpeek.auth_reason"


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
    that answered, without query), ``reference`` and ``errors``.
    """
    status = response.status_code
    parsed = parse_error_body(body)
    details = "; ".join(str(detail) for detail in parsed)
    suffix = f": {details}" if details else ""
    try:
        request: httpx.Request | None = response.request
    except RuntimeError:  # a response built by hand has no request
        request = None
    asked = url if url is not None else (request.url if request is not None else httpx.URL(""))
    answered = request.url if request is not None else asked
    error: RegpeekError
    if status in (401, 403):
        host = asked.netloc.decode() or None
        reason: AuthReason = (
            "forbidden"
            if status == 403
            else response.extensions.get(AUTH_REASON)
            or (
                "refused"
                if request is not None and "Authorization" in request.headers
                else "missing_credentials"
            )
        )
        message = (
            f"authentication required or refused for {what} (HTTP 401){suffix}"
            if status == 401
            else f"access denied to {what} (HTTP 403){suffix}"
        )
        error = AuthError(message, reason=reason, host=host, scope=scope)
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
