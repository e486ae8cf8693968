"""The Kustomization reconciler (kustomize-controller's, step for step).

Steps, in order, each returning or raising a typed error:

1. `reconcile_source`: the referenced GitRepository's `status.artifact`
   (revision, digest, path) from the status bucket; none yet → Waiting.
2. `reconcile_dependencies`: every `dependsOn` Kustomization Ready at its
   current generation (and, sharing our source, at the source's revision), or
   as its CEL `readyExpr` says; else Waiting(DependencyNotReady). A dependency
   turning Ready requeues at once.
3. `reconcile_build`: `substituteFrom` values from the bus, then the render
   (`build.Builder`); a render for the same (artifact digest, spec,
   substitution inputs) is taken from the cache without fetching the artifact.
4. `reconcile_apply`: toolkit kinds found in the output go into the fluxbus
   store (`bus.apply_object`), everything else to the cluster (`cluster.py`,
   staged server-side apply with dry-run), without the fields named by
   `driftIgnoreRules`. The inventory is recorded.
5. `reconcile_prune`: with `prune: true`, delete what left the inventory
   (never reached when build or apply failed; `prune: disabled` respected).
6. `reconcile_health`: `wait: true` (every applied object) or `healthChecks`,
   judged by kstatus or `healthCheckExprs`, watch-driven, bounded by
   `spec.timeout`, cancelled when a newer revision or generation arrives.
7. `reconcile_status`: lastAppliedRevision, history, and one event listing
   what changed (none when nothing did).

`spec.timeout` bounds the whole reconcile. `finalize()` applies the
deletionPolicy (MirrorPrune, Delete, WaitForTermination, Orphan). Cluster
requests impersonate `spec.serviceAccountName` when set; `spec.decryption`
and `spec.kubeConfig` are refused (Stalled) rather than ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import celpy
import structlog
from celpy import celtypes

from fluxbus_common import keys, subjects
from fluxbus_common.api import (
    KindInfo,
    Kustomization,
    Secret,
    Snapshot,
    UnknownKind,
    kind_for,
)
from fluxbus_common.api.kustomize import (
    MIN_KUSTOMIZATION_TIMEOUT,
    DriftIgnoreRule,
    ResourceInventory,
    ResourceRef,
    Selector,
)
from fluxbus_common.api.meta import seconds
from fluxbus_common.api.registry import parse_object
from fluxbus_common.bus import Bus
from fluxbus_common.conditions import (
    ConditionType,
    Reason,
    now_rfc3339,
    remove_condition,
    set_condition,
)
from fluxbus_common.errors import Generic, ReconcileError, Stalling, Waiting
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.ports import BusError
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_kustomize.build import Builder, BuildError, BuildSpec, RenderCache
from fluxbus_kustomize.cluster import ApplyError, Change, ClusterError, Ref, Resource
from fluxbus_kustomize.logic.health import (
    HealthCheckExpr,
    HealthCheckExprError,
    HealthResult,
    Status,
    check_health,
)
from fluxbus_kustomize.logic.inventory import (
    InventoryEntry,
    ObjMetadata,
    parse_entries,
    stale_entries,
)
from fluxbus_kustomize.logic.ordering import group_of, sort_key
from fluxbus_kustomize.logic.policy import Action, apply_policy, may_prune
from fluxbus_kustomize.logic.substitute import merge_variables

log = structlog.get_logger("fluxbus.kustomize")

HISTORY_SIZE = 5
"""Entries kept in status.history (Flux keeps five)."""
REVISION_KEY = "kustomize.toolkit.fluxcd.io/revision"
"""Event metadata key carrying the applied revision (Flux's `<group>/revision`)."""


# --------------------------------------------------------------------------- ports


class ClusterPort(Protocol):
    """What the reconciler needs from the target cluster (`cluster.Cluster`)."""

    def as_user(self, user: str | None) -> ClusterPort: ...

    async def ref_of(self, obj: Mapping[str, Any]) -> Ref: ...

    async def resource_for(self, api_version: str, kind: str) -> Resource: ...

    async def get(self, ref: Ref) -> dict[str, Any] | None: ...

    async def apply_all(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        timeout: float = 300.0,
        ignored: Mapping[tuple[str, str, str, str], Sequence[str]] | None = None,
    ) -> list[Change]: ...

    async def delete_all(
        self, refs: Sequence[Ref], propagation: str = "Background"
    ) -> list[Change]: ...

    async def wait_gone(self, refs: Sequence[Ref], timeout: float) -> None: ...

    async def watch_until(
        self,
        refs: Sequence[Ref],
        done: Any,
        timeout: float,
        initial: Mapping[Ref, Mapping[str, Any] | None] | None = None,
    ) -> tuple[bool, dict[Ref, dict[str, Any] | None]]: ...


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class KustomizeSettings:
    """Service knobs (environment: FLUXBUS_KUSTOMIZE_*).

    DEPENDENCY_REQUEUE: seconds before a Kustomization waiting on a dependency
      looks again (Flux's `--requeue-dependency`, 30 s); a dependency turning
      Ready requeues at once anyway.
    STRICT_SUBSTITUTION: an unset variable without default is an error (1/0).
    RENDER_CACHE: rendered builds kept in memory (one per Kustomization is
      enough to never render the same inputs twice).
    MIN_TIMEOUT: the floor of a Kustomization's timeout (Flux's GetTimeout()
      never goes below 30 s; tests lower it to keep timeouts short).
    DEFAULT_SERVICE_ACCOUNT: impersonated when a Kustomization names none
      (Flux's `--default-service-account`, for multi-tenant lockdown).
    """

    dependency_requeue: float = 30.0
    strict_substitution: bool = True
    render_cache: int = 4096
    min_timeout: float = MIN_KUSTOMIZATION_TIMEOUT
    default_service_account: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KustomizeSettings:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            dependency_requeue=float(
                e.get("FLUXBUS_KUSTOMIZE_DEPENDENCY_REQUEUE") or d.dependency_requeue
            ),
            strict_substitution=(e.get("FLUXBUS_KUSTOMIZE_STRICT_SUBSTITUTION") or "1")
            not in ("0", "false", "False"),
            render_cache=int(e.get("FLUXBUS_KUSTOMIZE_RENDER_CACHE") or d.render_cache),
            min_timeout=float(e.get("FLUXBUS_KUSTOMIZE_MIN_TIMEOUT") or d.min_timeout),
            default_service_account=e.get("FLUXBUS_KUSTOMIZE_DEFAULT_SERVICE_ACCOUNT") or None,
        )


@dataclass
class KustomizeState:
    """What the Kustomization steps hand each other during one reconcile."""

    start: float
    """time.monotonic() when the reconcile began."""
    deadline: float
    """time.monotonic() by which it must end (`spec.timeout`)."""
    source_key: str = ""
    """The status key of the source (reconcile_source)."""
    artifact: dict[str, Any] = field(default_factory=dict)
    """The source's `status.artifact`."""
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


@dataclass
class _InFlight:
    """A reconcile in progress: what would make its health wait obsolete."""

    source_key: str
    revision: str
    generation: int
    superseded: asyncio.Event = field(default_factory=asyncio.Event)


class _Superseded(Exception):
    """A newer revision or generation arrived while waiting."""


# --------------------------------------------------------------------------- helpers


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


def _go_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s}s"


def _identity(ref: Ref) -> ObjMetadata:
    return ObjMetadata(ref.namespace, ref.name, ref.resource.group, ref.resource.kind)


def _entry(ref: Ref) -> InventoryEntry:
    return InventoryEntry(_identity(ref).id, ref.resource.version)


def _store_info(api_version: str, kind: str) -> KindInfo | None:
    """Return the KindInfo of a toolkit kind kept in the fluxbus store, else None."""
    try:
        info = kind_for(api_version, kind)
    except UnknownKind:
        return None
    return info if info.store == "objects" else None


async def _race(coro: Any, event: asyncio.Event) -> Any:
    """Await `coro` unless `event` fires first (then raise _Superseded)."""
    task = asyncio.ensure_future(coro)
    stop = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, stop):
            if not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
    if task.done() and not task.cancelled():
        return task.result()
    raise _Superseded


# -- drift ignore rules (Flux's spec.driftIgnoreRules) -------------------------------


def _label_requirement(term: str) -> Any:
    """Return a predicate over a label map for one selector term (`k=v`, `k in (a,b)`, …)."""
    term = term.strip()
    m = re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", term)
    if m:
        key, op, raw = m.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = (p.strip() for p in term.partition(op))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        return lambda labels: term[1:].strip() not in labels
    return lambda labels: term in labels


def _split_selector(selector: str) -> list[str]:
    """Split a label selector on the commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    return [t for t in [*terms, current] if t.strip()]


def _selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    if not selector:
        return True
    return all(_label_requirement(t)(labels) for t in _split_selector(selector))


def _target_matches(target: Selector | None, obj: Mapping[str, Any]) -> bool:
    """kustomize's selector: group/version/kind/name/namespace (anchored regexes) and
    label/annotation selectors."""
    if target is None:
        return True
    api_version = str(obj.get("apiVersion", ""))
    meta = obj.get("metadata") or {}
    fields = (
        (target.group, group_of(api_version)),
        (target.version, api_version.rsplit("/", 1)[-1]),
        (target.kind, str(obj.get("kind", ""))),
        (target.name, str(meta.get("name") or "")),
        (target.namespace, str(meta.get("namespace") or "")),
    )
    for pattern, value in fields:
        if pattern and not re.fullmatch(pattern, value):
            return False
    return _selector_matches(target.label_selector, meta.get("labels") or {}) and (
        _selector_matches(target.annotation_selector, meta.get("annotations") or {})
    )


def _remove_pointer(doc: Any, pointer: str) -> None:
    """Remove the value at a JSON pointer (RFC 6901), if present."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts:
        return
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]


def _ident(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion")),
        str(obj.get("kind")),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


def ignore_drift(obj: Mapping[str, Any], rules: Sequence[DriftIgnoreRule]) -> dict[str, Any]:
    """Return the object without the fields its drift ignore rules name, so they are
    neither applied nor corrected (e.g. `/spec/replicas` under an autoscaler)."""
    matching = [r for r in rules if _target_matches(r.target, obj)]
    if not matching:
        return dict(obj)
    out = copy.deepcopy(dict(obj))
    for rule in matching:
        for path in rule.paths:
            _remove_pointer(out, path)
    return out


_CEL = celpy.Environment()


def _cel_true(expr: str, activation: Mapping[str, Any], what: str) -> bool:
    """Evaluate a CEL expression; an evaluation error (a missing field) means false.

    Raises Stalling when the expression does not compile (only a new spec helps).
    """
    try:
        program = _CEL.program(_CEL.compile(expr))
    except Exception as e:  # celpy has no common error base
        raise Stalling(f"{what}: invalid CEL expression: {e}", Reason.INVALID_SPEC) from None
    try:
        result = program.evaluate({k: celpy.json_to_cel(v) for k, v in activation.items()})
    except Exception:  # CELEvalError and friends
        return False
    return bool(result) if isinstance(result, bool | celtypes.BoolType) else False


# --------------------------------------------------------------------------- reconciler


class KustomizationReconciler(StepReconciler[Kustomization, KustomizeState]):
    """Reconciles Kustomizations against one cluster and the fluxbus store."""

    kind: ClassVar[str] = "Kustomization"

    def __init__(
        self,
        bus: Bus,
        cluster: ClusterPort,
        *,
        recorder: EventSink | None = None,
        builder: Builder | None = None,
        settings: KustomizeSettings | None = None,
    ) -> None:
        self.bus = bus
        self.cluster = cluster
        self.recorder = recorder
        self.settings = settings or KustomizeSettings()
        self.builder = builder or Builder(cache=RenderCache(self.settings.render_cache))
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

    async def on_result(
        self, obj: Kustomization, state: KustomizeState, error: ReconcileError | None
    ) -> None:
        """Record a failed attempt in the history (a success records itself); forget
        the reconcile in flight."""
        self._inflight.pop(self.key_of(obj), None)
        if error is not None and error.reason != Reason.HEALTH_CHECK_CANCELED:
            self._record_history(obj, state, error.reason)

    def _cluster(self, obj: Kustomization) -> ClusterPort:
        """The cluster as the Kustomization's service account (`spec.serviceAccountName`,
        else the configured default), impersonated as Flux does; else as the service."""
        account = obj.spec.service_account_name or self.settings.default_service_account
        if not account:
            return self.cluster
        return self.cluster.as_user(f"system:serviceaccount:{obj.metadata.namespace}:{account}")

    @staticmethod
    def _check_supported(obj: Kustomization) -> None:
        """Refuse spec fields whose silent omission would do harm (Stalling until changed):
        applying SOPS-encrypted Secrets undecrypted, or applying to this cluster
        what was meant for another."""
        unsupported = [
            name
            for name, value in (
                ("spec.decryption", obj.spec.decryption),
                ("spec.kubeConfig", obj.spec.kube_config),
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
        artifact = (value or {}).get("artifact") or {}
        state = (artifact.get("revision"), artifact.get("digest"))
        revision = artifact.get("revision")
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
        if ref.kind != "GitRepository":
            raise Stalling(
                f"source kind {ref.kind} is not supported (only GitRepository)",
                Reason.ARTIFACT_FAILED,
            )
        ns = ref.namespace or obj.metadata.namespace
        source_key = subjects.object_key(ref.kind, ns, ref.name)
        retry = obj.spec.retry_interval_seconds
        try:
            status = await self.bus.get_status(source_key)
        except BusError as e:
            raise Generic(f"reading {ref.kind}/{ns}/{ref.name}: {e}") from e
        artifact = ((status.value if status else None) or {}).get("artifact") or {}
        if not artifact.get("revision") or not artifact.get("digest"):
            try:
                exists = await self.bus.get_object(source_key) is not None
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
        state.revision = str(artifact["revision"])
        state.old_inventory = parse_entries(
            [e.model_dump() for e in obj.status.inventory.entries] if obj.status.inventory else []
        )
        obj.status.last_attempted_revision = state.revision
        self._inflight[self.key_of(obj)] = _InFlight(
            source_key, state.revision, obj.metadata.generation
        )

    async def reconcile_dependencies(self, obj: Kustomization, state: KustomizeState) -> None:
        own = self.key_of(obj)
        for dep in obj.spec.depends_on:
            ns = dep.namespace or obj.metadata.namespace
            key = subjects.object_key("Kustomization", ns, dep.name)
            what = f"dependency '{ns}/{dep.name}'"
            if key == own:
                raise Stalling(f"{what} is the Kustomization itself", Reason.DEPENDENCY_NOT_READY)
            doc = await self.bus.get_object(key)
            status = await self.bus.get_status(key)
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
            f"{message}, retrying in {_go_duration(self.settings.dependency_requeue)}",
            Reason.DEPENDENCY_NOT_READY,
            requeue_after=self.settings.dependency_requeue,
        )

    async def reconcile_build(self, obj: Kustomization, state: KustomizeState) -> None:
        spec = BuildSpec.from_kustomization(obj.spec)
        variables = await self._variables(obj)
        artifact = state.artifact
        digest = str(artifact["digest"])
        strict = self.settings.strict_substitution
        merged = merge_variables([variables], spec.substitute) if spec.post_build else {}
        objects = self.builder.cache.get(RenderCache.key(digest, spec, merged, strict))
        if objects is None:
            objects = await self._render(obj, artifact, spec, variables, strict)
        state.objects = objects
        state.checksum = _checksum(objects)

    async def _render(
        self,
        obj: Kustomization,
        artifact: Mapping[str, Any],
        spec: BuildSpec,
        variables: Mapping[str, str],
        strict: bool,
    ) -> list[dict[str, Any]]:
        digest = str(artifact["digest"])
        name = str(artifact.get("path") or "")
        if not name:
            ref = obj.spec.source_ref
            name = subjects.artifact_name(
                ref.kind, ref.namespace or obj.metadata.namespace, ref.name, digest.split(":")[-1]
            )
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="fluxbus-artifact-"))
        try:
            tarball = workdir / "artifact.tar.gz"
            try:
                await self.bus.get_artifact(name, tarball)
            except KeyError:
                raise Generic(
                    f"artifact {name} (revision {artifact.get('revision')}) not found in storage",
                    Reason.ARTIFACT_FAILED,
                ) from None
            except BusError as e:
                raise Generic(f"fetching artifact {name}: {e}", Reason.ARTIFACT_FAILED) from e
            try:
                return await self.builder.build(tarball, digest, spec, variables, strict=strict)
            except BuildError as e:
                raise Generic(e.message, e.reason) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _variables(self, obj: Kustomization) -> dict[str, str]:
        """Return the substituteFrom values (later references win), read from the bus."""
        out: dict[str, str] = {}
        post = obj.spec.post_build
        if post is None:
            return out
        ns = obj.metadata.namespace
        for ref in post.substitute_from or []:
            try:
                if ref.kind == "ConfigMap":
                    doc = await self.bus.get_configmap(ns, ref.name)
                    values = dict((doc or {}).get("data") or {}) if doc else None
                else:
                    doc = await self.bus.get_secret(ns, ref.name)
                    values = Secret.model_validate(doc).text() if doc else None
            except (BusError, ValueError) as e:
                raise Generic(
                    f"substituteFrom {ref.kind}/{ns}/{ref.name}: {e}",
                    Reason.BUILD_FAILED,
                ) from e
            if values is None:
                if ref.optional:
                    continue
                raise Generic(
                    f"substituteFrom: {ref.kind}/{ns}/{ref.name} not found",
                    Reason.BUILD_FAILED,
                )
            out.update({str(k): str(v) for k, v in values.items()})
        return out

    def _owned(self, obj: Kustomization, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of `doc` carrying the owner labels."""
        out = dict(doc)
        meta = dict(out.get("metadata") or {})
        meta["labels"] = {
            **(meta.get("labels") or {}),
            keys.KUSTOMIZE_NAME_LABEL: obj.metadata.name,
            keys.KUSTOMIZE_NAMESPACE_LABEL: obj.metadata.namespace,
        }
        out["metadata"] = meta
        return out

    async def reconcile_apply(self, obj: Kustomization, state: KustomizeState) -> None:
        rules = obj.spec.drift_ignore_rules
        owned = [self._owned(obj, ignore_drift(o, rules)) for o in state.objects]
        ignored = {
            _ident(o): [p for r in rules if _target_matches(r.target, o) for p in r.paths]
            for o in owned
            if rules
        }
        in_store: list[dict[str, Any]] = []
        in_cluster: list[dict[str, Any]] = []
        for o in owned:
            toolkit = _store_info(str(o.get("apiVersion")), str(o.get("kind")))
            (in_store if toolkit else in_cluster).append(o)
        store_plan = self._plan_store(in_store)
        old: list[InventoryEntry] = state.old_inventory
        try:
            changes = await self._cluster(obj).apply_all(
                in_cluster,
                force=obj.spec.force,
                timeout=max(1.0, state.deadline - time.monotonic()),
                ignored={k: v for k, v in ignored.items() if v},
            )
        except ApplyError as e:
            self._set_inventory(obj, [*old, *(_entry(c.ref) for c in e.changes)])
            raise Generic(str(e), e.reason) from None
        except ClusterError as e:
            raise Generic(str(e), Reason.APPLY_FAILED) from None
        changes += await self._apply_store(store_plan)
        state.changes = changes
        inventory = [_entry(c.ref) for c in changes]
        state.inventory = inventory
        self._set_inventory(obj, inventory)

    def _set_inventory(self, obj: Kustomization, entries: Sequence[InventoryEntry]) -> None:
        unique = {e.id: e for e in entries}
        obj.status.inventory = ResourceInventory(
            entries=[ResourceRef(id=i, v=unique[i].v) for i in sorted(unique)]
        )

    def _plan_store(
        self, docs: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Ref, str, dict[str, Any]]]:
        """Validate the toolkit objects bound for the store (the store's dry-run)."""
        plan: list[tuple[Ref, str, dict[str, Any]]] = []
        failures: list[str] = []
        for doc in sorted(docs, key=sort_key):
            info = _store_info(str(doc.get("apiVersion")), str(doc.get("kind")))
            meta = doc.get("metadata") or {}
            name, ns = str(meta.get("name") or ""), str(meta.get("namespace") or "")
            desc = f"{doc.get('kind')}/{ns}/{name}" if ns else f"{doc.get('kind')}/{name}"
            if not ns:
                failures.append(f"{desc} namespace not specified")
                continue
            try:
                parse_object(doc)
            except ValueError as e:
                failures.append(f"{desc} dry-run failed: {e}")
                continue
            api_version = str(doc["apiVersion"])
            assert info is not None  # only toolkit kinds are planned here
            resource = Resource(
                group_of(api_version), api_version.rsplit("/", 1)[-1], info.kind, info.plural, True
            )
            key = subjects.object_key(info.kind, ns, name)
            plan.append((Ref(resource, ns, name), key, dict(doc)))
        if failures:
            raise Generic("\n".join(failures), Reason.DRY_RUN_FAILED)
        return plan

    async def _apply_store(self, plan: Sequence[tuple[Ref, str, dict[str, Any]]]) -> list[Change]:
        changes: list[Change] = []
        for ref, key, doc in plan:
            try:
                live = await self.bus.get_object(key)
                policy = apply_policy(doc, live.value if live else None)
                if policy.action is Action.SKIP:
                    changes.append(Change(ref, "skipped"))
                    continue
                result = await self.bus.apply_object(key, doc)
            except BusError as e:
                raise Generic(f"{ref.describe()} apply failed: {e}", Reason.APPLY_FAILED) from e
            changes.append(Change(ref, result))
        return changes

    async def reconcile_prune(self, obj: Kustomization, state: KustomizeState) -> None:
        if not obj.spec.prune:
            state.pruned = []
            return
        stale = stale_entries(state.old_inventory, state.inventory)
        state.pruned = await self._prune(obj, stale)

    async def _prune(self, obj: Kustomization, entries: Sequence[InventoryEntry]) -> list[Change]:
        """Delete inventory entries (in the given order) that may be pruned and are ours.

        Raises Generic(PruneFailed).
        """
        deleted: list[Change] = []
        cluster_refs: list[Ref] = []
        failures: list[str] = []
        cluster = self._cluster(obj)
        owner = {
            keys.KUSTOMIZE_NAME_LABEL: obj.metadata.name,
            keys.KUSTOMIZE_NAMESPACE_LABEL: obj.metadata.namespace,
        }

        def ours(live: Mapping[str, Any]) -> bool:
            labels = (live.get("metadata") or {}).get("labels") or {}
            return all(labels.get(k) == v for k, v in owner.items()) and may_prune(live)

        for entry in entries:
            meta = entry.meta
            info = _store_info(entry.api_version, meta.kind)
            try:
                if info is not None:
                    key = subjects.object_key(info.kind, meta.namespace, meta.name)
                    live = await self.bus.get_object(key)
                    if live is not None and ours(live.value):
                        await self.bus.request_delete(key)
                        resource = Resource(meta.group, entry.v, meta.kind, info.plural, True)
                        deleted.append(Change(Ref(resource, meta.namespace, meta.name), "deleted"))
                    continue
                try:
                    resource = await cluster.resource_for(entry.api_version, meta.kind)
                except ClusterError:
                    continue  # the kind is gone (its CRD was deleted): so are its objects
                ref = Ref(resource, meta.namespace if resource.namespaced else "", meta.name)
                live_obj = await cluster.get(ref)
                if live_obj is not None and ours(live_obj):
                    cluster_refs.append(ref)
            except (ClusterError, BusError) as e:
                failures.append(f"{meta.describe()} prune failed: {e}")
        if failures:
            raise Generic("\n".join(failures), Reason.PRUNE_FAILED)
        # Objects first, then what holds or defines them (CRDs, Namespaces, ClusterRoles),
        # so custom resources and namespaced objects are never orphaned mid-way.
        definitions = {"CustomResourceDefinition", "Namespace", "ClusterRole"}
        try:
            for batch in (
                [r for r in cluster_refs if r.resource.kind not in definitions],
                [r for r in cluster_refs if r.resource.kind in definitions],
            ):
                if batch:
                    deleted += await cluster.delete_all(batch)
        except ClusterError as e:
            raise Generic(str(e), Reason.PRUNE_FAILED) from None
        return deleted

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
        start = time.monotonic()
        remaining = max(0.0, state.deadline - start - 0.05)
        flight = self._inflight.get(self.key_of(obj))
        wait = self._wait_healthy(self._cluster(obj), targets, exprs, remaining)
        try:
            ok, unhealthy = await (_race(wait, flight.superseded) if flight else wait)
        except _Superseded:
            message = "Health check canceled, a new revision or generation was detected"
            self._healthy(obj, False, Reason.HEALTH_CHECK_CANCELED, message)
            raise Generic(message, Reason.HEALTH_CHECK_CANCELED, retry_after=0.0) from None
        elapsed = _go_duration(time.monotonic() - start)
        if not ok:
            detail = "; ".join(unhealthy)
            message = f"Health check failed after {elapsed}: {detail}"
            self._healthy(obj, False, Reason.HEALTH_CHECK_FAILED, message)
            raise Generic(
                message,
                Reason.HEALTH_CHECK_FAILED,
            )
        self._healthy(obj, True, Reason.SUCCEEDED, f"Health check passed in {elapsed}")

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
            info = _store_info(api_version, hc.kind)
            if info is not None:
                resource = Resource(
                    group_of(api_version),
                    api_version.rsplit("/", 1)[-1],
                    hc.kind,
                    info.plural,
                    True,
                )
                targets.append(Change(Ref(resource, ns, hc.name), "unchanged"))
                continue
            try:
                resource = await self._cluster(obj).resource_for(api_version, hc.kind)
            except ClusterError as e:
                raise Generic(
                    f"healthChecks: {e}",
                    Reason.HEALTH_CHECK_FAILED,
                ) from None
            ref = Ref(resource, ns if resource.namespaced else "", hc.name)
            targets.append(Change(ref, "unchanged"))
        return targets

    async def _wait_healthy(
        self,
        cluster_view: ClusterPort,
        targets: Sequence[Change],
        exprs: Sequence[HealthCheckExpr],
        timeout: float,
    ) -> tuple[bool, list[str]]:
        """Wait until every target is Current (a Failed one ends the wait early).

        Returns (healthy, descriptions of the unhealthy objects).
        """
        results: dict[Ref, HealthResult] = {}
        failed = asyncio.Event()

        def judge(ref: Ref, obj: Mapping[str, Any] | None) -> bool:
            if obj is None:
                results[ref] = HealthResult(Status.IN_PROGRESS, "object not found")
                return False
            results[ref] = check_health(obj, exprs)
            if results[ref].status is Status.FAILED:
                failed.set()
            return results[ref].status is Status.CURRENT

        store = [c for c in targets if _store_info(c.ref.resource.api_version, c.ref.resource.kind)]
        cluster = [c for c in targets if c not in store]
        initial = {c.ref: c.object for c in cluster if c.object is not None}
        waits: list[Any] = []
        if cluster:
            refs = [c.ref for c in cluster]
            waits.append(cluster_view.watch_until(refs, judge, timeout, initial))
        if store:
            waits.append(self._wait_store([c.ref for c in store], judge, timeout))

        async def all_waits() -> list[Any]:
            return await asyncio.gather(*waits)

        try:
            outcome = await _race(all_waits(), failed)
            ok = all(o[0] for o in outcome)
        except _Superseded:
            ok = False
        order = {c.ref: i for i, c in enumerate(targets)}
        unhealthy = [
            f"{ref.describe()} status: '{res.status}': {res.message}"
            for ref, res in sorted(results.items(), key=lambda kv: order[kv[0]])
            if res.status is not Status.CURRENT
        ]
        if not ok and not unhealthy:
            unhealthy = ["timeout waiting for the objects' status"]
        return ok and not unhealthy, unhealthy

    async def _wait_store(
        self, refs: Sequence[Ref], judge: Any, timeout: float
    ) -> tuple[bool, None]:
        """Wait until every toolkit object in the store is healthy (KV-watch driven)."""

        async def one(ref: Ref) -> None:
            key = subjects.object_key(ref.resource.kind, ref.namespace, ref.name)
            async for change in self.bus.kv_watch(subjects.STATUS_BUCKET, key):
                doc = await self.bus.get_object(key)
                if doc is None:
                    judge(ref, None)
                    continue
                full = {**doc.value, "status": change.value or {}}
                if judge(ref, full):
                    return

        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(one(r) for r in refs))
        except TimeoutError:
            return False, None
        return True, None

    async def reconcile_status(self, obj: Kustomization, state: KustomizeState) -> Result:
        revision = state.revision
        obj.status.last_applied_revision = revision
        self._record_history(obj, state, Reason.RECONCILIATION_SUCCEEDED)
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
        return Result(
            ready_reason=Reason.RECONCILIATION_SUCCEEDED,
            ready_message=f"Applied revision: {revision}",
        )

    def _record_history(self, obj: Kustomization, state: KustomizeState, status: str) -> None:
        checksum = state.checksum
        if not checksum:
            return
        now = now_rfc3339()
        duration = _go_duration(time.monotonic() - state.start)
        history = list(obj.status.history)
        current = next((h for h in history if h.digest == checksum), None)
        if current is not None:
            history.remove(current)
            current.last_reconciled = now
            current.last_reconciled_duration = duration
            current.last_reconciled_status = status
            current.total_reconciliations += 1
            current.metadata = {"revision": state.revision}
        else:
            current = Snapshot(
                digest=checksum,
                first_reconciled=now,
                last_reconciled=now,
                last_reconciled_duration=duration,
                last_reconciled_status=status,
                total_reconciliations=1,
                metadata={"revision": state.revision},
            )
        obj.status.history = [current, *history][:HISTORY_SIZE]

    # -- deletion --------------------------------------------------------------------

    async def finalize(self, obj: Kustomization) -> None:
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
            refs = [
                c.ref
                for c in deleted
                if not _store_info(c.ref.resource.api_version, c.ref.resource.kind)
            ]
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
