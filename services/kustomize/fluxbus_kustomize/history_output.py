"""The rendered output of each history entry, kept in the object store as
gzip-compressed JSON (`subjects.history_output_name`), so `fluxbus rollback`
can apply exactly what was applied then. Entries that leave the history take
their output with them."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Sequence
from typing import Any

import structlog

from fluxbus_common import subjects
from fluxbus_common.api import Snapshot
from fluxbus_common.ports import BusError
from fluxbus_kustomize.logic import history as hist
from fluxbus_kustomize.ports import KustomizeStore

log = structlog.get_logger("fluxbus.kustomize")


class OutputGone(Exception):
    """The rendered output of a history entry is no longer stored."""


def _encode(objects: Sequence[dict[str, Any]]) -> bytes:
    data = json.dumps(list(objects), sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(data, mtime=0)


def _decode(data: bytes) -> list[dict[str, Any]]:
    objects = json.loads(gzip.decompress(data))
    if not isinstance(objects, list):
        raise ValueError("not a list of objects")
    return objects


async def record(
    store: KustomizeStore,
    owner: tuple[str, str],
    history: Sequence[Snapshot],
    outcome: hist.Outcome,
    limit: int,
    objects: Sequence[dict[str, Any]] | None,
) -> list[Snapshot]:
    """Return the history with `outcome` recorded (`logic.history.record`); keep
    `objects` (what a success applied; None: nothing to keep) as the entry's
    output, and delete the outputs of the entries that fell off `limit`.

    A store failure is logged, not raised: the apply happened and is recorded;
    only a rollback to that entry would be refused."""
    namespace, name = owner
    entries, dropped = hist.record(history, outcome, limit)
    try:
        if objects is not None:
            await save(store, namespace, name, outcome.digest, objects)
        await drop(store, namespace, name, dropped)
    except BusError as e:
        log.warning("history.output_not_stored", error=str(e))
    return entries


async def save(
    store: KustomizeStore, namespace: str, name: str, digest: str, objects: Sequence[dict[str, Any]]
) -> None:
    """Store the output of an entry unless it is there already. Raises BusError."""
    key = subjects.history_output_name(namespace, name, digest)
    if await store.artifact_size(key) is not None:
        return
    await store.put_blob(key, await asyncio.to_thread(_encode, objects))


async def load(
    store: KustomizeStore, namespace: str, name: str, digest: str
) -> list[dict[str, Any]]:
    """Return the stored output of an entry.

    Raises OutputGone when it is missing or unreadable, BusError when the store fails.
    """
    key = subjects.history_output_name(namespace, name, digest)
    data = await store.get_blob(key)
    if data is None:
        raise OutputGone(f"the rendered output of {digest} is no longer stored")
    try:
        return await asyncio.to_thread(_decode, data)
    except (OSError, ValueError) as e:
        raise OutputGone(f"the rendered output of {digest} cannot be read: {e}") from None


async def exists(store: KustomizeStore, namespace: str, name: str, digest: str) -> bool:
    """Whether the output of an entry is stored. Raises BusError."""
    return (
        await store.artifact_size(subjects.history_output_name(namespace, name, digest)) is not None
    )


async def drop(store: KustomizeStore, namespace: str, name: str, digests: Sequence[str]) -> None:
    """Delete the outputs of entries that left the history (absent is fine). Raises BusError."""
    for digest in digests:
        await store.delete_artifact(subjects.history_output_name(namespace, name, digest))


async def drop_all(store: KustomizeStore, namespace: str, name: str) -> None:
    """Delete every stored output of a Kustomization (it is being deleted)."""
    prefix = subjects.history_output_name(namespace, name, "x").rsplit("/", 1)[0] + "/"
    try:
        for key in await store.list_artifacts(prefix):
            await store.delete_artifact(key)
    except BusError:
        return  # best effort: orphaned outputs are small and harmless
