"""A Provider and its Secrets resolved into what an adapter needs to send one request.

Pure: no I/O (the caller reads the Secrets and hands their `data` in).

As notification-controller's `createNotifier`:

- `spec.address`, `spec.username`, `spec.channel`, `spec.proxy`, `spec.timeout`
  (default 15 s) are the base;
- the `spec.secretRef` Secret's keys override them: `address` (at most 2048
  bytes), `username`, `proxy` (deprecated in Flux, still honoured), and add
  `token`, `password` and `headers` (a YAML map of header name to value);
  values are trimmed of surrounding white space as Flux does;
- the `spec.proxySecretRef` Secret (`address`, optional `username`/`password`)
  replaces both proxies;
- TLS from `spec.certSecretRef` (`ca.crt`, `tls.crt` + `tls.key`, or Flux's legacy
  `caFile`/`certFile`/`keyFile`); without it a commit-status provider (github,
  gitlab…) takes them from the `secretRef` Secret when that holds a `ca.crt`.

Differences from Flux, on purpose: a Secret `username` overrides the spec's on its
own (Flux ≥ 2.6 ignores a username without a password); GitHub App credentials and
workload identity are not supported.

`ProviderConfig.secrets` lists every sensitive string (address, token, password,
header values, proxy URL and password) so that `redact` can scrub them from any
text; `repr()` shows only the type and the object name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

from fluxbus_common.api.notification import Provider
from fluxbus_common.errors import Stalling

__all__ = [
    "COMMIT_STATUS_TYPES",
    "REDACTED",
    "ProviderConfig",
    "ProviderConfigError",
    "provider_config",
]

MAX_ADDRESS_LENGTH = 2048
"""Flux's limit on `spec.address` and on a Secret's `address`."""

REDACTED = "*****"
"""What a secret is replaced with in text (Flux's masktoken uses the same)."""

COMMIT_STATUS_TYPES = frozenset(
    {"github", "gitlab", "gitea", "bitbucketserver", "bitbucket", "azuredevops"}
)
"""Flux's `isCommitStatusProvider`: types that set Git commit statuses."""

_CA_KEYS = ("ca.crt", "caFile")
_CERT_KEYS = ("tls.crt", "certFile")
_KEY_KEYS = ("tls.key", "keyFile")


class ProviderConfigError(Stalling):
    """A Provider (or one of its Secrets) that cannot be used as written; the message
    names the object and the field, never a secret value. Needs a human: stalling."""

    def __init__(self, provider: Provider, field_name: str, problem: str) -> None:
        ns, name = provider.metadata.namespace, provider.metadata.name
        super().__init__(f"Provider {ns}/{name}: {field_name}: {problem}", reason="InvalidConfig")
        self.field = field_name


@dataclass(frozen=True, repr=False)
class ProviderConfig:
    """Everything an adapter needs to deliver to one Provider (see the module docstring)."""

    type: str
    name: str
    namespace: str
    address: str
    channel: str | None
    username: str | None
    token: str | None
    headers: dict[str, str]
    proxy: str | None
    ca: bytes | None
    cert: bytes | None
    key: bytes | None
    timeout: float
    secrets: tuple[str, ...]
    """Every sensitive string, longest first: what `redact` scrubs."""
    password: str | None = None
    provider_uid: str | None = None
    """The Provider's metadata.uid: its first segment ends Flux's commit-status context."""
    proxy_username: str | None = None
    proxy_password: str | None = None

    def __repr__(self) -> str:
        return f"ProviderConfig(type={self.type!r}, provider={self.namespace}/{self.name})"

    def redact(self, text: str) -> str:
        """`text` with every secret of this Provider replaced by `*****`."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def _text(data: Mapping[str, bytes] | None, key: str) -> str | None:
    if not data or key not in data:
        return None
    return data[key].decode("utf-8", errors="replace").strip()


def _first(data: Mapping[str, bytes] | None, keys: tuple[str, ...]) -> bytes | None:
    for key in keys:
        if data and data.get(key):
            return data[key]
    return None


def _headers(provider: Provider, raw: bytes) -> dict[str, str]:
    try:
        parsed = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ProviderConfigError(
            provider, "secretRef headers", "not a YAML map of header names to values"
        ) from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ProviderConfigError(
            provider, "secretRef headers", "not a YAML map of header names to string values"
        )
    return dict(parsed)


def _check_url(provider: Provider, field_name: str, url: str, schemes: tuple[str, ...]) -> None:
    """Raise unless `url` is absolute with one of `schemes` and a host (the value is
    never quoted: it may carry a token)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise ProviderConfigError(provider, field_name, "not a valid URL") from None
    if parts.scheme not in schemes or not host:
        want = " or ".join(f"{s}://" for s in schemes)
        raise ProviderConfigError(provider, field_name, f"not a valid URL (expected {want}<host>)")


def _sensitive(*values: str | None) -> tuple[str, ...]:
    found: set[str] = set()
    for value in values:
        if not value:
            continue
        found.add(value)
        parts = urlsplit(value) if "://" in value else None
        if parts is not None:
            # Without the scheme, and the path alone when it is long enough to be a
            # webhook secret (Slack/Discord/Teams embed their token in the path).
            found.add(value.split("://", 1)[1])
            rest = parts.path + (f"?{parts.query}" if parts.query else "")
            if len(rest) > 8:
                found.add(rest)
            if parts.password:
                found.add(parts.password)
    return tuple(sorted(found, key=len, reverse=True))


def provider_config(
    provider: Provider,
    secret: Mapping[str, bytes] | None,
    cert_secret: Mapping[str, bytes] | None,
    *,
    proxy_secret: Mapping[str, bytes] | None = None,
) -> ProviderConfig:
    """Resolve `provider` with the `data` of its `secretRef`, `certSecretRef` (and
    `proxySecretRef`) Secrets, None when not referenced.

    Raises ProviderConfigError naming the field when the result cannot be used
    (no or a malformed address, a headers key that is not a YAML map, a client
    certificate without its key, a missing token where the type needs one).
    """
    spec = provider.spec
    address_field = "spec.address"
    address = (spec.address or "").strip()
    if (from_secret := _text(secret, "address")) is not None:
        if len(from_secret.encode()) > MAX_ADDRESS_LENGTH:
            raise ProviderConfigError(
                provider,
                "secretRef address",
                f"exceeds the maximum length of {MAX_ADDRESS_LENGTH} bytes",
            )
        address, address_field = from_secret, "secretRef address"

    username = _text(secret, "username") or spec.username or None
    token = _text(secret, "token") or None
    password = _text(secret, "password") or None
    headers = _headers(provider, secret["headers"]) if secret and "headers" in secret else {}

    proxy = spec.proxy or None
    proxy_field = "spec.proxy"
    if (from_secret := _text(secret, "proxy")) is not None:
        proxy, proxy_field = from_secret or None, "secretRef proxy"
    proxy_username = proxy_password = None
    if proxy_secret is not None:
        proxy = _text(proxy_secret, "address") or None
        proxy_field = "proxySecretRef address"
        if proxy is None:
            raise ProviderConfigError(provider, proxy_field, "missing")
        proxy_username = _text(proxy_secret, "username") or None
        proxy_password = _text(proxy_secret, "password") or None
    if proxy is not None:
        _check_url(provider, proxy_field, proxy, ("http", "https"))

    tls_source = cert_secret
    tls_field = "certSecretRef"
    if tls_source is None and spec.type in COMMIT_STATUS_TYPES and _first(secret, _CA_KEYS):
        tls_source, tls_field = secret, "secretRef"
    ca = _first(tls_source, _CA_KEYS)
    cert = _first(tls_source, _CERT_KEYS)
    key = _first(tls_source, _KEY_KEYS)
    if (cert is None) != (key is None):
        missing = "tls.key" if key is None else "tls.crt"
        raise ProviderConfigError(
            provider,
            f"{tls_field} {missing}",
            "a client certificate needs both tls.crt and tls.key",
        )

    if not address:
        raise ProviderConfigError(provider, address_field, "no address given")
    if len(address.encode()) > MAX_ADDRESS_LENGTH:
        raise ProviderConfigError(
            provider, address_field, f"exceeds the maximum length of {MAX_ADDRESS_LENGTH} bytes"
        )
    if spec.type in COMMIT_STATUS_TYPES:
        if "://" in address:
            _check_url(provider, address_field, address, ("http", "https", "ssh"))
        if not (token or password):
            raise ProviderConfigError(
                provider, "secretRef token", f"a {spec.type} provider needs an API token"
            )
    else:
        _check_url(provider, address_field, address, ("http", "https"))
    if spec.type == "generic-hmac" and not token:
        raise ProviderConfigError(
            provider, "secretRef token", "generic-hmac signs with the token: it must not be empty"
        )

    return ProviderConfig(
        type=spec.type,
        name=provider.metadata.name,
        namespace=provider.metadata.namespace,
        address=address,
        channel=spec.channel or None,
        username=username,
        token=token,
        headers=headers,
        proxy=proxy,
        ca=ca,
        cert=cert,
        key=key,
        timeout=spec.timeout_seconds,
        secrets=_sensitive(address, token, password, proxy, proxy_password, *headers.values()),
        password=password,
        provider_uid=provider.metadata.uid,
        proxy_username=proxy_username,
        proxy_password=proxy_password,
    )
