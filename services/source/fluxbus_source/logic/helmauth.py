"""Credentials of a HelmRepository, read from its Secrets as source-controller reads them.

Pure: no I/O.

- `spec.secretRef`: `username`/`password` (basic auth, both or neither); the
  deprecated TLS keys `caFile`/`certFile`/`keyFile` are still honoured when no
  `spec.certSecretRef` is set (Flux logs a deprecation warning and uses them).
  For `type: oci` a `kubernetes.io/dockerconfigjson` Secret works too: the
  entry whose registry host equals the repository's host is used.
- `spec.certSecretRef`: `ca.crt`, `tls.crt`, `tls.key` (`tls.crt` and `tls.key`
  together or not at all).

`repr()` of the results never shows a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "DOCKER_CONFIG_JSON_KEY",
    "CredentialsError",
    "HelmCredentials",
    "docker_config_login",
    "helm_credentials",
]

DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"


class CredentialsError(ValueError):
    """A Secret that cannot give credentials (names the Secret and key, never a value)."""


@dataclass(frozen=True, repr=False)
class HelmCredentials:
    """Basic auth and TLS material for a Helm repository."""

    username: str | None = None
    password: str | None = None
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    deprecated_tls: bool = False
    """TLS material came from `spec.secretRef` (Flux warns about it)."""

    def __repr__(self) -> str:
        parts = [n for n in ("username", "ca", "cert") if getattr(self, n)]
        return f"HelmCredentials({', '.join(parts)})"

    @property
    def has_basic_auth(self) -> bool:
        return self.username is not None

    @property
    def has_tls(self) -> bool:
        return bool(self.ca or self.cert)


def _text(data: Mapping[str, bytes], key: str, secret: str) -> str | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise CredentialsError(f"secret '{secret}': '{key}' is not UTF-8") from None


def _tls(
    data: Mapping[str, bytes], secret: str, keys: tuple[str, str, str]
) -> tuple[bytes | None, ...]:
    ca, cert, key = (data.get(k) or None for k in keys)
    if bool(cert) != bool(key):
        raise CredentialsError(
            f"secret '{secret}': '{keys[1]}' and '{keys[2]}' must be set together"
        )
    return ca, cert, key


def helm_credentials(
    auth: Mapping[str, bytes] | None,
    auth_name: str | None,
    certs: Mapping[str, bytes] | None,
    certs_name: str | None,
) -> HelmCredentials | None:
    """Credentials from the decoded `spec.secretRef` and `spec.certSecretRef` Secrets
    (None where a reference is unset); None when neither gives anything.

    Raises `CredentialsError` for half a basic auth pair or half a key pair.
    """
    username = password = None
    ca = cert = key = None
    deprecated = False
    if auth is not None:
        name = auth_name or "secretRef"
        username = _text(auth, "username", name)
        password = _text(auth, "password", name)
        if (username is None) != (password is None):
            raise CredentialsError(
                f"secret '{name}': 'username' and 'password' must be set together"
            )
        if certs is None and any(auth.get(k) for k in ("caFile", "certFile", "keyFile")):
            ca, cert, key = _tls(auth, name, ("caFile", "certFile", "keyFile"))
            deprecated = True
    if certs is not None:
        ca, cert, key = _tls(certs, certs_name or "certSecretRef", ("ca.crt", "tls.crt", "tls.key"))
    if username is None and not (ca or cert):
        return None
    return HelmCredentials(username, password, ca, cert, key, deprecated)


def _registry_host(key: str) -> str:
    value = key if "://" in key else f"https://{key}"
    return urlsplit(value).netloc


def docker_config_login(data: Mapping[str, bytes], url: str, secret: str) -> tuple[str, str] | None:
    """The username and password a Docker config Secret holds for the registry of an
    `oci://` URL, or None when no entry names that host.

    Raises `CredentialsError` when `.dockerconfigjson` is not JSON or an entry is malformed.
    """
    raw = data.get(DOCKER_CONFIG_JSON_KEY)
    if raw is None:
        return None
    try:
        auths = json.loads(raw).get("auths") or {}
    except (ValueError, AttributeError):
        raise CredentialsError(
            f"secret '{secret}': '{DOCKER_CONFIG_JSON_KEY}' is not valid JSON"
        ) from None
    host = urlsplit(url).netloc
    for registry, entry in auths.items():
        if _registry_host(str(registry)) != host or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                text = base64.b64decode(str(entry["auth"]), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise CredentialsError(
                    f"secret '{secret}': 'auth' of '{registry}' is not base64"
                ) from None
            user, colon, password = text.partition(":")
            if not colon:
                raise CredentialsError(
                    f"secret '{secret}': 'auth' of '{registry}' is not base64(username:password)"
                )
            return user, password
        if entry.get("username") is not None:
            return str(entry["username"]), str(entry.get("password") or "")
    return None
