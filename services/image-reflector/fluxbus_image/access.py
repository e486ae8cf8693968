"""How to reach an ImageRepository's registry: its parsed name, credentials
(`secretRef`, a `kubernetes.io/dockerconfigjson` Secret), TLS (`certSecretRef`),
proxy (`proxySecretRef`), `insecure` and `timeout` — shared by the ImageRepository
scan and the ImagePolicy digest lookups so both reach the registry the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fluxbus_common.api import ImageRepository, Secret
from fluxbus_common.errors import ReconcileError
from fluxbus_git.logic.auth import GitProxy
from fluxbus_image.errors import ScanAuthFailed
from fluxbus_image.logic.credentials import (
    RegistryCredentials,
    RegistryTLS,
    credentials_for,
    proxy_from_secret,
)
from fluxbus_image.logic.errors import CredentialsError
from fluxbus_image.logic.listing import TagListing
from fluxbus_image.logic.reference import ImageName, parse_image
from fluxbus_image.ports import ImageStore, RegistryPort


def parse_repository_image(repo: ImageRepository) -> ImageName:
    """`spec.image` parsed; raise InvalidImageError (Stalling: ImageURLInvalid) when it cannot be."""
    return parse_image(repo.spec.image)


@dataclass(frozen=True, repr=False)
class RegistryAccess:
    """Everything a registry request needs for one ImageRepository (repr hides secrets)."""

    image: ImageName
    credentials: RegistryCredentials | None = None
    tls: RegistryTLS | None = None
    proxy: GitProxy | None = field(default=None)
    insecure: bool = False
    timeout: float = 30.0

    def __repr__(self) -> str:
        return f"RegistryAccess(image={self.image.canonical!r})"

    async def list_tags(self, registry: RegistryPort) -> TagListing:
        return await registry.list_tags(
            self.image,
            credentials=self.credentials,
            tls=self.tls,
            insecure=self.insecure,
            proxy=self.proxy,
            timeout=self.timeout,
        )

    async def digest(self, registry: RegistryPort, tag: str) -> str:
        return await registry.manifest_digest(
            self.image,
            tag,
            credentials=self.credentials,
            tls=self.tls,
            insecure=self.insecure,
            proxy=self.proxy,
            timeout=self.timeout,
        )


async def read_secret(
    store: ImageStore,
    namespace: str,
    name: str,
    field: str,
    error: Callable[[str], ReconcileError] = ScanAuthFailed,
    prefix: str = "failed to configure authentication options",
) -> dict[str, bytes]:
    """A referenced Secret's decoded data; `error(message)` when it is missing or invalid.

    The message names the field and the Secret, never a value.
    """
    doc = await store.get_secret(namespace, name)
    if doc is None:
        raise error(f"{prefix}: {field}: secret '{namespace}/{name}' not found")
    try:
        return Secret.model_validate(doc).decoded()
    except ValueError as e:
        raise error(f"{prefix}: {field}: secret '{namespace}/{name}' is invalid: {e}") from None


T = TypeVar("T")


def _wrap(read: Callable[[], T]) -> T:
    """Run a Secret reader; its CredentialsError says Flux's "failed to configure…"."""
    try:
        return read()
    except CredentialsError as e:
        raise ScanAuthFailed(f"failed to configure authentication options: {e.message}") from None


async def registry_access(store: ImageStore, repo: ImageRepository) -> RegistryAccess:
    """Gather what is needed to reach `repo`'s registry.

    Raises InvalidImageError for a bad `spec.image` and ScanAuthFailed when a
    referenced Secret is missing or unusable (Flux: AuthenticationFailed).
    """
    image = parse_repository_image(repo)
    namespace = repo.metadata.namespace
    spec = repo.spec
    credentials: RegistryCredentials | None = None
    tls: RegistryTLS | None = None
    proxy: GitProxy | None = None
    if spec.secret_ref is not None:
        auth_name = spec.secret_ref.name
        data = await read_secret(store, namespace, auth_name, "spec.secretRef")
        credentials = _wrap(lambda: credentials_for(image, data, name=f"{namespace}/{auth_name}"))
    if spec.cert_secret_ref is not None:
        cert_name = spec.cert_secret_ref.name
        cert = await read_secret(store, namespace, cert_name, "spec.certSecretRef")
        tls = _wrap(lambda: RegistryTLS.from_secret(cert, name=f"{namespace}/{cert_name}"))
    if spec.proxy_secret_ref is not None:
        ref = spec.proxy_secret_ref.name
        proxy_data = await read_secret(store, namespace, ref, "spec.proxySecretRef")
        proxy = _wrap(lambda: proxy_from_secret(proxy_data, f"{namespace}/{ref}"))
    return RegistryAccess(
        image=image,
        credentials=credentials,
        tls=tls,
        proxy=proxy,
        insecure=spec.insecure,
        timeout=spec.timeout_seconds,
    )
