"""What would change in the cluster, object by object: the live object against
the server-side dry-run of the desired one (or nothing, for a prune), with
what the server owns (managedFields, status, resourceVersion…) left out and
Secret values masked; as a unified diff and as the list of changed fields.

Used by `fluxbus diff`, the kustomize service's report-only drift
(`fluxbus.io/drift: report`) and the helm service's drift detection.

Pure: no I/O.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

SERVER_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
"""Metadata the API server writes: never a difference a user made."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MASK = "***"
MASK_BEFORE = "*** (before)"
MASK_AFTER = "*** (after)"
"""Secret values are never printed; a changed one shows as before/after tokens
(Flux's convention), an unchanged one as `***`."""
MAX_FIELDS = 10
"""Changed fields named per object in a Drifted message (the diff has them all)."""

Action = Literal["created", "drifted", "deleted"]


@dataclass(frozen=True)
class ObjectDiff:
    """One object that differs: how (created / drifted / deleted), the unified diff
    and the changed fields (dotted paths)."""

    subject: str
    action: Action
    diff: str
    fields: tuple[str, ...] = ()


def comparable(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return the object without what the API server owns (status, managedFields,
    resourceVersion, uid, timestamps, kubectl's last-applied annotation)."""
    if obj is None:
        return None
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = dict(out.get("metadata") or {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def _is_secret(obj: Mapping[str, Any] | None) -> bool:
    return obj is not None and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def mask_secrets(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Return both sides with every Secret value replaced by a mask that still
    shows whether the value changed. Modifies and returns the given dicts."""
    if not (_is_secret(before) or _is_secret(after)):
        return before, after
    for field in ("data", "stringData"):
        old = dict((before or {}).get(field) or {})
        new = dict((after or {}).get(field) or {})
        for key in old.keys() | new.keys():
            same = key in old and key in new and old[key] == new[key]
            if key in old:
                old[key] = MASK if same else MASK_BEFORE
            if key in new:
                new[key] = MASK if same else MASK_AFTER
        if before is not None and field in before:
            before[field] = old
        if after is not None and field in after:
            after[field] = new
    return before, after


def changed_fields(before: Any, after: Any, path: str = "") -> Iterator[str]:
    """Yield the dotted paths (`spec.replicas`, `spec.ports[0].port`) where the two differ."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                yield child
            else:
                yield from changed_fields(before[key], after[key], child)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            yield from changed_fields(b, a, f"{path}[{i}]")
    elif before != after:
        yield path or "."


def _yaml(obj: Mapping[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(dict(obj), sort_keys=True, default_flow_style=False).splitlines(
        keepends=True
    )


def object_diff(
    subject: str, live: Mapping[str, Any] | None, desired: Mapping[str, Any] | None
) -> ObjectDiff | None:
    """Compare the live object with the desired one (the dry-run answer; None: it
    would be pruned). Return None when they do not differ."""
    before, after = mask_secrets(comparable(live), comparable(desired))
    if before == after:
        return None
    action: Action = "created" if before is None else "deleted" if after is None else "drifted"
    fields = tuple(changed_fields(before, after)) if action == "drifted" else ()
    text = "".join(
        difflib.unified_diff(
            _yaml(before), _yaml(after), fromfile=f"live {subject}", tofile=f"merged {subject}"
        )
    )
    return ObjectDiff(subject, action, text, fields)


def drift_message(diffs: Sequence[ObjectDiff]) -> str:
    """The Drifted condition's message: each object and its changed fields."""
    parts = []
    for d in diffs:
        if d.action == "drifted":
            names = list(d.fields[:MAX_FIELDS])
            if len(d.fields) > MAX_FIELDS:
                names.append(f"and {len(d.fields) - MAX_FIELDS} more")
            parts.append(f"{d.subject} ({', '.join(names)})")
        else:
            parts.append(f"{d.subject} ({'missing' if d.action == 'created' else 'not in Git'})")
    return "Drift detected: " + "; ".join(parts)
