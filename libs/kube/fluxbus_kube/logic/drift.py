"""Flux's drift ignore rules (`spec.ignore`, and fluxbus's `spec.driftIgnoreRules`
with the same behaviour): fields whose drift is not corrected (e.g.
`/spec/replicas` under an autoscaler).

A rule's `target` is kustomize's selector — group, version, kind, name and
namespace as anchored regular expressions, label and annotation selectors —
and its `paths` are JSON pointers (RFC 6901).

As Flux documents it ("Ignore Rules"), an object is created with the ignored
fields' values from Git; on an existing object each ignored field is either
*stripped* from the apply (another server-side apply manager owns it) or
*adopted* (the live value is applied, so nothing changes) — `resolve_ignored`.

Pure: no I/O.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_common.api.kustomize import DriftIgnoreRule, Selector
from fluxbus_common.keys import FIELD_MANAGER
from fluxbus_common.selectors import SelectorError, parse_label_selector
from fluxbus_kube.logic.managed_fields import pointer_fields
from fluxbus_kube.logic.ordering import group_of

Ident = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name) of a manifest."""


def ident_of(obj: Mapping[str, Any]) -> Ident:
    """Return (apiVersion, kind, namespace, name) of a manifest."""
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion")),
        str(obj.get("kind")),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


def target_matches(target: Selector | None, obj: Mapping[str, Any]) -> bool:
    """Return whether kustomize's selector `target` (None: everything) selects `obj`."""
    if target is None:
        return True
    api_version = str(obj.get("apiVersion", ""))
    meta = obj.get("metadata") or {}
    fields = (
        (target.group, group_of(api_version)),
        (target.version, api_version.rsplit("/", 1)[-1]),
        (target.kind, str(obj.get("kind", ""))),
        (target.name, str(meta.get("name") or "")),
        (target.namespace, str(meta.get("namespace") or "")),
    )
    for pattern, value in fields:
        if pattern and not re.fullmatch(pattern, value):
            return False
    try:
        labels = parse_label_selector(target.label_selector)
        annotations = parse_label_selector(target.annotation_selector)
    except SelectorError:
        return False  # a selector no label set can satisfy selects nothing
    return labels(meta.get("labels") or {}) and annotations(meta.get("annotations") or {})


def _parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _child(node: Any, part: str) -> tuple[bool, Any]:
    """Return (found, value) of one step into a map or a list."""
    if isinstance(node, dict):
        return (part in node), node.get(part)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return True, node[int(part)]
    return False, None


def _parent(doc: Any, parts: list[str]) -> Any:
    """Return the container holding the pointer's last part, or None."""
    node = doc
    for part in parts[:-1]:
        found, node = _child(node, part)
        if not found:
            return None
    return node


def remove_pointer(doc: Any, pointer: str) -> None:
    """Remove the value at a JSON pointer (RFC 6901) in place, if present."""
    parts = _parts(pointer)
    if not parts:
        return
    node = _parent(doc, parts)
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]


def get_pointer(doc: Any, pointer: str) -> tuple[bool, Any]:
    """Return (found, value) at a JSON pointer."""
    node = doc
    for part in _parts(pointer):
        found, node = _child(node, part)
        if not found:
            return False, None
    return True, node


def _set_pointer(doc: Any, pointer: str, value: Any) -> bool:
    """Set the value at a JSON pointer, creating missing maps; return False when a
    list index on the way (or at the end) does not exist."""
    parts = _parts(pointer)
    node = doc
    for part in parts[:-1]:
        found, child = _child(node, part)
        if not found:
            if not isinstance(node, dict):
                return False
            child = node[part] = {}
        node = child
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
        return True
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
        return True
    return False


def owned_by_another_applier(
    managed: Sequence[Mapping[str, Any]], pointer: str, manager: str = FIELD_MANAGER
) -> bool:
    """Return whether a server-side apply manager other than `manager` (fluxbus)
    owns the field (a pointer through a list cannot be told apart: False)."""
    path = pointer_fields(pointer)
    if path is None:
        return False
    for entry in managed:
        if entry.get("operation") != "Apply" or entry.get("manager") == manager:
            continue
        node: Any = entry.get("fieldsV1") or {}
        for part in path:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return True
    return False


def resolve_ignored(
    obj: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    pointers: Sequence[str],
    manager: str = FIELD_MANAGER,
) -> dict[str, Any]:
    """Return what to apply for `obj` given its ignored JSON pointers (Flux's rules).

    A new object (`live` None) is applied with the values from Git. On an existing
    object an ignored field is stripped when another server-side apply manager than
    `manager` (the one applying) owns it, else adopted: the live value is applied
    (stripped when the live object has none), so the field keeps whatever it holds
    in the cluster.
    """
    if live is None or not pointers:
        return dict(obj)
    out = copy.deepcopy(dict(obj))
    managed = (live.get("metadata") or {}).get("managedFields") or []
    for pointer in pointers:
        found, value = get_pointer(live, pointer)
        if owned_by_another_applier(managed, pointer, manager) or not found:
            remove_pointer(out, pointer)
        elif not _set_pointer(out, pointer, copy.deepcopy(value)):
            remove_pointer(out, pointer)
    return out


def ignore_drift(obj: Mapping[str, Any], rules: Sequence[DriftIgnoreRule]) -> dict[str, Any]:
    """Return the object without the fields its drift ignore rules name (the "strip"
    of every ignored field, used for toolkit objects kept in the fluxbus store)."""
    matching = [r for r in rules if target_matches(r.target, obj)]
    if not matching:
        return dict(obj)
    out = copy.deepcopy(dict(obj))
    for rule in matching:
        for path in rule.paths:
            remove_pointer(out, path)
    return out


def ignored_paths(
    objects: Sequence[Mapping[str, Any]], rules: Sequence[DriftIgnoreRule]
) -> dict[Ident, list[str]]:
    """Return the JSON pointers the rules ignore, per object that has any."""
    out: dict[Ident, list[str]] = {}
    for obj in objects:
        paths = [p for r in rules if target_matches(r.target, obj) for p in r.paths]
        if paths:
            out[ident_of(obj)] = paths
    return out
