"""Drift of a Helm release: its manifest's objects (namespaced ones in the
release namespace, as Helm applies them) against what a server-side dry-run
says the cluster would hold, described one line per drifted object
("Deployment/default/web changed: spec.replicas", "ConfigMap/default/x
removed"), through fluxbus_kube's object diff; and handing corrected fields back
to Helm's field manager.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from fluxbus_common.safeyaml import load_all
from fluxbus_kube.logic.diff import object_diff


def manifest_objects(manifest: str, namespace: str) -> list[dict[str, Any]]:
    """Return the objects of a release manifest, namespace defaulted. Raises ValueError."""
    try:
        docs = load_all(manifest)
    except yaml.YAMLError as e:
        raise ValueError(f"release manifest does not parse: {e}") from None
    out = []
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        obj = dict(doc)
        meta = dict(obj.get("metadata") or {})
        meta.setdefault("namespace", namespace)
        obj["metadata"] = meta
        out.append(obj)
    return out


def drift_line(
    subject: str, live: Mapping[str, Any] | None, merged: Mapping[str, Any]
) -> str | None:
    """Return how `live` drifted from what applying would make it (`merged`), or
    None (fluxbus_kube's object diff: server-owned fields left out, Secret values
    never shown)."""
    diff = object_diff(subject, live, merged)
    if diff is None:
        return None
    if diff.action == "created":
        return f"{subject} removed"
    return f"{subject} changed: {', '.join(diff.fields)}"


HELM_MANAGER = "helm"
"""Helm's server-side apply field manager (when the object names no other)."""


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        old = out.get(key)
        out[key] = (
            _merge(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
        )
    return out


def hand_back(managed: Sequence[Mapping[str, Any]], ours: str) -> list[dict[str, Any]] | None:
    """Return managedFields with the fields of `ours` (the manager that corrected
    drift) moved into Helm's Apply entry, so Helm's next upgrade owns them again
    (as helm-controller corrects drift as Helm's own manager); None when `ours`
    holds nothing."""
    mine = [e for e in managed if e.get("manager") == ours and not e.get("subresource")]
    if not mine:
        return None
    applies = [
        e
        for e in managed
        if e.get("operation") == "Apply" and e.get("manager") != ours and not e.get("subresource")
    ]
    helm = next((e for e in applies if e.get("manager") == HELM_MANAGER), None)
    helm = helm or (applies[0] if len(applies) == 1 else None)
    fields: dict[str, Any] = dict((helm or {}).get("fieldsV1") or {})
    for e in mine:
        fields = _merge(fields, e.get("fieldsV1") or {})
    entry = {
        "manager": (helm or {}).get("manager") or HELM_MANAGER,
        "operation": "Apply",
        "apiVersion": (helm or mine[0]).get("apiVersion"),
        "time": (helm or mine[0]).get("time"),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    rest = [dict(e) for e in managed if e not in mine and e is not helm]
    return [*rest, entry]


HOOK_ANNOTATION = "helm.sh/hook"
"""Objects Helm runs as hooks are not part of the release's inventory (as Flux)."""


def release_objects(manifest: str, namespace: str) -> list[dict[str, Any]]:
    """Return the manifest's objects that make up the release (hooks left out).

    Raises ValueError when the manifest does not parse.
    """
    return [
        obj
        for obj in manifest_objects(manifest, namespace)
        if HOOK_ANNOTATION not in ((obj.get("metadata") or {}).get("annotations") or {})
    ]


def inventory_entry(
    namespace: str, name: str, group: str, kind: str, version: str
) -> dict[str, str]:
    """One `status.inventory.entries[]` item as Flux writes it:
    `<namespace>_<name>_<group>_<Kind>` (a `:` in a name written `__`) and the version."""
    return {"id": "_".join((namespace, name.replace(":", "__"), group, kind)), "v": version}
