"""NATS connection settings from the environment: user/password, TLS with a
private CA, and client certificates; credentials never appear in errors."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fluxbus_common.bus import Bus
from fluxbus_common.ports import BusError
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer


def _write_pki(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    now = dt.datetime.now(dt.UTC)

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer_key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name | None,
        ca: bool,
        san: bool,
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        b = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return b.sign(issuer_key, hashes.SHA256())

    def save(name: str, obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> None:
        if isinstance(obj, x509.Certificate):
            data = obj.public_bytes(serialization.Encoding.PEM)
        else:
            data = obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        (d / name).write_bytes(data)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("fluxbus test CA", ca_key, ca_key, None, ca=True, san=False)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    cli_key = ec.generate_private_key(ec.SECP256R1())
    save("ca.crt", ca)
    save("server.crt", cert("nats", srv_key, ca_key, ca.subject, ca=False, san=True))
    save("server.key", srv_key)
    save("client.crt", cert("fluxbus", cli_key, ca_key, ca.subject, ca=False, san=False))
    save("client.key", cli_key)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    d.mkdir()
    _write_pki(d)
    return d


@pytest.fixture
def secured_nats(tmp_path: Path, pki: Path) -> Iterator[NatsServer]:
    """nats-server requiring TLS with client certificates and a user/password."""
    server = NatsServer(
        tmp_path / "nats",
        extra_args=[
            "--tlsverify",
            "--tlscert",
            str(pki / "server.crt"),
            "--tlskey",
            str(pki / "server.key"),
            "--tlscacert",
            str(pki / "ca.crt"),
            "--user",
            "fluxbus",
            "--pass",
            "s3cr3t-pa55",
        ],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_settings_from_the_environment_reach_a_tls_server_with_a_password(
    secured_nats: NatsServer, pki: Path
):
    env = {
        "FLUXBUS_NATS_URL": f"tls://fluxbus:s3cr3t-pa55@127.0.0.1:{secured_nats.port}",
        "FLUXBUS_NATS_TLS_CA": str(pki / "ca.crt"),
        "FLUXBUS_NATS_TLS_CERT": str(pki / "client.crt"),
        "FLUXBUS_NATS_TLS_KEY": str(pki / "client.key"),
    }
    settings = BusSettings.from_env(env)
    assert "s3cr3t" not in settings.redacted_urls
    bus = await Bus.connect(settings, "tls-test")
    try:
        assert (
            await bus.apply_object("widget.default.t", {"kind": "Widget", "spec": {}}) == "created"
        )
    finally:
        await bus.close()


async def test_a_wrong_password_is_a_clear_error_without_the_password(
    secured_nats: NatsServer, pki: Path
):
    settings = BusSettings(
        url=f"tls://fluxbus:not-the-one@127.0.0.1:{secured_nats.port}",
        tls_ca=str(pki / "ca.crt"),
        tls_cert=str(pki / "client.crt"),
        tls_key=str(pki / "client.key"),
        connect_timeout=2,
    )
    with pytest.raises(BusError) as err:
        await Bus.connect(settings, "tls-test")
    assert "not-the-one" not in str(err.value)
    assert "cannot connect to NATS" in str(err.value)


async def test_an_untrusted_server_certificate_is_refused(secured_nats: NatsServer, tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    _write_pki(other)  # a different CA: the server's certificate must not verify
    settings = BusSettings(
        url=f"tls://fluxbus:s3cr3t-pa55@127.0.0.1:{secured_nats.port}",
        tls_ca=str(other / "ca.crt"),
        tls_cert=str(other / "client.crt"),
        tls_key=str(other / "client.key"),
        connect_timeout=2,
    )
    with pytest.raises(BusError):
        await Bus.connect(settings, "tls-test")
