"""The NATS adapter: the only module of libs/common that imports `nats`.

It creates (idempotently) and uses the buckets, object store and stream of
DESIGN.md §2: typed get/put/delete/watch of objects and status,
compare-and-set writes by KV revision, Flux-schema events, streamed artifacts
and leases. nats-py reconnects forever after a server restart; calls made
while disconnected wait for the reconnect (bounded by their own timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.api as jsapi
import nats.js.errors as jserrors
from nats.aio.client import Client as NATSClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from fluxbus_common import subjects
from fluxbus_common.conditions import now_rfc3339
from fluxbus_common.events import Event
from fluxbus_common.kvwatch import Epoch, _values_in_flight, resilient_watch
from fluxbus_common.ports import (
    ApplyResult,
    BusError,
    Entry,
    KVChange,
    RevisionConflict,
)
from fluxbus_common.settings import BusSettings

KV_HISTORY = 5
"""Revisions kept per key: enough to debug a flapping object, small enough to stay cheap."""
LEASE_BUCKET_MAX_AGE = 24 * 3600.0
"""Lease entries older than a day are garbage-collected by the server."""
EVENTS_MAX_AGE = 7 * 24 * 3600.0
"""Events are kept a week, so a notifier that was down delivers what it missed."""


@dataclass(frozen=True)
class Delivery:
    """One event from the stream and how to acknowledge it."""

    event: Event
    ack: Callable[[], Awaitable[None]]


def _ssl_context(settings: BusSettings) -> ssl.SSLContext | None:
    if not (settings.tls_ca or settings.tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=settings.tls_ca or None)
    if settings.tls_cert and settings.tls_key:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    return ctx


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _decode(data: bytes | None) -> dict[str, Any] | None:
    if not data:
        return None
    value = json.loads(data)
    return value if isinstance(value, dict) else None


class Bus:
    """A connection to the fluxbus control plane. Use `await Bus.connect(...)`."""

    def __init__(
        self, nc: NATSClient, js: JetStreamContext, name: str, epoch: Epoch | None = None
    ) -> None:
        self._nc = nc
        self._js = js
        self.name = name
        self._epoch = epoch or Epoch()
        self._request_timeout = float(js._timeout)
        """Moves on every reconnect or reported JetStream error: watches resync."""
        self._kv: dict[str, KeyValue] = {}
        self._store: ObjectStore | None = None

    @property
    def connected_url(self) -> str:
        """The server this client is connected to now ("" while disconnected)."""
        url = self._nc.connected_url
        return f"{url.scheme}://{url.netloc}" if url is not None and self.connected else ""

    # -- lifecycle -------------------------------------------------------

    @classmethod
    async def connect(cls, settings: BusSettings, name: str = "fluxbus") -> Bus:
        """Connect, make sure every bucket/store/stream exists, and return the bus.

        Raises BusError when the server cannot be reached within the connect timeout.
        """
        opts: dict[str, Any] = {
            "servers": settings.urls,
            "name": name,
            "max_reconnect_attempts": -1,  # reconnect forever
            "reconnect_time_wait": 0.5,
            "connect_timeout": settings.connect_timeout,
            "allow_reconnect": True,
        }
        if settings.credentials:
            opts["user_credentials"] = settings.credentials
        tls = _ssl_context(settings)
        if tls is not None:
            opts["tls"] = tls

        epoch = Epoch()

        async def _on_error(_: Exception) -> None:
            """nats-py reports connection errors (reconnects are automatic) and
            failures of its own background work, such as re-creating a watch's
            consumer: watches resync, in case theirs was one of them."""
            epoch.bump()

        async def _on_reconnect() -> None:
            epoch.bump()

        opts["error_cb"] = _on_error
        opts["reconnected_cb"] = _on_reconnect
        nc = NATSClient()
        # With unbounded reconnects nats-py retries the *first* connect forever too;
        # give every server one connect timeout, then report it unreachable.
        budget = settings.connect_timeout * max(1, len(settings.urls))
        try:
            async with asyncio.timeout(budget):
                await nc.connect(**opts)
        except (nats.errors.Error, OSError, TimeoutError) as e:
            reason = nc.last_error or e
            with contextlib.suppress(Exception):
                await nc.close()
            raise BusError(
                f"cannot connect to NATS at {settings.redacted_urls}: {reason or 'timed out'}"
            ) from e
        bus = cls(nc, nc.jetstream(timeout=settings.request_timeout), name, epoch)
        try:
            await bus._ensure(settings)
        except BaseException:
            await nc.close()
            raise
        return bus

    async def _ensure(self, settings: BusSettings) -> None:
        """Create the buckets, object store and stream if they do not exist yet."""
        replicas = settings.replicas
        try:
            for bucket in (
                subjects.OBJECTS_BUCKET,
                subjects.STATUS_BUCKET,
                subjects.SECRETS_BUCKET,
                subjects.IMAGE_TAGS_BUCKET,
            ):
                self._kv[bucket] = await self._js.create_key_value(
                    bucket=bucket, history=KV_HISTORY, replicas=replicas
                )
            self._kv[subjects.LEASES_BUCKET] = await self._js.create_key_value(
                bucket=subjects.LEASES_BUCKET,
                history=1,
                ttl=LEASE_BUCKET_MAX_AGE,
                replicas=replicas,
            )
            for kv in self._kv.values():
                # A direct get may be answered by any replica, also one that was down
                # and has not caught up yet; a read must never go back in time, so
                # reads go through the stream leader.
                kv._direct = False
            self._store = await self._js.create_object_store(
                bucket=subjects.ARTIFACTS_STORE,
                config=jsapi.ObjectStoreConfig(replicas=replicas),
            )
            with contextlib.suppress(jserrors.BadRequestError):
                await self._js.add_stream(
                    name=subjects.EVENTS_STREAM,
                    subjects=[subjects.EVENTS_SUBJECTS],
                    max_age=EVENTS_MAX_AGE,
                    num_replicas=replicas,
                )
        except (nats.errors.Error, jserrors.Error) as e:  # type: ignore[attr-defined]
            raise BusError(f"cannot set up JetStream: {e}") from e

    async def close(self) -> None:
        """Drain the connection: flush what is pending, then close."""
        if self._nc.is_closed:
            return
        with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
            await self._nc.drain()

    @property
    def connected(self) -> bool:
        return self._nc.is_connected

    # -- generic KV ------------------------------------------------------

    def _bucket(self, bucket: str) -> KeyValue:
        return self._kv[bucket]

    async def kv_get(self, bucket: str, key: str) -> Entry | None:
        """Return the current value of a key, or None when absent or deleted."""
        try:
            e = await self._bucket(bucket).get(key)
        except jserrors.KeyNotFoundError:  # includes KeyDeletedError
            return None
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
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
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
            raise BusError(f"put {bucket}/{key}: {err}") from err

    async def kv_delete(self, bucket: str, key: str) -> None:
        """Remove a key (purging its history)."""
        try:
            await self._bucket(bucket).purge(key)
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
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

        The watch survives NATS reconnects (it is an ordered push consumer that
        nats-py re-creates), so no change is missed while connected.
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
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
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
                await watcher.stop()

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
        """Remove an object and its status for good (the finalizer's last step)."""
        await self.kv_delete(subjects.OBJECTS_BUCKET, key)
        await self.kv_delete(subjects.STATUS_BUCKET, key)

    # -- status ----------------------------------------------------------

    async def get_status(self, key: str) -> Entry | None:
        """Return an object's status entry, or None before its first reconcile."""
        return await self.kv_get(subjects.STATUS_BUCKET, key)

    async def put_status(self, key: str, status: dict[str, Any], revision: int | None) -> int:
        """Compare-and-set an object's status; `revision` is what was read (0: none)."""
        return await self.kv_put(subjects.STATUS_BUCKET, key, status, revision=revision or 0)

    async def list_status(self, kind: str | None = None) -> list[Entry]:
        return await self.kv_list(subjects.STATUS_BUCKET, f"{kind.lower()}." if kind else "")

    async def watch_status(self, kind: str) -> AsyncIterator[KVChange]:
        """Watch the status of every object of a kind (current values first)."""
        async for c in self.kv_watch(subjects.STATUS_BUCKET, subjects.kind_filter(kind)):
            yield c

    # -- secrets and configmaps ------------------------------------------

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        e = await self.kv_get(subjects.SECRETS_BUCKET, subjects.secret_key(namespace, name))
        return None if e is None else e.value

    async def put_secret(self, namespace: str, name: str, doc: dict[str, Any]) -> ApplyResult:
        return await self._put_plain(subjects.secret_key(namespace, name), doc)

    async def delete_secret(self, namespace: str, name: str) -> None:
        await self.kv_delete(subjects.SECRETS_BUCKET, subjects.secret_key(namespace, name))

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        e = await self.kv_get(subjects.SECRETS_BUCKET, subjects.configmap_key(namespace, name))
        return None if e is None else e.value

    async def put_configmap(self, namespace: str, name: str, doc: dict[str, Any]) -> ApplyResult:
        return await self._put_plain(subjects.configmap_key(namespace, name), doc)

    async def delete_configmap(self, namespace: str, name: str) -> None:
        await self.kv_delete(subjects.SECRETS_BUCKET, subjects.configmap_key(namespace, name))

    async def list_secrets(self) -> list[Entry]:
        return [
            e
            for e in await self.kv_list(subjects.SECRETS_BUCKET)
            if not e.key.startswith(f"{subjects.CONFIGMAP_PREFIX}.")
        ]

    async def list_configmaps(self) -> list[Entry]:
        return await self.kv_list(subjects.SECRETS_BUCKET, f"{subjects.CONFIGMAP_PREFIX}.")

    async def _put_plain(self, key: str, doc: dict[str, Any]) -> ApplyResult:
        current = await self.kv_get(subjects.SECRETS_BUCKET, key)
        if current is not None and current.value == doc:
            return "unchanged"
        await self.kv_put(subjects.SECRETS_BUCKET, key, doc)
        return "created" if current is None else "configured"

    # -- artifacts -------------------------------------------------------

    @property
    def _artifacts(self) -> ObjectStore:
        assert self._store is not None
        return self._store

    async def put_artifact(self, name: str, path: Path) -> int:
        """Stream a file into the artifact store under `name`; return its size."""
        try:
            with path.open("rb") as fh:
                info = await self._artifacts.put(name, fh)  # type: ignore[arg-type]
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
            raise BusError(f"store artifact {name}: {err}") from err
        return int(info.size or 0)

    async def get_artifact(self, name: str, dest: Path) -> None:
        """Stream an artifact into `dest` (never held whole in memory).

        The download fails (BusError) when no chunk arrives for the request
        timeout: nats-py's chunk loop has no deadline of its own, and a server
        that stops answering would otherwise hang the reader for good. A failed
        download leaves no partial file behind.

        Raises KeyError when the artifact does not exist.
        """
        idle = max(1.0, self._request_timeout * 2)
        progress = _Progress()
        try:
            with dest.open("wb") as fh:
                writer = _CountingWriter(fh, progress)
                download = asyncio.ensure_future(
                    self._artifacts.get(name, writeinto=writer)  # type: ignore[arg-type]
                )
                while not download.done():
                    before = progress.bytes
                    done, _ = await asyncio.wait({download}, timeout=idle)
                    if not done and progress.bytes == before:
                        download.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await download
                        raise BusError(
                            f"fetch artifact {name}: no data for {idle:.0f}s "
                            f"after {progress.bytes} bytes"
                        )
                download.result()
        except jserrors.ObjectNotFoundError as err:
            _discard(dest)
            raise KeyError(name) from err
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
            _discard(dest)
            raise BusError(f"fetch artifact {name}: {err}") from err
        except BaseException:
            _discard(dest)
            raise

    async def artifact_size(self, name: str) -> int | None:
        """Return the stored size of an artifact, or None when it does not exist."""
        try:
            info = await self._artifacts.get_info(name)
        except (jserrors.ObjectNotFoundError, jserrors.ObjectDeletedError, jserrors.NotFoundError):
            return None
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
            raise BusError(f"stat artifact {name}: {err}") from err
        return None if info.deleted else int(info.size or 0)

    async def delete_artifact(self, name: str) -> None:
        with contextlib.suppress(jserrors.ObjectNotFoundError, jserrors.NotFoundError):
            await self._artifacts.delete(name)

    async def list_artifacts(self, prefix: str = "") -> list[str]:
        """Return the names of stored artifacts starting with `prefix`, oldest first."""
        try:
            infos = await self._artifacts.list()
        except jserrors.NotFoundError:
            return []
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
            raise BusError(f"list artifacts: {err}") from err
        return sorted(
            i.name for i in infos if i.name and i.name.startswith(prefix) and not i.deleted
        )

    # -- events ----------------------------------------------------------

    async def publish_event(self, event: Event) -> None:
        """Publish an event durably on the events stream."""
        o = event.involved_object
        subject = subjects.event_subject(o.kind, o.namespace, o.name)
        try:
            await self._js.publish(subject, event.model_dump_json(by_alias=True).encode())
        except (nats.errors.Error, jserrors.Error) as err:  # type: ignore[attr-defined]
            raise BusError(f"publish event: {err}") from err

    async def events(
        self,
        *,
        durable: str | None = None,
        filter_subject: str = subjects.EVENTS_SUBJECTS,
        deliver_all: bool = True,
        ack_wait: float = 30.0,
    ) -> AsyncIterator[Delivery]:
        """Yield deliveries from the events stream; call `await d.ack()` once handled.

        An event not acknowledged (the consumer crashed mid-way) is delivered
        again: at-least-once. With `durable`, delivery resumes where that
        consumer stopped (what a restarted notifier missed is delivered);
        without, from the start (`deliver_all`) or only new events.
        """
        policy = jsapi.DeliverPolicy.ALL if deliver_all else jsapi.DeliverPolicy.NEW
        # A pull consumer: several notifier replicas bound to one durable share
        # the work, and a consumer that went away leaves nothing bound.
        sub = await self._js.pull_subscribe(
            filter_subject,
            durable=durable,
            stream=subjects.EVENTS_STREAM,
            config=jsapi.ConsumerConfig(deliver_policy=policy, ack_wait=ack_wait),
        )
        try:
            while True:
                try:
                    msgs = await sub.fetch(batch=64, timeout=min(5.0, ack_wait))
                except nats.errors.TimeoutError:
                    continue
                for msg in msgs:
                    try:
                        event = Event.model_validate_json(msg.data)
                    except ValueError:
                        await msg.term()
                        continue
                    yield Delivery(event, msg.ack)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def recent_events(self, filter_subject: str = subjects.EVENTS_SUBJECTS) -> list[Event]:
        """Return every stored event on a subject filter (oldest first)."""
        out: list[Event] = []
        try:
            info = await self._js.stream_info(subjects.EVENTS_STREAM)
        except jserrors.NotFoundError:
            return out
        if not info.state.messages:
            return out
        sub = await self._js.subscribe(
            filter_subject,
            stream=subjects.EVENTS_STREAM,
            ordered_consumer=True,
            config=jsapi.ConsumerConfig(deliver_policy=jsapi.DeliverPolicy.ALL),
        )
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except nats.errors.TimeoutError:
                    break
                with contextlib.suppress(ValueError):
                    out.append(Event.model_validate_json(msg.data))
                if msg.metadata.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return out

    # -- leases ----------------------------------------------------------

    async def acquire_lease(self, key: str, holder: str, ttl: float) -> bool:
        """Take or renew a lease; return whether `holder` now holds it.

        A lease is held until its expiry (in the value) passes without renewal;
        every write is compare-and-set, so two contenders never both win.
        """
        loop_now = _wall_clock()
        current = await self.kv_get(subjects.LEASES_BUCKET, key)
        value = {"holder": holder, "expires": loop_now + ttl}
        try:
            if current is None:
                await self.kv_put(subjects.LEASES_BUCKET, key, value, revision=0)
                return True
            if current.value.get("holder") == holder or current.value.get("expires", 0) < loop_now:
                await self.kv_put(subjects.LEASES_BUCKET, key, value, revision=current.revision)
                return True
        except RevisionConflict:
            return False
        return False

    async def release_lease(self, key: str, holder: str) -> None:
        """Give a lease up at once (on clean shutdown) so a standby takes over."""
        current = await self.kv_get(subjects.LEASES_BUCKET, key)
        if current is not None and current.value.get("holder") == holder:
            with contextlib.suppress(RevisionConflict):
                await self.kv_put(
                    subjects.LEASES_BUCKET,
                    key,
                    {"holder": "", "expires": 0},
                    revision=current.revision,
                )

    async def lease_holders(self, lease_keys: list[str]) -> dict[str, str]:
        """Return {lease key: holder} of the unexpired leases among `lease_keys`."""
        now = _wall_clock()
        out: dict[str, str] = {}
        for key in lease_keys:
            e = await self.kv_get(subjects.LEASES_BUCKET, key)
            if e is not None and e.value.get("holder") and e.value.get("expires", 0) >= now:
                out[key] = str(e.value["holder"])
        return out

    async def heartbeat(self, group: str, member: str, ttl: float) -> list[str]:
        """Record `member` as alive in `group` for `ttl` seconds; return the live members.

        One KV key per group holds {member: expiry}; compare-and-set keeps
        concurrent heartbeats from overwriting each other. `ttl <= 0` leaves.
        """
        while True:
            now = _wall_clock()
            current = await self.kv_get(subjects.LEASES_BUCKET, group)
            members = {} if current is None else dict(current.value)
            members = {m: t for m, t in members.items() if float(t) >= now}
            if ttl > 0:
                members[member] = now + ttl
            else:  # leaving the group
                members.pop(member, None)
            try:
                await self.kv_put(
                    subjects.LEASES_BUCKET,
                    group,
                    members,
                    revision=0 if current is None else current.revision,
                )
            except RevisionConflict:
                continue
            return sorted(members)

    async def flush(self) -> None:
        await self._nc.flush()


def _discard(path: Path) -> None:
    """Remove a partial download (one unlink: cheap enough for the event loop)."""
    path.unlink(missing_ok=True)


class _Progress:
    """Bytes written so far by a download (read by its watchdog)."""

    def __init__(self) -> None:
        self.bytes = 0


class _CountingWriter:
    """A file wrapper that counts what nats-py writes into it (from its executor)."""

    def __init__(self, fh: Any, progress: _Progress) -> None:
        self._fh = fh
        self._progress = progress

    def write(self, data: bytes) -> int:
        n = int(self._fh.write(data))
        self._progress.bytes += n
        return n


def _spec_of(doc: dict[str, Any]) -> Any:
    """What a generation tracks: everything but metadata and status."""
    return {k: v for k, v in doc.items() if k not in ("metadata", "status")}


def _wall_clock() -> float:
    return time.time()
