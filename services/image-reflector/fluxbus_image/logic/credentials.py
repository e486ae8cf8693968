"""Registry credentials from an ImageRepository's Secrets (Flux's keys and matching rules).

Pure: no I/O.

`spec.secretRef`: a Docker config Secret (`kubernetes.io/dockerconfigjson`'s
`.dockerconfigjson`, `{"auths": {...}}`, or the older `kubernetes.io/dockercfg`'s
`.dockercfg`, the bare map). Each entry holds `auth` (base64 `user:password`,
which wins) or `username`/`password`. The entry for an image is chosen as
Flux's Kubernetes keychain does:

- a key may carry a scheme and a `/v1/` or `/v2/` suffix (dropped), a path
  (which must prefix the image's repository path, as a string) and a port
  (which must equal the registry's); host labels match one by one and may be
  globs (`*.azurecr.io`);
- keys are tried in reverse lexical order (longer, more specific keys first);
  the first match wins.
- Docker Hub: images live on `index.docker.io`, so `https://index.docker.io/v1/`
  matches; fluxbus also reads a `docker.io` key as Docker Hub (Flux would
  silently ignore it, which only ever surprises).

`spec.certSecretRef` (`ca.crt`, `tls.crt`, `tls.key`; the deprecated
`caFile`, `certFile`, `keyFile`) becomes `RegistryTLS`, and
`spec.proxySecretRef` (`address`, `username`, `password`) the shared
`fluxbus_git` proxy settings (`GitProxy`), which the registry client takes too.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fluxbus_git.errors import GitCredentialsError
from fluxbus_git.logic.auth import GitProxy
from fluxbus_image.logic.errors import CredentialsError
from fluxbus_image.logic.reference import DOCKER_HUB, ImageName

__all__ = [
    "DOCKER_CONFIG_JSON_KEY",
    "DOCKER_CONFIG_KEY",
    "RegistryCredentials",
    "RegistryTLS",
    "credentials_for",
    "proxy_from_secret",
]

DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
DOCKER_CONFIG_KEY = ".dockercfg"
SecretData = Mapping[str, str | bytes]


@dataclass(frozen=True, repr=False)
class RegistryCredentials:
    """A username and password for a registry. `repr()` never shows them."""

    username: str
    password: str

    def __repr__(self) -> str:
        return "RegistryCredentials(***)"


@dataclass(frozen=True, repr=False)
class RegistryTLS:
    """PEM material for https: an extra CA to trust and a client certificate (mTLS).

    `repr()` names the parts present, never their bytes.
    """

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None

    def __repr__(self) -> str:
        present = [n for n in ("ca", "cert", "key") if getattr(self, n)]
        return f"RegistryTLS({', '.join(present)})"

    @classmethod
    def from_secret(
        cls, data: SecretData, encoded: bool = False, name: str | None = None
    ) -> RegistryTLS:
        """Read a `spec.certSecretRef` Secret (`encoded=True` for base64 `.data` values).

        Raises `CredentialsError` when a value is not base64 or only one of
        `tls.crt`/`tls.key` is set.
        """
        label = _label(name)

        def get(*keys: str) -> bytes | None:
            for key in keys:
                if data.get(key):
                    return _bytes(data[key], encoded, label, key)
            return None

        tls = cls(get("ca.crt", "caFile"), get("tls.crt", "certFile"), get("tls.key", "keyFile"))
        if bool(tls.cert) != bool(tls.key):
            raise CredentialsError(f"{label}: 'tls.crt' and 'tls.key' must be set together")
        return tls


def _label(name: str | None) -> str:
    return f"secret '{name}'" if name else "the secret"


def _bytes(value: str | bytes, encoded: bool, label: str, key: str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if not encoded:
        return raw
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise CredentialsError(f"{label}: key '{key}' is not valid base64") from None


def _entries(data: SecretData, encoded: bool, label: str) -> Mapping[str, object]:
    for key in (DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_KEY):
        if data.get(key):
            raw = _bytes(data[key], encoded, label, key)
            try:
                doc = json.loads(raw)
            except json.JSONDecodeError as e:
                raise CredentialsError(f"{label}: '{key}' is not valid JSON: {e.msg}") from None
            except UnicodeDecodeError:
                raise CredentialsError(f"{label}: '{key}' is not UTF-8 JSON") from None
            auths = doc.get("auths") if key == DOCKER_CONFIG_JSON_KEY else doc
            if auths is None:
                return {}
            if not isinstance(auths, dict):
                raise CredentialsError(f"{label}: '{key}' must map registries to credentials")
            return auths
    raise CredentialsError(
        f"{label}: expected a Docker config Secret with '{DOCKER_CONFIG_JSON_KEY}' "
        f"(or '{DOCKER_CONFIG_KEY}')"
    )


@dataclass(frozen=True)
class _Key:
    host: str
    port: str
    path: str


def _split_host(netloc: str) -> tuple[str, str]:
    if netloc.startswith("["):
        host, _, rest = netloc.partition("]")
        return host + "]", rest[1:] if rest.startswith(":") else ""
    host, _, port = netloc.partition(":")
    return host, port


def _parse_key(key: str) -> _Key:
    """A config key as the keychain indexes it: scheme dropped, `/v1/` and `/v2/` too."""
    value = key if key.startswith(("https://", "http://")) else f"https://{key}"
    parts = urlsplit(value)
    path = parts.path
    if path.startswith(("/v1/", "/v2/")):
        path = path[3:]
    host, port = _split_host(parts.netloc)
    if host == "docker.io":
        host = DOCKER_HUB
    return _Key(host, port, "" if path == "/" else path)


def _matches(key: _Key, host: str, port: str, path: str) -> bool:
    if key.port != port or not path.startswith(key.path):
        return False
    globs, labels = key.host.split("."), host.split(".")
    return len(globs) == len(labels) and all(
        fnmatch.fnmatchcase(label, glob) for glob, label in zip(globs, labels, strict=True)
    )


def _decode_auth(value: object, label: str, key: str) -> tuple[str, str]:
    if not isinstance(value, str):
        raise CredentialsError(f"{label}: 'auth' of '{key}' must be a string")
    try:
        text = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialsError(f"{label}: 'auth' of '{key}' is not valid base64") from None
    user, colon, password = text.partition(":")
    if not colon:
        raise CredentialsError(
            f"{label}: 'auth' of '{key}' must be formatted as base64(username:password)"
        )
    return user, password


def credentials_for(
    image: ImageName, data: SecretData, *, encoded: bool = False, name: str | None = None
) -> RegistryCredentials | None:
    """The credentials a Docker config Secret holds for `image`, or None when no entry matches.

    `encoded=True` when the values are the Secret's base64 `.data`. Raises
    `CredentialsError` (naming the Secret, never a value) when the Secret is
    not a Docker config or the matching entry cannot be decoded.
    """
    label = _label(name)
    entries = _entries(data, encoded, label)
    host, port = _split_host(image.registry)
    path = "/" + image.repository
    for raw_key in sorted(entries, reverse=True):
        if not _matches(_parse_key(raw_key), host, port, path):
            continue
        entry = entries[raw_key]
        if not isinstance(entry, dict):
            raise CredentialsError(f"{label}: entry '{raw_key}' must be an object")
        if entry.get("auth"):
            user, password = _decode_auth(entry["auth"], label, raw_key)
        else:
            user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        if not user and not password:
            return None
        return RegistryCredentials(user, password)
    return None


def proxy_from_secret(data: Mapping[str, str | bytes], name: str | None = None) -> GitProxy:
    """`spec.proxySecretRef`'s `address` (http or https), `username`, `password` (decoded values).

    Raises `CredentialsError` when `address` is missing or not http(s).
    """
    try:
        return GitProxy.from_secret(data, name)
    except GitCredentialsError as e:
        raise CredentialsError(e.message) from None
