"""Artifact storage steps every source kind shares (GitRepository, HelmRepository,
HelmChart): check that the recorded artifact is still stored, store a new one and
record it, collect older ones, delete them all on finalize.

Artifacts live in the object store (`fluxbus_common.ports.ArtifactStore`) under
`subjects.artifact_prefix(kind, namespace, name)`; status.artifact.url is
`nats-object://<bucket>/<name>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from fluxbus_common import subjects
from fluxbus_common.api.meta import Artifact
from fluxbus_common.conditions import (
    ConditionType,
    Reason,
    now_rfc3339,
    remove_condition,
    set_condition,
)
from fluxbus_common.errors import Generic
from fluxbus_common.ports import ArtifactStore, BusError

log = structlog.get_logger("fluxbus.source")

ARTIFACT_URL_SCHEME = "nats-object://"


def artifact_url(object_name: str) -> str:
    """The `status.artifact.url` of a stored artifact."""
    return f"{ARTIFACT_URL_SCHEME}{subjects.ARTIFACTS_STORE}/{object_name}"


def prefix_of(obj: Any) -> str:
    """The object-store prefix of every artifact of `obj`."""
    return subjects.artifact_prefix(obj.kind, obj.metadata.namespace, obj.metadata.name)


async def check_stored(store: ArtifactStore, obj: Any) -> None:
    """Forget a recorded artifact that is no longer in the store (Flux: ArtifactInStorage).

    Raises Generic(StorageOperationFailed) when the store cannot be asked."""
    artifact = obj.status.artifact
    conds = obj.status.conditions
    if artifact is None:
        remove_condition(conds, ConditionType.ARTIFACT_IN_STORAGE)
        return
    try:
        size = await store.artifact_size(artifact.path)
    except BusError as e:
        raise Generic(str(e), Reason.STORAGE_OPERATION_FAILED) from e
    if size is None:
        log.warning("artifact.missing", path=artifact.path)
        obj.status.artifact = None
        set_condition(
            conds,
            ConditionType.ARTIFACT_IN_STORAGE,
            False,
            Reason.STORAGE_OPERATION_FAILED,
            "artifact disappeared from storage",
            obj.metadata.generation,
        )


async def put(
    store: ArtifactStore,
    obj: Any,
    object_name: str,
    path: Path,
    *,
    revision: str,
    digest: str,
    size: int,
    message_prefix: str = "storing the artifact failed",
) -> Artifact:
    """Store `path` as `object_name` and return the `Artifact` to record.

    Sets/removes StorageOperationFailed; raises Generic(StorageOperationFailed)."""
    try:
        await store.put_artifact(object_name, path)
    except BusError as e:
        message = f"{message_prefix}: {e}"
        set_condition(
            obj.status.conditions,
            ConditionType.STORAGE_OPERATION_FAILED,
            True,
            Reason.STORAGE_OPERATION_FAILED,
            message,
            obj.metadata.generation,
        )
        raise Generic(message, Reason.STORAGE_OPERATION_FAILED) from e
    remove_condition(obj.status.conditions, ConditionType.STORAGE_OPERATION_FAILED)
    return Artifact(
        path=object_name,
        url=artifact_url(object_name),
        revision=revision,
        digest=digest,
        size=size,
        last_update_time=now_rfc3339(),
    )


def mark_stored(obj: Any, message: str) -> None:
    """ArtifactInStorage=True (Succeeded) with `message`."""
    set_condition(
        obj.status.conditions,
        ConditionType.ARTIFACT_IN_STORAGE,
        True,
        Reason.SUCCEEDED,
        message,
        obj.metadata.generation,
    )


async def collect_garbage(store: ArtifactStore, obj: Any, current: str, keep: int) -> None:
    """Keep at most `keep` artifacts of `obj` (always `current`); failures are only logged
    (a leftover artifact is harmless and collected next time)."""
    try:
        older = [n for n in await store.list_artifacts(prefix_of(obj)) if n != current]
        for name in older[: max(0, len(older) - (keep - 1))]:
            await store.delete_artifact(name)
    except BusError as e:
        log.warning("artifact.gc_failed", error=str(e))


async def delete_all(store: ArtifactStore, obj: Any) -> None:
    """Delete every artifact of `obj` (finalize). Raises Generic(StorageOperationFailed)."""
    try:
        for name in await store.list_artifacts(prefix_of(obj)):
            await store.delete_artifact(name)
    except BusError as e:
        raise Generic(
            f"garbage collection of artifacts failed: {e}", Reason.STORAGE_OPERATION_FAILED
        ) from e
