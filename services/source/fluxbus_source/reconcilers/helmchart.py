"""HelmChartReconciler: source-controller's HelmChart, step by step.

After the runtime's guard clauses (deleted → finalize, suspended → skip):

1. `reconcile_storage` — forget a recorded artifact that left the store;
2. `reconcile_source` — refuse what fluxbus cannot do (`verify`; charts needing
   Helm's engine without the helm extra), find the source (HelmRepository HTTP or
   OCI, GitRepository) and its artifact, and build the chart (`chartbuild`);
3. `reconcile_artifact` — store the chart archive when it is a new one, record
   it (status.artifact, observedChartName, observedValuesFiles,
   observedSourceArtifactRevision), garbage-collect older artifacts.

A HelmChart is requeued at once when its source's artifact revision changes (status
watches of HelmRepositories and GitRepositories). Build errors set FetchFailed or
BuildFailed with Flux's reasons; reference, metadata and values errors stall.

The artifact is the chart `.tgz` at `helmchart/<ns>/<name>/<sha256>.tar.gz` in the
artifacts object store; its revision is the chart version (see `logic.helmchart`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import structlog

from fluxbus_common import subjects
from fluxbus_common.api.helm import HelmChart, HelmRepository
from fluxbus_common.api.meta import Artifact
from fluxbus_common.artifact import file_sha256
from fluxbus_common.conditions import ConditionType, Reason, remove_condition, set_condition
from fluxbus_common.errors import Generic, ReconcileError, Stalling, Waiting
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_helmsdk import HelmUnavailable
from fluxbus_source.logic.helmchart import BUILD_FAILURES, PERSISTENT, HelmReason
from fluxbus_source.ports import ChartEnginePort, HelmHTTPPort, HelmStore, WorkDirPort
from fluxbus_source.reconcilers import storage
from fluxbus_source.reconcilers.chartbuild import BuildError, ChartBuild, ChartBuilder
from fluxbus_source.reconcilers.helmrepository import fetch_failed
from fluxbus_source.settings import KEEP_ARTIFACTS

log = structlog.get_logger("fluxbus.source")

SOURCE_VERIFIED = "SourceVerified"
"""Flux's condition for a verified chart signature (False here: fluxbus cannot verify)."""

SOURCE_RETRY = 10.0
"""Seconds before looking again at a source without an artifact (its status watch
usually wakes the HelmChart sooner)."""


def _source_of(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind lower-case, namespace, name) of a HelmChart document's sourceRef."""
    ref = (doc.get("spec") or {}).get("sourceRef") or {}
    namespace = (doc.get("metadata") or {}).get("namespace") or ""
    return str(ref.get("kind", "")).lower(), namespace, str(ref.get("name", ""))


@dataclass
class HelmChartState:
    """What the HelmChart steps hand each other during one reconcile."""

    source_revision: str | None = None
    """The source artifact's revision (None: an OCI HelmRepository)."""
    build: ChartBuild | None = None
    """The chart built (or confirmed current) by reconcile_source."""
    work: Path | None = None
    """The work directory holding the build (removed by `on_result`)."""


class HelmChartReconciler(StepReconciler[HelmChart, HelmChartState]):
    """Reconciles HelmCharts into packaged chart artifacts in the fluxbus object store."""

    kind: ClassVar[str] = "HelmChart"

    def __init__(
        self,
        store: HelmStore,
        http: HelmHTTPPort,
        engine: ChartEnginePort,
        recorder: EventSink,
        workdirs: WorkDirPort,
        *,
        keep_artifacts: int = KEEP_ARTIFACTS,
    ) -> None:
        self.store = store
        self.engine = engine
        self.recorder = recorder
        self.workdirs = workdirs
        self.keep = max(1, keep_artifacts)
        self.builder = ChartBuilder(store, http, engine)
        self._revisions: dict[str, str | None] = {}
        self.watches = (
            DependencyWatch(kind="HelmRepository", map=self._on_source_status),
            DependencyWatch(kind="GitRepository", map=self._on_source_status),
        )

    # -- runtime hooks ---------------------------------------------------

    def parse(self, doc: dict[str, Any]) -> HelmChart:
        return HelmChart.model_validate(doc)

    def interval(self, obj: HelmChart) -> float:
        return obj.spec.interval_seconds

    def new_state(self, obj: HelmChart) -> HelmChartState:
        return HelmChartState()

    def steps(self) -> tuple[Step[HelmChart, HelmChartState], ...]:
        return (self.reconcile_storage, self.reconcile_source, self.reconcile_artifact)

    async def finalize(self, obj: HelmChart) -> None:
        """Delete every artifact of the HelmChart."""
        await storage.delete_all(self.store, obj)

    async def on_result(
        self, obj: HelmChart, state: HelmChartState, error: ReconcileError | None
    ) -> None:
        if state.work is not None:
            await self.workdirs.remove(state.work)
            state.work = None

    def _on_source_status(
        self, key: str, value: dict[str, Any] | None, objects: Mapping[str, dict[str, Any]]
    ) -> Iterable[str]:
        """HelmCharts of a source whose artifact revision changed."""
        revision = ((value or {}).get("artifact") or {}).get("revision")
        if key in self._revisions and self._revisions[key] == revision:
            return []
        self._revisions[key] = revision
        kind, namespace, name = subjects.split_object_key(key)
        return [k for k, doc in objects.items() if _source_of(doc) == (kind, namespace, name)]

    # -- steps -----------------------------------------------------------

    async def reconcile_storage(self, obj: HelmChart, state: HelmChartState) -> None:
        """Forget a recorded artifact that is no longer in the store (Flux: ArtifactInStorage)."""
        await storage.check_stored(self.store, obj)

    def _refuse_unsupported(self, obj: HelmChart, needs_engine: bool) -> None:
        verify = obj.spec.verify
        if verify is not None:
            message = f"chart verification with {verify.provider} is not supported by fluxbus"
            set_condition(
                obj.status.conditions,
                SOURCE_VERIFIED,
                False,
                HelmReason.VERIFICATION_ERROR,
                message,
                obj.metadata.generation,
            )
            raise Stalling(message, HelmReason.CHART_VERIFICATION_ERROR)
        if needs_engine and not self.engine.available():
            raise fetch_failed(obj, Stalling(str(HelmUnavailable()), HelmReason.HELM_UNAVAILABLE))

    async def _source(self, obj: HelmChart) -> tuple[Any, Artifact | None]:
        """The source object (HelmRepository model or GitRepository document) and its artifact."""
        ref, ns = obj.spec.source_ref, obj.metadata.namespace
        if ref.kind not in ("HelmRepository", "GitRepository"):
            raise fetch_failed(
                obj,
                Stalling(
                    f"failed to get source: unsupported source kind '{ref.kind}', "
                    "must be one of: [HelmRepository GitRepository]",
                    HelmReason.UNSUPPORTED_SOURCE_KIND,
                ),
            )
        key = subjects.object_key(ref.kind, ns, ref.name)
        entry = await self.store.get_object(key)
        if entry is None:
            raise fetch_failed(
                obj,
                Generic(
                    f"failed to get source: {ref.kind} '{ns}/{ref.name}' not found",
                    HelmReason.SOURCE_UNAVAILABLE,
                ),
            )
        status = await self.store.get_status(key)
        raw = (status.value if status else {}).get("artifact")
        artifact = Artifact.model_validate(raw) if raw else None
        if ref.kind == "HelmRepository":
            try:
                repo = HelmRepository.model_validate(entry.value)
            except ValueError:
                raise fetch_failed(
                    obj,
                    Generic(
                        f"failed to get source: HelmRepository '{ns}/{ref.name}' is invalid",
                        HelmReason.SOURCE_UNAVAILABLE,
                    ),
                ) from None
            return repo, None if repo.spec.is_oci else artifact
        return entry.value, artifact

    async def reconcile_source(self, obj: HelmChart, state: HelmChartState) -> None:
        """Find the source and its artifact, then build the chart into `state.build`."""
        remove_condition(obj.status.conditions, SOURCE_VERIFIED)  # recomputed every time
        ref = obj.spec.source_ref
        source, artifact = await self._source(obj)
        oci = isinstance(source, HelmRepository) and source.spec.is_oci
        needs_engine = oci or ref.kind == "GitRepository" or bool(obj.spec.values_files)
        self._refuse_unsupported(obj, needs_engine)
        if artifact is None and not oci:
            message = f"no artifact available for {ref.kind} source '{ref.name}'"
            raise fetch_failed(
                obj, Waiting(message, HelmReason.NO_SOURCE_ARTIFACT, requeue_after=SOURCE_RETRY)
            )
        state.source_revision = artifact.revision if artifact else None
        work = state.work = await self.workdirs.make()
        try:
            if oci:
                build = await self.builder.from_oci(obj, source, work)
            elif isinstance(source, HelmRepository):
                assert artifact is not None
                build = await self.builder.from_index(obj, source, artifact, work)
            else:
                assert artifact is not None
                build = await self.builder.from_git(obj, artifact, work)
        except BuildError as e:
            raise self._build_failed(obj, e) from None
        except HelmUnavailable as e:
            raise fetch_failed(obj, Stalling(str(e), HelmReason.HELM_UNAVAILABLE)) from None
        except ReconcileError as e:
            raise fetch_failed(obj, e) from None
        remove_condition(obj.status.conditions, ConditionType.FETCH_FAILED)
        remove_condition(obj.status.conditions, ConditionType.BUILD_FAILED)
        state.build = build

    def _build_failed(self, obj: HelmChart, e: BuildError) -> ReconcileError:
        conds, gen = obj.status.conditions, obj.metadata.generation
        failed = (
            ConditionType.BUILD_FAILED if e.reason in BUILD_FAILURES else ConditionType.FETCH_FAILED
        )
        other = (
            ConditionType.FETCH_FAILED
            if failed == ConditionType.BUILD_FAILED
            else ConditionType.BUILD_FAILED
        )
        remove_condition(conds, other)
        set_condition(conds, failed, True, e.reason, e.message, gen)
        if e.reason in PERSISTENT:
            return Stalling(e.message, e.reason)
        return Generic(e.message, e.reason)

    async def reconcile_artifact(self, obj: HelmChart, state: HelmChartState) -> Result:
        """Store a new chart archive, record it, collect older ones."""
        build = state.build
        assert build is not None  # set by reconcile_source
        summary = build.summary
        message = str(summary)
        status = obj.status
        status.observed_source_artifact_revision = state.source_revision
        if build.path is None:
            storage.mark_stored(obj, f"stored artifact: revision '{summary.version}'")
            remove_condition(status.conditions, ConditionType.ARTIFACT_OUTDATED)
            return Result(ready_reason=Reason.SUCCEEDED, ready_message=message)
        sha = await _sha256(build.path)
        object_name = subjects.artifact_name(
            "helmchart", obj.metadata.namespace, obj.metadata.name, sha
        )
        previous = status.artifact
        artifact = await storage.put(
            self.store,
            obj,
            object_name,
            build.path,
            revision=summary.version,
            digest=f"sha256:{sha}",
            size=build.path.stat().st_size,
            message_prefix="unable to copy Helm chart to storage",
        )
        status.artifact = artifact
        status.url = artifact.url
        status.observed_chart_name = summary.name
        status.observed_values_files = list(build.values_files)
        storage.mark_stored(obj, f"stored artifact: revision '{summary.version}'")
        remove_condition(status.conditions, ConditionType.ARTIFACT_OUTDATED)
        await storage.collect_garbage(self.store, obj, object_name, self.keep)
        if previous is None or previous.digest != artifact.digest:
            await self.recorder.event(
                obj,
                Severity.INFO,
                summary.reason,
                message,
                {"revision": summary.version, "digest": artifact.digest or ""},
            )
        return Result(ready_reason=Reason.SUCCEEDED, ready_message=message)


async def _sha256(path: Path) -> str:
    return await asyncio.to_thread(file_sha256, path)
