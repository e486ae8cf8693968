"""Core `v1` Secret and ConfigMap, as the Kubernetes API accepts them.

Both live in the secrets bucket (`KindInfo.store == "secrets"`), under
`store_key`. Secret `data` values must be base64 (the API server rejects
anything else); `stringData` is plain text and wins over `data` on read.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import AfterValidator

from fluxbus_common.api.meta import KubeObject
from fluxbus_common.subjects import configmap_key, secret_key

__all__ = ["ConfigMap", "Secret"]


def _check_base64_values(data: dict[str, str] | None) -> dict[str, str] | None:
    for key, value in (data or {}).items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f'value of key "{key}" is not valid base64') from None
    return data


Base64Map = Annotated[dict[str, str] | None, AfterValidator(_check_base64_values)]


class Secret(KubeObject):
    """A Kubernetes Secret (credentials for Git, registries, providers, substitution)."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Secret"] = "Secret"
    data: Base64Map = None
    string_data: dict[str, str] | None = None
    type: str | None = None
    immutable: bool | None = None

    @property
    def store_key(self) -> str:
        return secret_key(self.metadata.namespace, self.metadata.name)

    def decoded(self) -> dict[str, bytes]:
        """Return every key's value as bytes: `data` base64-decoded, then `stringData` over it."""
        out = {k: base64.b64decode(v) for k, v in (self.data or {}).items()}
        out.update({k: v.encode() for k, v in (self.string_data or {}).items()})
        return out

    def text(self) -> dict[str, str]:
        """Return every key's value decoded as UTF-8 text (undecodable bytes replaced)."""
        return {k: v.decode("utf-8", errors="replace") for k, v in self.decoded().items()}


class ConfigMap(KubeObject):
    """A Kubernetes ConfigMap (post-build substitution variables)."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    data: dict[str, str] | None = None
    binary_data: Base64Map = None
    immutable: bool | None = None

    @property
    def store_key(self) -> str:
        return configmap_key(self.metadata.namespace, self.metadata.name)
