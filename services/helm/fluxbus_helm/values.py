"""`spec.valuesFrom` and `spec.values`: the values a HelmRelease hands Helm.

The referenced ConfigMaps and Secrets are read as the kustomize service reads
`substituteFrom` ones: from the target cluster first (with the service's own
identity), then from the fluxbus store, where `fluxbus apply` puts them. The
first place holding the object wins. A missing object or key fails with
Flux's message ("could not resolve Secret chart values reference …") unless
the reference is `optional`. Values are never logged nor put in a message.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from fluxbus_common.api import Secret
from fluxbus_common.api.helm import HelmRelease, ValuesReference
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError
from fluxbus_helm.errors import ClusterReadError
from fluxbus_helm.logic.reasons import HelmReason
from fluxbus_helm.logic.values import ValuesFormatError, merge_maps, read_values, set_path
from fluxbus_helm.ports import HelmStore, ObjectGetter


def _decoded(data: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        try:
            out[str(key)] = base64.b64decode(str(value)).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            out[str(key)] = ""
    return out


class ValuesReader:
    """Composes HelmRelease values from the cluster (when given) and the store."""

    def __init__(self, store: HelmStore, cluster_get: ObjectGetter | None = None) -> None:
        self.store = store
        self.cluster_get = cluster_get

    async def _data(self, ref: ValuesReference, namespace: str) -> dict[str, str] | None:
        """Return the object's data (Secrets decoded), or None when it is nowhere."""
        if self.cluster_get is not None:
            live = await self.cluster_get(ref.kind, namespace, ref.name)
            if live is not None:
                data = live.get("data") or {}
                if ref.kind == "ConfigMap":
                    return {str(k): str(v) for k, v in data.items()}
                return _decoded(data)
        if ref.kind == "ConfigMap":
            doc = await self.store.get_configmap(namespace, ref.name)
            if doc is None:
                return None
            return {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
        doc = await self.store.get_secret(namespace, ref.name)
        return Secret.model_validate(doc).text() if doc is not None else None

    async def compose(self, obj: HelmRelease) -> dict[str, Any]:
        """Return the values of `obj`: `valuesFrom` in order, then `spec.values`.

        Raises Generic(ValuesError) with Flux's message when a reference cannot be
        resolved or merged."""
        ns = obj.metadata.namespace
        result: dict[str, Any] = {}
        inline = obj.spec.values or {}
        seen: dict[tuple[str, str], dict[str, str] | None] = {}
        for ref in obj.spec.values_from:
            key = ref.effective_values_key
            opt = " optional" if ref.optional else ""
            what = (
                f"could not resolve{opt} {ref.kind} chart values reference "
                f"'{ns}/{ref.name}' with key '{key}'"
            )
            if (ref.kind, ref.name) not in seen:
                try:
                    seen[(ref.kind, ref.name)] = await self._data(ref, ns)
                except (ClusterReadError, BusError, ValueError) as e:
                    raise Generic(f"{what}: {e}", HelmReason.VALUES_ERROR) from None
            data = seen[(ref.kind, ref.name)]
            if data is None:
                if ref.optional:
                    continue
                raise Generic(f"{what}: resource not found", HelmReason.VALUES_ERROR)
            if key not in data:
                if ref.optional:
                    continue
                raise Generic(f"{what}: key not found", HelmReason.VALUES_ERROR)
            try:
                if ref.target_path:
                    result = merge_maps(result, inline)
                    set_path(result, ref.target_path, data[key])
                    continue
                result = merge_maps(result, read_values(data[key]))
            except ValuesFormatError as e:
                raise Generic(f"{what}: {e}", HelmReason.VALUES_ERROR) from None
        return merge_maps(result, inline)
