"""helm-controller's atomic release: determine the release's state, run the
action it calls for, and loop until the release is in sync, a remediation
has run, or an action type would repeat — each action type runs at most once
per reconcile, a remediation ends it.

Drift detection (`driftDetection.mode` enabled|warn) runs when the release is
otherwise in sync: drift is reported (condition Drifted, a warning event)
and, when enabled, corrected by re-applying the release's objects.
"""

from __future__ import annotations

from fluxbus_common.api.helm import HelmRelease
from fluxbus_common.conditions import (
    ConditionType,
    Reason,
    get_condition,
    remove_condition,
    set_condition,
)
from fluxbus_common.duration import format_duration
from fluxbus_common.errors import Generic
from fluxbus_common.events import Severity
from fluxbus_common.reconcile import publish_progress
from fluxbus_helm.errors import DriftError, ReleaseRetry, ReleaseStalled
from fluxbus_helm.logic import history as hist
from fluxbus_helm.logic import state as sm
from fluxbus_helm.logic.reasons import HelmCondition, HelmReason
from fluxbus_helm.ports import DriftPort, ReleaseStorage
from fluxbus_helm.reconcilers.actions import ActionError, Actions, Job, _timeout
from fluxbus_helmsdk import HelmEngineError

MAX_ACTIONS = 8
"""A bound on the loop (Flux's is implicit: each action type runs once)."""


def action_timeout(obj: HelmRelease, action: sm.Action) -> float:
    section = {
        sm.Action.INSTALL: obj.spec.install,
        sm.Action.UPGRADE: obj.spec.upgrade,
        sm.Action.TEST: obj.spec.test,
        sm.Action.ROLLBACK: obj.spec.rollback,
        sm.Action.UNINSTALL: obj.spec.uninstall,
    }.get(action)
    return _timeout(obj, section)


def _ready_message(obj: HelmRelease) -> str:
    ready = get_condition(obj.status.conditions, ConditionType.READY)
    return ready.message if ready else ""


class AtomicRelease:
    """Runs the release state machine of one HelmRelease per `run` call."""

    def __init__(
        self,
        actions: Actions,
        drift: DriftPort | None = None,
        storage: ReleaseStorage | None = None,
    ) -> None:
        self.actions = actions
        self.drift = drift
        self.storage = storage

    async def run(self, obj: HelmRelease, job: Job, *, force: bool = False) -> None:
        """Bring the release in line with `obj`. Raises ReleaseRetry, ReleaseStalled
        or Generic (GetLastReleaseFailed / a failure talking to Helm)."""
        previous: list[str] = []
        for _ in range(MAX_ACTIONS):
            try:
                await self.actions.refresh(obj, job)
            except HelmEngineError as e:
                raise Generic(
                    f"failed to retrieve last release from storage: {e}",
                    HelmReason.GET_LAST_RELEASE_FAILED,
                ) from None
            last = job.stored[-1] if job.stored else None
            state = sm.determine_state(obj, last, job.desired)
            drift_found = False
            if state.status == sm.ReleaseStatus.IN_SYNC and "drift correction" not in previous:
                drift_found, corrected = await self._drift(obj, job)
                if corrected:
                    previous.append("drift correction")
                    continue
            try:
                action = sm.next_action(obj, state, job.stored, force=force)
            except sm.ExceededMaxRetries:
                raise self._exhausted(obj) from None
            except sm.MissingRollbackTarget as e:
                raise ReleaseStalled(
                    f"Failed to perform remediation: missing target release for rollback: {e}",
                    HelmReason.MISSING_ROLLBACK_TARGET,
                ) from None
            force = False
            if action is None:
                self._in_sync(obj, drift_found)
                return
            kind = sm.KIND_OF[action]
            if kind in previous:
                self._stop_before(obj)
                return
            await self._progress(obj, action, kind)
            try:
                await self._run(obj, job, action)
            except ActionError as e:
                retry = sm.active_retry(obj)
                if retry is not None:
                    raise ReleaseRetry(
                        f"retrying after {format_duration(retry)}",
                        Reason.PROGRESSING_WITH_RETRY,
                        retry_after=retry,
                    ) from None
                raise ReleaseRetry(e.message, e.reason) from None
            except HelmEngineError as e:
                raise Generic(str(e), HelmReason.RECONCILE_ERROR) from None
            if kind == "remediate":
                self._stop_after_remediation(obj)
            previous.append(kind)
        raise ReleaseRetry("release did not settle; retrying", HelmReason.RECONCILE_ERROR)

    async def _run(self, obj: HelmRelease, job: Job, action: sm.Action) -> None:
        a = self.actions
        if action == sm.Action.INSTALL:
            await a.install(obj, job)
        elif action == sm.Action.UPGRADE:
            await a.upgrade(obj, job)
        elif action == sm.Action.TEST:
            await a.test(obj, job)
        elif action == sm.Action.ROLLBACK:
            await a.rollback(obj, job)
        elif action == sm.Action.UNINSTALL:
            await a.uninstall_remediation(obj, job)
        elif self.storage is not None:
            await a.unlock(obj, job, self.storage)
        else:
            raise ReleaseStalled(
                f"release locked: Helm's storage holds release {job.release_name} in a pending "
                "state and no cluster access to unlock it",
                HelmReason.STATE_ERROR,
            )

    async def _progress(self, obj: HelmRelease, action: sm.Action, kind: str) -> None:
        message = (
            f"Running '{action}' action with timeout of "
            f"{format_duration(action_timeout(obj, action))}"
        )
        conds, gen = obj.status.conditions, obj.metadata.generation
        set_condition(conds, ConditionType.RECONCILING, True, Reason.PROGRESSING, message, gen)
        if kind == "release":
            set_condition(conds, ConditionType.READY, "Unknown", Reason.PROGRESSING, message, gen)
        await publish_progress(obj)

    def _exhausted(self, obj: HelmRelease) -> ReleaseStalled:
        remediation = sm.active_remediation(obj)
        count = remediation.failures(obj) if remediation else 0
        action = obj.status.last_attempted_release_action or "release"
        return ReleaseStalled(
            f"Failed to {action} after {count} attempt(s)", HelmReason.RETRIES_EXCEEDED
        )

    def _stop_before(self, obj: HelmRelease) -> None:
        """An action type would run twice: requeue, unless retries are exhausted."""
        retry = sm.active_retry(obj)
        if retry is not None:
            raise ReleaseRetry(
                f"retrying after {format_duration(retry)}",
                Reason.PROGRESSING_WITH_RETRY,
                retry_after=retry,
            )
        remediation = sm.active_remediation(obj)
        if remediation is None or not remediation.exhausted(obj):
            raise ReleaseRetry(_ready_message(obj), Reason.PROGRESSING_WITH_RETRY)

    def _stop_after_remediation(self, obj: HelmRelease) -> None:
        """A remediation ends the atomic release: requeue, or stall when exhausted."""
        retry = sm.active_retry(obj)
        if retry is not None:
            raise ReleaseRetry(
                f"retrying after {format_duration(retry)}",
                Reason.PROGRESSING_WITH_RETRY,
                retry_after=retry,
            )
        remediation = sm.active_remediation(obj)
        uninstall_after_upgrade = (
            remediation is not None
            and remediation.action == "upgrade"
            and remediation.strategy == "uninstall"
        )
        if remediation is None or not remediation.exhausted(obj) or uninstall_after_upgrade:
            raise ReleaseRetry(_ready_message(obj), Reason.PROGRESSING_WITH_RETRY)
        raise self._exhausted(obj)

    def _in_sync(self, obj: HelmRelease, drift_found: bool) -> None:
        """Flux's in-sync fix-ups: a remediated release that is in sync again counts
        as upgraded; a failed action's condition turns to success."""
        conds, gen = obj.status.conditions, obj.metadata.generation
        cur = hist.latest(obj.status.history)
        if cur is None:
            return
        where = f"for release {hist.full_name(cur)} with chart {hist.versioned_chart(cur)}"
        remediated = get_condition(conds, HelmCondition.REMEDIATED)
        if remediated is not None and remediated.status == "True":
            remove_condition(conds, HelmCondition.REMEDIATED)
            message = f"Helm upgrade succeeded {where}"
            set_condition(
                conds, HelmCondition.RELEASED, True, HelmReason.UPGRADE_SUCCEEDED, message, gen
            )
        released = get_condition(conds, HelmCondition.RELEASED)
        if released is None or released.status != "True":
            reason = released.reason if released else ""
            if reason in (HelmReason.INSTALL_FAILED, ""):
                message = f"Helm install succeeded {where}"
                set_condition(
                    conds, HelmCondition.RELEASED, True, HelmReason.INSTALL_SUCCEEDED, message, gen
                )
            elif reason == HelmReason.UPGRADE_FAILED:
                message = f"Helm upgrade succeeded {where}"
                set_condition(
                    conds, HelmCondition.RELEASED, True, HelmReason.UPGRADE_SUCCEEDED, message, gen
                )
        if drift_found:
            return
        if self._drift_mode(obj) != "disabled":
            set_condition(
                conds,
                HelmCondition.DRIFTED,
                False,
                HelmReason.NO_DRIFT_DETECTED,
                "No drift detected against the cluster state",
                gen,
            )
        else:
            remove_condition(conds, HelmCondition.DRIFTED)

    @staticmethod
    def _drift_mode(obj: HelmRelease) -> str:
        dd = obj.spec.drift_detection
        return dd.effective_mode if dd else "disabled"

    async def _drift(self, obj: HelmRelease, job: Job) -> tuple[bool, bool]:
        """Detect (and with mode enabled, correct) drift; return (found, corrected)."""
        mode = self._drift_mode(obj)
        if mode == "disabled" or self.drift is None or not job.stored:
            return False, False
        rls = job.stored[-1]
        dd = obj.spec.drift_detection
        ignore = [r.model_dump(by_alias=True, exclude_none=True) for r in (dd.ignore if dd else [])]
        try:
            lines = await self.drift.detect(job.target, rls.manifest, job.namespace, ignore)
        except DriftError as e:
            raise Generic(
                f"unable to determine cluster state: {e}", HelmReason.RECONCILE_ERROR
            ) from None
        if not lines:
            return False, False
        cur = hist.latest(obj.status.history)
        name = hist.full_name(cur) if cur else f"{job.namespace}/{job.release_name}"
        message = (
            f"Cluster state of release {name} has drifted from the desired state:\n"
            + "\n".join(lines)
        )
        gen = obj.metadata.generation
        conds = obj.status.conditions
        set_condition(conds, HelmCondition.DRIFTED, True, HelmReason.DRIFT_DETECTED, message, gen)
        if self.actions.recorder is not None:
            await self.actions.recorder.event(
                obj, Severity.ERROR, HelmReason.DRIFT_DETECTED, message
            )
        if mode != "enabled":
            return True, False
        try:
            fixed = await self.drift.correct(job.target, rls.manifest, job.namespace, ignore)
        except DriftError as e:
            raise Generic(f"drift correction failed: {e}", HelmReason.RECONCILE_ERROR) from None
        corrected = f"Cluster state of release {name} has been corrected:\n" + "\n".join(fixed)
        if self.actions.recorder is not None:
            await self.actions.recorder.event(obj, Severity.INFO, "DriftCorrected", corrected)
        return True, True
