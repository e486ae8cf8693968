"""Drift of a Helm release: its manifest's objects (namespaced ones in the
release namespace, as Helm applies them) against what a server-side dry-run
says the cluster would hold, described one line per drifted object
("Deployment/default/web changed: /spec/replicas", "ConfigMap/default/x
removed"). Server-side metadata (managedFields, resourceVersion, generation,
uid, creationTimestamp) and status are not compared.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from fluxbus_common.safeyaml import load_all

_SERVER_META = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


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


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in _SERVER_META}
    out["metadata"] = meta
    return out


def _changed(before: Any, after: Any, path: str = "") -> Iterator[str]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            yield from _changed(
                before.get(key),
                after.get(key),
                f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}",
            )
    elif before != after:
        yield path or "/"


def drift_line(
    subject: str, live: Mapping[str, Any] | None, merged: Mapping[str, Any]
) -> str | None:
    """Return how `live` drifted from what applying would make it (`merged`), or None."""
    if live is None:
        return f"{subject} removed"
    fields = list(_changed(_comparable(live), _comparable(merged)))
    if not fields:
        return None
    return f"{subject} changed: {', '.join(fields)}"
