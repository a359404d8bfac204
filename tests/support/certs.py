"""X.509 helpers built on ``cryptography``: a throwaway CA, a server certificate, a signing cert."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_VALIDITY = dt.timedelta(days=2)
_BACKDATE = dt.timedelta(hours=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "regpeek tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def new_key(kind: str = "ec") -> PrivateKey:
    """Generate a P-256 EC key (``kind="ec"``) or a 2048-bit RSA key (``kind="rsa"``)."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key kind {kind!r}")


def key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM of a private key, unencrypted."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM encoding of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def self_signed_cert(key: PrivateKey, common_name: str, *, ca: bool) -> x509.Certificate:
    """A self-signed certificate for ``key``.

    With ``ca=False`` the certificate carries no extended key usage at all, which is what the
    registry's token verifier (Go's ``x509.Verify`` with default options) needs for a JWT signing
    certificate.
    """
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class TLSFiles:
    """Paths of a generated CA and a server certificate signed by it."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


#: A host name no resolver knows: the test proxy maps it to 127.0.0.1, so a request for it that
#: arrives went through the proxy.
PROXY_ONLY_HOST = "registry.test"


def make_tls_files(directory: Path) -> TLSFiles:
    """Write ``ca.crt``, ``server.crt`` and ``server.key`` into ``directory``.

    The server certificate is valid for ``127.0.0.1`` (IP SAN), ``localhost`` and ``registry.test``
    (a name only the test proxy resolves: see ``tests/support/httpproxy.py``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = new_key("ec")
    ca_cert = self_signed_cert(ca_key, "regpeek test CA", ca=True)
    server_key = new_key("ec")
    now = dt.datetime.now(dt.timezone.utc)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName(PROXY_ONLY_HOST),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    files.ca_cert.write_bytes(cert_pem(ca_cert))
    files.server_cert.write_bytes(cert_pem(server_cert))
    files.server_key.write_bytes(key_pem(server_key))
    files.server_key.chmod(0o600)
    return files
