"""The request loop under the registry client: auth, retries, redirects, bounded reads.

Written once in ``_async/http.py``; ``_sync/http.py`` is generated from it by ``scripts/unasync.py``.

- Auth is the :class:`~regpeek.network.auth.RegistryAuth` flow, applied to every request; it only ever
  authenticates registry hosts.
- Transient failures (connection errors, timeouts, 429, 502, 503, 504, from the registry or its token
  service) are retried with capped exponential backoff and jitter, honouring ``Retry-After`` up to a
  cap; every failure of one request spends the same budget of ``retries``. A 429 pauses the whole
  host: no request of this client (task or thread) is sent to it until the wait is over.
- Redirects are followed by hand: at most 10, never from https to http, and each hop is a fresh
  request, so an ``Authorization`` header never travels to another host.
- Bodies of manifests and configs are read in chunks and refused past their size cap.
- Writes (:meth:`AsyncHTTP.send`) with a ``bytes`` body are retried like reads; a streamed body (a blob
  going up) can be sent once only, so its failures go back to the caller, which resumes the upload from
  what the registry reports.
- A host whose name cannot be resolved fails at once ("cannot resolve host"), without retries.
- A loopback registry (or one registries.conf marks insecure) that answers a TLS handshake with plain
  HTTP is talked to in plain HTTP from then on, for the life of the client (:meth:`AsyncHTTP.scheme`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TypeAlias

import httpx

from regpeek.errors import RegistryUnavailableError, TooLargeError
from regpeek.network.auth import RegistryAuth, scope_for_path
from regpeek.network.transport import (
    MAX_REDIRECTS,
    RETRY_STATUSES,
    Attempts,
    HttpOptions,
    RetryableStatusError,
    Trust,
    async_client,
    describe_route,
    describe_url,
    error_for_status,
    name_not_resolved,
    retry_delay,
    speaks_no_tls,
    warnings_in,
)

__all__ = ["AsyncHTTP"]

log = logging.getLogger("regpeek.http")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ERROR_BODY_LIMIT = 64 * 1024

Content: TypeAlias = "bytes | AsyncIterator[bytes] | None"


def _transport_problem(error: httpx.TransportError) -> tuple[str, bool]:
    """A short description of a transport failure and whether retrying could help."""
    text = str(error) or type(error).__name__
    if name_not_resolved(error):
        return "the name does not resolve", False
    if isinstance(error, httpx.ProxyError) and "407" in text:
        return f"the proxy refused: {text} (give its user and password in the proxy URL)", False
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS certificate verification failed (use --ca-file, or --insecure to skip)", False
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return "TLS handshake failed: the server may speak plain HTTP (use --plain-http)", False
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})", True
    return text, True


class AsyncHTTP:
    """Sends requests to registries for one client; counts what it sends."""

    def __init__(self, options: HttpOptions, auth: RegistryAuth) -> None:
        self.options = options
        self.auth = auth
        self.trust = Trust(options)
        self._client = async_client(options, self.trust)
        self._warned: set[str] = set()
        self._plain: set[str] = set()  # hosts found to speak plain HTTP (see scheme)
        self._paused: dict[str, float] = {}  # host -> monotonic time before which nothing is sent to it
        self.sent = 0

    def scheme(self, host: str) -> str:
        """``http`` or ``https`` for a registry host (``host[:port]``): ``https`` unless ``plain_http``,
        or the host is one that may fall back (loopback, registries.conf ``insecure``) and answered a
        TLS handshake with plain HTTP earlier in this client's life."""
        return "http" if self.options.plain_http or host in self._plain else "https"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self, url: httpx.URL, headers: dict[str, str], what: str, max_size: int
    ) -> tuple[httpx.Response, bytes]:
        """GET ``url`` and read its body (at most ``max_size`` bytes); non-200 answers raise."""
        return await self._request("GET", url, headers, what, max_size)

    async def head(self, url: httpx.URL, headers: dict[str, str], what: str) -> httpx.Response:
        """HEAD ``url``; non-200 answers raise."""
        response, _ = await self._request("HEAD", url, headers, what, 0)
        return response

    @contextlib.asynccontextmanager
    async def stream(
        self, url: httpx.URL, headers: dict[str, str], what: str, attempts: Attempts | None = None
    ) -> AsyncIterator[httpx.Response]:
        """GET ``url`` for streaming: yields a 200 or 206 response whose body is not read yet.

        Failures before the body starts are retried like any request; failures while reading it are
        the caller's to handle (a blob download resumes with ``Range``, passing the same ``attempts``
        each time so that its retries and these share one budget).
        """
        response = await self._open("GET", url, headers, what, ok=(200, 206), attempts=attempts)
        try:
            yield response
        finally:
            await response.aclose()

    async def send(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        what: str,
        *,
        ok: tuple[int, ...],
        content: Content = None,
    ) -> tuple[httpx.Response, bytes]:
        """Send ``method`` (a write, or an upload's status GET) and return the answer with an ``ok``
        status and its body (at most 64 KiB: these answers are headers and short JSON).

        Without a body or with ``bytes`` the request is retried and redirected like any other. A
        streamed body cannot be sent twice: it gets one try and no redirect, and every failure is
        raised (as :class:`~regpeek.errors.RegistryUnavailableError` when it is transient) for the
        caller to resume from what the registry holds.
        """
        streamed = content is not None and not isinstance(content, bytes)
        attempts = Attempts(0 if streamed else self.options.retries)
        response = await self._open(method, url, headers, what, ok=ok, attempts=attempts, content=content)
        try:
            body = await self._read(response, _ERROR_BODY_LIMIT, what, strict=False)
        except httpx.TransportError as error:
            problem, _ = _transport_problem(error)
            raise RegistryUnavailableError(
                f"connection failed while reading the answer to {what}: {problem}"
            ) from None
        finally:
            await response.aclose()
        return response, body

    async def _request(
        self, method: str, url: httpx.URL, headers: dict[str, str], what: str, max_size: int
    ) -> tuple[httpx.Response, bytes]:
        attempts = Attempts(self.options.retries)  # one budget for the sends and the reads
        while True:
            response = await self._open(method, url, headers, what, ok=(200,), attempts=attempts)
            try:
                body = b"" if method == "HEAD" else await self._read(response, max_size, what, strict=True)
                return response, body
            except httpx.TransportError as error:
                problem, transient = _transport_problem(error)
                if not transient or attempts.last:
                    raise RegistryUnavailableError(
                        f"connection failed while reading {what}: {problem}"
                    ) from None
                await asyncio.sleep(retry_delay(self.options, attempts.made, None))
            finally:
                await response.aclose()

    async def _open(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        what: str,
        ok: tuple[int, ...],
        attempts: Attempts | None = None,
        content: Content = None,
    ) -> httpx.Response:
        """Send until a response with an ``ok`` status arrives (body unread) or the failure is final.

        Each send spends one of ``attempts`` (a fresh budget of ``retries`` when not given).
        """
        if attempts is None:
            attempts = Attempts(self.options.retries)
        host = url.netloc.decode()
        waited = False  # this request has just waited out the host's pause itself
        while True:
            attempt = attempts.start()
            if not waited:
                await self._wait_for_host(host)
            waited = False
            try:
                response = await self._send_following(method, url, headers, what, content)
            except httpx.StreamError:  # a 401 in the middle of a streamed upload asked for the body again
                raise RegistryUnavailableError(
                    f"{url.netloc.decode()} asked to authenticate again during {what}"
                ) from None
            except httpx.TransportError as error:
                if self.auth.kept_realm_failed(url.netloc.decode(), _failed_url(error)):
                    attempts.made -= 1  # the kept challenge was stale, not the registry: a free try
                    continue
                if name_not_resolved(error):
                    raise RegistryUnavailableError(_unresolved(self.options, url, what)) from None
                problem, transient = _transport_problem(error)
                if not transient or attempts.last:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise RegistryUnavailableError(
                        f"cannot reach {url.netloc.decode()} for {what}{tries}: {problem}"
                    ) from None
                await asyncio.sleep(retry_delay(self.options, attempt, None))
                continue
            except RetryableStatusError as error:  # the token service was busy
                if attempts.last:
                    if attempt > 1:
                        error.args = (f"{error.args[0]} (after {attempt} attempts)",)
                    raise
                log.debug("%s for %s: retrying", error, what)
                await asyncio.sleep(retry_delay(self.options, attempt, error.response))
                continue
            if response.status_code in ok:
                return response
            try:
                if response.status_code in RETRY_STATUSES and not attempts.last:
                    log.debug("HTTP %s for %s: retrying", response.status_code, what)
                    delay = retry_delay(self.options, attempt, response)
                    if response.status_code == 429:  # too many requests: the host waits, not one request
                        self._pause(host, delay)
                        waited = True
                    await asyncio.sleep(delay)
                    continue
                body = await self._read(response, _ERROR_BODY_LIMIT, what, strict=False)
                failure = error_for_status(
                    response,
                    body,
                    what,
                    url=url,
                    method=method,
                    registry=self.auth.registry_for(url.netloc.decode()),
                    scope=scope_for_path(url.path, method),
                )
                if response.status_code in RETRY_STATUSES and attempt > 1:
                    failure.args = (f"{failure.args[0]} (after {attempt} attempts)",)
                raise failure
            except httpx.TransportError as error:
                problem, _ = _transport_problem(error)
                raise RegistryUnavailableError(f"connection failed for {what}: {problem}") from None
            finally:
                await response.aclose()

    async def _read(self, response: httpx.Response, limit: int, what: str, *, strict: bool) -> bytes:
        declared = response.headers.get("Content-Length")
        if strict and declared and declared.isdigit() and int(declared) > limit:
            raise TooLargeError(
                f"{what} is {declared} bytes, over the {limit}-byte limit", size=int(declared), limit=limit
            )
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                if strict:
                    raise TooLargeError(f"{what} is over the {limit}-byte limit", size=len(body), limit=limit)
                return bytes(body[:limit])
        return bytes(body)

    async def _send(
        self, method: str, url: httpx.URL, headers: dict[str, str], content: Content = None
    ) -> httpx.Response:
        """One request; a host that may fall back and answers TLS with plain HTTP is asked again in
        plain HTTP (and remembered). A streamed body is not read before the handshake: it goes once."""
        if url.scheme == "https":
            self.trust.ensure()
        request = self._client.build_request(method, url, headers=headers, content=content)
        self.sent += 1
        try:
            return await self._client.send(request, auth=self.auth, stream=True)
        except httpx.ConnectError as error:
            host = url.netloc.decode()
            if url.scheme != "https" or not speaks_no_tls(error) or not self.options.may_fall_back(host):
                raise
            log.debug("%s does not speak TLS: plain HTTP from now on", host)
            self._plain.add(host)
            return await self._send(method, url.copy_with(scheme="http"), headers, content)

    async def _send_following(
        self, method: str, url: httpx.URL, headers: dict[str, str], what: str, content: Content = None
    ) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            if url.scheme == "https" and url.netloc.decode() in self._plain:
                url = url.copy_with(scheme="http")
            response = await self._send(method, url, headers, content)
            url = response.request.url
            log.debug(
                "%s %s -> %s%s",
                method,
                describe_url(url),
                response.status_code,
                describe_route(self.options, url),
            )
            self._warn(response)
            location = response.headers.get("Location")
            replayable = content is None or isinstance(content, bytes)
            if response.status_code not in _REDIRECTS or not location or not replayable:
                return response
            await response.aclose()
            target = url.join(location)
            if url.scheme == "https" and target.scheme != "https":
                raise RegistryUnavailableError(f"refused a redirect from https to {target.scheme} for {what}")
            if target.scheme not in ("http", "https"):
                raise RegistryUnavailableError(f"refused a redirect to a {target.scheme!r} URL for {what}")
            url = target
        raise RegistryUnavailableError(f"too many redirects (over {MAX_REDIRECTS}) for {what}")

    def _pause(self, host: str, seconds: float) -> None:
        """Send nothing more to ``host`` for ``seconds`` (a 429's ``Retry-After``, or the backoff): one
        answer pauses every request of this client to that host, not each on its own."""
        until = time.monotonic() + seconds
        if until > self._paused.get(host, 0.0):
            log.debug("%s answered 429: pausing requests to it for %.1f s", host, seconds)
            self._paused[host] = until

    async def _wait_for_host(self, host: str) -> None:
        wait = self._paused.get(host, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _warn(self, response: httpx.Response) -> None:
        for text in warnings_in(response):
            if text not in self._warned:
                self._warned.add(text)
                if self.options.on_warning is not None:
                    self.options.on_warning(text)
                else:
                    log.warning("registry warning: %s", text)


def _failed_url(error: httpx.TransportError) -> httpx.URL | None:
    """The URL of the request that failed (the token realm's, or the registry's), when httpx says."""
    try:
        return error.request.url
    except RuntimeError:  # the error was raised without a request
        return None


def _unresolved(options: HttpOptions, url: httpx.URL, what: str) -> str:
    """ "cannot resolve host X" (or the proxy's host, when the request went through one)."""
    proxy = options.proxies.proxy_for(url.scheme, url.host, url.port)
    if proxy is not None:
        host = httpx.URL(proxy).host
        return f"cannot resolve proxy host {host} (for {what})"
    return f"cannot resolve host {url.host} (for {what})"
