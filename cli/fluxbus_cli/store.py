"""What the CLI reads from and writes to the bus, on top of `Bus`' public methods:
objects merged with their status, Secrets and ConfigMaps in the secrets bucket,
compare-and-set edits of stored objects, and waits on KV watches.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

from fluxbus_cli.errors import CliError
from fluxbus_common import keys, subjects
from fluxbus_common.api import KINDS, AnyObject, ConfigMap, KindInfo, Secret, dump_object
from fluxbus_common.bus import Bus
from fluxbus_common.conditions import now_rfc3339
from fluxbus_common.ports import ApplyResult
from fluxbus_common.reconcile_requests import edit_object

TOOLKIT_KINDS: tuple[KindInfo, ...] = tuple(k for k in KINDS if k.store == "objects")
PRESERVED_ANNOTATIONS = (keys.RECONCILE_REQUESTED_AT, keys.FORCE_REQUESTED_AT)
"""Set by `reconcile`; kept when a manifest without them is applied again (as
kubectl's merge keeps annotations it did not set), so re-applying is `unchanged`."""


def describe(info: KindInfo, namespace: str, name: str) -> str:
    """`gitrepository/flux-system/podinfo`: how the CLI names one object."""
    return f"{info.kind.lower()}/{namespace}/{name}"


def not_found(info: KindInfo, namespace: str, name: str) -> CliError:
    return CliError(f"{info.kind} '{namespace}/{name}' not found")


def _merge_status(doc: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(doc)
    if status:
        out["status"] = status
    return out


def _sort_key(doc: dict[str, Any]) -> tuple[str, str]:
    meta = doc.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


async def list_docs(bus: Bus, info: KindInfo, namespace: str | None) -> list[dict[str, Any]]:
    """Return every stored object of a kind (status merged), in one namespace or all."""
    if info.kind == "Secret":
        docs = [e.value for e in await bus.list_secrets()]
    elif info.kind == "ConfigMap":
        docs = [e.value for e in await bus.list_configmaps()]
    else:
        kind = info.kind.lower()
        statuses = {e.key: e.value for e in await bus.list_status(kind)}
        docs = [_merge_status(e.value, statuses.get(e.key)) for e in await bus.list_objects(kind)]
    if namespace is not None:
        docs = [d for d in docs if (d.get("metadata") or {}).get("namespace") == namespace]
    return sorted(docs, key=_sort_key)


async def get_doc(bus: Bus, info: KindInfo, namespace: str, name: str) -> dict[str, Any] | None:
    """Return one stored object (status merged), or None."""
    if info.kind == "Secret":
        return await bus.get_secret(namespace, name)
    if info.kind == "ConfigMap":
        return await bus.get_configmap(namespace, name)
    key = subjects.object_key(info.kind, namespace, name)
    entry = await bus.get_object(key)
    if entry is None:
        return None
    status = await bus.get_status(key)
    return _merge_status(entry.value, None if status is None else status.value)


def _normalized_secret(obj: Secret) -> dict[str, Any]:
    """A Secret as the API server stores it: `stringData` merged into base64 `data`."""
    doc = dump_object(obj)
    if obj.string_data:
        data = dict(doc.get("data") or {})
        for k, v in obj.string_data.items():
            data[k] = base64.b64encode(v.encode()).decode()
        doc["data"] = dict(sorted(data.items()))
        doc.pop("stringData", None)
    return doc


async def put(bus: Bus, obj: AnyObject) -> ApplyResult:
    """Store one validated object: toolkit kinds into the objects bucket, Secrets and
    ConfigMaps into the secrets bucket. Returns created/configured/unchanged."""
    ns, name = obj.metadata.namespace, obj.metadata.name
    if isinstance(obj, Secret | ConfigMap):
        is_secret = isinstance(obj, Secret)
        doc = _normalized_secret(obj) if isinstance(obj, Secret) else dump_object(obj)
        current = await (bus.get_secret(ns, name) if is_secret else bus.get_configmap(ns, name))
        meta = doc.setdefault("metadata", {})
        old_meta = (current or {}).get("metadata") or {}
        meta["uid"] = old_meta.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = old_meta.get("creationTimestamp") or now_rfc3339()
        if is_secret:
            return await bus.put_secret(ns, name, doc)
        return await bus.put_configmap(ns, name, doc)
    doc = dump_object(obj, include_status=False)
    stored = await bus.get_object(obj.key)
    if stored is not None:
        old_annotations = (stored.value.get("metadata") or {}).get("annotations") or {}
        annotations = doc["metadata"].get("annotations") or {}
        for key in PRESERVED_ANNOTATIONS:
            if key in old_annotations and key not in annotations:
                annotations[key] = old_annotations[key]
        if annotations:
            doc["metadata"]["annotations"] = annotations
    return await bus.apply_object(obj.key, doc)


async def edit(
    bus: Bus, info: KindInfo, namespace: str, name: str, change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Apply `change` to a stored object with compare-and-set (retrying on a
    concurrent write); bump `metadata.generation` when the spec changed.
    Returns the written document. Raises CliError when the object is absent."""
    written = await edit_object(bus, subjects.object_key(info.kind, namespace, name), change)
    if written is None:
        raise not_found(info, namespace, name)
    return written


async def wait_for_status(
    bus: Bus, key: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Return the object's status as soon as `predicate(status)` holds (KV watch, no polling).

    Callers bound the wait with `asyncio.timeout`."""
    async for change in bus.kv_watch(subjects.STATUS_BUCKET, key):
        if change.value is not None and predicate(change.value):
            return change.value
    raise CliError(f"the watch on {key} ended")  # only when the connection closes


async def wait_gone(bus: Bus, key: str) -> None:
    """Return once an object's key no longer exists (its owner finished finalizing)."""
    present = False
    async for change in bus.kv_watch(subjects.OBJECTS_BUCKET, key, mark_initial=True):
        if not change.key:  # end of the initial values
            if not present:
                return
            continue
        present = change.value is not None
        if not present:
            return
