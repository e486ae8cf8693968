"""Flux's `spec.driftIgnoreRules`: fields that are neither applied nor
corrected (e.g. `/spec/replicas` under an autoscaler).

A rule's `target` is kustomize's selector — group, version, kind, name and
namespace as anchored regular expressions, label and annotation selectors —
and its `paths` are JSON pointers (RFC 6901).

Pure: no I/O.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_common.api.kustomize import DriftIgnoreRule, Selector
from fluxbus_common.selectors import SelectorError, parse_label_selector
from fluxbus_kustomize.logic.ordering import group_of

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


def remove_pointer(doc: Any, pointer: str) -> None:
    """Remove the value at a JSON pointer (RFC 6901) in place, if present."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts:
        return
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]


def ignore_drift(obj: Mapping[str, Any], rules: Sequence[DriftIgnoreRule]) -> dict[str, Any]:
    """Return the object without the fields its drift ignore rules name, so they are
    neither applied nor corrected (e.g. `/spec/replicas` under an autoscaler)."""
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
