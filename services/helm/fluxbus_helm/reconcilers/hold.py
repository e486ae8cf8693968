"""An operator's rollback of a HelmRelease (`fluxbus rollback helmrelease`).

The CLI sets `fluxbus.io/rollback-to: <Helm revision>` with a reconcile
request; this step rolls the release back to that revision with Helm (a new
revision, "Rollback to N" in `helm history`) instead of installing or
upgrading from Git, then holds there: while the annotation stays, a reconcile
does not upgrade back. The CLI suspends the HelmRelease afterwards; `fluxbus
resume helmrelease` drops the annotation and the release follows Git again.
"""

from __future__ import annotations

from fluxbus_common import keys
from fluxbus_common.api.helm import HelmRelease
from fluxbus_common.conditions import remove_condition, set_condition
from fluxbus_common.errors import Generic, Stalling
from fluxbus_common.events import Severity
from fluxbus_helm.logic import history as hist
from fluxbus_helm.logic.reasons import HelmCondition, HelmReason, ReleaseAction
from fluxbus_helm.reconcilers.actions import Actions, Job, error_text, event_meta
from fluxbus_helmsdk import HelmEngineError

HELD = "(rolled back; fluxbus resume returns to Git)"


def requested_revision(obj: HelmRelease) -> int | None:
    """The Helm revision `fluxbus.io/rollback-to` names, None when it is not set.

    Raises Stalling when the annotation is not a revision number.
    """
    value = (obj.metadata.annotations or {}).get(keys.ROLLBACK_ANNOTATION)
    if not value:
        return None
    try:
        revision = int(value)
    except ValueError:
        revision = 0
    if revision < 1:
        raise Stalling(
            f"{keys.ROLLBACK_ANNOTATION}: {value!r} is not a Helm revision number",
            HelmReason.ROLLBACK_FAILED,
        )
    return revision


async def hold_at(obj: HelmRelease, job: Job, actions: Actions, revision: int) -> str:
    """Roll the release back to `revision` unless it already is; return the Ready message.

    Raises Stalling when the revision is not in Helm's history any more, Generic
    when Helm's rollback fails (the release is left as Helm left it).
    """
    await actions.refresh(obj, job)
    stored = {r.revision: r for r in job.stored}
    target = stored.get(revision)
    if target is None:
        raise Stalling(
            f"cannot roll back to revision {revision}: not in the release history any more "
            "(fluxbus resume returns to Git)",
            HelmReason.ROLLBACK_FAILED,
        )
    newest = max(job.stored, key=lambda r: r.revision)
    if newest.status == "deployed" and (
        newest.revision == revision or newest.description == f"Rollback to {revision}"
    ):
        return f"Helm release held at revision {revision} {HELD}"
    spec = obj.spec.rollback
    meta = event_meta(target.chart_version, job.config_digest, target.app_version)
    name = f"{job.storage_namespace}/{job.release_name}.v{revision}"
    chart = f"{target.chart_name}@{target.chart_version}"
    try:
        await actions.helm.rollback(
            job.target,
            job.release_name,
            storage_namespace=job.storage_namespace,
            version=revision,
            timeout=obj.spec.timeout_seconds,
            wait=not (spec and spec.disable_wait),
            force=bool(spec and spec.force),
            cleanup_on_fail=bool(spec and spec.cleanup_on_fail),
            disable_hooks=bool(spec and spec.disable_hooks),
            max_history=obj.spec.effective_max_history,
        )
    except HelmEngineError as e:
        message = f"Helm rollback to release {name} with chart {chart} failed: {error_text(e)}"
        await actions.refresh(obj, job)
        await actions.record_event(obj, Severity.ERROR, HelmReason.ROLLBACK_FAILED, message, meta)
        raise Generic(message, HelmReason.ROLLBACK_FAILED) from None
    written = await actions.refresh(obj, job)
    for rls in written:
        obj.status.history = hist.record(
            obj.status.history, hist.snapshot(rls, ReleaseAction.ROLLBACK)
        )
    message = f"Helm rollback to release {name} with chart {chart} succeeded"
    gen = obj.metadata.generation
    conds = obj.status.conditions
    remove_condition(conds, HelmCondition.REMEDIATED)
    set_condition(conds, HelmCondition.RELEASED, True, HelmReason.ROLLBACK_SUCCEEDED, message, gen)
    await actions.record_event(obj, Severity.INFO, HelmReason.ROLLBACK_SUCCEEDED, message, meta)
    return f"{message} {HELD}"
