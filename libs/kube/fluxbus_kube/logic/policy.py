"""Per-object apply and prune policies set with Flux's annotations (or labels).

| key | values | meaning |
|---|---|---|
| `kustomize.toolkit.fluxcd.io/ssa` | `Override` (default), `Merge`, `IfNotPresent`, `Ignore` | apply policy (`Ignore`: neither applied nor pruned) |
| `kustomize.toolkit.fluxcd.io/force` | `Enabled`, `Disabled` (default) | recreate on immutable-field changes |
| `kustomize.toolkit.fluxcd.io/prune` | `Enabled` (default), `Disabled` | garbage collection |
| `kustomize.toolkit.fluxcd.io/reconcile` | `Enabled` (default), `Disabled` | neither apply nor prune (on the object in Git or in the cluster) |

Values compare case-insensitively, as Flux documents them capitalised and
users write them lower-case. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fluxbus_common.keys import (
    DISABLED,
    ENABLED,
    KUSTOMIZE_FORCE,
    KUSTOMIZE_PRUNE,
    KUSTOMIZE_RECONCILE,
    KUSTOMIZE_SSA,
)


class SSAPolicy(StrEnum):
    """Values of `kustomize.toolkit.fluxcd.io/ssa`."""

    OVERRIDE = "Override"
    MERGE = "Merge"
    IF_NOT_PRESENT = "IfNotPresent"
    IGNORE = "Ignore"


def metadata_value(obj: Mapping[str, Any] | None, key: str) -> str | None:
    """Return the annotation (else label) `key` of an object, or None."""
    if not obj:
        return None
    meta = obj.get("metadata") or {}
    for section in ("annotations", "labels"):
        value = (meta.get(section) or {}).get(key)
        if value is not None:
            return str(value)
    return None


def _is(obj: Mapping[str, Any] | None, key: str, expected: str) -> bool:
    value = metadata_value(obj, key)
    return value is not None and value.casefold() == expected.casefold()


def ssa_policy(obj: Mapping[str, Any]) -> SSAPolicy:
    """Return the object's SSA policy (Override when unset or unknown)."""
    value = metadata_value(obj, KUSTOMIZE_SSA)
    for policy in SSAPolicy:
        if value is not None and value.casefold() == policy.value.casefold():
            return policy
    return SSAPolicy.OVERRIDE


def reconcile_disabled(obj: Mapping[str, Any] | None) -> bool:
    """Return whether `kustomize.toolkit.fluxcd.io/reconcile: disabled` is set."""
    return _is(obj, KUSTOMIZE_RECONCILE, DISABLED)


def force_enabled(obj: Mapping[str, Any]) -> bool:
    """Return whether `kustomize.toolkit.fluxcd.io/force: enabled` is set."""
    return _is(obj, KUSTOMIZE_FORCE, ENABLED)


def prune_disabled(obj: Mapping[str, Any] | None) -> bool:
    """Return whether `kustomize.toolkit.fluxcd.io/prune: disabled` is set."""
    return _is(obj, KUSTOMIZE_PRUNE, DISABLED)


class Action(StrEnum):
    """What the applier does with one desired object."""

    APPLY = "apply"
    SKIP = "skip"


@dataclass(frozen=True)
class ApplyPolicy:
    """The decision for one desired object."""

    action: Action
    ssa: SSAPolicy
    force: bool
    """Recreate the object when the apply fails on an immutable field."""
    merge: bool
    """Keep fields other managers set (`Merge`): no cleanup of foreign managers."""
    reason: str = ""
    """Why the object is skipped (empty when applied)."""


def apply_policy(
    obj: Mapping[str, Any],
    live: Mapping[str, Any] | None = None,
    *,
    force: bool = False,
) -> ApplyPolicy:
    """Return how to apply `obj` given the live object (None when absent).

    `force` is the caller's `spec.force` (Kustomization, HelmRelease). Skipped: `ssa: Ignore`,
    `reconcile: disabled` on the desired or the live object, and `IfNotPresent`
    when the object exists.
    """
    policy = ssa_policy(obj)
    do_force = force or force_enabled(obj)
    merge = policy is SSAPolicy.MERGE

    def skip(reason: str) -> ApplyPolicy:
        return ApplyPolicy(Action.SKIP, policy, do_force, merge, reason)

    if policy is SSAPolicy.IGNORE:
        return skip(f"{KUSTOMIZE_SSA}: {SSAPolicy.IGNORE}")
    if reconcile_disabled(obj) or reconcile_disabled(live):
        return skip(f"{KUSTOMIZE_RECONCILE}: {DISABLED}")
    if policy is SSAPolicy.IF_NOT_PRESENT and live is not None:
        return skip(f"{KUSTOMIZE_SSA}: {SSAPolicy.IF_NOT_PRESENT} and the object exists")
    return ApplyPolicy(Action.APPLY, policy, do_force, merge)


def may_prune(live: Mapping[str, Any]) -> bool:
    """Return whether garbage collection may delete this live object: not with
    `prune: disabled`, `reconcile: disabled` or `ssa: Ignore` (Flux's exclusions)."""
    return not (
        prune_disabled(live)
        or reconcile_disabled(live)
        or _is(live, KUSTOMIZE_SSA, SSAPolicy.IGNORE)
    )
