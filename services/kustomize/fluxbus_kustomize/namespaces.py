"""CreateNamespace (Argo CD's sync option): with the annotation
`fluxbus.io/create-namespace: "true"`, a Kustomization's `spec.targetNamespace`
is created before the apply when it is missing, labelled as fluxbus's (owner
labels and `fluxbus.io/created-by: create-namespace`).

The Namespace is not put in the inventory, so it is never pruned: deleting it
would delete whatever else lives in it (Argo CD leaves it too). An existing
Namespace is left exactly as it is.
"""

from __future__ import annotations

from fluxbus_common import keys
from fluxbus_common.api import Kustomization
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_kube.errors import ClusterError
from fluxbus_kube.resources import Change
from fluxbus_kustomize.ports import ClusterPort

CREATED_BY = "create-namespace"


def wanted(obj: Kustomization) -> str | None:
    """Return the namespace to create for `obj`, or None."""
    value = (obj.metadata.annotations or {}).get(keys.CREATE_NAMESPACE_ANNOTATION, "")
    if value.strip().casefold() != "true":
        return None
    return obj.spec.target_namespace or None


async def ensure_namespace(obj: Kustomization, cluster: ClusterPort) -> Change | None:
    """Create the target namespace when asked and missing; return the Change when
    it was created. Raises Generic(ReconciliationFailed)."""
    name = wanted(obj)
    if name is None:
        return None
    doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                keys.KUSTOMIZE_NAME_LABEL: obj.metadata.name,
                keys.KUSTOMIZE_NAMESPACE_LABEL: obj.metadata.namespace,
                keys.CREATED_BY_LABEL: CREATED_BY,
            },
        },
    }
    try:
        ref = await cluster.ref_of(doc)
        if await cluster.get(ref) is not None:
            return None
        changes = await cluster.apply_all([doc])
    except ClusterError as e:
        raise Generic(f"creating namespace {name}: {e}", Reason.RECONCILIATION_FAILED) from None
    return changes[0] if changes else None
