"""HelmRepositoryReconciler: source-controller's HelmRepository, step by step.

`type: default` (HTTP/S), after the runtime's guard clauses (deleted → finalize,
suspended → skip):

1. `reconcile_storage` — forget a recorded artifact that left the store;
2. `reconcile_source` — check the URL, read the credentials, download
   `<url>/index.yaml`, load and normalise it; its digest is the revision;
3. `reconcile_artifact` — store the normalised index (unless the revision is the
   stored one), record it in status, garbage-collect older artifacts.

`type: oci` is, as in Flux v1, a static data container: no artifact, no
conditions; HelmCharts read its URL and credentials. A leftover artifact (of a
repository that changed type) is deleted and the status emptied.

The index artifact is `helmrepository/<ns>/<name>/index-<hex>.yaml` in the
artifacts object store; its content is the canonical JSON of the index (YAML).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import structlog

from fluxbus_common.api.helm import HelmRepository, HelmRepositoryStatus
from fluxbus_common.conditions import ConditionType, Reason, remove_condition, set_condition
from fluxbus_common.errors import Generic, ReconcileError, Stalling
from fluxbus_common.events import EventSink, Severity
from fluxbus_common.reconcile import Result, Step, StepReconciler
from fluxbus_common.reconcile import summarize as flux_summarize
from fluxbus_source.errors import HelmFetchError
from fluxbus_source.logic.helmchart import HelmReason
from fluxbus_source.logic.helmindex import (
    MAX_INDEX_SIZE,
    IndexFormatError,
    index_revision,
    normalise_index,
    safe_url,
)
from fluxbus_source.ports import HelmHTTPPort, SourceStore, WorkDirPort
from fluxbus_source.reconcilers import storage
from fluxbus_source.reconcilers.helmsecrets import repository_credentials
from fluxbus_source.settings import KEEP_ARTIFACTS

log = structlog.get_logger("fluxbus.source")


def human_size(size: int) -> str:
    """A size as Flux's events print it (decimal units, 4 significant digits: `30.88kB`)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.4g}{unit}"
        value /= 1000
    return f"{size}B"  # pragma: no cover


def index_url(url: str) -> str:
    """`<url>/index.yaml` (Flux normalises the repository URL with a trailing slash)."""
    parts = urlsplit(url)
    return parts._replace(path=parts.path.rstrip("/") + "/index.yaml").geturl()


def fetch_failed(obj: Any, error: ReconcileError) -> ReconcileError:
    """Record FetchFailed=True with the error's reason and message; return the error."""
    set_condition(
        obj.status.conditions,
        ConditionType.FETCH_FAILED,
        True,
        error.reason,
        error.message,
        obj.metadata.generation,
    )
    return error


@dataclass
class HelmRepositoryState:
    """What the HelmRepository steps hand each other during one reconcile."""

    index: bytes | None = None
    """The normalised index (reconcile_source)."""
    revision: str = ""
    """`sha256:<hex>` of `index`."""
    fetched_size: int = 0
    """Bytes downloaded (for the event)."""


class HelmRepositoryReconciler(StepReconciler[HelmRepository, HelmRepositoryState]):
    """Reconciles HelmRepositories: HTTP(S) indexes into artifacts; OCI ones stay static."""

    kind: ClassVar[str] = "HelmRepository"

    def __init__(
        self,
        store: SourceStore,
        http: HelmHTTPPort,
        recorder: EventSink,
        workdirs: WorkDirPort,
        *,
        keep_artifacts: int = KEEP_ARTIFACTS,
    ) -> None:
        self.store = store
        self.http = http
        self.recorder = recorder
        self.workdirs = workdirs
        self.keep = max(1, keep_artifacts)

    # -- runtime hooks ---------------------------------------------------

    def parse(self, doc: dict[str, Any]) -> HelmRepository:
        return HelmRepository.model_validate(doc)

    def interval(self, obj: HelmRepository) -> float:
        return obj.spec.interval_seconds

    def new_state(self, obj: HelmRepository) -> HelmRepositoryState:
        return HelmRepositoryState()

    def steps(self) -> tuple[Step[HelmRepository, HelmRepositoryState], ...]:
        return (self.reconcile_storage, self.reconcile_source, self.reconcile_artifact)

    def timeout(self, obj: HelmRepository) -> float:
        """The download is bounded by spec.timeout; storing gets as long again."""
        return 2 * obj.spec.timeout_seconds

    async def reconcile(self, obj: HelmRepository) -> Result:
        if obj.spec.is_oci:
            # a static object: drop what an earlier `type: default` left behind
            if obj.status.artifact is not None:
                await storage.delete_all(self.store, obj)
            return Result()
        return await super().reconcile(obj)

    def summarize(self, obj: Any, result: Result | None, error: ReconcileError | None) -> None:
        if obj.spec.is_oci and error is None:
            obj.status = HelmRepositoryStatus()  # Flux: an OCI HelmRepository has no status
            return
        flux_summarize(obj, result, error)

    async def finalize(self, obj: HelmRepository) -> None:
        """Delete every artifact of the HelmRepository."""
        await storage.delete_all(self.store, obj)

    # -- steps -----------------------------------------------------------

    async def reconcile_storage(self, obj: HelmRepository, state: HelmRepositoryState) -> None:
        """Forget a recorded artifact that is no longer in the store (Flux: ArtifactInStorage)."""
        await storage.check_stored(self.store, obj)

    def _check_url(self, obj: HelmRepository) -> None:
        url = obj.spec.url
        scheme = urlsplit(url).scheme
        if scheme == "oci":
            raise fetch_failed(
                obj,
                Stalling(
                    "invalid Helm repository URL: 'oci' URL scheme cannot be used with "
                    "'default' HelmRepository type",
                    Reason.INVALID_URL,
                ),
            )
        if scheme not in ("http", "https"):
            raise fetch_failed(
                obj,
                Stalling(
                    f'failed to construct Helm client: scheme "{scheme}" not supported',
                    Reason.FAILED,
                ),
            )

    async def reconcile_source(self, obj: HelmRepository, state: HelmRepositoryState) -> None:
        """Download and normalise the index; its digest becomes `state.revision`."""
        self._check_url(obj)
        try:
            creds = await repository_credentials(self.store, obj)
        except ReconcileError as e:
            raise fetch_failed(obj, e) from None
        try:
            raw = await self.http.get(
                index_url(obj.spec.url),
                credentials=creds,
                send_auth=True,
                timeout=obj.spec.timeout_seconds,
                max_bytes=MAX_INDEX_SIZE,
            )
        except HelmFetchError as e:
            if e.invalid_url:
                raise fetch_failed(
                    obj, Stalling(f"invalid Helm repository URL: {e.message}", Reason.INVALID_URL)
                ) from None
            raise fetch_failed(
                obj, Generic(f"failed to fetch Helm repository index: {e.message}", Reason.FAILED)
            ) from None
        try:
            index = await asyncio.to_thread(normalise_index, raw)
        except IndexFormatError as e:
            raise fetch_failed(
                obj,
                Generic(
                    f"failed to load Helm repository from index YAML: {e}",
                    HelmReason.INDEXATION_FAILED,
                ),
            ) from None
        remove_condition(obj.status.conditions, ConditionType.FETCH_FAILED)
        state.index, state.revision, state.fetched_size = index, index_revision(index), len(raw)

    async def reconcile_artifact(self, obj: HelmRepository, state: HelmRepositoryState) -> Result:
        """Store the index when its revision is new; record it; collect older ones."""
        assert state.index is not None  # set by reconcile_source
        revision = state.revision
        message = f"stored artifact: revision '{revision}'"
        current = obj.status.artifact
        if current is not None and current.revision == revision:
            storage.mark_stored(obj, message)
            remove_condition(obj.status.conditions, ConditionType.ARTIFACT_OUTDATED)
            return Result(ready_reason=Reason.SUCCEEDED, ready_message=message)
        hex_digest = revision.split(":", 1)[1]
        object_name = f"{storage.prefix_of(obj)}index-{hex_digest}.yaml"
        tmp = await self.workdirs.make()
        try:
            path = tmp / "index.yaml"
            await _write(path, state.index)
            artifact = await storage.put(
                self.store,
                obj,
                object_name,
                path,
                revision=revision,
                digest=revision,
                size=len(state.index),
                message_prefix="unable to save artifact to storage",
            )
        finally:
            await self.workdirs.remove(tmp)
        obj.status.artifact = artifact
        obj.status.url = artifact.url
        storage.mark_stored(obj, message)
        remove_condition(obj.status.conditions, ConditionType.ARTIFACT_OUTDATED)
        await storage.collect_garbage(self.store, obj, object_name, self.keep)
        await self.recorder.event(
            obj,
            Severity.INFO,
            Reason.NEW_ARTIFACT,
            f"stored fetched index of size {human_size(state.fetched_size)} "
            f"from '{safe_url(obj.spec.url)}'",
            {"revision": revision, "digest": revision},
        )
        return Result(ready_reason=Reason.SUCCEEDED, ready_message=message)


async def _write(path: Path, data: bytes) -> None:
    await asyncio.to_thread(path.write_bytes, data)
