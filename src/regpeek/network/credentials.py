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

from regpeek.errors import AuthError, UsageError
from regpeek.formats.reference import DOCKER_HUB

__all__ = ["Credentials", "CredentialStore", "auth_file_candidates"]

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_HELPER_TIMEOUT = 30


@dataclass(frozen=True)
class Credentials:
    """A username and secret for one registry; ``identity_token`` is an OAuth2 refresh token."""

    username: str = field(default="")
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

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


def _keys_for(host: str) -> tuple[str, ...]:
    if host == DOCKER_HUB:
        return _HUB_KEYS
    return (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/")


def _from_auth_entry(entry: Any, where: Path) -> Credentials:
    if not isinstance(entry, dict):
        return Credentials()
    if entry.get("identitytoken"):
        return Credentials(str(entry.get("username", "")), identity_token=str(entry["identitytoken"]))
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
        return Credentials(username, password)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password", "")))
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
        return Credentials(identity_token=secret)
    return Credentials(username, secret)


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
    ) -> None:
        if password and not username:
            raise UsageError("a password was given without a username")
        self._explicit = Credentials(username or "", password or "") if username else None
        env = os.environ if environ is None else environ
        self._authfile = Path(authfile) if authfile is not None else None
        if authfile is not None:
            self._files = [Path(authfile)]
            if not self._files[0].is_file():
                raise UsageError(f"auth file {authfile} does not exist")
        else:
            self._files = auth_file_candidates(env, home or Path.home())
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
                        yield _from_auth_entry(auths[key], path)
            if isinstance(document.get("credsStore"), str) and document["credsStore"]:
                yield run_helper(document["credsStore"], keys[0], required=False)

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise AuthError(
                f"cannot read auth file {path}: {error.strerror}", reason="missing_credentials"
            ) from None
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise AuthError(f"auth file {path} is not valid JSON", reason="missing_credentials") from None
        return document if isinstance(document, dict) else None
