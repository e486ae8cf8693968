"""The Kustomization reconciler (kustomize-controller's, step for step).

Steps, in order, each returning or raising a typed error:

1. `reconcile_source`: the referenced GitRepository's `status.artifact`
   (an `Artifact`: revision, digest, path) from the status bucket; none yet
   → Waiting.
2. `reconcile_dependencies`: every `dependsOn` Kustomization Ready at its
   current generation (and, sharing our source, at the source's revision), or
   as its CEL `readyExpr` says; else Waiting(DependencyNotReady). A dependency
   turning Ready requeues at once.
3. `reconcile_build`: the render (`render.Renderer`: `substituteFrom`
   values, `build.Builder` and its cache) — or, while a rollback is asked
   (`fluxbus.io/rollback-to: <digest>`, `fluxbus rollback`), the output that
   history entry applied, from the object store (`history_output`).
4. `reconcile_apply`: Flux kinds fluxbus does not serve yet stop it before
   anything is applied (`not_served`); toolkit kinds found in the output go
   into the fluxbus store (`store_apply`), everything else to the cluster
   (`ClusterPort`: staged server-side apply with dry-run), with the drift
   ignore rules of `spec.ignore` / `spec.driftIgnoreRules` (`fluxbus_kube.logic.drift`).
   The inventory is recorded only when the whole apply succeeded; a failure
   is Flux's `ReconciliationFailed`.
5. `reconcile_prune`: with `prune: true`, delete what left the inventory
   (`prune`; never reached when build or apply failed; `prune: disabled` and
   `ssa: Ignore` respected).
6. `reconcile_health`: `wait: true` (every applied object) or `healthChecks`,
   judged by kstatus or `healthCheckExprs`, watch-driven (`health_wait`),
   bounded by `spec.timeout`, cancelled when a newer revision or generation
   arrives. `Ready=Unknown` / `Progressing` is published while it runs, and
   when a new revision starts.
   With `fluxbus.io/drift: report`, an output already applied is compared
   with the cluster instead (`drift_report`: condition Drifted, not
   corrected); `fluxbus.io/create-namespace` creates `targetNamespace` first
   (`namespaces`).
7. `reconcile_status`: lastAppliedRevision, history (`logic.history`, each
   entry's output kept in the object store, bounded by the history limit),
   and one event listing what changed (none when nothing did).

`spec.timeout` bounds the whole reconcile. `finalize()` applies the
deletionPolicy (MirrorPrune, Delete, WaitForTermination, Orphan). Cluster
requests impersonate `spec.serviceAccountName` when set and go to the
cluster of `spec.kubeConfig.secretRef` when set (`remote.ClusterPool`);
`spec.decryption` and a kubeConfig without secretRef are refused (Stalled)
rather than ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog
from pydantic import ValidationError

from fluxbus_common import cel, keys, subjects
from fluxbus_common.api import Kustomization, Snapshot
from fluxbus_common.api.compat import SERVED_SOURCE_KINDS, not_served_message
from fluxbus_common.api.kustomize import (
    MIN_KUSTOMIZATION_TIMEOUT,
    ResourceInventory,
    ResourceRef,
)
from fluxbus_common.api.meta import Artifact, seconds
from fluxbus_common.conditions import (
    ConditionType,
    Reason,
    now_rfc3339,
    remove_condition,
    set_condition,
)
from fluxbus_common.duration import format_duration
from fluxbus_common.errors import Generic, ReconcileError, Stalling, Waiting
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.ports import BusError
from fluxbus_common.reconcile import (
    DependencyWatch,
    Result,
    Step,
    StepReconciler,
    publish_progress,
)
from fluxbus_kube.errors import ClusterError
from fluxbus_kube.logic.drift import ignore_drift, ignored_paths
from fluxbus_kube.resources import Change, Ref
from fluxbus_kustomize import history_output
from fluxbus_kustomize.build import Builder, RenderCache
from fluxbus_kustomize.drift_report import no_drift, report_drift, report_only
from fluxbus_kustomize.health_wait import Superseded, race, wait_healthy
from fluxbus_kustomize.logic import history as hist
from fluxbus_kustomize.logic.health import HealthCheckExpr, HealthCheckExprError
from fluxbus_kustomize.logic.inventory import (
    InventoryEntry,
    ObjMetadata,
    parse_entries,
    stale_entries,
)
from fluxbus_kustomize.namespaces import ensure_namespace
from fluxbus_kustomize.not_served import refuse_not_served
from fluxbus_kustomize.ports import ClusterPort, KustomizeStore
from fluxbus_kustomize.prune import prune
from fluxbus_kustomize.remote import ClusterPool
from fluxbus_kustomize.render import Renderer, owned
from fluxbus_kustomize.settings import KustomizeSettings
from fluxbus_kustomize.store_apply import (
    apply_store,
    in_store,
    plan_store,
    store_info,
    store_ref,
)

log = structlog.get_logger("fluxbus.kustomize")

REVISION_KEY = "kustomize.toolkit.fluxcd.io/revision"
"""Event metadata key carrying the applied revision (Flux's `<group>/revision`)."""
HEALTH_MARGIN = 0.05
"""Seconds the health wait leaves of `spec.timeout`, so it reports its own
timeout (naming the unhealthy objects) before the whole reconcile times out."""


@dataclass
class KustomizeState:
    """What the Kustomization steps hand each other during one reconcile."""

    start: float
    """time.monotonic() when the reconcile began."""
    deadline: float
    """time.monotonic() by which it must end (`spec.timeout`)."""
    source_key: str = ""
    """The status key of the source (reconcile_source)."""
    artifact: Artifact | None = None
    """The source's `status.artifact` (reconcile_source)."""
    revision: str = ""
    """The source revision being applied."""
    old_inventory: list[InventoryEntry] = field(default_factory=list)
    """The inventory before this reconcile."""
    objects: list[dict[str, Any]] = field(default_factory=list)
    """The rendered manifests (reconcile_build)."""
    checksum: str | None = None
    """Digest of the rendered manifests; set once the build succeeded."""
    changes: list[Change] = field(default_factory=list)
    """What apply did, one per object (reconcile_apply)."""
    inventory: list[InventoryEntry] = field(default_factory=list)
    """The new inventory."""
    pruned: list[Change] = field(default_factory=list)
    """What prune deleted (reconcile_prune)."""
    rollback: Snapshot | None = None
    """The history entry a rollback applies (reconcile_source), else None."""
    report_drift: bool = False
    """Report-only drift and the output is the one applied: compare, do not apply."""


@dataclass
class _InFlight:
    """A reconcile in progress: what would make its health wait obsolete."""

    source_key: str
    revision: str
    generation: int
    superseded: asyncio.Event = field(default_factory=asyncio.Event)


# --------------------------------------------------------------------------- helpers


def _artifact(status: Mapping[str, Any] | None) -> Artifact | None:
    """Return a source status's artifact when it names a revision and a digest, else None."""
    raw = (status or {}).get("artifact")
    if not isinstance(raw, Mapping):
        return None
    try:
        artifact = Artifact.model_validate(raw)
    except ValidationError:
        return None  # not a complete artifact yet: as good as none
    return artifact if artifact.revision and artifact.digest else None


def _source_key(doc: Mapping[str, Any]) -> str | None:
    """Return the status key of the source a stored Kustomization document points at."""
    spec = doc.get("spec") or {}
    ref = spec.get("sourceRef") or {}
    if not ref.get("name"):
        return None
    ns = ref.get("namespace") or (doc.get("metadata") or {}).get("namespace") or "default"
    return subjects.object_key(str(ref.get("kind") or "GitRepository"), ns, ref["name"])


def _depends_on(doc: Mapping[str, Any]) -> list[str]:
    """Return the keys of the Kustomizations a stored document depends on."""
    ns = (doc.get("metadata") or {}).get("namespace") or "default"
    out = []
    for dep in (doc.get("spec") or {}).get("dependsOn") or []:
        if isinstance(dep, Mapping) and dep.get("name"):
            out.append(
                subjects.object_key("Kustomization", dep.get("namespace") or ns, dep["name"])
            )
    return out


def _ready(status: Mapping[str, Any] | None) -> bool:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ConditionType.READY:
            return c.get("status") == "True"
    return False


def _checksum(objects: Sequence[Mapping[str, Any]]) -> str:
    data = json.dumps(list(objects), sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _entry(ref: Ref) -> InventoryEntry:
    meta = ObjMetadata(ref.namespace, ref.name, ref.resource.group, ref.resource.kind)
    return InventoryEntry(meta.id, ref.resource.version)


def _cel_true(expr: str, variables: Mapping[str, Any], what: str) -> bool:
    """Evaluate a CEL expression; an evaluation error (a missing field) means false.

    Raises Stalling when the expression does not compile (only a new spec helps).
    """
    try:
        program = cel.compile_program(expr)
    except cel.CelError as e:
        raise Stalling(f"{what}: invalid CEL expression: {e}", Reason.INVALID_SPEC) from None
    return cel.evaluate_bool(program, cel.activation(variables))


# --------------------------------------------------------------------------- reconciler


class KustomizationReconciler(StepReconciler[Kustomization, KustomizeState]):
    """Reconciles Kustomizations against one cluster and the fluxbus store.

    `store` is anything that reads statuses, objects, Secrets/ConfigMaps and
    artifacts (`KustomizeStore`; the `Bus` is one); `cluster` the target
    cluster (`ClusterPort`); `recorder` receives the events.
    """

    kind: ClassVar[str] = "Kustomization"

    def __init__(
        self,
        store: KustomizeStore,
        cluster: ClusterPort,
        *,
        recorder: EventSink | None = None,
        builder: Builder | None = None,
        settings: KustomizeSettings | None = None,
        clusters: ClusterPool | None = None,
    ) -> None:
        self.store = store
        self.cluster = cluster
        self.recorder = recorder
        self.settings = settings or KustomizeSettings()
        self.builder = builder or Builder(cache=RenderCache(self.settings.render_cache))
        self.renderer = Renderer(store, self.builder, strict=self.settings.strict_substitution)
        self.clusters = clusters or ClusterPool(cluster, store)
        """The target clusters: `cluster`, or a remote one per `spec.kubeConfig`."""
        self._inflight: dict[str, _InFlight] = {}
        self._sources_seen: dict[str, tuple[Any, ...]] = {}
        self._deps_seen: dict[str, tuple[Any, ...]] = {}
        self.watches = (
            DependencyWatch("GitRepository", self._on_source_status),
            DependencyWatch("Kustomization", self._on_kustomization_status),
            DependencyWatch("Kustomization", self._on_kustomization_object, source="objects"),
        )

    # -- runtime protocol ----------------------------------------------------------

    def parse(self, doc: dict[str, Any]) -> Kustomization:
        return Kustomization.model_validate(doc)

    def interval(self, obj: Kustomization) -> float:
        return obj.spec.interval_seconds

    @staticmethod
    def key_of(obj: Kustomization) -> str:
        return subjects.object_key("Kustomization", obj.metadata.namespace, obj.metadata.name)

    def timeout(self, obj: Kustomization) -> float:
        """Flux's GetTimeout(): `spec.timeout`, else interval − 30 s, at least `min_timeout`."""
        spec = obj.spec
        value = seconds(spec.timeout, spec.interval_seconds - MIN_KUSTOMIZATION_TIMEOUT)
        return max(value, self.settings.min_timeout)

    def retry_interval(self, obj: Kustomization) -> float:
        """Flux retries every failure after `spec.retryInterval` (default: the interval)."""
        return obj.spec.retry_interval_seconds

    def new_state(self, obj: Kustomization) -> KustomizeState:
        start = time.monotonic()
        return KustomizeState(start=start, deadline=start + self.timeout(obj))

    def steps(self) -> tuple[Step[Kustomization, KustomizeState], ...]:
        return (
            self.reconcile_source,
            self.reconcile_dependencies,
            self.reconcile_build,
            self.reconcile_apply,
            self.reconcile_prune,
            self.reconcile_health,
            self.reconcile_status,
        )

    async def reconcile(self, obj: Kustomization) -> Result:
        """Reconcile with the target cluster leased for the whole reconcile."""
        async with self.clusters.bound(self.key_of(obj), obj):
            return await super().reconcile(obj)

    async def on_result(
        self, obj: Kustomization, state: KustomizeState, error: ReconcileError | None
    ) -> None:
        """Record a failed attempt in the history (a success records itself); forget
        the reconcile in flight."""
        self._inflight.pop(self.key_of(obj), None)
        if error is not None and error.reason != Reason.HEALTH_CHECK_CANCELED:
            await self._record_history(obj, state, error.reason)

    def _cluster(self, obj: Kustomization) -> ClusterPort:
        """The cluster as the Kustomization's service account (`spec.serviceAccountName`,
        else the configured default), impersonated as Flux does; else as the service."""
        target = self.clusters.target(self.key_of(obj))
        account = obj.spec.service_account_name or self.settings.default_service_account
        if not account:
            return target
        return target.as_user(f"system:serviceaccount:{obj.metadata.namespace}:{account}")

    @staticmethod
    def _check_supported(obj: Kustomization) -> None:
        """Refuse spec fields whose silent omission would do harm (Stalling until changed):
        applying SOPS-encrypted Secrets undecrypted, or applying to this cluster
        what was meant for another (a kubeConfig without secretRef)."""
        kube_config = obj.spec.kube_config
        unsupported = [
            name
            for name, value in (
                ("spec.decryption", obj.spec.decryption),
                ("spec.kubeConfig without secretRef", kube_config and not kube_config.secret_ref),
            )
            if value
        ]
        if unsupported:
            raise Stalling(
                f"{', '.join(unsupported)}: not supported by fluxbus yet", Reason.INVALID_SPEC
            )

    # -- watches (called by the runtime on every change) -------------------------

    def _on_source_status(
        self, key: str, value: dict[str, Any] | None, objects: Mapping[str, dict[str, Any]]
    ) -> list[str]:
        artifact = _artifact(value)
        revision = artifact.revision if artifact else None
        state = (revision, artifact.digest if artifact else None)
        for flight in self._inflight.values():
            if flight.source_key == key and revision and flight.revision != revision:
                flight.superseded.set()
        if self._sources_seen.get(key) == state:
            return []
        self._sources_seen[key] = state
        return [k for k, doc in objects.items() if _source_key(doc) == key]

    def _on_kustomization_status(
        self, key: str, value: dict[str, Any] | None, objects: Mapping[str, dict[str, Any]]
    ) -> list[str]:
        state = (
            _ready(value),
            (value or {}).get("lastAppliedRevision"),
            (value or {}).get("observedGeneration"),
        )
        previous = self._deps_seen.get(key)
        self._deps_seen[key] = state
        if value is None or not state[0] or previous == state:
            return []
        return [k for k, doc in objects.items() if key in _depends_on(doc)]

    def _on_kustomization_object(
        self, key: str, value: dict[str, Any] | None, objects: Mapping[str, dict[str, Any]]
    ) -> list[str]:
        flight = self._inflight.get(key)
        if flight is not None:
            meta = (value or {}).get("metadata") or {}
            if value is None or int(meta.get("generation") or 0) != flight.generation:
                flight.superseded.set()
        return []

    # -- steps -----------------------------------------------------------------------

    async def reconcile_source(self, obj: Kustomization, state: KustomizeState) -> None:
        self._check_supported(obj)
        ref = obj.spec.source_ref
        if ref.kind not in SERVED_SOURCE_KINDS:
            raise Stalling(
                f"spec.sourceRef: {not_served_message(ref.kind)} "
                f"(fluxbus serves {', '.join(SERVED_SOURCE_KINDS)})",
                Reason.ARTIFACT_FAILED,
            )
        ns = ref.namespace or obj.metadata.namespace
        source_key = subjects.object_key(ref.kind, ns, ref.name)
        retry = obj.spec.retry_interval_seconds
        try:
            status = await self.store.get_status(source_key)
        except BusError as e:
            raise Generic(f"reading {ref.kind}/{ns}/{ref.name}: {e}") from e
        artifact = _artifact(status.value if status else None)
        if artifact is None:
            try:
                exists = await self.store.get_object(source_key) is not None
            except BusError as e:
                raise Generic(f"reading {ref.kind}/{ns}/{ref.name}: {e}") from e
            message = (
                f"Source artifact not found, {ref.kind}/{ns}/{ref.name} has no artifact yet"
                if exists
                else f"Source '{ref.kind}/{ns}/{ref.name}' not found"
            )
            raise Waiting(message, Reason.ARTIFACT_FAILED, requeue_after=retry)
        state.source_key = source_key
        state.artifact = artifact
        state.revision = str(artifact.revision)
        self._rollback(obj, state)
        state.old_inventory = parse_entries(
            [e.model_dump() for e in obj.status.inventory.entries] if obj.status.inventory else []
        )
        obj.status.last_attempted_revision = state.revision
        self._inflight[self.key_of(obj)] = _InFlight(
            source_key, state.revision, obj.metadata.generation
        )
        if state.revision != obj.status.last_applied_revision:
            doing = f"Fetching manifests for revision {state.revision}"
            await self._progressing(obj, "Reconciliation in progress", doing)

    @staticmethod
    def _rollback(obj: Kustomization, state: KustomizeState) -> None:
        """Hold at a history entry while `fluxbus.io/rollback-to` names one.

        Raises Stalling(RollbackFailed) when the history has no such entry.
        """
        digest = (obj.metadata.annotations or {}).get(keys.ROLLBACK_ANNOTATION)
        if not digest:
            return
        entry = hist.find(obj.status.history, digest)
        if entry is None:
            raise Stalling(
                f"cannot roll back to {digest}: not in the history any more "
                "(fluxbus resume returns to Git)",
                Reason.ROLLBACK_FAILED,
            )
        state.rollback = entry
        state.revision = hist.revision_of(entry) or state.revision

    async def reconcile_dependencies(self, obj: Kustomization, state: KustomizeState) -> None:
        if state.rollback is not None:
            return  # a rollback is an operator's decision: it waits for nobody
        own = self.key_of(obj)
        for dep in obj.spec.depends_on:
            ns = dep.namespace or obj.metadata.namespace
            key = subjects.object_key("Kustomization", ns, dep.name)
            what = f"dependency '{ns}/{dep.name}'"
            if key == own:
                raise Stalling(f"{what} is the Kustomization itself", Reason.DEPENDENCY_NOT_READY)
            doc = await self.store.get_object(key)
            status = await self.store.get_status(key)
            if doc is None:
                self._not_ready(f"{what} not found")
                continue
            dep_doc = {**doc.value, "status": status.value if status else {}}
            if dep.ready_expr:
                self_doc = {"metadata": obj.metadata.model_dump(by_alias=True)}
                activation = {"dep": dep_doc, "self": self_doc}
                if not _cel_true(dep.ready_expr, activation, f"{what} readyExpr"):
                    self._not_ready(f"{what} is not ready according to readyExpr")
                continue
            gen = int((doc.value.get("metadata") or {}).get("generation") or 0)
            st = status.value if status else {}
            if not _ready(st) or int(st.get("observedGeneration") or 0) != gen:
                self._not_ready(f"{what} is not ready")
            if (
                _source_key(doc.value) == state.source_key
                and st.get("lastAppliedRevision") != state.revision
            ):
                self._not_ready(f"{what} revision is not up to date")

    def _not_ready(self, message: str) -> None:
        raise Waiting(
            f"{message}, retrying in {format_duration(self.settings.dependency_requeue)}",
            Reason.DEPENDENCY_NOT_READY,
            requeue_after=self.settings.dependency_requeue,
        )

    async def reconcile_build(self, obj: Kustomization, state: KustomizeState) -> None:
        artifact = state.artifact
        assert artifact is not None  # reconcile_source ran first
        if state.rollback is not None:
            state.objects = await self._rollback_output(obj, state.rollback)
        else:
            state.objects = await self.renderer.render(obj, artifact, self._cluster(obj))
        state.checksum = _checksum(state.objects)
        newest = obj.status.history[0] if obj.status.history else None
        state.report_drift = (
            report_only(obj)
            and state.rollback is None
            and newest is not None
            and newest.digest == state.checksum
            and newest.last_reconciled_status == Reason.RECONCILIATION_SUCCEEDED
            and obj.status.last_applied_revision == state.revision
        )

    async def _rollback_output(self, obj: Kustomization, entry: Snapshot) -> list[dict[str, Any]]:
        """Return what a history entry applied. Raises Generic(RollbackFailed)."""
        meta = obj.metadata
        try:
            return await history_output.load(self.store, meta.namespace, meta.name, entry.digest)
        except history_output.OutputGone as e:
            raise Generic(f"cannot roll back: {e}", Reason.ROLLBACK_FAILED) from None
        except BusError as e:
            raise Generic(f"reading the rollback output: {e}", Reason.ROLLBACK_FAILED) from e

    async def reconcile_apply(self, obj: Kustomization, state: KustomizeState) -> None:
        """Apply the objects; a failure keeps the previous inventory (as Flux does:
        nothing is recorded as applied unless the whole apply succeeded)."""
        ours = [owned(obj, o) for o in state.objects]
        if state.report_drift:
            metadata = {REVISION_KEY: state.revision}
            cluster = self._cluster(obj)
            state.changes = await report_drift(obj, cluster, ours, self.recorder, metadata)
            state.inventory = list(state.old_inventory)
            return
        await refuse_not_served(state.objects, self.renderer.artifact_files(obj, state.artifact))
        rules = obj.spec.ignore_rules
        toolkit: list[dict[str, Any]] = []
        in_cluster: list[dict[str, Any]] = []
        created_ns = await ensure_namespace(obj, self._cluster(obj))
        for o in ours:
            kept = store_info(str(o.get("apiVersion")), str(o.get("kind"))) is not None
            (toolkit if kept else in_cluster).append(o)
        store_plan = plan_store([ignore_drift(o, rules) for o in toolkit])
        try:
            changes = await self._cluster(obj).apply_all(
                in_cluster,
                force=obj.spec.force,
                timeout=max(1.0, state.deadline - time.monotonic()),
                ignored=ignored_paths(in_cluster, rules),
            )
        except ClusterError as e:  # ApplyError too: Flux's ReconciliationFailed
            raise Generic(str(e), Reason.RECONCILIATION_FAILED) from None
        changes += await apply_store(self.store, store_plan)
        state.changes = changes
        inventory = [_entry(c.ref) for c in changes]
        state.inventory = inventory
        self._set_inventory(obj, inventory)
        if created_ns is not None:  # reported, but not in the inventory: never pruned
            state.changes = [created_ns, *changes]
        no_drift(obj, state.revision)

    def _set_inventory(self, obj: Kustomization, entries: Sequence[InventoryEntry]) -> None:
        unique = {e.id: e for e in entries}
        obj.status.inventory = ResourceInventory(
            entries=[ResourceRef(id=i, v=unique[i].v) for i in sorted(unique)]
        )

    async def reconcile_prune(self, obj: Kustomization, state: KustomizeState) -> None:
        if not obj.spec.prune:
            state.pruned = []
            return
        stale = stale_entries(state.old_inventory, state.inventory)
        state.pruned = await self._prune(obj, stale)

    async def _prune(self, obj: Kustomization, entries: Sequence[InventoryEntry]) -> list[Change]:
        """Delete the inventory entries that may be pruned and are ours (`prune.prune`)."""
        owner = (obj.metadata.name, obj.metadata.namespace)
        return await prune(self._cluster(obj), self.store, owner, entries)

    async def reconcile_health(self, obj: Kustomization, state: KustomizeState) -> None:
        changes: list[Change] = state.changes
        if obj.spec.wait:
            targets = [c for c in changes if c.action != "skipped"]
        elif obj.spec.health_checks:
            targets = await self._health_check_targets(obj)
        else:
            remove_condition(obj.status.conditions, ConditionType.HEALTHY)
            return
        try:
            exprs = [
                HealthCheckExpr.from_spec(e.model_dump(by_alias=True, exclude_none=True))
                for e in obj.spec.health_check_exprs
            ]
        except HealthCheckExprError as e:
            raise Stalling(f"healthCheckExprs: {e}", Reason.HEALTH_CHECK_FAILED) from None
        if not targets:
            self._healthy(obj, True, Reason.SUCCEEDED, "No health checks to run")
            return
        running = f"Running health checks for revision {state.revision}"
        await self._progressing(obj, running, running, healthy=True)
        start = time.monotonic()
        remaining = max(0.0, state.deadline - start - HEALTH_MARGIN)
        flight = self._inflight.get(self.key_of(obj))
        wait = wait_healthy(self._cluster(obj), self.store, targets, exprs, remaining)
        try:
            ok, unhealthy = await (race(wait, flight.superseded) if flight else wait)
        except Superseded:
            message = "Health check canceled, a new revision or generation was detected"
            self._healthy(obj, False, Reason.HEALTH_CHECK_CANCELED, message)
            raise Generic(message, Reason.HEALTH_CHECK_CANCELED, retry_after=0.0) from None
        elapsed = format_duration(round(time.monotonic() - start, 3))
        if not ok:
            detail = "; ".join(unhealthy)
            message = f"Health check failed after {elapsed}: {detail}"
            self._healthy(obj, False, Reason.HEALTH_CHECK_FAILED, message)
            raise Generic(message, Reason.HEALTH_CHECK_FAILED)
        self._healthy(obj, True, Reason.SUCCEEDED, f"Health check passed in {elapsed}")

    async def _progressing(
        self, obj: Kustomization, ready: str, doing: str, *, healthy: bool = False
    ) -> None:
        """Publish, mid-reconcile, what Flux patches while it works: Ready=Unknown and
        Reconciling=True (reason Progressing, "<doing> … with a timeout of …"), and
        Healthy=Unknown while health checks run."""
        timeout = format_duration(self.timeout(obj))
        message = f"{doing} with a timeout of {timeout}"
        if ready == doing:
            ready = message
        gen = obj.metadata.generation
        conds = obj.status.conditions
        set_condition(conds, ConditionType.READY, "Unknown", Reason.PROGRESSING, ready, gen)
        set_condition(conds, ConditionType.RECONCILING, True, Reason.PROGRESSING, message, gen)
        if healthy:
            set_condition(conds, ConditionType.HEALTHY, "Unknown", Reason.PROGRESSING, message, gen)
        await publish_progress(obj)

    def _healthy(self, obj: Kustomization, ok: bool, reason: str, message: str) -> None:
        set_condition(
            obj.status.conditions,
            ConditionType.HEALTHY,
            ok,
            reason,
            message,
            obj.metadata.generation,
        )

    async def _health_check_targets(self, obj: Kustomization) -> list[Change]:
        targets: list[Change] = []
        for hc in obj.spec.health_checks:
            ns = hc.namespace or obj.metadata.namespace
            api_version = hc.api_version or ""
            info = store_info(api_version, hc.kind)
            if info is not None:
                targets.append(Change(store_ref(api_version, info, ns, hc.name), "unchanged"))
                continue
            try:
                resource = await self._cluster(obj).resource_for(api_version, hc.kind)
            except ClusterError as e:
                raise Generic(f"healthChecks: {e}", Reason.HEALTH_CHECK_FAILED) from None
            ref = Ref(resource, ns if resource.namespaced else "", hc.name)
            targets.append(Change(ref, "unchanged"))
        return targets

    async def reconcile_status(self, obj: Kustomization, state: KustomizeState) -> Result:
        revision = state.revision
        obj.status.last_applied_revision = revision
        await self._record_history(obj, state, Reason.RECONCILIATION_SUCCEEDED)
        changes: list[Change] = state.changes + state.pruned
        lines = [
            f"{c.subject} {c.action}"
            for c in changes
            if c.action in ("created", "configured", "deleted")
        ]
        if lines and self.recorder is not None:
            await self.recorder.event(
                obj,
                Severity.INFO,
                Reason.RECONCILIATION_SUCCEEDED,
                "\n".join(lines),
                {REVISION_KEY: revision},
            )
        held = " (rolled back; fluxbus resume returns to Git)" if state.rollback else ""
        return Result(
            ready_reason=Reason.RECONCILIATION_SUCCEEDED,
            ready_message=f"Applied revision: {revision}{held}",
        )

    async def _record_history(self, obj: Kustomization, state: KustomizeState, status: str) -> None:
        """Record the outcome in `status.history`; keep the output a success applied
        in the object store, and drop the outputs of entries past the limit."""
        checksum = state.checksum
        if not checksum:
            return
        meta = obj.metadata
        outcome = hist.Outcome(
            digest=checksum,
            revision=state.revision,
            status=status,
            now=now_rfc3339(),
            duration=format_duration(round(time.monotonic() - state.start, 3)),
            pruned=tuple(c.subject for c in state.pruned),
        )
        keep = state.objects if status == Reason.RECONCILIATION_SUCCEEDED else None
        obj.status.history = await history_output.record(
            self.store,
            (meta.namespace, meta.name),
            obj.status.history,
            outcome,
            self.settings.history_limit,
            None if state.report_drift else keep,
        )

    # -- deletion --------------------------------------------------------------------

    async def finalize(self, obj: Kustomization) -> None:
        """Apply the deletionPolicy (on the target cluster) before the Kustomization
        is removed, then delete its history outputs."""
        async with self.clusters.bound(self.key_of(obj), obj):
            await self._finalize(obj)
        await history_output.drop_all(self.store, obj.metadata.namespace, obj.metadata.name)

    async def _finalize(self, obj: Kustomization) -> None:
        """Apply the deletionPolicy before the Kustomization is removed.

        MirrorPrune (default) deletes the inventory when `prune` is true,
        Delete always, WaitForTermination deletes and waits (up to
        `spec.timeout`) for the objects to be gone, Orphan leaves them. A
        suspended Kustomization leaves everything in place.
        """
        policy = obj.spec.effective_deletion_policy
        inventory = obj.status.inventory.entries if obj.status.inventory else []
        if obj.spec.suspend or not inventory:
            return
        if policy == "Orphan" or (policy == "MirrorPrune" and not obj.spec.prune):
            return
        entries = stale_entries(parse_entries([e.model_dump() for e in inventory]), [])
        deleted = await self._prune(obj, entries)
        if policy == "WaitForTermination":
            refs = [c.ref for c in deleted if not in_store(c.ref)]
            try:
                await self._cluster(obj).wait_gone(refs, self.timeout(obj))
            except TimeoutError as e:
                # Flux logs the timeout and lets the Kustomization go anyway.
                log.error("finalize.wait_for_termination_timeout", error=str(e))
        if deleted and self.recorder is not None:
            await self.recorder.event(
                obj,
                Severity.INFO,
                Reason.GARBAGE_COLLECTION_SUCCEEDED,
                "\n".join(f"{c.subject} deleted" for c in deleted),
            )
