"""Report-only drift (`fluxbus.io/drift: report`, Argo CD's `selfHeal: false`):
when the rendered output is the one last applied, the objects are compared
with the cluster (server-side dry-run) instead of applied. Drift is recorded
as condition `Drifted=True` naming the objects and fields, and announced by
a warning event when it changes; it is not corrected. Without drift,
`Drifted=False`. A new revision is applied as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_common import keys
from fluxbus_common.api import Kustomization
from fluxbus_common.conditions import (
    ConditionType,
    Reason,
    get_condition,
    remove_condition,
    set_condition,
)
from fluxbus_common.errors import Generic
from fluxbus_common.events import EventSink, Severity
from fluxbus_kube.errors import ClusterError
from fluxbus_kube.logic.diff import drift_message, object_diff
from fluxbus_kube.resources import Change
from fluxbus_kustomize.compare import previews
from fluxbus_kustomize.ports import ClusterPort

NO_DRIFT = "No drift detected"


def report_only(obj: Kustomization) -> bool:
    """Whether the Kustomization asks for drift to be reported, not corrected."""
    value = (obj.metadata.annotations or {}).get(keys.DRIFT_ANNOTATION, "")
    return value.strip().casefold() == keys.DRIFT_REPORT


def no_drift(obj: Kustomization, revision: str) -> None:
    """After an apply: `Drifted=False` in report mode, no Drifted condition otherwise."""
    if report_only(obj):
        message = f"{NO_DRIFT} after applying revision {revision}"
        set_condition(
            obj.status.conditions,
            ConditionType.DRIFTED,
            False,
            Reason.NO_DRIFT,
            message,
            obj.metadata.generation,
        )
    else:
        remove_condition(obj.status.conditions, ConditionType.DRIFTED)


async def report_drift(
    obj: Kustomization,
    cluster: ClusterPort,
    objects: Sequence[Mapping[str, Any]],
    recorder: EventSink | None,
    metadata: dict[str, str],
) -> list[Change]:
    """Compare `objects` (owner labels on) with the cluster; set Drifted; emit a
    warning when the drift found differs from the last report. Return the objects
    as unchanged Changes (for health checks). Raises Generic(ReconciliationFailed)."""
    try:
        found = await previews(cluster, objects, force=obj.spec.force, rules=obj.spec.ignore_rules)
    except ClusterError as e:
        raise Generic(f"drift detection failed: {e}", Reason.RECONCILIATION_FAILED) from None
    diffs = [d for p in found if (d := object_diff(p.subject, p.live, p.merged)) is not None]
    conds = obj.status.conditions
    before = get_condition(conds, ConditionType.DRIFTED)
    gen = obj.metadata.generation
    if diffs:
        message = drift_message(diffs)
        set_condition(conds, ConditionType.DRIFTED, True, Reason.DRIFT_DETECTED, message, gen)
        if recorder is not None and (before is None or before.message != message):
            await recorder.event(obj, Severity.ERROR, Reason.DRIFT_DETECTED, message, metadata)
    else:
        set_condition(conds, ConditionType.DRIFTED, False, Reason.NO_DRIFT, NO_DRIFT, gen)
    return [Change(p.ref, "unchanged", p.live) for p in found if p.ref is not None]
