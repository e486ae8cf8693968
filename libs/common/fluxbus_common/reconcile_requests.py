"""Reconcile requests, Flux's way: the `reconcile.fluxcd.io/requestedAt`
annotation set to a fresh value on a stored object. The owning service's
runtime sees the new value, reconciles at once and copies it to
`status.lastHandledReconcileAt`.

One home for the three pieces every requester shares (`fluxbus reconcile`,
`resume`, the notifier's Receivers): the token (`request_token`), the
annotation edit (`annotate_request`), and the compare-and-set edit of a stored
object (`edit_object`) through the `ObjectEditor` port.

Pure: no I/O of its own (the store is a port).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fluxbus_common import keys
from fluxbus_common.ports import ObjectEditor, RevisionConflict

__all__ = ["annotate_request", "edit_object", "request_reconcile", "request_token"]


def request_token(now_ns: int | None = None) -> str:
    """Return a time as RFC 3339 with nanoseconds (`2026-01-02T03:04:05.123456789Z`):
    unique per request. `now_ns` (nanoseconds since the epoch) defaults to now."""
    ns = time.time_ns() if now_ns is None else now_ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}Z"


def annotate_request(doc: dict[str, Any], token: str) -> None:
    """Set the reconcile-request annotation of a stored document (in place)."""
    meta = doc.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations[keys.RECONCILE_REQUESTED_AT] = token
    meta["annotations"] = annotations


async def edit_object(
    store: ObjectEditor, key: str, change: Callable[[dict[str, Any]], None]
) -> dict[str, Any] | None:
    """Apply `change` to a stored object with compare-and-set, retrying on a
    concurrent write; bump `metadata.generation` when the spec changed.

    Returns the written (or already current) document, None when the object
    does not exist. Raises what `change` or the store raise (`BusError`).
    """
    while True:
        entry = await store.get_object(key)
        if entry is None:
            return None
        doc = copy.deepcopy(entry.value)
        change(doc)
        meta = doc.setdefault("metadata", {})
        if doc.get("spec") != entry.value.get("spec"):
            meta["generation"] = int(meta.get("generation") or 1) + 1
        if doc == entry.value:
            return doc
        try:
            await store.update_object(key, doc, entry.revision)
        except RevisionConflict:
            continue
        return doc


async def request_reconcile(store: ObjectEditor, key: str, token: str | None = None) -> str | None:
    """Request a reconcile of the stored object `key`.

    Returns the token written (a fresh `request_token()` unless given), or
    None when the object does not exist. Raises `BusError` from the store.
    """
    value = token or request_token()
    written = await edit_object(store, key, lambda doc: annotate_request(doc, value))
    return None if written is None else value
