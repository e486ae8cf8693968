"""`spec.postBuild.substituteFrom`: reading the referenced ConfigMaps and Secrets.

Flux reads them from the cluster, in the Kustomization's namespace; so does
fluxbus (with the service's own identity, as kustomize-controller uses its
own client for them, not the impersonated one), and then from the fluxbus
store, where `fluxbus apply` puts them. The first place that has the object
wins. A missing reference fails the build (`BuildFailed`) saying where it
looked, unless it is `optional`, which counts as present but empty.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from fluxbus_common.api import Kustomization, Secret
from fluxbus_common.api.kustomize import SubstituteReference
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError
from fluxbus_kube.errors import ApiError, ClusterError
from fluxbus_kube.resources import Ref
from fluxbus_kustomize.ports import ClusterPort, KustomizeStore

_UNREADABLE = (401, 403)
"""API answers meaning "not for you": the store may still hold the object."""


def _decoded(data: Mapping[str, Any]) -> dict[str, str]:
    """Return a cluster Secret's `data` decoded from base64 as UTF-8 text."""
    out: dict[str, str] = {}
    for key, value in data.items():
        try:
            out[str(key)] = base64.b64decode(str(value)).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            out[str(key)] = ""
    return out


async def _from_cluster(
    cluster: ClusterPort, ref: SubstituteReference, namespace: str
) -> tuple[dict[str, str] | None, str]:
    """Return (the values, "") from the cluster, or (None, why not there)."""
    try:
        resource = await cluster.resource_for("v1", ref.kind)
        live = await cluster.get(Ref(resource, namespace, ref.name))
    except ApiError as e:
        if e.status in _UNREADABLE:
            return None, f"the cluster refused to read it ({e.api_message})"
        raise
    if live is None:
        return None, f"not in the cluster (namespace {namespace})"
    if ref.kind == "ConfigMap":
        return {str(k): str(v) for k, v in (live.get("data") or {}).items()}, ""
    return _decoded(live.get("data") or {}), ""


async def _from_store(
    store: KustomizeStore, ref: SubstituteReference, namespace: str
) -> dict[str, str] | None:
    """Return the values from the fluxbus store, or None when it is not there."""
    if ref.kind == "ConfigMap":
        doc = await store.get_configmap(namespace, ref.name)
        return {str(k): str(v) for k, v in ((doc or {}).get("data") or {}).items()} if doc else None
    doc = await store.get_secret(namespace, ref.name)
    return Secret.model_validate(doc).text() if doc else None


async def load_variables(
    obj: Kustomization, store: KustomizeStore, cluster: ClusterPort
) -> dict[str, str]:
    """Return the `substituteFrom` values of `obj` (later references win).

    Each reference is read from the cluster, else from the store. Raises
    Generic(BuildFailed) naming the reference and where it looked when a
    non-optional one is in neither, or when reading fails.
    """
    out: dict[str, str] = {}
    post = obj.spec.post_build
    if post is None:
        return out
    ns = obj.metadata.namespace
    for ref in post.substitute_from or []:
        what = f"substituteFrom {ref.kind}/{ns}/{ref.name}"
        try:
            values, why = await _from_cluster(cluster, ref, ns)
            if values is None:
                values = await _from_store(store, ref, ns)
        except (ClusterError, BusError, ValueError) as e:
            raise Generic(f"{what}: {e}", Reason.BUILD_FAILED) from e
        if values is None:
            if ref.optional:
                continue
            raise Generic(f"{what} not found: {why}, nor in the fluxbus store", Reason.BUILD_FAILED)
        out.update(values)
    return out
