"""Small records the cache keeps between processes: the tag memo and the registries' auth state.

Beside the content-addressed entries (:mod:`regpeek.disk.cache`), a cache directory holds two kinds
of small, mutable records, each a JSON file named by the SHA-256 of its key::

    ROOT/tags/<hex>    the digest (and media type) a tag named when last fetched: a later inspect
                       revalidates it with one HEAD instead of fetching the manifest again
    ROOT/auth/<hex>    a registry host's authentication challenge (scheme, realm, service), and
                       Bearer tokens keyed by registry host, scope and a hash of the credential identity
                       (source and user name, never the secret), each until its expiry

The directories are 0700 and the user's own (else :class:`~regpeek.errors.UnsafePathError`, as for the
rest of the cache); files are written 0600 through a temporary file renamed into place, and read with
``O_NOFOLLOW``, refused unless they are the user's own regular files with a single link. Each file
repeats its key, so a file copied under another name is not believed. The records are an
optimisation: an unreadable or malformed one is a miss (and is removed), a write that fails is
skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regpeek.disk.files import open_regular, write_file_atomically
from regpeek.errors import UnsafePathError
from regpeek.formats.challenge import Challenge
from regpeek.formats.digest import Digest

__all__ = ["AuthState", "Records", "StoredToken", "TagMemo"]

_MAX_RECORD = 64 * 1024
_TEMP_SUFFIX = ".tmp"


class Records:
    """JSON records by key in ``directory``; ``ensure(directory, create=...)`` checks (and makes) the
    private directory chain, as the cache's sections do."""

    def __init__(self, directory: Path, ensure: Callable[..., bool]) -> None:
        self.directory = directory
        self._ensure = ensure

    def path_for(self, key: str) -> Path:
        return self.directory / hashlib.sha256(key.encode()).hexdigest()

    def read(self, key: str) -> dict[str, Any] | None:
        path = self.path_for(key)
        try:
            if not self._ensure(self.directory, create=False):
                return None
        except OSError:
            return None  # an unsafe directory is raised (UnsafePathError), as for the cache
        try:
            fd = open_regular(path)
        except UnsafePathError:  # a link or not a regular file where a record belongs: removed
            self._remove(path)
            return None
        except OSError:  # missing above all
            return None
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or info.st_nlink != 1:
                return None  # not a private file of this user: not believed (and not touched)
            data = os.read(fd, _MAX_RECORD + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            record = json.loads(data) if len(data) <= _MAX_RECORD else None
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict) or record.get("key") != key:
            self._remove(path)
            return None
        return record

    def write(self, key: str, record: dict[str, Any]) -> bool:
        path = self.path_for(key)
        data = json.dumps({"key": key, **record}, sort_keys=True).encode()
        try:
            if not self._ensure(self.directory, create=True):
                return False
            with write_file_atomically(path, durable=False, suffix=_TEMP_SUFFIX, mode=0o600) as out:
                out.write(data)
        except OSError:
            return False
        return True

    def remove(self, key: str) -> None:
        self._remove(self.path_for(key))

    def _remove(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    def clear(self) -> int:
        """Remove every record and temporary file; how many files went."""
        removed = 0
        try:
            if not self._ensure(self.directory, create=False):
                return 0
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(self.directory / name)
                removed += 1
        return removed


class TagMemo:
    """Tag -> the digest and media type it named when last fetched, per registry host and repository."""

    def __init__(self, records: Records) -> None:
        self.records = records

    @staticmethod
    def _key(api_host: str, name: str, tag: str) -> str:
        return f"tag {api_host}/{name}:{tag}"

    def get(self, api_host: str, name: str, tag: str) -> tuple[Digest, str | None] | None:
        record = self.records.read(self._key(api_host, name, tag))
        if record is None:
            return None
        media_type = record.get("media_type")
        try:
            digest = Digest.parse(str(record.get("digest")))
        except ValueError:  # UsageError is a ValueError too
            self.records.remove(self._key(api_host, name, tag))
            return None
        return digest, media_type if isinstance(media_type, str) else None

    def put(self, api_host: str, name: str, tag: str, digest: Digest, media_type: str | None) -> None:
        current = self.get(api_host, name, tag)
        if current != (digest, media_type):
            self.records.write(
                self._key(api_host, name, tag), {"digest": str(digest), "media_type": media_type}
            )


class StoredToken:
    """A Bearer token as kept on disk: its value, when it expires (wall clock), its scopes, and the
    source and user name of the credentials it was obtained with ("" when anonymous)."""

    __slots__ = ("expires", "scopes", "source", "username", "value")

    def __init__(
        self, value: str, expires: float, scopes: tuple[str, ...], source: str, username: str
    ) -> None:
        self.value, self.expires, self.scopes, self.source, self.username = (
            value,
            expires,
            scopes,
            source,
            username,
        )


class AuthState:
    """A registry host's last challenge and the Bearer tokens still valid, across processes."""

    def __init__(self, records: Records, *, wall: Callable[[], float] = time.time) -> None:
        self.records = records
        self._wall = wall

    def challenge(self, api_host: str) -> Challenge | None:
        record = self.records.read(f"challenge {api_host}")
        if record is None:
            return None
        scheme = record.get("scheme")
        params = {
            name: value
            for name in ("realm", "service")
            if isinstance(value := record.get(name), str) and value
        }
        if scheme == "bearer" and "realm" in params:
            return Challenge("bearer", params)
        if scheme == "basic":
            return Challenge("basic", params)
        self.records.remove(f"challenge {api_host}")
        return None

    def save_challenge(self, api_host: str, challenge: Challenge) -> None:
        """Remember the scheme, realm and service (a scope or an error belongs to one request only)."""
        record: dict[str, Any] = {"scheme": challenge.scheme}
        for name in ("realm", "service"):
            if challenge.params.get(name):
                record[name] = challenge.params[name]
        self.records.write(f"challenge {api_host}", record)

    def forget_challenge(self, api_host: str) -> None:
        self.records.remove(f"challenge {api_host}")

    @staticmethod
    def _token_key(api_host: str, scope: str, identity: str) -> str:
        return f"token {api_host} {scope} {identity}"

    def token(self, api_host: str, scope: str, identity: str) -> StoredToken | None:
        """The token kept for this host, scope and credential identity, if it has not expired."""
        key = self._token_key(api_host, scope, identity)
        record = self.records.read(key)
        if record is None:
            return None
        value, expires, scopes = record.get("token"), record.get("expires"), record.get("scopes")
        source, username = record.get("source", ""), record.get("username", "")
        if (
            not isinstance(value, str)
            or not value
            or not isinstance(expires, (int, float))
            or isinstance(expires, bool)
            or not isinstance(scopes, list)
            or not all(isinstance(s, str) for s in scopes)
            or not isinstance(source, str)
            or not isinstance(username, str)
        ):
            self.records.remove(key)
            return None
        if expires <= self._wall():
            self.records.remove(key)
            return None
        return StoredToken(value, float(expires), tuple(scopes), source, username)

    def save_token(self, api_host: str, scope: str, identity: str, token: StoredToken) -> None:
        record = {
            "token": token.value,
            "expires": token.expires,
            "scopes": list(token.scopes),
            "source": token.source,
            "username": token.username,
        }
        self.records.write(self._token_key(api_host, scope, identity), record)

    def drop_token(self, api_host: str, scope: str, identity: str) -> None:
        self.records.remove(self._token_key(api_host, scope, identity))

    def now(self) -> float:
        return self._wall()
