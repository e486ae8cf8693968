"""The HelmChart a HelmRelease's `spec.chart` stands for (helm-controller's
chart template): named `<namespace>-<name>` in the source's namespace, owned
by the HelmRelease through Flux's owner labels.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluxbus_common.api.helm import HelmRelease, HelmReleaseSpec

OWNER_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
OWNER_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"


def chart_ref(obj: HelmRelease) -> tuple[str, str]:
    """Return (namespace, name) of the HelmChart `spec.chart` generates."""
    spec = obj.spec.chart
    assert spec is not None
    ns = spec.spec.source_ref.namespace or obj.metadata.namespace
    return ns, f"{obj.metadata.namespace}-{obj.metadata.name}"


def chart_document(obj: HelmRelease) -> dict[str, Any]:
    """Return the generated HelmChart document (no status) for `spec.chart`."""
    template = obj.spec.chart
    assert template is not None
    ns, name = chart_ref(obj)
    tspec = template.spec
    meta = template.metadata
    labels = {
        **((meta.labels if meta else None) or {}),
        OWNER_NAME_LABEL: obj.metadata.name,
        OWNER_NAMESPACE_LABEL: obj.metadata.namespace,
    }
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if meta is not None and meta.annotations:
        metadata["annotations"] = dict(meta.annotations)
    spec: dict[str, Any] = {
        "chart": tspec.chart,
        "version": tspec.version or "*",
        "sourceRef": {"kind": tspec.source_ref.kind, "name": tspec.source_ref.name},
        "interval": str(tspec.interval or obj.spec.interval),
        "reconcileStrategy": tspec.reconcile_strategy or "ChartVersion",
    }
    if tspec.source_ref.api_version:
        spec["sourceRef"]["apiVersion"] = tspec.source_ref.api_version
    if tspec.values_files:
        spec["valuesFiles"] = list(tspec.values_files)
    if tspec.ignore_missing_values_files:
        spec["ignoreMissingValuesFiles"] = True
    if tspec.verify is not None:
        spec["verify"] = tspec.verify.model_dump(by_alias=True, exclude_none=True)
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": metadata,
        "spec": spec,
    }


def owned_by(doc: Mapping[str, Any], obj: HelmRelease) -> bool:
    """Whether a stored HelmChart document was generated for `obj` (owner labels)."""
    labels = (doc.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(OWNER_NAME_LABEL) == obj.metadata.name
        and labels.get(OWNER_NAMESPACE_LABEL) == obj.metadata.namespace
    )


def unsupported(spec: HelmReleaseSpec) -> list[str]:
    """Return the spec fields fluxbus refuses rather than silently ignores."""
    out = []
    if spec.post_renderers:
        out.append("spec.postRenderers")
    if spec.common_metadata is not None:
        out.append("spec.commonMetadata")
    if spec.kube_config is not None and spec.kube_config.secret_ref is None:
        out.append("spec.kubeConfig without secretRef")
    if spec.chart is None and spec.chart_ref is None:
        out.append("neither spec.chart nor spec.chartRef")
    return out
