"""Content digests: parse and validate ``algorithm:hex`` strings, compute and verify them.

Only ``sha256`` and ``sha512`` are accepted, with lowercase hex of the exact length, so a digest
can be used safely in a URL or a file path (CVE-2024-3727).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from regpeek.errors import DigestMismatchError, SizeMismatchError, UsageError

__all__ = ["BlobCheck", "Digest", "DigestVerifier", "compute", "is_digest", "verify_bytes"]

_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"(?P<algorithm>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)")


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest such as ``sha256:e3b0...``.

    ``Digest("sha256:e3b0...")`` parses and validates the text (as :meth:`parse`);
    ``Digest("sha256", "e3b0...")`` takes the two parts as they are. ``str()`` gives the text back.

    >>> Digest("sha256:" + "ab" * 32)
    Digest('sha256:abababababababababababababababababababababababababababababababab')
    """

    algorithm: str
    hex: str

    def __init__(self, algorithm: str, hex: str | None = None) -> None:
        if hex is None:
            parsed = Digest.parse(algorithm)
            algorithm, hex = parsed.algorithm, parsed.hex
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hex", hex)

    def __repr__(self) -> str:
        return f"Digest({str(self)!r})"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate; raises :class:`~regpeek.errors.UsageError` on anything else.

        >>> Digest.parse("sha256:" + "a" * 64).algorithm
        'sha256'
        """
        match = _DIGEST_RE.fullmatch(text)
        if not match:
            raise UsageError(f"invalid digest {text!r}: expected algorithm:hex")
        algorithm, hexpart = match["algorithm"], match["hex"]
        expected = _HEX_LENGTHS.get(algorithm)
        if expected is None:
            raise UsageError(f"unsupported digest algorithm {algorithm!r} in {text!r}")
        if len(hexpart) != expected or not re.fullmatch(r"[0-9a-f]+", hexpart):
            raise UsageError(f"invalid digest {text!r}: {algorithm} needs {expected} lowercase hex digits")
        return cls(algorithm, hexpart)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> DigestVerifier:
        """A fresh incremental verifier for content expected to have this digest."""
        return DigestVerifier(self.algorithm)


def is_digest(text: str) -> bool:
    """True when ``text`` is a valid digest string."""
    try:
        Digest.parse(text)
    except UsageError:
        return False
    return True


def compute(data: bytes, algorithm: str = "sha256") -> Digest:
    """The digest of ``data``.

    >>> str(compute(b""))
    'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


class DigestVerifier:
    """Hashes content as it streams and checks it against an expected digest and size."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _HEX_LENGTHS:
            raise UsageError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())

    def copy(self) -> DigestVerifier:
        """An independent verifier in the same state (to resume hashing from this point later)."""
        twin = DigestVerifier.__new__(DigestVerifier)
        twin.algorithm, twin._hash, twin.size = self.algorithm, self._hash.copy(), self.size
        return twin

    def verify(self, what: str, expected: Digest, size: int | None = None) -> None:
        """Raise if the content seen so far is not ``size`` bytes hashing to ``expected``."""
        if size is not None and size != self.size:
            raise SizeMismatchError(what, size, self.size)
        actual = self.digest()
        if actual != expected:
            raise DigestMismatchError(what, expected, actual)


class BlobCheck:
    """Checks a blob as it streams past, chunk by chunk: the one verification of every blob reader.

    :meth:`add` hashes a chunk and raises :class:`~regpeek.errors.SizeMismatchError` as soon as there
    are more bytes than ``size``; it verifies the digest the moment the last byte arrives (when
    ``size`` is known) and says so, so that a reader raises before it hands that last chunk on.
    :meth:`finish`, when the source has ended, verifies what is left to verify (a short blob, or one
    whose size is unknown: ``size`` None).
    """

    __slots__ = ("_verifier", "digest", "size", "verified", "what")

    def __init__(self, digest: Digest, size: int | None, what: str) -> None:
        self.digest = digest
        self.size = size
        self.what = what
        self.verified = False
        self._verifier = DigestVerifier(digest.algorithm)

    @property
    def seen(self) -> int:
        """Bytes checked so far."""
        return self._verifier.size

    def add(self, chunk: bytes) -> bool:
        """Hash ``chunk``; True when it completes a blob of known size (then verified)."""
        self._verifier.update(chunk)
        if self.size is None:
            return False
        if self._verifier.size > self.size:
            raise SizeMismatchError(self.what, self.size, self._verifier.size)
        if self._verifier.size == self.size and not self.verified:
            self._verifier.verify(self.what, self.digest, self.size)
            self.verified = True
            return True
        return False

    def finish(self) -> None:
        """The source ended: raise unless everything was there and matched."""
        if not self.verified:
            self._verifier.verify(self.what, self.digest, self.size)
            self.verified = True


def verify_bytes(what: str, data: bytes, expected: Digest, size: int | None = None) -> None:
    """Check that ``data`` has the expected digest (and size, when given)."""
    verifier = DigestVerifier(expected.algorithm)
    verifier.update(data)
    verifier.verify(what, expected, size)
