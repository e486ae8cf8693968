"""Helm's release storage records (Secrets `sh.helm.release.v1.<name>.v<N>`,
type `helm.sh/release.v1`): decoding and re-encoding one to mark a release
stuck in a pending state as failed, as helm-controller's unlock does.

The `release` key holds base64(gzip(JSON)), itself base64-encoded as Secret data.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections.abc import Mapping
from typing import Any

SECRET_TYPE = "helm.sh/release.v1"
MAX_RELEASE_BYTES = 64 * 2**20
"""A decompressed release record larger than this is refused (a gzip bomb guard)."""


def secret_name(release: str, revision: int) -> str:
    """The name of a release revision's storage Secret."""
    return f"sh.helm.release.v1.{release}.v{revision}"


def _decode(data: str) -> dict[str, Any]:
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            raw = gz.read(MAX_RELEASE_BYTES + 1)
        if len(raw) > MAX_RELEASE_BYTES:
            raise ValueError("release record too large")
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("release record is not an object")
    return doc


def mark_failed(secret: Mapping[str, Any], description: str) -> dict[str, Any]:
    """Return the storage Secret with its release marked `failed` (helm-controller's
    unlock of a stale pending release). Raises ValueError."""
    return set_status(secret, "failed", description)


def set_status(secret: Mapping[str, Any], status: str, description: str) -> dict[str, Any]:
    """Return the storage Secret with its release's status set to `status` (record
    and `status` label) and `description` recorded. Raises ValueError when it is
    not a Helm release record."""
    data = (secret.get("data") or {}).get("release")
    if not isinstance(data, str):
        raise ValueError("not a Helm release record")
    try:
        release = _decode(data)
    except (ValueError, OSError) as e:
        raise ValueError(f"unreadable Helm release record: {e}") from None
    info = dict(release.get("info") or {})
    info["status"] = status
    info["description"] = description
    release["info"] = info
    packed = gzip.compress(json.dumps(release, separators=(",", ":")).encode(), mtime=0)
    encoded = base64.b64encode(base64.b64encode(packed)).decode()
    out = json.loads(json.dumps(dict(secret)))
    out["data"] = {**out.get("data", {}), "release": encoded}
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), "status": status}
    return out
