"""Git credentials from a GitRepository's `spec.secretRef` secret (Flux's keys).

Pure: no I/O.

| key                   | use                                                  |
|-----------------------|------------------------------------------------------|
| `username`/`password` | HTTPS basic auth                                     |
| `bearerToken`         | HTTPS `Authorization: Bearer`                        |
| `ca.crt` (`caFile`)   | extra CA to trust for HTTPS (`ca.crt` wins)          |
| `tls.crt`/`tls.key`   | HTTPS client certificate (mTLS)                      |
| `identity`            | SSH private key                                      |
| `password`            | with `identity`: the key's passphrase                |
| `known_hosts`         | SSH host keys; required, never accepted blindly      |

`spec.proxySecretRef` secrets (`address`, `username`, `password`) become a
`GitProxy`; http:// and https:// proxies are supported (SOCKS5 is not yet).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from fluxbus_git.errors import GitCredentialsError
from fluxbus_git.logic.url import GitURL


def _text(v: bytes | None) -> str | None:
    return None if v is None else v.decode("utf-8").strip("\r\n")


@dataclass(frozen=True, repr=False)
class GitAuth:
    """Credentials for one remote. `repr()` never shows a value."""

    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    ca_cert: bytes | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    identity: bytes | None = None
    known_hosts: bytes | None = None
    secret_name: str | None = None
    """Name of the secret, for messages only."""

    def __repr__(self) -> str:
        present = [
            f.name for f in fields(self) if getattr(self, f.name) and f.name != "secret_name"
        ]
        return f"GitAuth(secret={self.secret_name!r}, keys={present})"

    @property
    def secret_label(self) -> str:
        return f"secret '{self.secret_name}'" if self.secret_name else "the secret"

    @property
    def passphrase(self) -> str | None:
        """The SSH key passphrase (Flux stores it under `password` next to `identity`)."""
        return self.password if self.identity else None

    def sensitive_values(self) -> list[str]:
        """Every secret string, for redaction of error messages."""
        out: list[str] = []
        for v in (self.password, self.bearer_token):
            if v:
                out.append(v)
        return out

    def redact(self, text: str) -> str:
        """`text` with every secret string replaced by `***` (for error messages)."""
        for secret in self.sensitive_values():
            text = text.replace(secret, "***")
        return text

    @classmethod
    def from_secret(
        cls, data: Mapping[str, str | bytes], name: str | None = None, encoded: bool = False
    ) -> GitAuth:
        """Build from a secret's data. `encoded=True` when values are base64 (`.data`).

        Raises `GitCredentialsError` when a value cannot be decoded or a pair is half set.
        """

        def get(key: str) -> bytes | None:
            v = data.get(key)
            if v is None:
                return None
            raw = v.encode() if isinstance(v, str) else v
            if encoded:
                try:
                    raw = base64.b64decode(raw, validate=True)
                except ValueError:
                    raise GitCredentialsError(
                        f"secret '{name}': key '{key}' is not valid base64"
                    ) from None
            return raw

        auth = cls(
            username=_text(get("username")),
            password=_text(get("password")),
            bearer_token=_text(get("bearerToken")),
            ca_cert=get("ca.crt") or get("caFile"),
            tls_cert=get("tls.crt"),
            tls_key=get("tls.key"),
            identity=get("identity"),
            known_hosts=get("known_hosts"),
            secret_name=name,
        )
        if bool(auth.tls_cert) != bool(auth.tls_key):
            raise GitCredentialsError(
                f"{auth.secret_label}: 'tls.crt' and 'tls.key' must be set together"
            )
        return auth


@dataclass(frozen=True, repr=False)
class GitProxy:
    """An HTTP(S) proxy for Git over http(s). `repr()` never shows the password."""

    address: str
    username: str | None = None
    password: str | None = None
    secret_name: str | None = None

    def __repr__(self) -> str:
        return f"GitProxy(address={self.redacted_address!r}, secret={self.secret_name!r})"

    @property
    def redacted_address(self) -> str:
        parts = urlsplit(self.address)
        host = parts.hostname or ""
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return f"{parts.scheme}://{netloc}"

    @classmethod
    def from_secret(cls, data: Mapping[str, str | bytes], name: str | None = None) -> GitProxy:
        """Build from a proxy secret's (decoded) data. Raises `GitCredentialsError`."""

        def get(key: str) -> str | None:
            v = data.get(key)
            return None if v is None else (v.decode() if isinstance(v, bytes) else v).strip()

        label = f"secret '{name}'" if name else "the proxy secret"
        address = get("address")
        if not address:
            raise GitCredentialsError(f"{label}: 'address' is required for a proxy")
        scheme = urlsplit(address).scheme.lower()
        if scheme not in ("http", "https"):
            raise GitCredentialsError(
                f"{label}: proxy address scheme '{scheme or address}' is not supported; "
                "use http:// or https://"
            )
        if urlsplit(address).password is not None:
            raise GitCredentialsError(
                f"{label}: put the proxy credentials in 'username'/'password', not the address"
            )
        return cls(address, get("username"), get("password"), name)


def check_auth(gurl: GitURL, auth: GitAuth | None) -> None:
    """Refuse credentials that cannot work for `gurl` before any connection is made.

    SSH needs `identity` and `known_hosts` (host keys are never accepted
    blindly); http(s) basic auth needs `username` with `password`. Raises
    `GitCredentialsError` naming the secret key to set.
    """
    if not gurl.is_ssh:
        if auth is not None and auth.password and not auth.username and not auth.bearer_token:
            raise GitCredentialsError(
                f"{auth.secret_label}: 'password' requires 'username' to be set"
            )
        return
    label = auth.secret_label if auth else "a secret referenced by spec.secretRef"
    if auth is None or not auth.identity:
        raise GitCredentialsError(
            f"SSH URL '{gurl.redacted()}' needs a private key: set 'identity' in {label}"
        )
    if not auth.known_hosts or not auth.known_hosts.strip():
        raise GitCredentialsError(
            f"SSH URL '{gurl.redacted()}' needs the host's public key: set 'known_hosts' in "
            f"{label} (host keys are never accepted blindly)"
        )
