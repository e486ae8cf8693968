"""Desired objects, their status, and the Secrets/ConfigMaps of the store,
each a thin typed layer over the KV buckets.

`apply_object` and `request_delete` behave as an API server would: uid and
creationTimestamp on create, `metadata.generation` bumped only when the spec
changes, deletion through finalizers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fluxbus_common import subjects
from fluxbus_common.bus.kv import KV
from fluxbus_common.conditions import now_rfc3339
from fluxbus_common.ports import ApplyResult, Entry, KVChange, KVRevision, RevisionConflict


def _spec_of(doc: dict[str, Any]) -> dict[str, Any]:
    """What a generation tracks: everything but metadata and status."""
    return {k: v for k, v in doc.items() if k not in ("metadata", "status")}


class Objects(KV):
    """Desired objects and status (keyed by `subjects.object_key`), Secrets and ConfigMaps."""

    # -- objects ---------------------------------------------------------

    async def get_object(self, key: str) -> Entry | None:
        """Return a desired object (without status) by key."""
        return await self.kv_get(subjects.OBJECTS_BUCKET, key)

    async def list_objects(self, kind: str | None = None) -> list[Entry]:
        """Return every desired object, or those of one kind (lower-case kind)."""
        return await self.kv_list(subjects.OBJECTS_BUCKET, f"{kind.lower()}." if kind else "")

    async def watch_objects(
        self, kind: str, *, mark_initial: bool = False
    ) -> AsyncIterator[KVChange]:
        """Watch every object of a kind (current values first)."""
        async for c in self.kv_watch(
            subjects.OBJECTS_BUCKET, subjects.kind_filter(kind), mark_initial=mark_initial
        ):
            yield c

    async def apply_object(self, key: str, doc: dict[str, Any]) -> ApplyResult:
        """Create or update a desired object the way an API server would.

        Sets uid/creationTimestamp on create, keeps them (and finalizers and
        deletionTimestamp) on update, bumps `metadata.generation` only when
        `spec` changed. Retries on a concurrent write. Returns what happened.
        """
        while True:
            current = await self.get_object(key)
            doc = json.loads(json.dumps(doc))  # private deep copy
            meta = doc.setdefault("metadata", {})
            for volatile in ("resourceVersion", "generation", "uid", "creationTimestamp"):
                meta.pop(volatile, None)
            doc.pop("status", None)
            if current is None:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = now_rfc3339()
                meta["generation"] = 1
                try:
                    await self.kv_put(subjects.OBJECTS_BUCKET, key, doc, revision=0)
                except RevisionConflict:
                    continue
                return "created"
            old = current.value
            old_meta = old.get("metadata", {})
            for kept in ("uid", "creationTimestamp", "finalizers", "deletionTimestamp"):
                if kept in old_meta:
                    meta[kept] = old_meta[kept]
            spec_changed = _spec_of(old) != _spec_of(doc)
            meta["generation"] = int(old_meta.get("generation", 1)) + (1 if spec_changed else 0)
            if doc == old:
                return "unchanged"
            try:
                await self.kv_put(subjects.OBJECTS_BUCKET, key, doc, revision=current.revision)
            except RevisionConflict:
                continue
            return "configured"

    async def update_object(self, key: str, doc: dict[str, Any], revision: int) -> int:
        """Compare-and-set write of a stored object as is (finalizers, annotations)."""
        return await self.kv_put(subjects.OBJECTS_BUCKET, key, doc, revision=revision)

    async def request_delete(self, key: str) -> bool:
        """Delete an object: mark it (deletionTimestamp) when it has finalizers,
        so its owner cleans up first, else remove it at once. Returns False if absent.
        """
        while True:
            current = await self.get_object(key)
            if current is None:
                return False
            meta = current.value.setdefault("metadata", {})
            if not meta.get("finalizers"):
                await self.remove_object(key)
                return True
            if meta.get("deletionTimestamp"):
                return True
            meta["deletionTimestamp"] = now_rfc3339()
            try:
                await self.update_object(key, current.value, current.revision)
            except RevisionConflict:
                continue
            return True

    async def remove_object(self, key: str) -> None:
        """Remove an object and its status for good (the finalizer's last step).

        The status is deleted only when there is one: only its owner may write it
        (docs/security.md), and an object removed before its first reconcile
        (no finalizer yet; `fluxbus delete`, a pruning bootstrap) has none."""
        await self.kv_delete(subjects.OBJECTS_BUCKET, key)
        if await self.get_status(key) is not None:
            await self.kv_delete(subjects.STATUS_BUCKET, key)

    # -- status ----------------------------------------------------------

    async def get_status(self, key: str) -> Entry | None:
        """Return an object's status entry, or None before its first reconcile."""
        return await self.kv_get(subjects.STATUS_BUCKET, key)

    async def put_status(self, key: str, status: dict[str, Any], revision: int | None) -> int:
        """Compare-and-set an object's status; `revision` is what was read (0: none)."""
        return await self.kv_put(subjects.STATUS_BUCKET, key, status, revision=revision or 0)

    async def list_status(self, kind: str | None = None) -> list[Entry]:
        """Return the status entry of every object, or of those of one kind."""
        return await self.kv_list(subjects.STATUS_BUCKET, f"{kind.lower()}." if kind else "")

    async def status_history(self, key: str | None = None) -> list[KVRevision]:
        """Return the stored revisions of one object's status (or of every object's),
        oldest first; a None value is a deletion."""
        return await self.kv_history(subjects.STATUS_BUCKET, key or ">")

    async def watch_status(self, kind: str) -> AsyncIterator[KVChange]:
        """Watch the status of every object of a kind (current values first)."""
        async for c in self.kv_watch(subjects.STATUS_BUCKET, subjects.kind_filter(kind)):
            yield c

    # -- secrets and configmaps ------------------------------------------

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Return a Secret document, or None when absent."""
        e = await self.kv_get(subjects.SECRETS_BUCKET, subjects.secret_key(namespace, name))
        return None if e is None else e.value

    async def put_secret(self, namespace: str, name: str, doc: dict[str, Any]) -> ApplyResult:
        """Store a Secret document as given; return what the write did."""
        return await self._put_plain(subjects.secret_key(namespace, name), doc)

    async def delete_secret(self, namespace: str, name: str) -> None:
        """Remove a Secret (purging its history)."""
        await self.kv_delete(subjects.SECRETS_BUCKET, subjects.secret_key(namespace, name))

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Return a ConfigMap document, or None when absent."""
        e = await self.kv_get(subjects.SECRETS_BUCKET, subjects.configmap_key(namespace, name))
        return None if e is None else e.value

    async def put_configmap(self, namespace: str, name: str, doc: dict[str, Any]) -> ApplyResult:
        """Store a ConfigMap document as given; return what the write did."""
        return await self._put_plain(subjects.configmap_key(namespace, name), doc)

    async def delete_configmap(self, namespace: str, name: str) -> None:
        """Remove a ConfigMap (purging its history)."""
        await self.kv_delete(subjects.SECRETS_BUCKET, subjects.configmap_key(namespace, name))

    async def list_secrets(self) -> list[Entry]:
        """Return every stored Secret (ConfigMaps share the bucket and are left out)."""
        return [
            e
            for e in await self.kv_list(subjects.SECRETS_BUCKET)
            if not e.key.startswith(f"{subjects.CONFIGMAP_PREFIX}.")
        ]

    async def list_configmaps(self) -> list[Entry]:
        """Return every stored ConfigMap."""
        return await self.kv_list(subjects.SECRETS_BUCKET, f"{subjects.CONFIGMAP_PREFIX}.")

    async def _put_plain(self, key: str, doc: dict[str, Any]) -> ApplyResult:
        """Write a Secret/ConfigMap unless it is stored unchanged (no generation, no uid)."""
        current = await self.kv_get(subjects.SECRETS_BUCKET, key)
        if current is not None and current.value == doc:
            return "unchanged"
        await self.kv_put(subjects.SECRETS_BUCKET, key, doc)
        return "created" if current is None else "configured"
