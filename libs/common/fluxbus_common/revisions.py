"""What revision an object's status shows (`fluxbus get`'s REVISION column,
`gotk_resource_info`'s `revision` label).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def revision_of(status: Mapping[str, Any]) -> str:
    """Return the revision a status shows: the artifact's, the last applied, the
    latest image or push, the chosen tag, or the scanned tag count ("" if none)."""
    artifact = status.get("artifact")
    if isinstance(artifact, Mapping) and artifact.get("revision"):
        return str(artifact["revision"])
    for field in ("lastAppliedRevision", "latestImage", "lastPushCommit"):
        if status.get(field):
            return str(status[field])
    latest = status.get("latestRef")
    if isinstance(latest, Mapping) and latest.get("name"):
        tag = f":{latest['tag']}" if latest.get("tag") else ""
        return f"{latest['name']}{tag}"
    scan = status.get("lastScanResult")
    if isinstance(scan, Mapping) and "tagCount" in scan:
        return f"{scan['tagCount']} tags"
    return ""
