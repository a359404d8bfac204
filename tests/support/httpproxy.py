"""A small HTTP proxy for tests: ``CONNECT`` tunnels and plain-HTTP forwarding, with every request recorded.

:class:`HttpProxy` listens on a free loopback port in a background thread and serves what a site
proxy (squid, tinyproxy) serves:

- ``CONNECT host:port``: answers ``200 Connection established`` and copies bytes both ways; what
  travels inside (TLS) is never read;
- ``GET http://host:port/path`` (absolute form): forwards the request to the origin without the
  hop-by-hop and ``Proxy-*`` headers, and the answer back (``Connection: close``).

Host names are resolved through ``hosts`` first (``{"registry.test": "127.0.0.1"}``), so a test can
name a registry that only the proxy can reach: a request that arrives there went through the proxy.
With ``credentials=(user, password)`` every request needs a matching ``Proxy-Authorization: Basic``
header, else ``407``. :attr:`HttpProxy.requests` holds each request line and its headers (as the
proxy saw them, ``Proxy-Authorization`` included) in arrival order.

Nothing here imports regpeek.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import select
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType

from .util import HOP_BY_HOP, LOOPBACK


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy received: ``CONNECT host:port`` or ``GET http://...``."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)  # lowercased names
    status: int = 0  # what the proxy answered (200 for a tunnel it opened)

    @property
    def host(self) -> str:
        """``host:port`` the request was for."""
        if self.method == "CONNECT":
            return self.target
        return urllib.parse.urlsplit(self.target).netloc


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: HttpProxy


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _record(self, status: int) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.proxy._record(ProxiedRequest(self.command, self.path, headers, status))

    def _authorized(self) -> bool:
        expected = self.server.proxy.credentials
        if expected is None:
            return True
        token = base64.b64encode(f"{expected[0]}:{expected[1]}".encode()).decode()
        return self.headers.get("Proxy-Authorization", "") == f"Basic {token}"

    def _refuse(self, status: int, reason: str) -> None:
        self._record(status)
        body = reason.encode()
        self.send_response(status, reason)
        if status == 407:
            self.send_header("Proxy-Authenticate", 'Basic realm="test proxy"')
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _connect_to(self, netloc: str, default_port: int) -> socket.socket:
        host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", str(default_port))
        host = host.strip("[]")
        address = self.server.proxy.hosts.get(host, host)
        return socket.create_connection((address, int(port)), timeout=10)

    def do_CONNECT(self) -> None:
        if not self._authorized():
            self._refuse(407, "Proxy Authentication Required")
            return
        try:
            upstream = self._connect_to(self.path, 443)
        except OSError as error:
            self._refuse(502, f"cannot reach {self.path}: {error}")
            return
        self._record(200)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self._pipe(self.connection, upstream)
        self.close_connection = True

    @staticmethod
    def _pipe(client: socket.socket, upstream: socket.socket) -> None:
        with upstream:
            sockets = [client, upstream]
            while True:
                readable, _, broken = select.select(sockets, [], sockets, 30)
                if broken or not readable:
                    return
                for source in readable:
                    try:
                        data = source.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    target = upstream if source is client else client
                    try:
                        target.sendall(data)
                    except OSError:
                        return

    def _forward(self) -> None:
        if not self._authorized():
            self._refuse(407, "Proxy Authentication Required")
            return
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or not url.netloc:
            self._refuse(400, "absolute http:// URL expected")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        path = url.path + (f"?{url.query}" if url.query else "")
        try:
            sock = self._connect_to(url.netloc, 80)
        except OSError as error:
            self._refuse(502, f"cannot reach {url.netloc}: {error}")
            return
        connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=30)
        connection.sock = sock
        try:
            connection.request(self.command, path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read() if self.command != "HEAD" else b""
        except OSError as error:
            connection.close()
            self._refuse(502, f"upstream failed: {error}")
            return
        self._record(answer.status)
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        declared = answer.getheader("Content-Length")
        self.send_header(
            "Content-Length", declared if self.command == "HEAD" and declared else str(len(data))
        )
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        connection.close()
        self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class HttpProxy:
    """A recording HTTP proxy on 127.0.0.1; use as a context manager."""

    def __init__(
        self, *, hosts: Mapping[str, str] | None = None, credentials: tuple[str, str] | None = None
    ) -> None:
        self.hosts = dict(hosts or {})
        self.credentials = credentials
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.proxy = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-proxy", daemon=True)
        self._thread.start()

    def url(self, *, user: str | None = None, password: str | None = None) -> str:
        """``http://[user:password@]127.0.0.1:PORT``."""
        userinfo = ""
        if user is not None:
            userinfo = (
                urllib.parse.quote(user, safe="") + ":" + urllib.parse.quote(password or "", safe="") + "@"
            )
        return f"http://{userinfo}{LOOPBACK}:{self.port}"

    def _record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def seen(self, host: str | None = None) -> list[ProxiedRequest]:
        """The requests so far; with ``host``, only those for that host name (any port)."""
        with self._lock:
            found = list(self.requests)
        if host is None:
            return found
        return [request for request in found if request.host.rsplit(":", 1)[0] == host]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(RuntimeError):
            self._thread.join(timeout=5)

    def __enter__(self) -> HttpProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
