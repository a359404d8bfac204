"""A fault-injection HTTP/1.1 proxy for registry tests, and a recording server on 127.0.0.2.

:class:`FaultProxy` listens on a free loopback port and forwards every request to one upstream
(``http://`` or ``https://`` with a CA file), rewriting ``Host`` and the upstream origin in
``Location`` headers, streaming bodies both ways (64 KiB at a time; only faults that need a whole
body buffer it).  Connections are kept alive unless a fault or the client ends them.  Every request
is recorded (:attr:`FaultProxy.requests`).

Faults are attached with rules: ``proxy.add(fault, path=regex, method=..., times=N)``.  For each
request the *first* active rule whose method, path regex (``re.search`` on the request target,
path plus query) and ``when`` predicate match, and whose faults all apply (body faults skip HEAD and,
unless ``ranged=True``, ``Range`` requests), is used and its ``hits`` counted; a rule with
``times=N`` is spent after N hits and later requests fall through to the next rule or to plain
forwarding.  So ``add(status(503), times=2)`` then ``add(truncate(10), times=1)`` gives 503, 503,
a truncated answer, then normal answers.  A rule may hold several faults (``add([f1, f2])``): the
first one that answers by itself (status, redirect, ...) wins; header edits and body plans combine.

:class:`RecordingServer` is the same machinery bound to 127.0.0.2: it answers every request with a
fixed body, or serves ``/v2/<name>/blobs/<digest>`` from an upstream registry without forwarding
``Authorization``, and records the headers it received.

Nothing here imports regpeek.
"""

from __future__ import annotations

import contextlib
import http
import http.client
import json
import re
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TypeVar, cast

from .certs import make_tls_files
from .util import HOP_BY_HOP

if TYPE_CHECKING:
    from .registry import Registry

HeaderList = list[tuple[str, str]]
_P = TypeVar("_P", bound="FaultProxy")

CHUNK = 64 * 1024
MAX_BUFFERED = 64 * 1024 * 1024  # whole-body faults refuse bodies larger than this
TOKEN_PATH = "/__faultproxy__/token"
RECORDING_HOST = "127.0.0.2"
_ALLOWED_HOSTS = ("127.0.0.1", "127.0.0.2")
_SETTLE_TIMEOUT = 5.0

_HOP_BY_HOP = HOP_BY_HOP | {"expect"}

_ERROR_CODES = {
    400: "UNSUPPORTED",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NAME_UNKNOWN",
    405: "UNSUPPORTED",
    416: "BLOB_UNKNOWN",
    429: "TOOMANYREQUESTS",
    503: "UNAVAILABLE",
}

_BLOB_PATH_RE = re.compile(r"^/v2/.+/blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+(?:\?.*)?$")


# -- records -------------------------------------------------------------------------------------
@dataclass
class Recorded:
    """One request the proxy received and what it answered.

    ``headers`` has lower-cased names (repeated headers joined with ``", "``).  ``status`` is the
    status line the proxy sent (0 if it sent none), ``bytes_sent`` the response *body* bytes written
    to the client (chunk framing excluded), ``fault`` a description of the applied fault (None when
    the request was simply forwarded), ``error`` what broke the exchange, if anything.
    """

    method: str
    path: str  # request target: path plus query string, exactly as received
    headers: dict[str, str]
    status: int = 0
    bytes_sent: int = 0
    fault: str | None = None
    response_headers: HeaderList = field(default_factory=list)
    request_body_bytes: int = 0
    error: str | None = None
    done: bool = False
    stalling: bool = False

    def __repr__(self) -> str:
        extra = f" [{self.fault}]" if self.fault else ""
        error = f" error={self.error!r}" if self.error else ""
        return f"<{self.method} {self.path} -> {self.status}, {self.bytes_sent} bytes{extra}{error}>"

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name."""
        return self.headers.get(name.lower())

    def response_header(self, name: str) -> str | None:
        """The first response header the proxy sent with that name."""
        return _get(self.response_headers, name)


@dataclass
class Answer:
    """A response a fault makes up instead of forwarding."""

    status: int
    headers: HeaderList = field(default_factory=list)
    body: bytes = b""


@dataclass
class BodyPlan:
    """How to send a response body; faults return one, the proxy merges them (later fields win).

    ``replace`` sends other bytes (upstream body not read), ``transform`` reads the whole upstream
    body and sends ``transform(body)`` (both fix ``Content-Length``).  ``cut_at`` stops after that
    many body bytes and then resets the connection, closes it cleanly, or stalls ``stall_seconds``
    and goes on (``cut``); ``Content-Length`` is kept.  ``flip_at`` XORs the byte at that offset
    with ``xor`` (``flip_middle``: the middle byte).
    """

    replace: bytes | None = None
    transform: Callable[[bytes], bytes] | None = None
    cut_at: int | None = None
    cut: Literal["reset", "close", "stall"] | None = None
    stall_seconds: float = 0.0
    flip_at: int | None = None
    flip_middle: bool = False
    xor: int = 0x01

    def merge(self, other: BodyPlan) -> BodyPlan:
        merged = BodyPlan(**self.__dict__)
        defaults = BodyPlan()
        for name, value in other.__dict__.items():
            if value != getattr(defaults, name):
                setattr(merged, name, value)
        return merged


class Exchange:
    """One request being handled; passed to every fault hook."""

    def __init__(self, proxy: FaultProxy, record: Recorded, headers: HeaderList) -> None:
        self.proxy = proxy
        self.record = record
        self.method = record.method
        self.path = record.path
        self.headers = headers

    def header(self, name: str) -> str | None:
        return _get(self.headers, name)

    def stall(self, seconds: float) -> None:
        """Sleep (interruptible by :meth:`FaultProxy.stop`); the request counts as settled meanwhile."""
        self.proxy._set_stalling(self.record, True)
        try:
            self.proxy._stopping.wait(seconds)
        finally:
            self.proxy._set_stalling(self.record, False)
        if self.proxy._stopping.is_set():
            raise _Stopped("proxy stopped during a stall")


# -- faults --------------------------------------------------------------------------------------
class Fault:
    """Base class.  Override any hook; the defaults forward untouched."""

    def describe(self) -> str:
        return type(self).__name__.lstrip("_").lower()

    def __repr__(self) -> str:
        return f"<fault {self.describe()}>"

    def applies(self, ex: Exchange) -> bool:
        """Whether this fault can act on the request (otherwise the rule does not match)."""
        return True

    def respond(self, ex: Exchange) -> Answer | None:
        """Answer without forwarding (return an :class:`Answer`), or return None to go on."""
        return None

    def edit(self, ex: Exchange, status: int, headers: HeaderList) -> tuple[int, HeaderList]:
        """Change the status and headers of the response about to be sent."""
        return status, headers

    def plan(self, ex: Exchange) -> BodyPlan | None:
        """How to send the body (see :class:`BodyPlan`); None leaves it alone."""
        return None


class _BodyFault(Fault):
    """A fault on the body bytes: skips HEAD, and Range requests unless ``ranged``."""

    def __init__(self, ranged: bool) -> None:
        self.ranged = ranged

    def applies(self, ex: Exchange) -> bool:
        if ex.method == "HEAD":
            return False
        return self.ranged or ex.header("Range") is None


class _Status(Fault):
    def __init__(self, code: int, headers: Mapping[str, str] | None, data: bytes | None) -> None:
        self.code = code
        self.headers = dict(headers or {})
        self.data = data

    def describe(self) -> str:
        return f"status({self.code})"

    def respond(self, ex: Exchange) -> Answer:
        data = error_body(self.code, ex.path) if self.data is None else self.data
        merged = {"Content-Type": "application/json; charset=utf-8"} if self.data is None else {}
        merged["Docker-Distribution-Api-Version"] = "registry/2.0"
        given = {name.lower() for name in self.headers}
        headers = [(k, v) for k, v in merged.items() if k.lower() not in given]
        return Answer(self.code, headers + list(self.headers.items()), data)


class _Cut(_BodyFault):
    def __init__(
        self, at: int, cut: Literal["reset", "close", "stall"], seconds: float, ranged: bool
    ) -> None:
        super().__init__(ranged)
        if at < 0:
            raise ValueError("byte count must be >= 0")
        self.at, self.cut, self.seconds = at, cut, seconds

    def describe(self) -> str:
        names = {"reset": "reset_after", "close": "truncate", "stall": "stall_mid_body"}
        extra = f", {self.seconds}s" if self.cut == "stall" else ""
        return f"{names[self.cut]}({self.at}{extra})"

    def plan(self, ex: Exchange) -> BodyPlan:
        return BodyPlan(cut_at=self.at, cut=self.cut, stall_seconds=self.seconds)


class _StallBeforeHeaders(Fault):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def describe(self) -> str:
        return f"stall_before_headers({self.seconds}s)"

    def respond(self, ex: Exchange) -> None:
        ex.stall(self.seconds)


class _FlipByte(_BodyFault):
    def __init__(self, offset: int | None, xor: int, ranged: bool) -> None:
        super().__init__(ranged)
        if not 0 < xor < 256:
            raise ValueError("xor must be in 1..255")
        self.offset, self.xor = offset, xor

    def describe(self) -> str:
        return f"flip_byte({'middle' if self.offset is None else self.offset})"

    def plan(self, ex: Exchange) -> BodyPlan:
        return BodyPlan(flip_at=self.offset, flip_middle=self.offset is None, xor=self.xor)


class _SetHeaders(Fault):
    """Drop headers by name, then add values (several values of a name become several headers)."""

    def __init__(self, label: str, drop: Iterable[str], add: HeaderList) -> None:
        self.label = label
        self.drop = {name.lower() for name in drop}
        self.add = add

    def describe(self) -> str:
        return self.label

    def edit(self, ex: Exchange, status: int, headers: HeaderList) -> tuple[int, HeaderList]:
        kept = [(k, v) for k, v in headers if k.lower() not in self.drop]
        return status, kept + self.add


class _Body(Fault):
    def __init__(
        self,
        data: bytes,
        content_type: str,
        code: int,
        headers: Mapping[str, str] | None,
        keep_digest_header: bool,
    ) -> None:
        self.data = data
        self.content_type = content_type
        self.code = code
        self.headers = dict(headers or {})
        self.keep_digest_header = keep_digest_header

    def describe(self) -> str:
        keep = ", keep_digest_header" if self.keep_digest_header else ""
        return f"body({len(self.data)} bytes, {self.content_type}, {self.code}{keep})"

    def _headers(self) -> HeaderList:
        return [
            ("Content-Type", self.content_type),
            ("Docker-Distribution-Api-Version", "registry/2.0"),
            *self.headers.items(),
        ]

    def respond(self, ex: Exchange) -> Answer | None:
        if self.keep_digest_header:
            return None  # ask the upstream for its Docker-Content-Digest, see edit()
        return Answer(self.code, self._headers(), self.data)

    def edit(self, ex: Exchange, status: int, headers: HeaderList) -> tuple[int, HeaderList]:
        if not self.keep_digest_header:
            return status, headers
        digests = [(k, v) for k, v in headers if k.lower() == "docker-content-digest"]
        return self.code, self._headers() + digests

    def plan(self, ex: Exchange) -> BodyPlan | None:
        return BodyPlan(replace=self.data) if self.keep_digest_header else None


class _Rewrite(Fault):
    def __init__(self, fn: Callable[[bytes], bytes], keep_digest_header: bool) -> None:
        self.fn = fn
        self.keep_digest_header = keep_digest_header

    def applies(self, ex: Exchange) -> bool:
        return ex.method != "HEAD"

    def edit(self, ex: Exchange, status: int, headers: HeaderList) -> tuple[int, HeaderList]:
        if self.keep_digest_header:
            return status, headers
        return status, [(k, v) for k, v in headers if k.lower() != "docker-content-digest"]

    def plan(self, ex: Exchange) -> BodyPlan:
        return BodyPlan(transform=self.fn)


class _Redirect(Fault):
    def __init__(self, to: str, code: int, append_path: bool) -> None:
        self.to, self.code, self.append_path = to, code, append_path

    def describe(self) -> str:
        return f"redirect({self.code} -> {self.to}{' + path' if self.append_path else ''})"

    def respond(self, ex: Exchange) -> Answer:
        location = self.to.rstrip("/") + ex.path if self.append_path else self.to
        return Answer(self.code, [("Location", location), ("Content-Length", "0")])


class _RedirectLoop(Fault):
    def __init__(self, n: int | None, code: int) -> None:
        self.n, self.code = n, code
        self.count = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"redirect_loop({self.n})"

    def applies(self, ex: Exchange) -> bool:
        with self._lock:
            if self.n is not None and self.count >= self.n:
                return False
            self.count += 1
            return True

    def respond(self, ex: Exchange) -> Answer:
        return Answer(self.code, [("Location", ex.proxy.url + ex.path), ("Content-Length", "0")])


class _Unauthorized(Fault):
    def __init__(self, challenge: Sequence[str] | None) -> None:
        self.challenge = list(challenge) if challenge is not None else None

    def describe(self) -> str:
        return "unauthorized_forever"

    def respond(self, ex: Exchange) -> Answer:
        values = self.challenge
        if values is None:
            values = ex.proxy._probe_challenge(ex) or [
                f'Bearer realm="{ex.proxy.url}{TOKEN_PATH}",service="faultproxy"'
            ]
        headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Docker-Distribution-Api-Version", "registry/2.0"),
            *(("WWW-Authenticate", value) for value in values),
        ]
        return Answer(401, headers, error_body(401, ex.path))


class _Challenge(Fault):
    def __init__(self, value: str | Sequence[str] | Callable[[list[str]], list[str]]) -> None:
        self.value = value

    def describe(self) -> str:
        return "challenge"

    def edit(self, ex: Exchange, status: int, headers: HeaderList) -> tuple[int, HeaderList]:
        if status != 401:
            return status, headers
        original = [v for k, v in headers if k.lower() == "www-authenticate"]
        kept = [(k, v) for k, v in headers if k.lower() != "www-authenticate"]
        if callable(self.value):
            values = self.value(original)
        else:
            templates = [self.value] if isinstance(self.value, str) else list(self.value)
            params = _challenge_params(original)
            values = [template.format_map(params) for template in templates]
        return status, kept + [("WWW-Authenticate", value) for value in values]


class _CutRequest(Fault):
    """Reads part of the request body, then resets the client's connection (see :func:`cut_request`)."""

    def __init__(self, after_bytes: int, forward: bool) -> None:
        if after_bytes < 0:
            raise ValueError("byte count must be >= 0")
        self.after_bytes, self.forward = after_bytes, forward

    def describe(self) -> str:
        return f"cut_request({self.after_bytes}{', forwarded' if self.forward else ''})"


class _RewriteTarget(Fault):
    def __init__(self, fn: Callable[[str], str]) -> None:
        self.fn = fn

    def describe(self) -> str:
        return "rewrite_target"

    def respond(self, ex: Exchange) -> None:
        ex.path = self.fn(ex.path)  # what is forwarded; the record keeps what the client sent


# -- fault constructors --------------------------------------------------------------------------
def cut_request(after_bytes: int, *, forward: bool = False) -> Fault:
    """Read ``after_bytes`` of the request body, then reset the client's connection (RST) while it is
    still sending, as a network failure in the middle of an upload would.

    Without ``forward`` the upstream never hears of the request; with it, the headers and those
    bytes are sent upstream and that connection is reset too (the upstream sees a client vanish
    mid-body).
    """
    return _CutRequest(after_bytes, forward)


def rewrite_target(fn: Callable[[str], str]) -> Fault:
    """Forward the request to ``fn(target)`` (path plus query) instead; recorded as the client sent it."""
    return _RewriteTarget(fn)


def status(code: int, *, headers: Mapping[str, str] | None = None, data: bytes | None = None) -> Fault:
    """Answer ``code`` instead of forwarding; the body is a registry JSON error unless ``data`` is given."""
    return _Status(code, headers, data)


def too_many_requests(retry_after: int | str = 1) -> Fault:
    """429 with ``Retry-After`` and a TOOMANYREQUESTS error body."""
    return _Status(429, {"Retry-After": str(retry_after)}, None)


def reset_after(k_bytes: int, *, ranged: bool = False) -> Fault:
    """Forward, send the headers (real Content-Length) and ``k_bytes`` of the body, then reset (RST).

    Waits (up to 2 s) until the client's kernel has acknowledged those bytes, so the client reads
    exactly ``k_bytes`` before it sees ECONNRESET.  Range requests pass unless ``ranged=True``.
    """
    return _Cut(k_bytes, "reset", 0.0, ranged)


def truncate(keep_bytes: int, *, ranged: bool = False) -> Fault:
    """Send the headers (real Content-Length) and the first ``keep_bytes`` of the body, then close (FIN)."""
    return _Cut(keep_bytes, "close", 0.0, ranged)


def stall_before_headers(seconds: float) -> Fault:
    """Wait ``seconds`` before forwarding (and answering).  :meth:`FaultProxy.stop` ends the wait."""
    return _StallBeforeHeaders(seconds)


stall = stall_before_headers


def stall_mid_body(seconds: float, after_bytes: int = 0, *, ranged: bool = False) -> Fault:
    """Send the headers and ``after_bytes`` of the body, wait ``seconds``, then send the rest."""
    return _Cut(after_bytes, "stall", seconds, ranged)


def flip_byte(offset: int | None = None, *, xor: int = 0x01, ranged: bool = False) -> Fault:
    """Forward with the body byte at ``offset`` (default: the middle one, ``len // 2``) XORed with ``xor``.

    All headers are kept, ``Docker-Content-Digest`` included.  Streams when Content-Length is known.
    """
    return _FlipByte(offset, xor, ranged)


def content_type(value: str) -> Fault:
    """Replace the response's Content-Type."""
    return _SetHeaders(f"content_type({value})", ["Content-Type"], [("Content-Type", value)])


def drop_header(*names: str) -> Fault:
    """Forward with these response headers removed (e.g. ``Docker-Content-Digest``)."""
    return _SetHeaders(f"drop_header({', '.join(names)})", names, [])


def set_header(name: str, *values: str) -> Fault:
    """Forward with response header ``name`` replaced by ``values`` (one header line each)."""
    return _SetHeaders(f"set_header({name})", [name], [(name, value) for value in values])


def body(
    data: bytes,
    *,
    content_type: str = "application/json",
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    keep_digest_header: bool = False,
) -> Fault:
    """Answer with ``data`` (Content-Length fixed).

    Without ``keep_digest_header`` the upstream is not contacted.  With it, the request is forwarded
    and the upstream's ``Docker-Content-Digest`` (if any) is sent along with ``data``.
    """
    return _Body(data, content_type, status, headers, keep_digest_header)


def rewrite_body(fn: Callable[[bytes], bytes], *, keep_digest_header: bool = True) -> Fault:
    """Forward with the whole body replaced by ``fn(body)``; other headers kept, Content-Length fixed."""
    return _Rewrite(fn, keep_digest_header)


def redirect(to_url: str, *, status: int = 307, append_path: bool = False) -> Fault:
    """Answer with a redirect to ``to_url`` (plus the request target when ``append_path``)."""
    return _Redirect(to_url, status, append_path)


def redirect_loop(n: int | None = None, *, status: int = 307) -> Fault:
    """Redirect to the very same URL: forever, or for the first ``n`` matching requests."""
    return _RedirectLoop(n, status)


def unauthorized_forever(challenge: str | Sequence[str] | None = None) -> Fault:
    """Answer 401 to every matching request, even with a valid token.

    The challenge (one ``WWW-Authenticate`` header per value) defaults to what the upstream answers
    the same request sent without credentials; if the upstream does not answer 401 (anonymous
    registry), to ``Bearer realm="<proxy>/__faultproxy__/token",service="faultproxy"``, a realm the
    proxy itself serves (it hands out dummy tokens), so a client loops through a real token dance.
    """
    values = [challenge] if isinstance(challenge, str) else challenge
    return _Unauthorized(values)


def challenge(value: str | Sequence[str] | Callable[[list[str]], list[str]]) -> Fault:
    """Replace the ``WWW-Authenticate`` header(s) of upstream 401 responses.

    Each string becomes one header line and may use ``{realm}``, ``{service}``, ``{scope}``,
    ``{error}``, ``{scheme}`` and ``{original}``, taken from the upstream's first challenge (missing
    ones are empty), e.g. ``'Bearer scope="{scope}",service="{service}",realm="{realm}"'``.  A
    callable gets the upstream's values and returns the new ones.
    """
    return _Challenge(value)


def error_body(code: int, path: str = "", message: str = "injected by faultproxy") -> bytes:
    """A registry-style JSON error body for an HTTP status."""
    error = _ERROR_CODES.get(code, "UNKNOWN")
    if code == 404 and "/manifests/" in path:
        error = "MANIFEST_UNKNOWN"
    elif code == 404 and "/blobs/" in path:
        error = "BLOB_UNKNOWN"
    return json.dumps({"errors": [{"code": error, "message": message}]}).encode()


# -- rules ---------------------------------------------------------------------------------------
class Rule:
    """Apply ``fault`` (or several) to requests matching ``method``/``path``/``when``, ``times`` times."""

    def __init__(
        self,
        fault: Fault | Sequence[Fault],
        *,
        path: str = "",
        method: str | Iterable[str] | None = None,
        times: int | None = None,
        when: Callable[[Exchange], bool] | None = None,
    ) -> None:
        self.faults: tuple[Fault, ...] = (fault,) if isinstance(fault, Fault) else tuple(fault)
        if not self.faults:
            raise ValueError("a rule needs at least one fault")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0")
        self.path = path
        self.pattern = re.compile(path)
        methods = [method] if isinstance(method, str) else method
        self.methods = None if methods is None else frozenset(m.upper() for m in methods)
        self.times = times
        self.when = when
        self.hits = 0

    def __repr__(self) -> str:
        faults = ", ".join(f.describe() for f in self.faults)
        return f"<Rule {faults} path={self.path!r} methods={self.methods} hits={self.hits}/{self.times}>"

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(self.times - self.hits, 0)

    def describe(self) -> str:
        return " + ".join(f.describe() for f in self.faults)

    def matches(self, ex: Exchange) -> bool:
        if self.exhausted:
            return False
        if self.methods is not None and ex.method not in self.methods:
            return False
        if self.pattern.search(ex.path) is None:
            return False
        if self.when is not None and not self.when(ex):
            return False
        return all(f.applies(ex) for f in self.faults)


# -- the proxy -----------------------------------------------------------------------------------
class FaultProxy:
    """A threaded fault-injecting proxy in front of ``upstream``.  Context manager or start/stop.

    ``upstream`` is a base URL (``http://127.0.0.1:5000``); ``upstream_ca_file`` trusts an https
    upstream.  ``tls=True`` serves https with a throwaway CA (:attr:`ca_file`; certificate for
    127.0.0.1 only).  ``strip_request_headers`` are not forwarded (recorded all the same).
    """

    def __init__(
        self,
        upstream: str | None,
        *,
        upstream_ca_file: str | Path | None = None,
        host: str = "127.0.0.1",
        tls: bool = False,
        upstream_timeout: float = 30.0,
        strip_request_headers: Iterable[str] = (),
        rewrite_location: bool = True,
    ) -> None:
        if host not in _ALLOWED_HOSTS:
            raise ValueError(f"listen on loopback only ({', '.join(_ALLOWED_HOSTS)}), not {host!r}")
        if tls and host != "127.0.0.1":
            raise ValueError("the generated certificate is valid for 127.0.0.1 only")
        self.upstream = upstream.rstrip("/") if upstream is not None else None
        self._upstream_parts = urllib.parse.urlsplit(self.upstream) if self.upstream else None
        if self._upstream_parts is not None and self._upstream_parts.scheme not in ("http", "https"):
            raise ValueError(f"upstream must be http(s), not {upstream!r}")
        self.upstream_ca_file = Path(upstream_ca_file) if upstream_ca_file is not None else None
        self.bind_host = host
        self.tls = tls
        self.upstream_timeout = upstream_timeout
        self.strip_request_headers = frozenset(name.lower() for name in strip_request_headers)
        self.rewrite_location = rewrite_location
        self.ca_file: Path | None = None
        self.port = 0
        self.rules: list[Rule] = []
        self._records: list[Recorded] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._tls_dir: Path | None = None
        self._server_context: ssl.SSLContext | None = None
        self._upstream_context: ssl.SSLContext | None = None
        self._tokens = 0
        self.connections = 0  # client connections accepted (keep-alive reuses them)
        self.errors: list[Exception] = []  # unexpected exceptions in connection threads (bugs)

    @staticmethod
    def for_registry(registry: Registry, *, tls: bool = False) -> FaultProxy:
        """A proxy in front of a :class:`tests.support.registry.Registry` (URL and CA taken from it)."""
        return FaultProxy(registry.url, upstream_ca_file=registry.ca_file, tls=tls)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self: _P) -> _P:
        if self._server is not None:
            return self
        self._stopping.clear()
        if self._upstream_parts is not None and self._upstream_parts.scheme == "https":
            cafile = str(self.upstream_ca_file) if self.upstream_ca_file else None
            self._upstream_context = ssl.create_default_context(cafile=cafile)
        if self.tls:
            self._tls_dir = Path(tempfile.mkdtemp(prefix="faultproxy-tls-"))
            files = make_tls_files(self._tls_dir)
            self.ca_file = files.ca_cert
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(files.server_cert, files.server_key)
            self._server_context = context
        server = _Server(self, (self.bind_host, 0))
        self._server = server
        self.port = server.server_address[1]
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"faultproxy-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut every open connection, wake stalls, join all threads.  Idempotent."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._cond:
                sockets = list(self._sockets)
                threads = list(self._threads)
            if not threads:
                break
            for sock in sockets:
                _cut_socket(sock)
            for thread in threads:
                thread.join(timeout=0.05)
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
            self._serve_thread = None
        self._server = None
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self: _P) -> _P:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url if self.port else '(stopped)'} -> {self.upstream}>"

    # -- addresses -----------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """``127.0.0.1:<port>`` (what a registry reference would use)."""
        return f"{self.bind_host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client SSL context trusting the proxy's CA (None when it serves plain http)."""
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def verify(self) -> ssl.SSLContext | bool:
        """Value for httpx's ``verify=``."""
        return self.ssl_context() or True

    # -- rules ---------------------------------------------------------------------------------
    def add(
        self,
        fault: Fault | Sequence[Fault] | Rule,
        *,
        path: str = "",
        method: str | Iterable[str] | None = None,
        times: int | None = None,
        when: Callable[[Exchange], bool] | None = None,
    ) -> Rule:
        """Append a rule (see the module docstring for matching) and return it."""
        if isinstance(fault, Rule):
            if path or method is not None or times is not None or when is not None:
                raise TypeError("pass either a Rule or a fault with options, not both")
            rule = fault
        else:
            rule = Rule(fault, path=path, method=method, times=times, when=when)
        with self._cond:
            self.rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        with self._cond:
            self.rules.remove(rule)

    def clear_rules(self) -> None:
        with self._cond:
            self.rules.clear()

    def _match(self, ex: Exchange) -> Rule | None:
        with self._cond:
            for rule in self.rules:
                if rule.matches(ex):
                    rule.hits += 1
                    return rule
        return None

    # -- records -------------------------------------------------------------------------------
    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request received (oldest first).

        Waits (up to 5 s) until requests in flight are answered completely, so ``status`` and
        ``bytes_sent`` are final; requests in a deliberate stall are returned as they are.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: all(r.done or r.stalling for r in self._records) or self._stopping.is_set(),
                timeout=_SETTLE_TIMEOUT,
            )
            return list(self._records)

    def matching(self, path: str = "", method: str | None = None) -> list[Recorded]:
        """Recorded requests whose target matches the regex ``path`` (and ``method``)."""
        pattern = re.compile(path)
        return [r for r in self.requests if pattern.search(r.path) and (method is None or r.method == method)]

    def clear(self) -> None:
        """Forget the recorded requests (rules stay)."""
        with self._cond:
            self._records.clear()

    def _begin(self, record: Recorded) -> None:
        with self._cond:
            self._records.append(record)

    def _finish(self, record: Recorded) -> None:
        with self._cond:
            record.done = True
            self._cond.notify_all()

    def _set_stalling(self, record: Recorded, value: bool) -> None:
        with self._cond:
            record.stalling = value
            self._cond.notify_all()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._cond:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)
        if add and self._stopping.is_set():
            _cut_socket(sock)

    def _track_thread(self, thread: threading.Thread, add: bool) -> None:
        with self._cond:
            if add:
                self._threads.add(thread)
            else:
                self._threads.discard(thread)

    # -- upstream ------------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        parts = self._upstream_parts
        if parts is None:
            raise ConnectionError("no upstream configured")
        host = parts.hostname or "127.0.0.1"
        if parts.scheme == "https":
            return http.client.HTTPSConnection(
                host, parts.port or 443, timeout=self.upstream_timeout, context=self._upstream_context
            )
        return http.client.HTTPConnection(host, parts.port or 80, timeout=self.upstream_timeout)

    def _upstream_target(self, target: str) -> str:
        base = self._upstream_parts.path.rstrip("/") if self._upstream_parts else ""
        return base + target

    def _rewrite_location(self, value: str) -> str:
        if self.rewrite_location and self.upstream and value.startswith(self.upstream):
            rest = value[len(self.upstream) :]
            if not rest or rest[0] in "/?#":
                return self.url + rest
        return value

    def _probe_challenge(self, ex: Exchange) -> list[str]:
        """What the upstream answers ``ex`` without credentials and body: its WWW-Authenticate values."""
        if self._upstream_parts is None:
            return []
        skip = _HOP_BY_HOP | {"host", "authorization", "content-length", "content-type"}
        conn = self._connect()
        try:
            conn.putrequest(
                ex.method, self._upstream_target(ex.path), skip_host=True, skip_accept_encoding=True
            )
            conn.putheader("Host", self._upstream_parts.netloc)
            for name, value in ex.headers:
                if name.lower() not in skip:
                    conn.putheader(name, value)
            if ex.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", "0")
            conn.endheaders()
            response = conn.getresponse()
            if response.status != 401:
                return []
            return response.headers.get_all("WWW-Authenticate") or []
        except (OSError, http.client.HTTPException):
            return []
        finally:
            conn.close()

    def _issue_token(self) -> bytes:
        with self._cond:
            self._tokens += 1
            token = f"faultproxy-token-{self._tokens}"
        return json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()

    def _fallback(self, ex: Exchange) -> Answer | None:
        """An answer for requests no rule answered, instead of forwarding (None: forward)."""
        if self._upstream_parts is None:
            message = "faultproxy has no upstream"
            return Answer(502, [("Content-Type", "application/json")], error_body(502, ex.path, message))
        return None


class RecordingServer(FaultProxy):
    """A plain-http server on 127.0.0.2 that records every request's headers.

    Answers every request with ``body``, except that with ``upstream_url`` a GET/HEAD of
    ``/v2/<name>/blobs/<digest>`` is served from that (anonymous) registry, so a download redirected
    here still completes and verifies.  ``Authorization`` and ``Cookie`` are never forwarded.
    Faults can be added as on :class:`FaultProxy`.
    """

    def __init__(
        self,
        upstream_url: str | None = None,
        body: bytes | None = None,
        *,
        content_type: str = "application/octet-stream",
        upstream_ca_file: str | Path | None = None,
        host: str = RECORDING_HOST,
    ) -> None:
        super().__init__(
            upstream_url,
            upstream_ca_file=upstream_ca_file,
            host=host,
            strip_request_headers=("authorization", "cookie"),
        )
        self.body = b"recording-server\n" if body is None else body
        self.content_type = content_type

    def _fallback(self, ex: Exchange) -> Answer | None:
        if self._upstream_parts is not None and ex.method in ("GET", "HEAD") and _BLOB_PATH_RE.match(ex.path):
            return None
        return Answer(200, [("Content-Type", self.content_type)], self.body)


# -- HTTP machinery ------------------------------------------------------------------------------
class _ClientGone(Exception):
    """Writing to the client failed."""


class _Stopped(Exception):
    """The proxy is stopping: abandon the exchange."""


class _Server(HTTPServer):
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, proxy: FaultProxy, address: tuple[str, int]) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(host): a reverse DNS lookup that can hang for
        # 127.0.0.2 when no resolver answers.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        sock = cast(socket.socket, request)
        self.proxy.connections += 1
        thread = threading.Thread(
            target=self._serve_connection,
            args=(sock, client_address),
            name=f"faultproxy-{self.proxy.port}-conn",
            daemon=True,
        )
        self.proxy._track_thread(thread, True)
        thread.start()

    def _serve_connection(self, sock: socket.socket, client_address: object) -> None:
        conn = sock
        self.proxy._track(conn, True)
        try:
            context = self.proxy._server_context
            if context is not None:
                sock.settimeout(10)
                self.proxy._track(sock, False)
                conn = context.wrap_socket(sock, server_side=True)  # takes over the file descriptor
                self.proxy._track(conn, True)
            if not self.proxy._stopping.is_set():
                self.finish_request(conn, client_address)
        except (OSError, ssl.SSLError):
            pass  # handshake refused, client vanished, connection cut by stop()
        except Exception as exc:  # a bug here: keep it for the tests to see, never print from a thread
            self.proxy.errors.append(exc)
        finally:
            self.shutdown_request(conn)
            self.proxy._track(conn, False)
            self.proxy._track_thread(threading.current_thread(), False)

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet: clients that vanish are part of the job."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default stderr logging."""

    def do_GET(self) -> None:
        self._exchange()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # -- one exchange --------------------------------------------------------------------------
    def _exchange(self) -> None:
        proxy = self.server.proxy
        headers: HeaderList = [(str(k), str(v)) for k, v in self.headers.items()]
        record = Recorded(self.command, self.path, _header_dict(headers))
        ex = Exchange(proxy, record, headers)
        proxy._begin(record)
        try:
            self._serve(ex)
        except _ClientGone as exc:
            record.error = f"client: {exc}"
            self.close_connection = True
        except _Stopped as exc:
            record.error = str(exc)
            self.close_connection = True
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            record.error = message
            self.close_connection = True
            if record.status == 0:  # nothing sent yet: answer like a gateway would
                with contextlib.suppress(_ClientGone):
                    self._send_answer(ex, Answer(502, [], error_body(502, ex.path, message)), ())
        finally:
            proxy._finish(record)

    def _serve(self, ex: Exchange) -> None:
        proxy = ex.proxy
        if urllib.parse.urlsplit(ex.path).path == TOKEN_PATH:
            self._drain_request_body(ex)
            ex.record.fault = "token endpoint"
            self._send_answer(
                ex, Answer(200, [("Content-Type", "application/json")], proxy._issue_token()), ()
            )
            return
        rule = proxy._match(ex)
        faults = rule.faults if rule is not None else ()
        if rule is not None:
            ex.record.fault = rule.describe()
        for fault in faults:
            answer = fault.respond(ex)
            if answer is not None:
                self._drain_request_body(ex)
                self._send_answer(ex, answer, faults)
                return
        answer = proxy._fallback(ex)
        if answer is not None:
            self._drain_request_body(ex)
            self._send_answer(ex, answer, faults)
            return
        cut = next((fault for fault in faults if isinstance(fault, _CutRequest)), None)
        if cut is not None:
            self._cut_request(ex, cut)
            return
        self._forward(ex, faults)

    def _cut_request(self, ex: Exchange, cut: _CutRequest) -> None:
        proxy = ex.proxy
        conn = proxy._connect() if cut.forward else None
        received = 0
        try:
            if conn is not None:
                assert proxy._upstream_parts is not None
                conn.putrequest(
                    ex.method, proxy._upstream_target(ex.path), skip_host=True, skip_accept_encoding=True
                )
                conn.putheader("Host", proxy._upstream_parts.netloc)
                skip = _HOP_BY_HOP | {"host"} | proxy.strip_request_headers
                for name, value in ex.headers:
                    if name.lower() not in skip:
                        conn.putheader(name, value)
                conn.endheaders()
            for chunk in self._request_body(ex):
                part = chunk[: cut.after_bytes - received]
                if conn is not None and part:
                    conn.send(part)
                received += len(part)
                if received >= cut.after_bytes:
                    break
        finally:
            if conn is not None and conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if conn is not None:
                conn.close()
        ex.record.error = f"request cut after {received} body bytes"
        self._cut(ex, BodyPlan(cut="reset"))

    def _forward(self, ex: Exchange, faults: Sequence[Fault]) -> None:
        proxy = ex.proxy
        parts = proxy._upstream_parts
        assert parts is not None
        conn = proxy._connect()
        try:
            skip = _HOP_BY_HOP | {"host"} | proxy.strip_request_headers
            chunked = "chunked" in (ex.header("Transfer-Encoding") or "").lower()
            conn.putrequest(
                ex.method, proxy._upstream_target(ex.path), skip_host=True, skip_accept_encoding=True
            )
            conn.putheader("Host", parts.netloc)
            for name, value in ex.headers:
                if name.lower() not in skip and not (chunked and name.lower() == "content-length"):
                    conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            if conn.sock is not None:
                proxy._track(conn.sock, True)
            for chunk in self._request_body(ex):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
            headers = [
                (k, proxy._rewrite_location(v) if k.lower() == "location" else v)
                for k, v in response.getheaders()
                if k.lower() not in _HOP_BY_HOP
            ]
            self._send(ex, response.status, headers, _upstream_chunks(response), faults)
        finally:
            if conn.sock is not None:
                proxy._track(conn.sock, False)
            conn.close()

    # -- request bodies ------------------------------------------------------------------------
    def _request_body(self, ex: Exchange) -> Iterator[bytes]:
        if "chunked" in (ex.header("Transfer-Encoding") or "").lower():
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                data = self._read_exactly(size)
                self.rfile.readline(3)  # CRLF after the chunk
                ex.record.request_body_bytes += len(data)
                yield data
        remaining = int(ex.header("Content-Length") or 0)
        while remaining > 0:
            data = self.rfile.read(min(CHUNK, remaining))
            if not data:
                raise ConnectionError("client closed the connection inside the request body")
            remaining -= len(data)
            ex.record.request_body_bytes += len(data)
            yield data

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise ConnectionError("client closed the connection inside a request chunk")
        return data

    def _drain_request_body(self, ex: Exchange) -> None:
        length = ex.header("Content-Length")
        if length is not None and int(length) > MAX_BUFFERED:
            self.close_connection = True
            return
        for _ in self._request_body(ex):
            pass

    # -- responses -----------------------------------------------------------------------------
    def _send_answer(self, ex: Exchange, answer: Answer, faults: Sequence[Fault]) -> None:
        headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(answer.body))))
        chunks = iter([answer.body]) if answer.body else iter(())
        self._send(ex, answer.status, headers, chunks, faults)

    def _send(
        self, ex: Exchange, code: int, headers: HeaderList, chunks: Iterator[bytes], faults: Sequence[Fault]
    ) -> None:
        for fault in faults:
            code, headers = fault.edit(ex, code, headers)
        plan = BodyPlan()
        for fault in faults:
            fault_plan = fault.plan(ex)
            if fault_plan is not None:
                plan = plan.merge(fault_plan)
        has_body = ex.method != "HEAD" and code >= 200 and code not in (204, 304)
        if plan.replace is not None or plan.transform is not None:
            data = plan.replace if plan.replace is not None else b""
            if plan.transform is not None:
                data = plan.transform(_read_all(chunks))
            chunks = iter([data]) if data else iter(())
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(data))))
        length = _content_length(headers)
        if has_body and plan.flip_middle and length is None:
            data = _read_all(chunks)
            length = len(data)
            chunks = iter([data]) if data else iter(())
            headers.append(("Content-Length", str(length)))
        chunked = has_body and length is None
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        if has_body and plan.cut in ("reset", "close"):
            self.close_connection = True
        self._send_head(ex, code, headers)
        if not has_body:
            return
        flip_at = (length or 0) // 2 if plan.flip_middle else plan.flip_at
        cut_at = plan.cut_at if plan.cut is not None else None
        position = 0
        for raw in chunks:
            chunk = raw
            if flip_at is not None and position <= flip_at < position + len(chunk):
                edited = bytearray(chunk)
                edited[flip_at - position] ^= plan.xor
                chunk = bytes(edited)
            if cut_at is not None and position + len(chunk) >= cut_at:
                head = chunk[: cut_at - position]
                self._send_chunk(ex, head, chunked)
                position += len(head)
                if plan.cut != "stall":
                    self._cut(ex, plan)
                    return
                ex.stall(plan.stall_seconds)
                cut_at = None
                chunk = chunk[len(head) :]
            self._send_chunk(ex, chunk, chunked)
            position += len(chunk)
        if cut_at is not None and plan.cut == "reset":
            self._cut(ex, plan)  # the body was shorter than the cut: reset after all of it
            return
        if plan.cut == "close":
            return  # whole (short) body sent; the connection closes as announced
        if chunked:
            self._write(b"0\r\n\r\n")

    def _send_head(self, ex: Exchange, code: int, headers: HeaderList) -> None:
        try:
            reason = http.HTTPStatus(code).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {code} {reason}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        if self.close_connection:
            lines.append("Connection: close\r\n")
        ex.record.status = code
        ex.record.response_headers = list(headers)
        self._write(("".join(lines) + "\r\n").encode("latin-1"))

    def _send_chunk(self, ex: Exchange, data: bytes, chunked: bool) -> None:
        if not data:
            return
        self._write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        ex.record.bytes_sent += len(data)

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc

    def _cut(self, ex: Exchange, plan: BodyPlan) -> None:
        self.close_connection = True
        if plan.cut != "reset":
            return  # the server closes cleanly (FIN) after the handler returns
        sock = self.connection
        _wait_drained(sock, 2.0)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # makefile() holds a reference: close it so close() really closes
        with contextlib.suppress(OSError):
            sock.close()


# -- helpers -------------------------------------------------------------------------------------
def _get(headers: HeaderList, name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def _header_dict(headers: HeaderList) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        result[key] = f"{result[key]}, {value}" if key in result else value
    return result


def _content_length(headers: HeaderList) -> int | None:
    value = _get(headers, "Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _upstream_chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        data = response.read1(CHUNK)
        if not data:
            break
        yield data
    if response.length:  # read1 returns b"" on a premature EOF without raising
        raise http.client.IncompleteRead(b"", response.length)


def _read_all(chunks: Iterator[bytes]) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_BUFFERED:
            raise ValueError(f"body over {MAX_BUFFERED} bytes: too large for a whole-body fault")
        parts.append(chunk)
    return b"".join(parts)


def _cut_socket(sock: socket.socket) -> None:
    """Shut a socket down from another thread, waking whoever blocks on it (TLS sockets too)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _wait_drained(sock: socket.socket, timeout: float) -> None:
    """Wait until the kernel has no unacknowledged bytes queued on ``sock`` (Linux SIOCOUTQ)."""
    try:
        import fcntl
        import termios
    except ImportError:  # pragma: no cover - not Linux
        time.sleep(0.05)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
        except OSError:
            return
        if struct.unpack("i", raw)[0] == 0:
            return
        time.sleep(0.001)


_CHALLENGE_TOKEN_RE = re.compile(r"[ \t,]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)")
_CHALLENGE_VALUE_RE = re.compile(r'[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^, \t]*))')


def parse_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """Split one ``WWW-Authenticate`` value into ``[(scheme, {param: value})]`` (names lower-cased)."""
    result: list[tuple[str, dict[str, str]]] = []
    position = 0
    while True:
        token = _CHALLENGE_TOKEN_RE.match(value, position)
        if token is None:
            break
        position = token.end()
        param = _CHALLENGE_VALUE_RE.match(value, position)
        if param is not None and result:
            quoted, bare = param.group(1), param.group(2)
            text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            result[-1][1][token.group(1).lower()] = text
            position = param.end()
        else:
            result.append((token.group(1), {}))
    return result


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _challenge_params(values: list[str]) -> _Blank:
    params = _Blank()
    challenges = [c for v in values for c in parse_challenges(v)]
    if challenges:
        bearer = [c for c in challenges if c[0].lower() == "bearer"]
        scheme, found = (bearer or challenges)[0]
        params.update(found)
        params["scheme"] = scheme
    params["original"] = values[0] if values else ""
    return params


__all__ = [
    "Answer",
    "BodyPlan",
    "Exchange",
    "Fault",
    "FaultProxy",
    "RECORDING_HOST",
    "Recorded",
    "RecordingServer",
    "Rule",
    "TOKEN_PATH",
    "body",
    "challenge",
    "content_type",
    "cut_request",
    "drop_header",
    "error_body",
    "flip_byte",
    "parse_challenges",
    "redirect",
    "redirect_loop",
    "reset_after",
    "rewrite_body",
    "rewrite_target",
    "set_header",
    "stall",
    "stall_before_headers",
    "stall_mid_body",
    "status",
    "too_many_requests",
    "truncate",
    "unauthorized_forever",
]
