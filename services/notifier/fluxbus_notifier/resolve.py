"""Resolve a Provider into a `ProviderConfig`: read its Secret and cert Secret
through the store port and hand them to the pure `provider_config`.

Used by the Provider reconciler (to report a bad configuration) and by the
dispatcher (to send). No I/O library: the store does the reading.
"""

from __future__ import annotations

from fluxbus_common.api.core import Secret
from fluxbus_common.api.notification import Provider
from fluxbus_common.ports import SecretReader
from fluxbus_notifier.errors import InvalidProviderConfig, SecretNotFound
from fluxbus_notifier.logic.provider_config import ProviderConfig, provider_config


async def _secret_data(
    store: SecretReader, provider: Provider, name: str | None, field: str
) -> dict[str, bytes] | None:
    if name is None:
        return None
    ns = provider.metadata.namespace
    doc = await store.get_secret(ns, name)
    if doc is None:
        raise SecretNotFound(
            f"Provider/{ns}/{provider.metadata.name}: {field}: secret {ns}/{name} not found"
        )
    try:
        return Secret.model_validate(doc).decoded()
    except ValueError:
        raise InvalidProviderConfig(
            f"Provider/{ns}/{provider.metadata.name}: {field}: secret {ns}/{name} is invalid"
        ) from None


async def resolve_provider(store: SecretReader, provider: Provider) -> ProviderConfig:
    """Return the Provider's configuration with its Secrets applied.

    Raises SecretNotFound, InvalidProviderConfig (an unreadable Secret),
    ProviderConfigError (a Stalling: the spec or Secret needs a human; the
    message never holds a secret value), or BusError when the store is unreachable.
    """
    spec = provider.spec
    secret = await _secret_data(
        store, provider, spec.secret_ref.name if spec.secret_ref else None, "spec.secretRef"
    )
    cert = await _secret_data(
        store,
        provider,
        spec.cert_secret_ref.name if spec.cert_secret_ref else None,
        "spec.certSecretRef",
    )
    return provider_config(provider, secret, cert)
