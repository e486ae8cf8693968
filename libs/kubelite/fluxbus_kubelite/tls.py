"""kubelite's TLS: a throw-away CA signs one server certificate for the names
clients use (127.0.0.1, localhost, ::1 and the configured host / server URL),
then its key is dropped, so nothing else can ever be issued under it.

kubelite serves HTTPS because kubectl (client-go) sends a kubeconfig's bearer
token only over TLS; the kubeconfig carries the CA as
`certificate-authority-data`. `ServerTLS.save` / `load` keep the material in
one PEM file (mode 600) so a restarted kubelite keeps the kubeconfigs clients
already loaded valid.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_NAMES = ("127.0.0.1", "::1", "localhost")
"""Names every certificate covers: a local client reaches the server by them."""
VALIDITY = dt.timedelta(days=365)
"""How long a certificate lasts; a kubelite started after that issues a new one."""
RENEW_BEFORE = dt.timedelta(days=1)
"""A saved certificate this close to expiry is replaced rather than reused."""


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True, repr=False)
class ServerTLS:
    """A CA certificate and the server certificate and key it signed (PEM)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:  # never print the key
        return "ServerTLS(ca, cert, key)"

    @classmethod
    def issue(cls, names: Iterable[str]) -> ServerTLS:
        """A new CA and a server certificate for LOCAL_NAMES and `names`."""
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubelite-ca")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        sans = list(dict.fromkeys([*LOCAL_NAMES, *names]))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubelite")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in sans]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        return cls(ca.public_bytes(pem), cert.public_bytes(pem), _key_pem(key))

    def covers(self, names: Iterable[str], at: dt.datetime | None = None) -> bool:
        """Whether the server certificate names every one of `names` and stays
        valid for more than RENEW_BEFORE after `at` (default now)."""
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        when = at or dt.datetime.now(dt.UTC)
        if cert.not_valid_after_utc - RENEW_BEFORE < when:
            return False
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = set(san.get_values_for_type(x509.DNSName)) | {
            str(ip) for ip in san.get_values_for_type(x509.IPAddress)
        }
        return {str(_normal(n)) for n in names} <= {str(_normal(n)) for n in have}

    @property
    def ca_data(self) -> str:
        """The CA as a kubeconfig's `certificate-authority-data` (base64 PEM)."""
        return base64.b64encode(self.ca_pem).decode()

    def server_context(self) -> ssl.SSLContext:
        """The server side's context (the key goes through a private temp file:
        `ssl` loads keys from files only)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory(prefix="kubelite-tls-") as d:
            path = Path(d) / "server.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.cert_pem + self.key_pem)
            ctx.load_cert_chain(path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the CA, certificate and key to one PEM file (mode 600)."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.ca_pem + self.cert_pem + self.key_pem)
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServerTLS | None:
        """What `save` wrote, or None when the file is missing or not one of these."""
        try:
            data = Path(path).read_bytes()
        except OSError:
            return None
        end = b"-----END CERTIFICATE-----\n"
        parts = data.split(end)
        if len(parts) != 3 or b"PRIVATE KEY" not in parts[2]:
            return None
        return cls(parts[0] + end, parts[1] + end, parts[2])


def _normal(name: str) -> object:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return name.lower()


def load_or_issue(path: str | os.PathLike[str] | None, names: Iterable[str]) -> ServerTLS:
    """The material saved at `path` when it still covers `names`, else a new
    issue (saved at `path` when given)."""
    wanted = [*LOCAL_NAMES, *names]
    if path is not None:
        saved = ServerTLS.load(path)
        if saved is not None and saved.covers(wanted):
            return saved
    tls = ServerTLS.issue(wanted)
    if path is not None:
        tls.save(path)
    return tls
