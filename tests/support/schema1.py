"""Docker schema1 manifests: libtrust-style JWS signing, verification and canonical digests.

A signed schema1 manifest is the pretty-printed (3-space indent) unsigned JSON with a
``"signatures"`` member spliced in before the final ``}``.  Each signature's ``protected`` header
records ``formatLength`` (length of the unsigned JSON up to its last non-space character before
the closing brace) and ``formatTail`` (base64url of the rest, normally ``"\\n}"``); the signed
payload is ``body[:formatLength] + formatTail`` and its sha256 is the manifest digest.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .util import b64url_decode, b64url_encode, sha256_digest

INDENT = "   "
_P256_BYTES = 32


def pretty_json(document: dict[str, Any]) -> bytes:
    """Serialize like Go's ``json.MarshalIndent(v, "", "   ")`` (the Docker schema1 style)."""
    return json.dumps(document, indent=INDENT, ensure_ascii=False).encode("utf-8")


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """libtrust key ID: sha256 of the DER SubjectPublicKeyInfo, first 240 bits, base32 in 4-char groups."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def public_jwk(public_key: ec.EllipticCurvePublicKey, *, include_kid: bool = True) -> dict[str, str]:
    """The JWK of a P-256 public key, with members in Go's sorted-map order."""
    numbers = public_key.public_numbers()
    jwk = {"crv": "P-256"}
    if include_kid:
        jwk["kid"] = libtrust_key_id(public_key)
    jwk["kty"] = "EC"
    jwk["x"] = b64url_encode(numbers.x.to_bytes(_P256_BYTES, "big"))
    jwk["y"] = b64url_encode(numbers.y.to_bytes(_P256_BYTES, "big"))
    return jwk


def _format_split(unsigned: bytes) -> tuple[int, bytes]:
    """(formatLength, formatTail) of pretty JSON: everything up to the last value, then the tail."""
    close = len(unsigned.rstrip())
    if close == 0 or unsigned[close - 1 : close] != b"}":
        raise ValueError("schema1 payload must be a JSON object")
    length = len(unsigned[: close - 1].rstrip())
    if unsigned[length - 1 : length] == b",":
        raise ValueError("schema1 payload has a trailing comma")
    return length, unsigned[length:]


@dataclass(frozen=True)
class SignedSchema1:
    """A signed schema1 manifest and its canonical form."""

    signed: bytes  # what goes over the wire (application/vnd.docker.distribution.manifest.v1+prettyjws)
    canonical: bytes  # body[:formatLength] + formatTail: the signed payload
    digest: str  # sha256 of canonical: what registries store and report
    jwk: dict[str, str]


def sign_schema1(
    unsigned: bytes,
    key: ec.EllipticCurvePrivateKey | None = None,
    *,
    when: dt.datetime | None = None,
    include_kid: bool = True,
) -> SignedSchema1:
    """Sign pretty-printed schema1 JSON with ES256, the way libtrust's ``PrettySignature`` lays it out."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    length, tail = _format_split(unsigned)
    when = when or dt.datetime.now(dt.timezone.utc)
    protected_header = {
        "formatLength": length,
        "formatTail": b64url_encode(tail),
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    protected = b64url_encode(json.dumps(protected_header, separators=(",", ":")).encode())
    canonical = unsigned[:length] + tail
    signing_input = f"{protected}.{b64url_encode(canonical)}".encode("ascii")
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    raw_signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    jwk = public_jwk(key.public_key(), include_kid=include_kid)
    signatures = [
        {
            "header": {"jwk": jwk, "alg": "ES256"},
            "signature": b64url_encode(raw_signature),
            "protected": protected,
        }
    ]
    block = json.dumps(signatures, indent=INDENT).replace("\n", "\n" + INDENT).encode()
    signed = unsigned[:length] + b",\n" + INDENT.encode() + b'"signatures": ' + block + b"\n}"
    return SignedSchema1(signed=signed, canonical=canonical, digest=sha256_digest(canonical), jwk=jwk)


def canonical_schema1(signed: bytes) -> tuple[bytes, str]:
    """(canonical bytes, digest) of a signed schema1 manifest; unsigned bodies are hashed as they are."""
    document = json.loads(signed)
    signatures = document.get("signatures") or []
    if not signatures:
        return signed, sha256_digest(signed)
    formats = set()
    for signature in signatures:
        header = json.loads(b64url_decode(signature["protected"]))
        formats.add((int(header["formatLength"]), b64url_decode(header["formatTail"])))
    if len(formats) != 1:
        raise ValueError("schema1 signatures disagree on the payload format")
    ((length, tail),) = formats
    canonical = signed[:length] + tail
    return canonical, sha256_digest(canonical)


def verify_schema1(signed: bytes) -> list[dict[str, str]]:
    """Verify every ES256 JWK signature of a signed schema1 manifest; return the signing JWKs.

    Raises ``ValueError`` when there is no signature or one does not verify.  (x5c-chained RSA
    signatures are not needed by these tests and are rejected.)
    """
    canonical, _ = canonical_schema1(signed)
    signatures = json.loads(signed).get("signatures") or []
    if not signatures:
        raise ValueError("manifest is not signed")
    payload = b64url_encode(canonical)
    keys = []
    for signature in signatures:
        header = signature["header"]
        jwk = header.get("jwk")
        if header.get("alg") != "ES256" or not jwk or jwk.get("crv") != "P-256":
            raise ValueError(f"unsupported signature header {header!r}")
        x = int.from_bytes(b64url_decode(jwk["x"]), "big")
        y = int.from_bytes(b64url_decode(jwk["y"]), "big")
        public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        raw = b64url_decode(signature["signature"])
        der = encode_dss_signature(
            int.from_bytes(raw[:_P256_BYTES], "big"), int.from_bytes(raw[_P256_BYTES:], "big")
        )
        try:
            public_key.verify(der, f"{signature['protected']}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise ValueError("schema1 signature does not verify") from exc
        keys.append(jwk)
    return keys
