"""Comparing a server-side dry-run with the live object, as fluxcd/pkg/ssa
does to decide whether an object needs writing at all.

Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def resource_version(obj: Mapping[str, Any] | None) -> int:
    """Return the object's resourceVersion as a number (0 when absent or opaque)."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Return the object without what moves on every write (resourceVersion,
    managedFields times)."""
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata") or {}
    meta.pop("resourceVersion", None)
    for entry in meta.get("managedFields") or []:
        if isinstance(entry, dict):
            entry.pop("time", None)
    return out


def unchanged(dry_run: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Return whether applying would leave the live object as it is (the dry-run's
    answer equals it, write-time noise aside)."""
    return live is not None and comparable(dry_run) == comparable(live)
