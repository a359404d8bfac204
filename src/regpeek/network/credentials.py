"""Registry credentials: explicit ones, auth files, and Docker credential helpers.

Looked up per registry host, the first source that knows the host wins:

1. explicit ``username``/``password`` (``--username`` with ``--password-stdin``);
2. ``--authfile FILE`` when given (then only that file);
3. ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json`` (podman, skopeo);
4. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.

In a file, ``credHelpers[host]`` comes first, then an ``auths`` entry (``auth`` = base64 of
``user:password``, or ``username``/``password``, or ``identitytoken``), then ``credsStore``. A helper
``docker-credential-NAME get`` reads the server on stdin and prints ``{"Username", "Secret"}``; the
username ``<token>`` means the secret is an identity token. Docker Hub is stored under
``https://index.docker.io/v1/``. Secrets never appear in ``repr`` or in error messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regpeek.errors import AuthError, LocalError, UsageError
from regpeek.formats.reference import DOCKER_HUB

__all__ = ["Credentials", "CredentialStore", "auth_file_candidates", "display_path", "keys_for"]

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_HELPER_TIMEOUT = 30


@dataclass(frozen=True)
class Credentials:
    """A username and secret for one registry; ``identity_token`` is an OAuth2 refresh token."""

    username: str = field(default="")
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    #: where they came from, for messages: ``--username``, ``~/.docker/config.json``,
    #: ``docker-credential-pass`` (never a secret)
    source: str = field(default="", compare=False)

    def __bool__(self) -> bool:
        return bool(self.username or self.password or self.identity_token)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be printed (used to scrub debug output)."""
        return tuple(s for s in (self.password, self.identity_token) if s)


def auth_file_candidates(environ: Mapping[str, str], home: Path) -> list[Path]:
    """The auth files consulted when no ``--authfile`` is given, in order."""
    files = []
    if environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(environ["REGISTRY_AUTH_FILE"]))
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    docker_dir = Path(environ["DOCKER_CONFIG"]) if environ.get("DOCKER_CONFIG") else home / ".docker"
    files.append(docker_dir / "config.json")
    return files


def keys_for(host: str) -> tuple[str, ...]:
    """The keys an auth file may list ``host`` under, the usual one first (Docker Hub's is
    ``https://index.docker.io/v1/``)."""
    if host == DOCKER_HUB:
        return _HUB_KEYS
    return (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/")


_keys_for = keys_for


def display_path(path: Path, home: Path | None = None) -> str:
    """``path`` for messages, with the home directory shown as ``~``."""
    base = home if home is not None else Path(os.environ.get("HOME") or Path.home())
    try:
        return "~/" + str(path.relative_to(base))
    except ValueError:
        return str(path)


def _from_auth_entry(entry: Any, where: Path, source: str) -> Credentials:
    if not isinstance(entry, dict):
        return Credentials()
    if entry.get("identitytoken"):
        return Credentials(
            str(entry.get("username", "")), identity_token=str(entry["identitytoken"]), source=source
        )
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(
                f"{where}: an auths entry is not valid base64", reason="missing_credentials"
            ) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{where}: an auths entry is not user:password", reason="missing_credentials")
        return Credentials(username, password, source=source)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password", "")), source=source)
    return Credentials()


def run_helper(name: str, server: str, *, required: bool = True) -> Credentials:
    """Ask ``docker-credential-NAME get`` for ``server``; no credentials when it knows none.

    A missing program is an error for a per-host ``credHelpers`` entry (``required``) but not for a
    global ``credsStore``, which config files copied between machines often name in vain.
    """
    program = f"docker-credential-{name}"
    try:
        completed = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=_HELPER_TIMEOUT, check=False
        )
    except FileNotFoundError:
        if not required:
            return Credentials()
        raise AuthError(
            f"credential helper {program} is configured but not installed", reason="missing_credentials"
        ) from None
    except subprocess.TimeoutExpired:
        raise AuthError(
            f"credential helper {program} did not answer in {_HELPER_TIMEOUT}s", reason="missing_credentials"
        ) from None
    if completed.returncode != 0:
        if b"credentials not found" in completed.stdout.lower() + completed.stderr.lower():
            return Credentials()
        raise AuthError(
            f"credential helper {program} failed with exit status {completed.returncode}",
            reason="missing_credentials",
        )
    try:
        answer = json.loads(completed.stdout)
        username, secret = str(answer.get("Username", "")), str(answer.get("Secret", ""))
    except (ValueError, RecursionError, AttributeError):
        raise AuthError(
            f"credential helper {program} printed something that is not its JSON answer",
            reason="missing_credentials",
        ) from None
    if username == "<token>":
        return Credentials(identity_token=secret, source=program)
    return Credentials(username, secret, source=program)


class CredentialStore:
    """Finds credentials for registry hosts; results are cached for the store's life."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        authfile: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
        source: str = "--username",
    ) -> None:
        if password and not username:
            raise UsageError("a password was given without a username")
        self._explicit = Credentials(username or "", password or "", source=source) if username else None
        env = os.environ if environ is None else environ
        self._authfile = Path(authfile) if authfile is not None else None
        self._home = home or Path(env.get("HOME") or Path.home())
        if authfile is not None:
            self._files = [Path(authfile)]
            if not self._files[0].exists():
                raise LocalError(f"cannot read auth file {authfile}: No such file or directory")
            if not self._files[0].is_file():
                raise LocalError(f"cannot read auth file {authfile}: not a regular file")
        else:
            self._files = auth_file_candidates(env, self._home)
        self._cache: dict[str, Credentials] = {}

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._explicit.secrets if self._explicit else ()

    def __repr__(self) -> str:
        """The settings, never a password: ``CredentialStore(username='alice')``."""
        if self._explicit is not None:
            return f"CredentialStore(username={self._explicit.username!r})"
        if self._authfile is not None:
            return f"CredentialStore(authfile={str(self._authfile)!r})"
        return "CredentialStore()"

    def get(self, host: str) -> Credentials:
        """Credentials for ``host`` (a registry name like ``docker.io`` or ``host:port``), maybe empty."""
        if self._explicit is not None:
            return self._explicit
        if host not in self._cache:
            self._cache[host] = next((creds for creds in self._lookup(host) if creds), Credentials())
        return self._cache[host]

    def _lookup(self, host: str) -> Iterator[Credentials]:
        keys = _keys_for(host)
        for path in self._files:
            document = self._read(path)
            if document is None:
                continue
            helpers = document.get("credHelpers")
            if isinstance(helpers, dict):
                for key in keys:
                    if isinstance(helpers.get(key), str):
                        yield run_helper(helpers[key], keys[0])
            auths = document.get("auths")
            if isinstance(auths, dict):
                for key in keys:
                    if key in auths:
                        yield _from_auth_entry(auths[key], path, display_path(path, self._home))
            if isinstance(document.get("credsStore"), str) and document["credsStore"]:
                yield run_helper(document["credsStore"], keys[0], required=False)

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise LocalError(f"cannot read auth file {path}: {error.strerror}") from None
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise AuthError(f"auth file {path} is not valid JSON", reason="missing_credentials") from None
        return document if isinstance(document, dict) else None


# -- regpeek login / logout: storing credentials as docker and podman do ----------------------------


def login_file(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """The auth file ``regpeek login`` writes when no ``--authfile`` is given: ``$REGISTRY_AUTH_FILE``;
    else ``$XDG_RUNTIME_DIR/containers/auth.json`` when ``$XDG_RUNTIME_DIR`` is an existing directory
    (podman's choice); else ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json`` (docker's)."""
    env = os.environ if environ is None else environ
    if env.get("REGISTRY_AUTH_FILE"):
        return Path(env["REGISTRY_AUTH_FILE"])
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "containers" / "auth.json"
    base = home or Path(env.get("HOME") or Path.home())
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else base / ".docker"
    return docker_dir / "config.json"


def _entry_key(registry: str, path: Path) -> str:
    """The key a new ``auths`` entry gets: docker's ``https://index.docker.io/v1/`` for Docker Hub in
    a docker config.json, else the registry name (``docker.io``, ``host:port``) as podman writes."""
    if registry == DOCKER_HUB and path.name == "config.json":
        return _HUB_KEYS[0]
    return registry


def _read_for_update(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise LocalError(f"cannot read auth file {path}: {error.strerror}") from None
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise LocalError(f"auth file {path} is not valid JSON: left unchanged") from None
    if not isinstance(document, dict):
        raise LocalError(f"auth file {path} is not a JSON object: left unchanged")
    return document


def _write_auth_file(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``document`` (mode 0600; a symlinked file's target is written)."""
    from regpeek.disk.files import fsync_dir, write_file_atomically

    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with write_file_atomically(target, mode=0o600) as out:
            out.write(json.dumps(document, indent="\t").encode() + b"\n")
        os.chmod(target, 0o600)
        fsync_dir(target.parent)
    except OSError as error:
        raise LocalError(f"cannot write auth file {path}: {error.strerror or error}") from None


def _helper_for(document: Mapping[str, Any], registry: str) -> str | None:
    """The credential helper the auth file names for ``registry``: ``credHelpers`` first, then
    ``credsStore``."""
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key in keys_for(registry):
            if isinstance(helpers.get(key), str) and helpers[key]:
                return str(helpers[key])
    store = document.get("credsStore")
    return store if isinstance(store, str) and store else None


def _run_helper_action(name: str, action: str, payload: bytes) -> subprocess.CompletedProcess[bytes]:
    program = f"docker-credential-{name}"
    try:
        return subprocess.run(
            [program, action], input=payload, capture_output=True, timeout=_HELPER_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise LocalError(f"credential helper {program} is configured but not installed") from None
    except subprocess.TimeoutExpired:
        raise LocalError(f"credential helper {program} did not answer in {_HELPER_TIMEOUT}s") from None


def _helper_failure(name: str, action: str, completed: subprocess.CompletedProcess[bytes]) -> LocalError:
    said = (completed.stdout or completed.stderr).decode("utf-8", "replace").strip().splitlines()
    first = f": {said[0][:200]}" if said else ""
    return LocalError(
        f"credential helper docker-credential-{name} {action} failed with exit status {completed.returncode}{first}"
    )


@dataclass(frozen=True)
class Stored:
    """Where ``regpeek login`` put the credentials, or where ``logout`` removed them from."""

    path: Path  # the auth file consulted
    helper: str | None = None  # docker-credential-<helper>, when one holds them

    def describe(self, home: Path | None = None) -> str:
        if self.helper:
            return f"docker-credential-{self.helper} (named in {display_path(self.path, home)})"
        return display_path(self.path, home)


def store_credentials(
    registry: str,
    username: str,
    password: str,
    *,
    authfile: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Stored:
    """Keep credentials for ``registry`` as docker and podman do: through the credential helper the
    auth file names for it (``docker-credential-NAME store``), else in the auth file itself (an
    ``auths`` entry; the file is written atomically, mode 0600, every other entry kept). The entry
    for ``registry`` under any of its spellings is replaced."""
    path = Path(authfile) if authfile is not None else login_file(environ, home)
    document = _read_for_update(path)
    helper = _helper_for(document, registry)
    if helper is not None:
        payload = json.dumps(
            {"ServerURL": keys_for(registry)[0], "Username": username, "Secret": password}
        ).encode()
        completed = _run_helper_action(helper, "store", payload)
        if completed.returncode != 0:
            raise _helper_failure(helper, "store", completed)
        return Stored(path, helper)
    auths = document.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    for key in keys_for(registry):
        auths.pop(key, None)
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths[_entry_key(registry, path)] = {"auth": pair}
    document["auths"] = auths
    _write_auth_file(path, document)
    return Stored(path)


def erase_credentials(
    registry: str,
    *,
    authfile: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Stored | None:
    """Forget the credentials ``regpeek login`` (or docker, or podman) stored for ``registry``: through
    the credential helper (``erase``), and from the auth file. None when there were none."""
    path = Path(authfile) if authfile is not None else login_file(environ, home)
    document = _read_for_update(path)
    helper = _helper_for(document, registry)
    erased: Stored | None = None
    if helper is not None:
        completed = _run_helper_action(helper, "erase", keys_for(registry)[0].encode())
        said = (completed.stdout + completed.stderr).lower()
        if completed.returncode == 0:
            erased = Stored(path, helper)
        elif b"not found" not in said:
            raise _helper_failure(helper, "erase", completed)
    auths = document.get("auths")
    if isinstance(auths, dict):
        removed = [key for key in keys_for(registry) if key in auths]
        for key in removed:
            del auths[key]
        if removed:
            _write_auth_file(path, document)
            erased = erased or Stored(path)
    return erased
