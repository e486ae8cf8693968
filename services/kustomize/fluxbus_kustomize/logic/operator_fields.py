"""What an operator set on a stored toolkit object survives its Kustomization's
next apply, as it does in Flux.

In Flux a parent Kustomization server-side-applies its children; fields it
never applied stay with whoever set them: `flux suspend` (spec.suspend),
`flux reconcile` (reconcile.fluxcd.io/requestedAt, forceAt, resetAt). The
fluxbus store replaces a document whole, so without this a parent's apply
would resume a suspended child and undo a rollback held by `fluxbus rollback`.
Git still wins on what it states: a `suspend` or annotation written in Git is
applied as written.

Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from fluxbus_common import keys

__all__ = ["OPERATOR_ANNOTATIONS", "keep_operator_fields"]

OPERATOR_ANNOTATIONS = (
    keys.RECONCILE_REQUESTED_AT,
    keys.FORCE_REQUESTED_AT,
    "reconcile.fluxcd.io/resetAt",
    keys.ROLLBACK_ANNOTATION,
    keys.SUSPENDED_REASON_ANNOTATION,
)
"""Annotations the CLI (or Flux's CLI) sets on stored objects, never Git."""


def keep_operator_fields(
    desired: Mapping[str, Any], live: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Return `desired` with the live object's operator fields that Git does not state."""
    out = copy.deepcopy(dict(desired))
    if not live:
        return out
    live_ann = (live.get("metadata") or {}).get("annotations") or {}
    kept = {
        k: live_ann[k]
        for k in OPERATOR_ANNOTATIONS
        if k in live_ann and k not in ((out.get("metadata") or {}).get("annotations") or {})
    }
    if kept:
        meta = out.setdefault("metadata", {})
        meta["annotations"] = {**(meta.get("annotations") or {}), **kept}
    live_spec = live.get("spec") or {}
    spec = out.get("spec")
    if live_spec.get("suspend") is True and isinstance(spec, dict) and "suspend" not in spec:
        spec["suspend"] = True
    return out
