"""STAND-IN (branch notif-service): the minimal Provider configuration the
dispatcher needs to run; the notif-providers branch delivers the real module.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fluxbus_common.api.notification import Provider


class ProviderConfigError(ValueError):
    """The Provider or its Secret is invalid (the message names the field)."""


@dataclass(frozen=True, repr=False)
class ProviderConfig:
    """Everything needed to send to one Provider (secrets resolved)."""

    type: str
    name: str
    namespace: str
    address: str
    timeout: float
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def redact(self, text: str) -> str:
        """`text` with every sensitive string replaced by `***`."""
        for s in self.secrets:
            if s:
                text = text.replace(s, "***")
        return text


def provider_config(
    provider: Provider,
    secret: Mapping[str, bytes] | None,
    cert_secret: Mapping[str, bytes] | None,
) -> ProviderConfig:
    """Resolve `provider` with its Secret; raise ProviderConfigError when unusable."""
    data = dict(secret or {})
    address = (data.get("address") or b"").decode() or provider.spec.address or ""
    token = (data.get("token") or b"").decode() or None
    if not address:
        raise ProviderConfigError(f"Provider/{provider.metadata.name}: spec.address: required")
    return ProviderConfig(
        type=provider.spec.type,
        name=provider.metadata.name,
        namespace=provider.metadata.namespace,
        address=address,
        timeout=provider.spec.timeout_seconds,
        token=token,
        secrets=tuple(s for s in (address, token) if s),
    )
