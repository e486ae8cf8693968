"""Generic KV access of the bus: JSON documents by key, compare-and-set
writes by revision, listings and watches.

`kv_watch` also tells a caller where the initial values end (the runtime
reports itself synced there), working around a nats-py race described at
`fluxbus_common.kvwatch._values_in_flight`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors as jserrors
from nats.js.kv import KeyValue

from fluxbus_common.bus.connection import Connection
from fluxbus_common.kvwatch import _values_in_flight, resilient_watch
from fluxbus_common.ports import BusError, Entry, KVChange, KVRevision, RevisionConflict


def _encode(doc: dict[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no spaces), so equal documents store equal bytes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _decode(data: bytes | None) -> dict[str, Any] | None:
    """The stored JSON object, or None for an empty value or anything but an object."""
    if not data:
        return None
    value = json.loads(data)
    return value if isinstance(value, dict) else None


class KV(Connection):
    """Typed get/put/delete/list/watch over the buckets the connection opened."""

    def _bucket(self, bucket: str) -> KeyValue:
        return self._kv[bucket]

    async def ensure_bucket(
        self, bucket: str, *, ttl: float | None = None, history: int = 1
    ) -> None:
        """Create a service's own KV bucket if missing (entries expire after `ttl`
        seconds when given); an existing bucket gets the `ttl` asked for.

        Raises BusError when JetStream does not answer.
        """
        try:
            try:
                kv = await self._js.create_key_value(
                    bucket=bucket, history=history, ttl=ttl, replicas=self._replicas
                )
            except jserrors.BadRequestError:
                # It exists with another configuration: adjust its max age only.
                kv = await self._js.key_value(bucket)
                info = await self._js.stream_info(f"KV_{bucket}")
                if (info.config.max_age or None) != (ttl or None):
                    # JetStream refuses a duplicate window longer than the max age
                    window = info.config.duplicate_window
                    if ttl and window and window > ttl:
                        window = ttl
                    await self._js.update_stream(
                        dataclasses.replace(info.config, max_age=ttl or 0, duplicate_window=window)
                    )
        except nats.errors.Error as err:  # JetStream's errors derive from it too
            raise BusError(f"cannot set up bucket {bucket}: {err}") from err
        kv._direct = False  # reads through the stream leader (see Connection._ensure)
        self._kv[bucket] = kv

    async def kv_get(self, bucket: str, key: str) -> Entry | None:
        """Return the current value of a key, or None when absent or deleted."""
        try:
            e = await self._bucket(bucket).get(key)
        except jserrors.KeyNotFoundError:  # includes KeyDeletedError
            return None
        except nats.errors.Error as err:  # JetStream's errors derive from it too
            raise BusError(f"get {bucket}/{key}: {err}") from err
        value = _decode(e.value)
        return None if value is None else Entry(key, value, e.revision or 0)

    async def kv_put(
        self, bucket: str, key: str, value: dict[str, Any], revision: int | None = None
    ) -> int:
        """Write a key and return its new revision.

        `revision=None` writes unconditionally; `revision=0` only creates;
        otherwise the write succeeds only if the key is still at `revision`.
        Raises RevisionConflict when a conditional write loses.
        """
        kv = self._bucket(bucket)
        data = _encode(value)
        try:
            if revision is None:
                return await kv.put(key, data)
            if revision == 0:
                return await kv.create(key, data)
            return await kv.update(key, data, last=revision)
        except (jserrors.KeyWrongLastSequenceError, jserrors.KeyValueError) as err:
            if isinstance(err, jserrors.KeyWrongLastSequenceError) or "wrong last" in str(err):
                raise RevisionConflict(f"{bucket}/{key} moved past revision {revision}") from err
            raise BusError(f"put {bucket}/{key}: {err}") from err
        except nats.errors.Error as err:
            raise BusError(f"put {bucket}/{key}: {err}") from err

    async def kv_delete(self, bucket: str, key: str) -> None:
        """Remove a key (purging its history)."""
        try:
            await self._bucket(bucket).purge(key)
        except nats.errors.Error as err:
            raise BusError(f"delete {bucket}/{key}: {err}") from err

    async def kv_list(self, bucket: str, prefix: str = "") -> list[Entry]:
        """Return every live entry whose key starts with `prefix`, sorted by key."""
        out: list[Entry] = []
        async for change in self.kv_watch(
            bucket, f"{prefix}>" if prefix else ">", initial_only=True
        ):
            if change.value is not None:
                out.append(Entry(change.key, change.value, change.revision))
        return sorted(out, key=lambda e: e.key)

    async def kv_history(self, bucket: str, pattern: str = ">") -> list[KVRevision]:
        """Return every stored revision (the bucket keeps `KV_HISTORY` per key) of the
        keys matching `pattern`, deletions included, oldest first.

        Raises BusError when JetStream does not answer.
        """
        kv = self._bucket(bucket)
        out: list[KVRevision] = []
        try:
            watcher = await kv.watch(pattern, include_history=True, inactive_threshold=2.0)
        except nats.errors.Error as err:
            raise BusError(f"history {bucket}/{pattern}: {err}") from err
        try:
            async for e in watcher:
                if e is None:
                    if not out and await _values_in_flight(watcher):
                        continue  # the entry with delta 0 will mark the end instead
                    break
                deleted = e.operation in ("DEL", "PURGE")
                created = e.created if isinstance(e.created, datetime) else datetime.now(UTC)
                out.append(
                    KVRevision(
                        e.key, None if deleted else _decode(e.value), e.revision or 0, created
                    )
                )
                if not e.delta:
                    break
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
        return out

    async def kv_watch(
        self,
        bucket: str,
        pattern: str = ">",
        *,
        initial_only: bool = False,
        mark_initial: bool = False,
    ) -> AsyncIterator[KVChange]:
        """Yield the current value of every matching key, then (unless
        `initial_only`) every later change, for as long as the caller iterates.
        With `mark_initial`, a KVChange with an empty key marks the end of the
        initial values.

        A live watch survives reconnects, lost consumers and failed re-creations
        (`fluxbus_common.kvwatch`): it restarts and resyncs by revision, so the
        caller sees every key's latest value (and deletions) exactly once more
        at most, never a stale view for good.
        """
        if not initial_only:
            async for change in resilient_watch(
                lambda: self._bucket(bucket),
                f"{bucket}/{pattern}",
                pattern,
                self._epoch,
                _decode,
                mark_initial=mark_initial,
            ):
                yield change
            return
        kv = self._bucket(bucket)
        try:
            # One-shot listings let the server drop their consumer soon after.
            watcher = await kv.watch(pattern, inactive_threshold=2.0)
        except nats.errors.Error as err:
            raise BusError(f"watch {bucket}/{pattern}: {err}") from err
        seen = 0
        try:
            async for e in watcher:
                if e is None:
                    if seen == 0 and await _values_in_flight(watcher):
                        continue  # the entry with delta 0 will mark the end instead
                    return
                seen += 1
                deleted = e.operation in ("DEL", "PURGE")
                yield KVChange(e.key, None if deleted else _decode(e.value), e.revision or 0)
                if not e.delta:
                    return
        finally:
            with contextlib.suppress(Exception):
                # nats-py leaves KeyWatcher.stop unannotated.
                await watcher.stop()  # type: ignore[no-untyped-call]
