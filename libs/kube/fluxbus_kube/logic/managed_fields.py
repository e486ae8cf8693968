"""Field ownership under server-side apply: taking over what `kubectl` changed
by hand, as kustomize-controller does under its ssa Override policy.

`takeover(managedFields, keep)` moves the fields of the cleanup managers
(`kubectl apply/edit/patch/label/scale`, `before-first-apply`, and Flux's
`kustomize-controller` on a cluster migrating from Flux) into
fluxbus's own Apply entry, so the next apply removes those no longer in Git;
fields under the JSON pointers in `keep` (drift ignore rules) stay with their
manager.

Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_common.keys import FIELD_MANAGER

FLUX_MANAGER = "kustomize-controller"
"""The field manager of Flux's kustomize-controller: fluxbus's predecessor on a
cluster migrating from Flux."""

CLEANUP_MANAGERS: tuple[tuple[str, str], ...] = (
    ("kubectl", "Apply"),
    ("kubectl", "Update"),
    ("before-first-apply", "Update"),
    (FLUX_MANAGER, "Apply"),
    (FLUX_MANAGER, "Update"),
)
"""(manager prefix, operation) whose fields fluxbus takes over under ssa Override, as
kustomize-controller does: `kubectl apply/edit/patch/label/scale` and the
`before-first-apply` entry the API server writes for client-side-applied objects;
and kustomize-controller itself (its server-side apply entries and its pre-SSA
updates), so fluxbus owns what Flux applied and a field removed from Git goes."""


def _merge_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_fields(out[key], value)
        else:
            out.setdefault(key, value)
    return out


def pointer_fields(pointer: str) -> list[str] | None:
    """Return the fieldsV1 path (`f:spec`, `f:replicas`) of a JSON pointer through
    maps only, or None when it goes through a list (no simple fieldsV1 path)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts or any(p.isdigit() or p == "-" for p in parts):
        return None
    return [f"f:{p}" for p in parts]


def split_fields(
    fields: Mapping[str, Any], paths: Sequence[list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a fieldsV1 set into (the parts under `paths`, the rest)."""
    rest = copy.deepcopy(dict(fields))
    held: dict[str, Any] = {}
    for path in paths:
        node: Any = rest
        parents = []
        for part in path[:-1]:
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            parents.append((node, part))
            node = node[part]
        if not isinstance(node, dict) or path[-1] not in node:
            continue
        value = node.pop(path[-1])
        target = held
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
        for parent, part in reversed(parents):  # drop maps left holding only "."
            if set(parent[part]) <= {"."}:
                del parent[part]
    return held, rest


def _foreign(entry: Mapping[str, Any]) -> bool:
    manager = str(entry.get("manager") or "")
    return any(
        manager.startswith(name) and entry.get("operation") == op for name, op in CLEANUP_MANAGERS
    )


def takeover(
    managed: Sequence[Mapping[str, Any]], keep: Sequence[str] = (), manager: str = FIELD_MANAGER
) -> list[dict[str, Any]] | None:
    """Return managedFields with the cleanup managers' fields moved into the Apply
    entry of `manager` (fluxbus's), or None when there is nothing to take over.

    Fields under the JSON pointers in `keep` (drift ignore rules) stay with
    their manager; a pointer through a list disables the takeover for the object.
    """
    keep_paths = [pointer_fields(p) for p in keep]
    if any(p is None for p in keep_paths):
        return None
    paths = [p for p in keep_paths if p]
    taken = [e for e in managed if _foreign(e)]
    if not taken:
        return None
    ours = next(
        (
            e
            for e in managed
            if e.get("manager") == manager
            and e.get("operation") == "Apply"
            and not e.get("subresource")
        ),
        None,
    )
    fields: dict[str, Any] = dict((ours or {}).get("fieldsV1") or {})
    left: list[dict[str, Any]] = []
    for e in taken:
        held, rest = split_fields(e.get("fieldsV1") or {}, paths)
        fields = _merge_fields(fields, rest)
        if held:
            left.append({**e, "fieldsV1": held})
    entry = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": (ours or taken[0]).get("apiVersion"),
        "time": (ours or taken[0]).get("time"),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    kept = [dict(e) for e in managed if not _foreign(e) and e is not ours]
    if left == [dict(e) for e in taken]:
        return None  # everything they own is ignored: nothing to take over
    return [*kept, *left, entry]
