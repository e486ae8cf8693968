"""Registry credentials, TLS material and proxies read from an ImageRepository's Secrets."""

from __future__ import annotations

import base64
import json

import pytest

from fluxbus_image.logic.credentials import (
    RegistryCredentials,
    RegistryTLS,
    credentials_for,
    proxy_from_secret,
)
from fluxbus_image.logic.errors import CredentialsError
from fluxbus_image.logic.reference import parse_image


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _config(auths: dict[str, object]) -> dict[str, bytes]:
    return {".dockerconfigjson": json.dumps({"auths": auths}).encode()}


@pytest.mark.parametrize(
    ("key", "image", "matches"),
    [
        pytest.param("https://index.docker.io/v1/", "alpine", True, id="hub-v1-key"),
        pytest.param("index.docker.io", "stefanprodan/podinfo", True, id="hub-host-key"),
        pytest.param("docker.io", "docker.io/org/app", True, id="docker-io-key"),
        pytest.param("https://index.docker.io/v1/", "ghcr.io/org/app", False, id="hub-not-ghcr"),
        pytest.param("ghcr.io", "ghcr.io/org/app", True, id="host"),
        pytest.param("https://ghcr.io", "ghcr.io/org/app", True, id="https-scheme"),
        pytest.param("http://ghcr.io/v2/", "ghcr.io/org/app", True, id="http-v2-suffix"),
        pytest.param("ghcr.io/org", "ghcr.io/org/app", True, id="path-prefix"),
        pytest.param("ghcr.io/other", "ghcr.io/org/app", False, id="other-path"),
        pytest.param("localhost:5000", "localhost:5000/app", True, id="host-port"),
        pytest.param("localhost:5001", "localhost:5000/app", False, id="other-port"),
        pytest.param("localhost", "localhost:5000/app", False, id="port-must-match"),
        pytest.param("*.azurecr.io", "my.azurecr.io/app", True, id="glob"),
        pytest.param("*.azurecr.io", "a.b.azurecr.io/app", False, id="glob-one-label"),
        pytest.param("ghcr.io", "gcr.io/app", False, id="other-host"),
    ],
)
def test_docker_config_keys_match_registries_as_the_kubernetes_keychain_does(
    key: str, image: str, matches: bool
) -> None:
    found = credentials_for(parse_image(image), _config({key: {"auth": _auth("u", "p")}}))
    assert found == (RegistryCredentials("u", "p") if matches else None)


def test_the_more_specific_key_wins() -> None:
    data = _config(
        {
            "ghcr.io": {"username": "host", "password": "1"},
            "ghcr.io/org/app": {"username": "repo", "password": "2"},
        }
    )
    assert credentials_for(parse_image("ghcr.io/org/app"), data) == RegistryCredentials("repo", "2")
    assert credentials_for(parse_image("ghcr.io/other/x"), data) == RegistryCredentials("host", "1")


def test_auth_wins_over_username_and_password_and_passwords_may_hold_colons() -> None:
    data = _config({"ghcr.io": {"auth": _auth("u", "p:a:ss"), "username": "x", "password": "y"}})
    assert credentials_for(parse_image("ghcr.io/org/app"), data) == RegistryCredentials(
        "u", "p:a:ss"
    )


def test_dockercfg_secrets_hold_the_bare_map_and_base64_data_is_decoded() -> None:
    raw = json.dumps({"ghcr.io": {"auth": _auth("u", "p")}}).encode()
    data = {".dockercfg": base64.b64encode(raw).decode()}
    found = credentials_for(parse_image("ghcr.io/org/app"), data, encoded=True)
    assert found == RegistryCredentials("u", "p")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"username": b"u"}, "expected a Docker config Secret", id="not-docker-config"),
        pytest.param({".dockerconfigjson": b"{nope"}, "is not valid JSON", id="bad-json"),
        pytest.param(_config({"ghcr.io": {"auth": "!!!"}}), "is not valid base64", id="bad-base64"),
        pytest.param(
            _config({"ghcr.io": {"auth": base64.b64encode(b"nocolon").decode()}}),
            "base64(username:password)",
            id="no-colon",
        ),
    ],
)
def test_unusable_secrets_are_refused_naming_the_secret(
    data: dict[str, bytes], message: str
) -> None:
    with pytest.raises(CredentialsError) as caught:
        credentials_for(parse_image("ghcr.io/org/app"), data, name="regcred")
    assert message in caught.value.message
    assert "secret 'regcred'" in caught.value.message


def test_credentials_never_show_in_their_repr() -> None:
    creds = RegistryCredentials("user", "hunter2")
    tls = RegistryTLS(ca=b"CA-PEM", cert=b"CERT", key=b"KEY")
    assert "hunter2" not in repr(creds) and "user" not in repr(creds)
    assert "KEY" not in repr(tls) and repr(tls) == "RegistryTLS(ca, cert, key)"


def test_tls_secrets_read_flux_keys_and_their_deprecated_names() -> None:
    encoded = {
        k: base64.b64encode(v).decode()
        for k, v in {"ca.crt": b"ca", "tls.crt": b"c", "tls.key": b"k"}.items()
    }
    assert RegistryTLS.from_secret(encoded, encoded=True) == RegistryTLS(b"ca", b"c", b"k")
    assert RegistryTLS.from_secret({"caFile": b"ca"}) == RegistryTLS(ca=b"ca")
    with pytest.raises(CredentialsError, match=r"'tls\.crt' and 'tls\.key' must be set together"):
        RegistryTLS.from_secret({"tls.crt": b"c"}, name="certs")


def test_proxy_secrets_need_an_http_address() -> None:
    proxy = proxy_from_secret({"address": "http://proxy:3128", "username": "u", "password": "p"})
    assert (proxy.address, proxy.username, proxy.password) == ("http://proxy:3128", "u", "p")
    with pytest.raises(CredentialsError, match="'address' is required"):
        proxy_from_secret({"username": "u"}, name="proxy")
