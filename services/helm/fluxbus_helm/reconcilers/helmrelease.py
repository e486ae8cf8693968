"""The HelmRelease reconciler (helm-controller's, step for step).

Steps, in order, each returning or raising a typed error:

1. `reconcile_prerequisites`: Helm is available (the `helm` extra; else
   Stalled with HelmUnavailable's message) and the spec asks for nothing
   fluxbus would silently ignore (postRenderers, commonMetadata, a
   kubeConfig without secretRef: Stalled).
2. `reconcile_dependencies`: every `dependsOn` HelmRelease Ready at its
   current generation (or as its `readyExpr` says); else
   Waiting(DependencyNotReady). A dependency turning Ready requeues at once.
3. `reconcile_chart`: `spec.chart` writes the generated HelmChart
   `<namespace>-<name>` into the store (the source service reconciles it);
   `spec.chartRef` names an existing HelmChart. Its artifact is downloaded
   and verified (`chart.ChartSource`); none yet → Waiting(SourceNotReady).
4. `reconcile_values`: `valuesFrom` then `values` (`values.ValuesReader`),
   and their config digest.
5. `reconcile_release`: the release target (name, namespace, storage
   namespace, cluster), a changed target uninstalls the old release first,
   failure counters reset when the inputs changed (or `resetAt` asks),
   `lastAttempted*`, then the atomic release (`atomic.AtomicRelease`) with
   at most `settings.max_concurrent` HelmReleases releasing at a time.

`summarize` derives Ready as Flux does: from Remediated, TestSuccess (when
tests count) and Released. `finalize` uninstalls the release (Helm's
`uninstall.keepHistory` respected) and deletes the generated HelmChart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from fluxbus_common import keys, subjects
from fluxbus_common.api.helm import HelmRelease, release_name
from fluxbus_common.api.kustomize import ResourceInventory
from fluxbus_common.cel import CelError, activation, compile_program, evaluate_bool
from fluxbus_common.conditions import ConditionType, Reason, remove_condition, set_condition
from fluxbus_common.duration import format_duration
from fluxbus_common.errors import Generic, ReconcileError, Stalling, Waiting
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.ports import BusError
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_common.reconcile import summarize as common_summarize
from fluxbus_helm.chart import ChartSource, LoadedChart
from fluxbus_helm.errors import DriftError, ReleaseRetry, ReleaseStalled
from fluxbus_helm.logic import history as hist
from fluxbus_helm.logic import state as sm
from fluxbus_helm.logic.chart import unsupported
from fluxbus_helm.logic.reasons import HelmCondition, HelmReason
from fluxbus_helm.logic.values import config_digest
from fluxbus_helm.ports import DriftPort, HelmPort, HelmStore, ObjectGetter, ReleaseStorage
from fluxbus_helm.reconcilers.actions import Actions, Job
from fluxbus_helm.reconcilers.atomic import AtomicRelease
from fluxbus_helm.reconcilers.hold import hold_at, requested_revision
from fluxbus_helm.settings import HelmSettings
from fluxbus_helm.target import Targets
from fluxbus_helm.values import ValuesReader
from fluxbus_helmsdk import HelmEngineError, HelmUnavailable, KubeTarget

log = structlog.get_logger("fluxbus.helm")

RESET_REQUESTED_AT = "reconcile.fluxcd.io/resetAt"
"""Flux's annotation asking to reset the failure counters (with requestedAt)."""


@dataclass
class HelmState:
    """What the HelmRelease steps hand each other during one reconcile."""

    chart: LoadedChart | None = None
    values: dict[str, Any] = field(default_factory=dict)
    config_digest: str = ""


def _ready(status: Mapping[str, Any] | None) -> bool:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ConditionType.READY:
            return c.get("status") == "True"
    return False


def _depends_on(doc: Mapping[str, Any]) -> list[str]:
    ns = (doc.get("metadata") or {}).get("namespace") or "default"
    out = []
    for dep in (doc.get("spec") or {}).get("dependsOn") or []:
        if isinstance(dep, Mapping) and dep.get("name"):
            out.append(subjects.object_key("HelmRelease", dep.get("namespace") or ns, dep["name"]))
    return out


def _chart_key(doc: Mapping[str, Any]) -> str | None:
    """The HelmChart key a stored HelmRelease document reads its chart from."""
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    ns = meta.get("namespace") or "default"
    if isinstance(spec.get("chart"), Mapping):
        src = ((spec["chart"].get("spec") or {}).get("sourceRef")) or {}
        return subjects.object_key(
            "HelmChart", src.get("namespace") or ns, f"{ns}-{meta.get('name')}"
        )
    ref = spec.get("chartRef") or {}
    if ref.get("kind") == "HelmChart" and ref.get("name"):
        return subjects.object_key("HelmChart", ref.get("namespace") or ns, ref["name"])
    return None


def _annotation_request(obj: HelmRelease, key: str, handled: str | None) -> str | None:
    """Flux's force/reset requests: the annotation is honoured when it equals
    requestedAt and differs from what was last handled; return its value."""
    ann = obj.metadata.annotations or {}
    value = ann.get(key)
    if value and value == ann.get(keys.RECONCILE_REQUESTED_AT) and value != handled:
        return value
    return None


def storage_namespace(obj: HelmRelease) -> str:
    """Where Helm keeps the release's records: `spec.storageNamespace`, else the
    release (target) namespace. Flux defaults to the HelmRelease's namespace;
    fluxbus's Helm engine (helm-c) stores a release only in its own namespace, so
    an unset storageNamespace follows targetNamespace (`helm history -n <target>`
    sees it) and a different explicit one is refused."""
    return obj.spec.storage_namespace or obj.spec.target_namespace or obj.metadata.namespace


class HelmReleaseReconciler(StepReconciler[HelmRelease, HelmState]):
    """Reconciles HelmReleases with Helm (`helm`, None without the helm extra)."""

    kind: ClassVar[str] = "HelmRelease"

    def __init__(
        self,
        store: HelmStore,
        helm: HelmPort | None,
        *,
        recorder: EventSink | None = None,
        settings: HelmSettings | None = None,
        kubeconfig_path: str | None = None,
        cluster_get: ObjectGetter | None = None,
        drift: DriftPort | None = None,
        storage: ReleaseStorage | None = None,
    ) -> None:
        self.store = store
        self.helm = helm
        self.recorder = recorder
        self.settings = settings or HelmSettings()
        self.charts = ChartSource(
            store, requeue=self.settings.dependency_requeue, cache_size=self.settings.chart_cache
        )
        self.values = ValuesReader(store, cluster_get)
        self.targets = Targets(
            store,
            kubeconfig_path=kubeconfig_path,
            default_service_account=self.settings.default_service_account,
        )
        self.drift = drift
        self.storage = storage
        self._slots = asyncio.Semaphore(self.settings.max_concurrent)
        self._deps_seen: dict[str, tuple[Any, ...]] = {}
        self._charts_seen: dict[str, tuple[Any, ...]] = {}
        self.watches = (
            DependencyWatch("HelmChart", self._on_chart_status),
            DependencyWatch("HelmRelease", self._on_release_status),
        )

    # -- runtime protocol ----------------------------------------------------------

    def parse(self, doc: dict[str, Any]) -> HelmRelease:
        return HelmRelease.model_validate(doc)

    def interval(self, obj: HelmRelease) -> float:
        return obj.spec.interval_seconds

    @staticmethod
    def key_of(obj: HelmRelease) -> str:
        return subjects.object_key("HelmRelease", obj.metadata.namespace, obj.metadata.name)

    def timeout(self, obj: HelmRelease) -> float | None:
        """Every Helm action is bounded by its own timeout; the reconcile by enough
        for the longest chain of them (release, test, remediation) and some."""
        return 4 * obj.spec.timeout_seconds + 60.0

    def new_state(self, obj: HelmRelease) -> HelmState:
        return HelmState()

    def steps(self) -> tuple[Step[HelmRelease, HelmState], ...]:
        return (
            self.reconcile_prerequisites,
            self.reconcile_dependencies,
            self.reconcile_chart,
            self.reconcile_values,
            self.reconcile_release,
        )

    def summarize(self, obj: Any, result: Result | None, error: ReconcileError | None) -> None:
        """Flux's summarize: Ready from the release conditions when the release step
        spoke (success, ReleaseRetry, ReleaseStalled); else the common rules."""
        if error is not None and not isinstance(error, ReleaseRetry | ReleaseStalled):
            common_summarize(obj, result, error)
            return
        conds = obj.status.conditions
        gen = obj.metadata.generation
        if not sm.test_enabled(obj):
            remove_condition(conds, HelmCondition.TEST_SUCCESS)
        order = [HelmCondition.REMEDIATED, HelmCondition.RELEASED]
        test = obj.spec.test
        if test is not None and test.enable and not test.ignore_failures:
            order.insert(1, HelmCondition.TEST_SUCCESS)
        present = [c for t in order for c in conds if c.type == t]
        if present:
            newest = max(c.observed_generation or 0 for c in present)
            top = next(c for c in present if (c.observed_generation or 0) == newest)
            status = "False" if top.type == HelmCondition.REMEDIATED else top.status
            set_condition(conds, ConditionType.READY, status, top.reason, top.message, gen)
        elif error is not None:
            set_condition(conds, ConditionType.READY, False, error.reason, error.message, gen)
        else:
            message = (result.ready_message if result else "") or "Release reconciliation succeeded"
            set_condition(conds, ConditionType.READY, True, Reason.SUCCEEDED, message, gen)
        if isinstance(error, ReleaseStalled):
            set_condition(conds, ConditionType.STALLED, True, error.reason, error.message, gen)
            remove_condition(conds, ConditionType.RECONCILING)
            obj.status.observed_generation = gen
        elif isinstance(error, ReleaseRetry):
            set_condition(
                conds,
                ConditionType.RECONCILING,
                True,
                Reason.PROGRESSING_WITH_RETRY,
                error.message,
                gen,
            )
            remove_condition(conds, ConditionType.STALLED)
        else:
            remove_condition(conds, ConditionType.RECONCILING)
            remove_condition(conds, ConditionType.STALLED)
            obj.status.observed_generation = gen

    # -- watches ----------------------------------------------------------------------

    def _on_chart_status(
        self, key: str, value: dict[str, Any] | None, objects: Mapping[str, dict[str, Any]]
    ) -> list[str]:
        artifact = (value or {}).get("artifact") or {}
        seen = (artifact.get("digest"), (value or {}).get("observedGeneration"), _ready(value))
        if self._charts_seen.get(key) == seen:
            return []
        self._charts_seen[key] = seen
        return [k for k, doc in objects.items() if _chart_key(doc) == key]

    def _on_release_status(
        self, key: str, value: dict[str, Any] | None, objects: Mapping[str, dict[str, Any]]
    ) -> list[str]:
        seen = (_ready(value), (value or {}).get("observedGeneration"))
        previous = self._deps_seen.get(key)
        self._deps_seen[key] = seen
        if value is None or not seen[0] or previous == seen:
            return []
        return [k for k, doc in objects.items() if key in _depends_on(doc)]

    # -- steps ------------------------------------------------------------------------

    async def reconcile_prerequisites(self, obj: HelmRelease, state: HelmState) -> None:
        if self.helm is None:
            raise Stalling(str(HelmUnavailable()), HelmReason.INIT_FAILED)
        refused = unsupported(obj.spec)
        target_ns = obj.spec.target_namespace or obj.metadata.namespace
        if obj.spec.storage_namespace and obj.spec.storage_namespace != target_ns:
            refused.append(
                "spec.storageNamespace other than the release namespace "
                f"({obj.spec.storage_namespace!r} != {target_ns!r}; Helm's engine keeps "
                "release records in the release namespace)"
            )
        if refused:
            raise Stalling(
                f"{', '.join(refused)}: not supported by fluxbus yet", Reason.INVALID_SPEC
            )

    async def reconcile_dependencies(self, obj: HelmRelease, state: HelmState) -> None:
        own = self.key_of(obj)
        for dep in obj.spec.depends_on:
            ns = dep.namespace or obj.metadata.namespace
            key = subjects.object_key("HelmRelease", ns, dep.name)
            name = f"{ns}/{dep.name}"
            if key == own:
                raise Stalling(
                    f"dependency '{name}' is the HelmRelease itself", Reason.INVALID_SPEC
                )
            try:
                doc = await self.store.get_object(key)
                status = await self.store.get_status(key)
            except BusError as e:
                raise Generic(f"unable to get '{name}' dependency: {e}") from e
            if doc is None:
                self._not_ready(f"unable to get '{name}' dependency: not found")
                continue
            st = status.value if status else {}
            if dep.ready_expr:
                variables = {
                    "dep": {**doc.value, "status": st},
                    "self": {"metadata": obj.metadata.model_dump(by_alias=True)},
                }
                try:
                    program = compile_program(dep.ready_expr)
                except CelError as e:
                    raise Stalling(
                        f"dependency '{name}' readyExpr: invalid CEL expression: {e}",
                        Reason.INVALID_CEL_EXPRESSION,
                    ) from None
                if not evaluate_bool(program, activation(variables)):
                    self._not_ready(f"dependency '{name}' is not ready according to readyExpr eval")
                continue
            gen = int((doc.value.get("metadata") or {}).get("generation") or 0)
            if not _ready(st) or int(st.get("observedGeneration") or 0) != gen:
                self._not_ready(f"dependency '{name}' is not ready")

    def _not_ready(self, message: str) -> None:
        log.info(
            "dependencies.not_ready",
            error=message,
            retry_in=format_duration(self.settings.dependency_requeue),
        )
        raise Waiting(
            message, HelmReason.DEPENDENCY_NOT_READY, requeue_after=self.settings.dependency_requeue
        )

    async def reconcile_chart(self, obj: HelmRelease, state: HelmState) -> None:
        assert self.helm is not None
        written = await self.charts.write_template(obj)
        _kind, ns, name = self.charts.location(obj)
        previous = obj.status.helm_chart
        if previous and previous != f"{ns}/{name}":  # chart moved (or chart -> chartRef)
            await self.charts.delete_template(obj, previous)
        obj.status.helm_chart = f"{ns}/{name}"
        if written in ("created", "configured") and self.recorder is not None:
            log.info("helmchart.written", helmchart=f"{ns}/{name}", action=written)
        state.chart = await self.charts.load(obj, self.helm)

    async def reconcile_values(self, obj: HelmRelease, state: HelmState) -> None:
        state.values = await self.values.compose(obj)
        state.config_digest = config_digest(state.values)

    async def reconcile_release(self, obj: HelmRelease, state: HelmState) -> Result:
        assert self.helm is not None and state.chart is not None
        st = obj.status
        target = await self.targets.target(obj)
        name = release_name(obj.metadata.name, obj.spec.target_namespace, obj.spec.release_name)
        namespace = obj.spec.target_namespace or obj.metadata.namespace
        storage_ns = storage_namespace(obj)
        actions = Actions(self.helm, self.recorder)
        await self._retarget(obj, actions, target, name, namespace, storage_ns)
        st.storage_namespace = storage_ns
        chart = state.chart
        reset = _annotation_request(obj, RESET_REQUESTED_AT, st.last_handled_reset_at)
        if (
            reset is not None
            or st.last_attempted_generation != obj.metadata.generation
            or st.last_attempted_revision != chart.info.version
            or st.last_attempted_config_digest != state.config_digest
        ):
            st.failures = st.install_failures = st.upgrade_failures = None
        if reset is not None:
            st.last_handled_reset_at = reset
        force = _annotation_request(obj, keys.FORCE_REQUESTED_AT, st.last_handled_force_at)
        if force is not None:
            st.last_handled_force_at = force
        st.last_attempted_generation = obj.metadata.generation
        st.last_attempted_revision = chart.info.version
        st.last_attempted_config_digest = state.config_digest
        job = Job(
            target=target,
            chart=chart.data,
            info=chart.info,
            values=state.values,
            release_name=name,
            namespace=namespace,
            storage_namespace=storage_ns,
            config_digest=state.config_digest,
        )
        held = requested_revision(obj)
        async with self._slots:
            try:
                if held is not None:
                    return Result(ready_message=await hold_at(obj, job, actions, held))
                await AtomicRelease(actions, self.drift, self.storage).run(
                    obj, job, force=force is not None
                )
            finally:
                await self._inventory(obj, job)
        return Result()

    async def _inventory(self, obj: HelmRelease, job: Job) -> None:
        """Record the deployed release's objects in `status.inventory` (as Flux);
        none deployed: no inventory. A failure to read them is logged, not fatal."""
        if not job.loaded:
            return  # Helm's storage was not read: the recorded inventory stands
        deployed = [r for r in job.stored if r.status == "deployed"]
        if not deployed:
            obj.status.inventory = None
            return
        if self.drift is None:
            return
        try:
            entries = await self.drift.inventory(job.target, deployed[-1].manifest, job.namespace)
        except DriftError as e:
            log.warning("inventory.build_failed", error=str(e))
            return
        obj.status.inventory = ResourceInventory.model_validate({"entries": entries})

    async def _retarget(
        self,
        obj: HelmRelease,
        actions: Actions,
        target: KubeTarget,
        name: str,
        namespace: str,
        storage_ns: str,
    ) -> None:
        """A new release name, namespace or storage namespace: uninstall the old
        release first (Flux's ReleaseTargetChanged)."""
        st = obj.status
        cur = hist.latest(st.history)
        old_storage = st.storage_namespace
        if cur is None or not old_storage:
            return
        if cur.name == name and cur.namespace == namespace and old_storage == storage_ns:
            return
        log.info("release.target_changed", old=hist.full_name(cur))
        try:
            await actions.uninstall(obj, target, cur.name, old_storage)
        except HelmEngineError as e:
            raise Generic(
                f"failed to uninstall release {hist.full_name(cur)} after its target changed: {e}",
                HelmReason.UNINSTALL_FAILED,
            ) from None
        st.history = []
        st.failures = st.install_failures = st.upgrade_failures = None

    # -- deletion ----------------------------------------------------------------------

    async def finalize(self, obj: HelmRelease) -> None:
        """Uninstall the release (unless suspended), then delete the generated HelmChart.

        Raises Generic when Helm fails (the runtime retries the deletion)."""
        if obj.spec.suspend:
            return
        st = obj.status
        if st.storage_namespace and self.helm is not None:
            cur = hist.latest(st.history)
            target = await self.targets.target(obj)
            name = release_name(obj.metadata.name, obj.spec.target_namespace, obj.spec.release_name)
            rel = cur.name if cur else name
            try:
                await Actions(self.helm, self.recorder).uninstall(
                    obj, target, rel, st.storage_namespace
                )
            except HelmEngineError as e:
                raise Generic(
                    f"Helm uninstall failed for release {rel}: {e}", HelmReason.UNINSTALL_FAILED
                ) from None
            if cur is not None and self.recorder is not None:
                message = (
                    f"Helm uninstall succeeded for release {hist.full_name(cur)} "
                    f"with chart {hist.versioned_chart(cur)}"
                )
                await self.recorder.event(
                    obj, Severity.INFO, HelmReason.UNINSTALL_SUCCEEDED, message
                )
        await self.charts.delete_template(obj)
