"""A Provider and its Secrets resolve as notification-controller's createNotifier."""

from __future__ import annotations

from typing import Any

import pytest
from notifier_helpers import make_provider

from fluxbus_notifier.logic.provider_config import ProviderConfigError, provider_config

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX"


def test_spec_fields_are_the_base() -> None:
    provider = make_provider(
        "slack", HOOK, channel="general", username="flux", timeout="5s", proxy="http://proxy:3128"
    )
    config = provider_config(provider, None, None)
    assert (config.type, config.namespace, config.name) == ("slack", "flux-system", "notify")
    assert (config.address, config.channel, config.username) == (HOOK, "general", "flux")
    assert (config.proxy, config.timeout, config.token) == ("http://proxy:3128", 5.0, None)
    assert config.provider_uid == "0c9c2e41-1f2b-4c3d-9e8f-a0b1c2d3e4f5"


def test_timeout_defaults_to_fifteen_seconds() -> None:
    assert provider_config(make_provider("generic", "http://hook"), None, None).timeout == 15.0


def test_secret_keys_override_the_spec_and_are_trimmed() -> None:
    provider = make_provider("slack", "https://spec.example/x", username="spec-user")
    secret = {
        "address": b" https://secret.example/hook \n",
        "token": b"xoxb-123\n",
        "username": b"secret-user",
        "password": b"pa55",
        "proxy": b"http://u:p@proxy:3128",
        "headers": b"Authorization: my-api-token\nX-Forwarded-Proto: https\n",
    }
    config = provider_config(provider, secret, None)
    assert config.address == "https://secret.example/hook"
    assert (config.token, config.username, config.password) == ("xoxb-123", "secret-user", "pa55")
    assert config.proxy == "http://u:p@proxy:3128"
    assert config.headers == {"Authorization": "my-api-token", "X-Forwarded-Proto": "https"}


def test_proxy_secret_replaces_both_proxies() -> None:
    provider = make_provider("generic", "http://hook", proxy="http://spec-proxy:1")
    config = provider_config(
        provider,
        {"proxy": b"http://secret-proxy:2"},
        None,
        proxy_secret={"address": b"http://proxy:3", "username": b"u", "password": b"p"},
    )
    assert (config.proxy, config.proxy_username, config.proxy_password) == (
        "http://proxy:3",
        "u",
        "p",
    )


@pytest.mark.parametrize(
    ("cert_secret", "secret", "type_", "expected"),
    [
        pytest.param({"ca.crt": b"CA"}, None, "generic", (b"CA", None, None), id="ca-only"),
        pytest.param(
            {"ca.crt": b"CA", "tls.crt": b"C", "tls.key": b"K"},
            None,
            "generic",
            (b"CA", b"C", b"K"),
            id="mtls",
        ),
        pytest.param(
            {"caFile": b"CA", "certFile": b"C", "keyFile": b"K"},
            None,
            "generic",
            (b"CA", b"C", b"K"),
            id="legacy-keys",
        ),
        pytest.param(
            None,
            {"token": b"t", "ca.crt": b"CA"},
            "github",
            (b"CA", None, None),
            id="commit-status-provider-takes-ca-from-its-secret",
        ),
        pytest.param(
            None,
            {"token": b"t", "ca.crt": b"CA"},
            "generic",
            (None, None, None),
            id="others-do-not",
        ),
    ],
)
def test_tls_material(
    cert_secret: dict[str, bytes] | None,
    secret: dict[str, bytes] | None,
    type_: str,
    expected: tuple[bytes | None, ...],
) -> None:
    address = "https://github.com/org/repo" if type_ == "github" else "https://hook"
    config = provider_config(make_provider(type_, address), secret, cert_secret)
    assert (config.ca, config.cert, config.key) == expected


@pytest.mark.parametrize(
    ("type_", "address", "secret", "cert_secret", "field"),
    [
        pytest.param("slack", None, None, None, "spec.address", id="no-address"),
        pytest.param("slack", "hooks.slack.com/x", None, None, "spec.address", id="not-absolute"),
        pytest.param("generic", "ftp://host/x", None, None, "spec.address", id="wrong-scheme"),
        pytest.param(
            "generic",
            None,
            {"address": b"x" * 2049},
            None,
            "secretRef address",
            id="address-too-long",
        ),
        pytest.param(
            "generic",
            "http://h",
            {"headers": b"- a\n- b\n"},
            None,
            "secretRef headers",
            id="headers-not-a-map",
        ),
        pytest.param(
            "generic",
            "http://h",
            {"headers": b"a: [1]\n"},
            None,
            "secretRef headers",
            id="header-not-a-string",
        ),
        pytest.param(
            "generic", "http://h", {"proxy": b"not a url"}, None, "secretRef proxy", id="bad-proxy"
        ),
        pytest.param(
            "generic-hmac", "http://h", None, None, "secretRef token", id="hmac-without-token"
        ),
        pytest.param(
            "github",
            "https://github.com/o/r",
            None,
            None,
            "secretRef token",
            id="github-without-token",
        ),
        pytest.param(
            "generic",
            "https://h",
            None,
            {"tls.crt": b"C"},
            "certSecretRef tls.key",
            id="cert-without-key",
        ),
    ],
)
def test_invalid_configuration_names_the_field(
    type_: str,
    address: str | None,
    secret: dict[str, bytes] | None,
    cert_secret: dict[str, bytes] | None,
    field: str,
) -> None:
    with pytest.raises(ProviderConfigError) as raised:
        provider_config(make_provider(type_, address), secret, cert_secret)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"Provider flux-system/notify: {field}: ")
    assert "x" * 50 not in str(raised.value)


def test_secrets_are_redacted_and_never_in_repr() -> None:
    secret: dict[str, Any] = {
        "address": HOOK.encode(),
        "token": b"xoxb-secret-token",
        "password": b"hunter2-pass",
        "headers": b"Authorization: Bearer header-secret\n",
    }
    config = provider_config(make_provider("slack"), secret, None)
    text = f"failed POST {HOOK} token=xoxb-secret-token pw=hunter2-pass auth=Bearer header-secret"
    redacted = config.redact(text)
    for value in (HOOK, "xoxb-secret-token", "hunter2-pass", "header-secret", "XXXXXXXXXXXX"):
        assert value not in redacted
    assert "*****" in redacted
    assert repr(config) == "ProviderConfig(type='slack', provider=flux-system/notify)"
    assert "xoxb" not in repr(config) and "hooks.slack.com" not in repr(config)
