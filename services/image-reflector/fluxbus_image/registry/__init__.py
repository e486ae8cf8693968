"""The container registry adapter: `RegistryClient` lists tags and reads manifest digests.

The only package of the image-reflector that imports aiohttp for registries;
its errors (`RegistryError` and subclasses) are the service's own.
"""

from fluxbus_image.logic.credentials import RegistryCredentials, RegistryTLS
from fluxbus_image.registry.client import MANIFEST_MEDIA_TYPES, RegistryClient, TagListing
from fluxbus_image.registry.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    RegistryServerError,
    RegistryTLSError,
    RegistryUnreachableError,
)

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryCredentials",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryServerError",
    "RegistryTLS",
    "RegistryTLSError",
    "RegistryUnreachableError",
    "TagListing",
]
