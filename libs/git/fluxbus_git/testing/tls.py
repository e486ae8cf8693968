"""Throw-away TLS material for HTTPS and mTLS Git servers (a test CA, server and client certificates).

Test support, not production code. Needs `cryptography` (a dev dependency),
imported when a CA is made.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TestCA:
    """A throw-away CA with a server certificate (127.0.0.1, localhost) and a client certificate.

    PEM bytes in `ca_pem`, `server_cert_pem`/`server_key_pem`,
    `client_cert_pem`/`client_key_pem`; the same written to files under `dir`.
    A second CA (`other_ca_pem`) signs nothing here: trusting it must fail.
    """

    __test__ = False  # not a pytest test class

    dir: Path
    ca_pem: bytes = b""
    server_cert_pem: bytes = b""
    server_key_pem: bytes = b""
    client_cert_pem: bytes = b""
    client_key_pem: bytes = b""
    other_ca_pem: bytes = b""

    def path(self, name: str) -> Path:
        return self.dir / name

    @classmethod
    def create(cls, directory: Path) -> TestCA:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)

        def key() -> ec.EllipticCurvePrivateKey:
            return ec.generate_private_key(ec.SECP256R1())

        def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
            return k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )

        def ca_cert(k: ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
            return (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
                    x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False
                )
                .sign(k, hashes.SHA256())
            )

        def leaf(
            ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, cn: str, server: bool
        ) -> tuple[bytes, bytes]:
            k = key()
            b = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca.subject)
                .public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage(
                        [
                            ExtendedKeyUsageOID.SERVER_AUTH
                            if server
                            else ExtendedKeyUsageOID.CLIENT_AUTH
                        ]
                    ),
                    critical=False,
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
            )
            if server:
                b = b.add_extension(
                    x509.SubjectAlternativeName(
                        [
                            x509.DNSName("localhost"),
                            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        ]
                    ),
                    critical=False,
                )
            cert = b.sign(ca_key, hashes.SHA256())
            return cert.public_bytes(serialization.Encoding.PEM), pem_key(k)

        ca_key = key()
        ca = ca_cert(ca_key, "fluxbus test CA")
        other_key = key()
        other = ca_cert(other_key, "fluxbus untrusted CA")
        self = cls(directory)
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        self.other_ca_pem = other.public_bytes(serialization.Encoding.PEM)
        self.server_cert_pem, self.server_key_pem = leaf(ca_key, ca, "127.0.0.1", True)
        self.client_cert_pem, self.client_key_pem = leaf(ca_key, ca, "fluxbus-client", False)
        for fname, data in {
            "ca.crt": self.ca_pem,
            "server.crt": self.server_cert_pem,
            "server.key": self.server_key_pem,
            "client.crt": self.client_cert_pem,
            "client.key": self.client_key_pem,
            "other-ca.crt": self.other_ca_pem,
        }.items():
            (directory / fname).write_bytes(data)
            os.chmod(directory / fname, 0o600)
        return self
