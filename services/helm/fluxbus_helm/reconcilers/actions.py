"""The Helm actions of a HelmRelease, each as helm-controller runs it: install,
upgrade, test, rollback remediation and uninstall remediation. Each one
records what Helm stored in `status.history`, sets its condition (Released,
TestSuccess or Remediated) and emits Flux's event, in Flux's words.

An action returns normally when it ran (even when Helm reported a failure
that left a release in storage: the state machine handles that next) and
raises `ActionError` when nothing happened in storage (a render failure, an
unreachable cluster): the previous release is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxbus_common.api.helm import HelmRelease, HelmSnapshot
from fluxbus_common.conditions import now_rfc3339, remove_condition, set_condition
from fluxbus_common.duration import format_duration, parse_duration
from fluxbus_common.events import EventSink, Severity
from fluxbus_helm.errors import StorageError
from fluxbus_helm.logic import history as hist
from fluxbus_helm.logic import state as sm
from fluxbus_helm.logic.reasons import HelmCondition, HelmReason, ReleaseAction
from fluxbus_helm.logic.values import merge_maps
from fluxbus_helm.ports import HelmPort, ReleaseStorage
from fluxbus_helmsdk import (
    ChartInfo,
    HelmEngineError,
    KubeTarget,
    Release,
    RenderError,
)

GROUP = "helm.toolkit.fluxcd.io"


class ActionError(Exception):
    """An action failed before Helm stored anything; `message` is Flux's."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass
class Job:
    """What one atomic release works on (filled by the reconciler's steps)."""

    target: KubeTarget
    chart: bytes
    info: ChartInfo
    values: dict[str, Any]
    release_name: str
    namespace: str
    storage_namespace: str
    config_digest: str
    stored: list[Release] = field(default_factory=list)
    """Helm's storage for the release, oldest first (refreshed after each action)."""
    loaded: bool = False
    """Whether `stored` was read from Helm's storage (an empty list then means no release)."""

    @property
    def desired(self) -> sm.Desired:
        return sm.Desired(self.info.name, self.info.version, self.config_digest)


def event_meta(version: str, token: str, app_version: str | None) -> dict[str, str]:
    meta = {f"{GROUP}/revision": version, f"{GROUP}/token": token}
    if app_version:
        meta[f"{GROUP}/app-version"] = app_version
    return meta


def error_text(e: HelmEngineError) -> str:
    """Helm's words for a failure; a render failure names its template."""
    if isinstance(e, RenderError) and e.template and e.template not in str(e):
        return f"{e.template}: {e}"
    return str(e).strip()


def _timeout(obj: HelmRelease, section: Any) -> float:
    own = getattr(section, "timeout", None) if section is not None else None
    return parse_duration(str(own)) if own else obj.spec.timeout_seconds


def _crds_skipped(policy: str | None, default: str, skip_flag: bool = False) -> bool:
    if skip_flag and policy is None:
        return True
    return (policy or default) == "Skip"


class Actions:
    """Runs Helm actions for HelmReleases and records their outcome."""

    def __init__(self, helm: HelmPort, recorder: EventSink | None) -> None:
        self.helm = helm
        self.recorder = recorder

    async def record_event(
        self, obj: HelmRelease, severity: Severity, reason: str, message: str, meta: dict[str, str]
    ) -> None:
        """Emit one of Flux's events for the HelmRelease."""
        if self.recorder is not None:
            await self.recorder.event(obj, severity, reason, message, meta)

    async def refresh(self, obj: HelmRelease, job: Job) -> list[Release]:
        """Re-read Helm's storage and bring the history's statuses up to date.
        Returns the releases stored after `before` (what the action wrote)."""
        before = {r.revision for r in job.stored}
        job.stored = await self.helm.history(
            job.target, job.release_name, storage_namespace=job.storage_namespace
        )
        job.loaded = True
        by_version = {r.revision: r for r in job.stored}
        obj.status.history = hist.sync_statuses(obj.status.history, by_version)
        return [r for r in job.stored if r.revision not in before]

    def _observe(self, obj: HelmRelease, written: list[Release], action: str) -> None:
        for rls in written:
            obj.status.history = hist.record(obj.status.history, hist.snapshot(rls, action))

    # -- install / upgrade ----------------------------------------------------------

    async def install(self, obj: HelmRelease, job: Job) -> None:
        st = obj.status
        st.last_attempted_release_action = ReleaseAction.INSTALL
        st.history = []
        remove_condition(st.conditions, HelmCondition.TEST_SUCCESS)
        remove_condition(st.conditions, HelmCondition.REMEDIATED)
        spec = obj.spec.install
        start = time.monotonic()
        error: HelmEngineError | None = None
        try:
            await self.helm.install(
                job.target,
                job.chart,
                job.release_name,
                job.values,
                namespace=job.namespace,
                storage_namespace=job.storage_namespace,
                timeout=_timeout(obj, spec),
                wait=not (spec and spec.disable_wait),
                wait_for_jobs=not (spec and spec.disable_wait_for_jobs),
                create_namespace=bool(spec and spec.create_namespace),
                disable_hooks=bool(spec and spec.disable_hooks),
                skip_crds=_crds_skipped(
                    spec.crds if spec else None, "Create", bool(spec and spec.skip_crds)
                ),
                replace=bool(spec and spec.replace),
                disable_schema_validation=bool(spec and spec.disable_schema_validation),
            )
        except HelmEngineError as e:
            error = e
        st.last_attempted_release_action_duration = format_duration(
            round(time.monotonic() - start, 3)
        )
        written = await self.refresh(obj, job)
        self._observe(obj, written, ReleaseAction.INSTALL)
        await self._finish(obj, job, "install", error, bool(written))

    async def upgrade(self, obj: HelmRelease, job: Job) -> None:
        st = obj.status
        st.last_attempted_release_action = ReleaseAction.UPGRADE
        remove_condition(st.conditions, HelmCondition.TEST_SUCCESS)
        remove_condition(st.conditions, HelmCondition.REMEDIATED)
        spec = obj.spec.upgrade
        values: Mapping[str, Any] = job.values
        if spec and spec.preserve_values and job.stored:
            values = merge_maps(job.stored[-1].config or {}, job.values)
        start = time.monotonic()
        error: HelmEngineError | None = None
        try:
            await self.helm.upgrade(
                job.target,
                job.chart,
                job.release_name,
                values,
                namespace=job.namespace,
                storage_namespace=job.storage_namespace,
                timeout=_timeout(obj, spec),
                wait=not (spec and spec.disable_wait),
                wait_for_jobs=not (spec and spec.disable_wait_for_jobs),
                force=bool(spec and spec.force),
                cleanup_on_fail=bool(spec and spec.cleanup_on_fail),
                max_history=obj.spec.effective_max_history,
                disable_hooks=bool(spec and spec.disable_hooks),
                skip_crds=_crds_skipped(spec.crds if spec else None, "Skip"),
                disable_schema_validation=bool(spec and spec.disable_schema_validation),
            )
        except HelmEngineError as e:
            error = e
        st.last_attempted_release_action_duration = format_duration(
            round(time.monotonic() - start, 3)
        )
        written = await self.refresh(obj, job)
        self._observe(obj, written, ReleaseAction.UPGRADE)
        await self._finish(obj, job, "upgrade", error, bool(written))

    async def _finish(
        self, obj: HelmRelease, job: Job, action: str, error: HelmEngineError | None, wrote: bool
    ) -> None:
        st = obj.status
        conds = st.conditions
        gen = obj.metadata.generation
        info = job.info
        if error is not None:
            message = (
                f"Helm {action} failed for release {job.namespace}/{job.release_name} "
                f"with chart {info.name}@{info.version}: {error_text(error)}"
            )
            reason = HelmReason.INSTALL_FAILED if action == "install" else HelmReason.UPGRADE_FAILED
            st.failures = (st.failures or 0) + 1
            set_condition(conds, HelmCondition.RELEASED, False, reason, message, gen)
            if not wrote:  # the runtime reports the error that ends the reconcile
                raise ActionError(message, reason)
            meta = event_meta(info.version, job.config_digest, info.app_version)
            await self.record_event(obj, Severity.ERROR, reason, message, meta)
            remediation = (
                sm.install_remediation(obj) if action == "install" else sm.upgrade_remediation(obj)
            )
            remediation.increment(obj)
            return
        cur = hist.latest(st.history)
        assert cur is not None
        message = (
            f"Helm {action} succeeded for release {hist.full_name(cur)} "
            f"with chart {hist.versioned_chart(cur)}"
        )
        reason = (
            HelmReason.INSTALL_SUCCEEDED if action == "install" else HelmReason.UPGRADE_SUCCEEDED
        )
        set_condition(conds, HelmCondition.RELEASED, True, reason, message, gen)
        if sm.test_enabled(obj) and not hist.has_been_tested(cur):
            pending = (
                f"Helm release {hist.full_name(cur)} with chart {hist.versioned_chart(cur)} "
                "is awaiting tests"
            )
            set_condition(
                conds,
                HelmCondition.TEST_SUCCESS,
                "Unknown",
                HelmReason.AWAITING_TESTS,
                pending,
                gen,
            )
        if sm.active_retry(obj) is not None:
            st.failures = st.install_failures = st.upgrade_failures = None
        meta = event_meta(cur.chart_version, cur.config_digest, cur.app_version)
        await self.record_event(obj, Severity.INFO, reason, message, meta)

    # -- test -------------------------------------------------------------------------

    async def test(self, obj: HelmRelease, job: Job) -> None:
        st = obj.status
        cur = hist.latest(st.history)
        if cur is None:
            raise ActionError("no latest release: required for test", HelmReason.TEST_FAILED)
        spec = obj.spec.test
        filters = (spec.filters if spec else None) or []
        include = [f.name for f in filters if not f.exclude] or None
        exclude = [f.name for f in filters if f.exclude] or None
        gen = obj.metadata.generation
        meta = event_meta(cur.chart_version, cur.config_digest, cur.app_version)
        try:
            result = await self.helm.test(
                job.target,
                job.release_name,
                storage_namespace=job.storage_namespace,
                timeout=_timeout(obj, spec),
                include=include,
                exclude=exclude,
            )
        except HelmEngineError as e:
            hooks = await self._test_hooks_after_failure(job, cur)
            self._set_tested(obj, cur, hooks)
            message = (
                f"Helm test failed for release {hist.full_name(cur)} with chart "
                f"{hist.versioned_chart(cur)}: {error_text(e)}"
            )
            st.failures = (st.failures or 0) + 1
            set_condition(
                st.conditions,
                HelmCondition.TEST_SUCCESS,
                False,
                HelmReason.TEST_FAILED,
                message,
                gen,
            )
            await self.record_event(obj, Severity.ERROR, HelmReason.TEST_FAILED, message, meta)
            remediation = sm.active_remediation(obj)
            if remediation is not None and not remediation.ignore_test_failures:
                remediation.increment(obj)
            return
        self._set_tested(obj, cur, hist.test_hooks_of(result.hooks))
        n = len(result.hooks)
        hooks_msg = (
            f"{n} test hook{'s' if n > 1 else ''} completed successfully" if n else "no test hooks"
        )
        message = (
            f"Helm test succeeded for release {hist.full_name(cur)} with chart "
            f"{hist.versioned_chart(cur)}: {hooks_msg}"
        )
        set_condition(
            st.conditions, HelmCondition.TEST_SUCCESS, True, HelmReason.TEST_SUCCEEDED, message, gen
        )
        await self.record_event(obj, Severity.INFO, HelmReason.TEST_SUCCEEDED, message, meta)

    async def _test_hooks_after_failure(
        self, job: Job, cur: HelmSnapshot
    ) -> dict[str, dict[str, str]]:
        """The test hooks' phases Helm stored after a failed test (at least one Failed)."""
        try:
            rls = await self.helm.status(
                job.target,
                job.release_name,
                storage_namespace=job.storage_namespace,
                revision=cur.version,
            )
        except HelmEngineError:
            rls = None
        hooks = hist.test_hooks_of(rls.test_hooks) if rls is not None else {}
        if not any(h.get("phase") == hist.FAILED_PHASE for h in hooks.values()):
            hooks["test"] = {"phase": hist.FAILED_PHASE}
        return hooks

    @staticmethod
    def _set_tested(obj: HelmRelease, cur: HelmSnapshot, hooks: dict[str, dict[str, str]]) -> None:
        tested = cur.model_copy(update={"test_hooks": hooks})
        obj.status.history = hist.record(obj.status.history, tested)

    # -- remediation ------------------------------------------------------------------

    async def rollback(self, obj: HelmRelease, job: Job) -> None:
        st = obj.status
        remediation = sm.upgrade_remediation(obj)
        prev = hist.previous(st.history, remediation.ignore_test_failures)
        if prev is None:
            raise ActionError(
                "missing target release for rollback: required to rollback",
                HelmReason.ROLLBACK_FAILED,
            )
        spec = obj.spec.rollback
        gen = obj.metadata.generation
        meta = event_meta(prev.chart_version, job.config_digest, prev.app_version)
        try:
            await self.helm.rollback(
                job.target,
                job.release_name,
                storage_namespace=job.storage_namespace,
                version=prev.version,
                timeout=_timeout(obj, spec),
                wait=not (spec and spec.disable_wait),
                force=bool(spec and spec.force),
                recreate=bool(spec and spec.recreate),
                cleanup_on_fail=bool(spec and spec.cleanup_on_fail),
                disable_hooks=bool(spec and spec.disable_hooks),
                max_history=obj.spec.effective_max_history,
            )
        except HelmEngineError as e:
            written = await self.refresh(obj, job)
            self._observe(obj, written, ReleaseAction.ROLLBACK)
            message = (
                f"Helm rollback to previous release {hist.full_name(prev)} with chart "
                f"{hist.versioned_chart(prev)} failed: {error_text(e)}"
            )
            st.failures = (st.failures or 0) + 1
            set_condition(
                st.conditions,
                HelmCondition.REMEDIATED,
                False,
                HelmReason.ROLLBACK_FAILED,
                message,
                gen,
            )
            await self.record_event(obj, Severity.ERROR, HelmReason.ROLLBACK_FAILED, message, meta)
            if not written:
                raise ActionError(message, HelmReason.ROLLBACK_FAILED) from None
            return
        written = await self.refresh(obj, job)
        self._observe(obj, written, ReleaseAction.ROLLBACK)
        message = (
            f"Helm rollback to previous release {hist.full_name(prev)} with chart "
            f"{hist.versioned_chart(prev)} succeeded"
        )
        set_condition(
            st.conditions,
            HelmCondition.REMEDIATED,
            True,
            HelmReason.ROLLBACK_SUCCEEDED,
            message,
            gen,
        )
        await self.record_event(obj, Severity.INFO, HelmReason.ROLLBACK_SUCCEEDED, message, meta)

    async def uninstall_remediation(self, obj: HelmRelease, job: Job) -> None:
        st = obj.status
        cur = hist.latest(st.history)
        if cur is None:
            raise ActionError(
                "no latest release: required to uninstall", HelmReason.UNINSTALL_FAILED
            )
        gen = obj.metadata.generation
        meta = event_meta(cur.chart_version, cur.config_digest, cur.app_version)
        try:
            await self.uninstall(obj, job.target, job.release_name, job.storage_namespace)
        except HelmEngineError as e:
            message = (
                f"Helm uninstall remediation for release {hist.full_name(cur)} with chart "
                f"{hist.versioned_chart(cur)} failed: {error_text(e)}"
            )
            st.failures = (st.failures or 0) + 1
            set_condition(
                st.conditions,
                HelmCondition.REMEDIATED,
                False,
                HelmReason.UNINSTALL_FAILED,
                message,
                gen,
            )
            await self.record_event(obj, Severity.ERROR, HelmReason.UNINSTALL_FAILED, message, meta)
            raise ActionError(message, HelmReason.UNINSTALL_FAILED) from None
        gone = cur.model_copy(
            update={
                "status": "uninstalled",
                "deleted": now_rfc3339(),
                "action": ReleaseAction.UNINSTALL_REMEDIATION,
            }
        )
        st.history = hist.record(st.history, gone)
        job.stored = await self.helm.history(
            job.target, job.release_name, storage_namespace=job.storage_namespace
        )
        message = (
            f"Helm uninstall remediation for release {hist.full_name(cur)} with chart "
            f"{hist.versioned_chart(cur)} succeeded"
        )
        set_condition(
            st.conditions,
            HelmCondition.REMEDIATED,
            True,
            HelmReason.UNINSTALL_SUCCEEDED,
            message,
            gen,
        )
        await self.record_event(obj, Severity.INFO, HelmReason.UNINSTALL_SUCCEEDED, message, meta)

    async def unlock(self, obj: HelmRelease, job: Job, storage: ReleaseStorage) -> None:
        """Mark the release stuck in a pending state failed in Helm's storage (Flux's
        unlock), so the state machine can act on it. Raises ActionError."""
        last = job.stored[-1] if job.stored else None
        if last is None or last.status not in sm.PENDING:
            return
        st = obj.status
        cur = hist.latest(st.history) or hist.snapshot(last)
        where = f"Helm release {hist.full_name(cur)} with chart {hist.versioned_chart(cur)}"
        gen = obj.metadata.generation
        meta = event_meta(cur.chart_version, cur.config_digest, cur.app_version)
        try:
            await storage.unlock(
                job.target,
                last.name,
                job.storage_namespace,
                last.revision,
                f"Release unlocked from stale '{last.status}' state",
            )
        except StorageError as e:
            message = f"Unlock of {where} in {last.status} state failed: {e}"
            st.failures = (st.failures or 0) + 1
            set_condition(
                st.conditions,
                HelmCondition.RELEASED,
                False,
                HelmReason.PENDING_RELEASE,
                message,
                gen,
            )
            await self.record_event(obj, Severity.ERROR, HelmReason.PENDING_RELEASE, message, meta)
            raise ActionError(message, HelmReason.PENDING_RELEASE) from None
        message = f"Unlocked {where} in {last.status} state"
        set_condition(
            st.conditions, HelmCondition.RELEASED, False, HelmReason.PENDING_RELEASE, message, gen
        )
        await self.record_event(obj, Severity.INFO, HelmReason.PENDING_RELEASE, message, meta)

    async def uninstall(
        self, obj: HelmRelease, target: KubeTarget, release_name: str, storage_namespace: str
    ) -> None:
        """Uninstall a release with `spec.uninstall`'s options. Raises HelmEngineError."""
        spec = obj.spec.uninstall
        await self.helm.uninstall(
            target,
            release_name,
            storage_namespace=storage_namespace,
            timeout=_timeout(obj, spec),
            keep_history=bool(spec and spec.keep_history),
            wait=not (spec and spec.disable_wait),
            disable_hooks=bool(spec and spec.disable_hooks),
            ignore_not_found=True,
        )
