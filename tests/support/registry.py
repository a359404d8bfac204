"""Run a real CNCF distribution registry (Debian ``docker-registry``, v2.8.2) on 127.0.0.1.

``start_registry`` writes a config into a work directory, launches ``docker-registry serve`` on a
free loopback port and waits until ``/v2/`` answers.  The registry writes two logs there:

* ``registry.log`` (stderr): logrus JSON, one ``"response completed"`` (or ``"response completed
  with error"``) line per request *routed to the v2 API*, with ``http.request.method``,
  ``http.request.uri`` and ``http.response.status``;
* ``access.log`` (stdout): Apache combined format, one line for *every* request, including those
  the router answers itself (e.g. the plain-text 404 for ``/v2/<name>/referrers/<digest>``).

:meth:`Registry.requests` counts from the access log because only it is complete.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from .certs import make_tls_files
from .util import LOOPBACK, free_port

if TYPE_CHECKING:
    from .tokenserver import TokenServer

AuthKind = Literal["token", "htpasswd"]

REGISTRY_BINARY = "docker-registry"
START_TIMEOUT = 10.0
SYNC_PREFIX = "/__regpeek_sync__/"
_ACCESS_RE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<uri>\S+) [^"]*" (?P<status>\d{3}) ')


@dataclass(frozen=True)
class Req:
    """One HTTP request served by the registry, as logged."""

    method: str
    path: str  # request URI: path plus query string, exactly as sent
    status: int


class RegistryStartError(RuntimeError):
    """The registry process did not come up; the message includes its logs."""


class Registry:
    """A running registry process.  Use as a context manager or call :meth:`stop`."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        port: int,
        workdir: Path,
        tls: bool,
        ca_file: Path | None,
        auth: AuthKind | None,
        schema1: bool,
        users: dict[str, str],
        token_server: TokenServer | None,
    ) -> None:
        self.process = process
        self.port = port
        self.host = f"{LOOPBACK}:{port}"
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.ca_file = ca_file
        self.workdir = workdir
        self.log_path = workdir / "registry.log"
        self.access_log_path = workdir / "access.log"
        self.config_path = workdir / "config.yml"
        self.auth = auth
        self.schema1 = schema1
        self.users = dict(users)
        self.token_server = token_server
        self._mark = 0
        self._log_mark = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Registry {self.url} auth={self.auth} schema1={self.schema1}>"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate the registry (SIGTERM, then SIGKILL after 5 s).  Idempotent."""
        _terminate(self.process)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)

    # -- logs ----------------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context trusting this registry's CA (None for plain HTTP)."""
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def verify(self) -> ssl.SSLContext | bool:
        """Value for httpx's ``verify=``: an SSL context trusting the CA, or True for plain HTTP."""
        return self.ssl_context() or True

    def mark(self) -> None:
        """Start a new counting window for :meth:`requests`."""
        self.sync()
        self._mark = self._access_size()
        self._log_mark = self.log_path.stat().st_size

    def requests(self, since_mark: bool = True) -> list[Req]:
        """Requests the registry served (oldest first), since :meth:`mark` unless ``since_mark=False``.

        A sync request is sent first and awaited in the log, so every request whose response the
        caller has already received is included.  Sync requests themselves are never returned.
        """
        self.sync()
        with self.access_log_path.open("rb") as fh:
            if since_mark:
                fh.seek(self._mark)
            text = fh.read().decode("utf-8", "replace")
        result = []
        for line in text.splitlines():
            match = _ACCESS_RE.match(line)
            if match is None or match["uri"].startswith(SYNC_PREFIX):
                continue
            result.append(Req(match["method"], match["uri"], int(match["status"])))
        return result

    def app_requests(self, since_mark: bool = True) -> list[Req]:
        """Requests as the v2 app logged them in ``registry.log`` (``"response completed"`` lines).

        Unlike :meth:`requests` this misses what the app never handled: auth-middleware 401s and the
        router's own 404s (unknown routes such as ``/v2/<name>/referrers/<digest>``).
        """
        self.sync()
        with self.log_path.open("rb") as fh:
            if since_mark:
                fh.seek(self._log_mark)
            lines = fh.read().decode("utf-8", "replace").splitlines()
        result = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if str(entry.get("msg", "")).startswith("response completed") and "http.request.uri" in entry:
                uri = entry["http.request.uri"]
                if not uri.startswith(SYNC_PREFIX):
                    result.append(Req(entry["http.request.method"], uri, int(entry["http.response.status"])))
        return result

    def log_entries(self) -> list[dict[str, Any]]:
        """All JSON entries of ``registry.log`` (errors, warnings, 'response completed' lines)."""
        entries = []
        for line in self.log_path.read_text("utf-8", "replace").splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def sync(self, timeout: float = 5.0) -> None:
        """Make sure everything served so far has reached the access log.

        Sends a uniquely named request the router answers with 404, waits until its access-log line
        appears, then until the file stops growing for a few milliseconds (a handler that streamed a
        large body may log a moment after its client finished reading).
        """
        token = secrets.token_hex(8)
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(
                f"{self.url}{SYNC_PREFIX}{token}", timeout=timeout, context=self.ssl_context()
            ).close()
        needle = f"{SYNC_PREFIX}{token} ".encode()
        deadline = time.monotonic() + timeout
        while needle not in self.access_log_path.read_bytes():
            if time.monotonic() > deadline:
                raise TimeoutError(f"sync request {token} never reached {self.access_log_path}")
            time.sleep(0.005)
        size = self._access_size()
        while True:
            time.sleep(0.01)
            new_size = self._access_size()
            if new_size == size or time.monotonic() > deadline:
                return
            size = new_size

    def _access_size(self) -> int:
        return self.access_log_path.stat().st_size

    def logs_text(self, limit: int = 20000) -> str:
        """The tail of both logs, for error messages."""
        parts = []
        for path in (self.log_path, self.access_log_path):
            text = path.read_text("utf-8", "replace") if path.exists() else ""
            parts.append(f"--- {path.name} ---\n{text[-limit:]}")
        return "\n".join(parts)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the process that started it exits.

    Covers the case where the test runner is killed outright and never runs its cleanup.  The libc
    function is resolved here, before fork, so the child only makes one system call.  (Linux sends
    the signal when the *thread* that forked exits: start registries from a long-lived thread.)
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return preexec


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=5)


def _yaml_scalar(value: str) -> str:
    """Quote a string for YAML (JSON strings are valid YAML flow scalars)."""
    return json.dumps(value)


def _config_text(
    *,
    port: int,
    storage: Path,
    tls_cert: Path | None,
    tls_key: Path | None,
    auth_block: str,
    schema1: bool,
    relative_urls: bool = False,
    foreign_urls: bool = False,
) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  formatter: json",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {_yaml_scalar(str(storage))}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: {_yaml_scalar(f'{LOOPBACK}:{port}')}",
        f"  secret: {_yaml_scalar(secrets.token_hex(16))}",
    ]
    if relative_urls:
        lines.append("  relativeurls: true")
    if tls_cert is not None and tls_key is not None:
        lines += [
            "  tls:",
            f"    certificate: {_yaml_scalar(str(tls_cert))}",
            f"    key: {_yaml_scalar(str(tls_key))}",
        ]
    if schema1:
        lines += ["compatibility:", "  schema1:", "    enabled: true"]
    if foreign_urls:  # without an allow list distribution refuses manifests whose layers have URLs
        lines += ["validation:", "  manifests:", "    urls:", "      allow:", '        - "^https?://"']
    return "\n".join(lines) + "\n" + auth_block


def write_htpasswd(path: Path, users: dict[str, str]) -> None:
    """Write a bcrypt htpasswd file (distribution accepts bcrypt only) using ``htpasswd -B``."""
    binary = shutil.which("htpasswd")
    if binary is None:
        raise RuntimeError("htpasswd not found: apt-get install -y apache2-utils")
    path.write_text("")
    for user, password in users.items():
        subprocess.run(
            [binary, "-B", "-b", "-C", "4", str(path), user, password],
            check=True,
            capture_output=True,
        )


def _auth_block(
    workdir: Path, auth: AuthKind | None, users: dict[str, str], token_server: TokenServer | None
) -> str:
    if auth is None:
        return ""
    if auth == "htpasswd":
        htpasswd = workdir / "htpasswd"
        write_htpasswd(htpasswd, users)
        return (
            "auth:\n  htpasswd:\n"
            f"    realm: {_yaml_scalar('regpeek-test')}\n"
            f"    path: {_yaml_scalar(str(htpasswd))}\n"
        )
    if auth == "token":
        if token_server is None:
            raise ValueError("auth='token' needs token_server=TokenServer(...)")
        return (
            "auth:\n  token:\n"
            f"    realm: {_yaml_scalar(token_server.realm)}\n"
            f"    service: {_yaml_scalar(token_server.service)}\n"
            f"    issuer: {_yaml_scalar(token_server.issuer)}\n"
            f"    rootcertbundle: {_yaml_scalar(str(token_server.cert_path))}\n"
        )
    raise ValueError(f"unknown auth kind {auth!r}")


def _answers(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        urllib.request.urlopen(f"{url}/v2/", timeout=1, context=context).close()
    except urllib.error.HTTPError:
        return True  # 401 is a perfectly good answer
    except (OSError, ValueError):
        return False
    return True


def start_registry(
    workdir: Path,
    *,
    auth: AuthKind | None = None,
    tls: bool = False,
    schema1: bool = False,
    token_server: TokenServer | None = None,
    users: dict[str, str] | None = None,
    relative_urls: bool = False,
    foreign_urls: bool = False,
    attempts: int = 3,
) -> Registry:
    """Start a registry with filesystem storage under ``workdir`` and wait until it answers.

    ``auth="htpasswd"`` needs ``users``; ``auth="token"`` needs ``token_server``; ``relative_urls``
    makes the registry send relative ``Location`` headers (``http.relativeurls``); ``foreign_urls``
    lets it take manifests whose layers carry ``urls`` (non-distributable layers).  Retries on a
    lost port race; raises :class:`RegistryStartError` (with the logs) after ~10 s.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    users = dict(users or {})
    if auth == "htpasswd" and not users:
        raise ValueError("auth='htpasswd' needs users={...}")
    tls_files = make_tls_files(workdir / "tls") if tls else None
    auth_block = _auth_block(workdir, auth, users, token_server)
    last_error: RegistryStartError | None = None
    for _ in range(attempts):
        port = free_port()
        config = _config_text(
            port=port,
            storage=workdir / "storage",
            tls_cert=tls_files.server_cert if tls_files else None,
            tls_key=tls_files.server_key if tls_files else None,
            auth_block=auth_block,
            schema1=schema1,
            relative_urls=relative_urls,
            foreign_urls=foreign_urls,
        )
        (workdir / "config.yml").write_text(config)
        with (workdir / "access.log").open("wb") as out, (workdir / "registry.log").open("wb") as err:
            process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(workdir / "config.yml")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 - one prctl call, resolved before fork
            )
        registry = Registry(
            process=process,
            port=port,
            workdir=workdir,
            tls=tls,
            ca_file=tls_files.ca_cert if tls_files else None,
            auth=auth,
            schema1=schema1,
            users=users,
            token_server=token_server,
        )
        atexit.register(registry.stop)
        context = registry.ssl_context()
        deadline = time.monotonic() + START_TIMEOUT
        while registry.running and time.monotonic() < deadline:
            if _answers(registry.url, context):
                registry.mark()
                return registry
            time.sleep(0.02)
        exited = not registry.running
        registry.stop()
        last_error = RegistryStartError(
            f"registry on {registry.host} {'exited' if exited else 'did not answer within 10 s'}"
            f" (config {workdir / 'config.yml'}):\n{registry.logs_text()}"
        )
        if not exited or "address already in use" not in registry.logs_text():
            break
    assert last_error is not None
    raise last_error
