"""The controller runtime every service uses: watch → keyed work queue →
reconcile → summarize → compare-and-set status → events.

Guarantees (each has a test in tests/common/test_runtime.py):
- one object is never reconciled by two workers at once — in one process by
  the work queue, across replicas by shard leases: a key belongs to shard
  `crc32(key) % shards` and only the holder of that shard's lease works on it;
- success requeues at the object's interval ±5 % jitter;
- failure backs off exponentially (capped, reset on success), or after the
  error's own `retry_after` / `requeue_after`, or the reconciler's
  `retry_interval(obj)`; `Stalling` waits for a new spec;
- `spec.suspend` stops all work;
- a new generation, a new `reconcile.fluxcd.io/requestedAt`, a deletion or a
  change of something the reconciler watches is handled at once;
- `metadata.deletionTimestamp` runs the kind's finalizer, then removes the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from fluxbus_common import keys, subjects
from fluxbus_common.backoff import exponential, jittered
from fluxbus_common.bus import Bus
from fluxbus_common.conditions import Condition, ConditionType, Reason, set_condition
from fluxbus_common.errors import Generic, ReconcileError, Stalling, Waiting
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.metrics import Metrics
from fluxbus_common.ports import BusError, EventPublisher, KVChange, RevisionConflict
from fluxbus_common.reconcile import DependencyWatch, Reconciler, Result, progress_to
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.tasks import raise_if_cancelling
from fluxbus_common.workqueue import WorkQueue

log = structlog.get_logger("fluxbus.runtime")

FENCE_FRACTION = 0.6
"""A replica that has not renewed its leases for this fraction of the TTL stops
acting on them (cancels their reconciles) before anyone else may take them over
(they expire only after the whole TTL): the rest is the margin for clocks and
for the cancelled reconciles to unwind."""
FENCE_WAIT_FRACTION = 0.2
"""How long (fraction of the TTL) a replica waits for its cancelled reconciles to
stop before it releases a lease it gives up; they are abandoned after that."""


def shard_of(key: str, shards: int) -> int:
    """Return the shard a key belongs to (stable across processes and restarts)."""
    return zlib.crc32(key.encode()) % max(1, shards)


@dataclass(frozen=True)
class _Trigger:
    """What, when it changes in a stored object, calls for an immediate reconcile."""

    generation: int
    requested_at: str | None
    deleting: bool
    suspended: bool


def _trigger(doc: dict[str, Any]) -> _Trigger:
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    return _Trigger(
        generation=int(meta.get("generation") or 0),
        requested_at=(meta.get("annotations") or {}).get(keys.RECONCILE_REQUESTED_AT),
        deleting=bool(meta.get("deletionTimestamp")),
        suspended=bool(spec.get("suspend")) if isinstance(spec, dict) else False,
    )


def _outcome(error: ReconcileError | None) -> str:
    """The `result` label of the reconcile metrics and log line."""
    if error is None:
        return "success"
    if isinstance(error, Stalling):
        return "stalled"
    if isinstance(error, Waiting):
        return "waiting"
    return "failed"


class EventRecorder:
    """Publishes Flux-schema events about objects for one controller.

    Each event gets a stable id when it is made here; an event that cannot be
    published now waits in the bus's outbox and is published, with its original
    timestamp, when NATS is back (`fluxbus_common.bus.outbox`).
    """

    def __init__(self, bus: EventPublisher, controller: str, instance: str) -> None:
        self._bus = bus
        self.controller = controller
        self.instance = instance

    async def event(
        self,
        obj: Any,
        severity: Severity,
        reason: str,
        message: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Publish an event about `obj` (a toolkit model); never raises for an outage."""
        await self.record(obj, severity, reason, message, metadata)

    async def record(
        self,
        obj: Any,
        severity: Severity,
        reason: str,
        message: str,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Like `event`, and return the event's stable id."""
        meta = obj.metadata
        event = Event(
            involved_object=ObjectReference(
                kind=obj.kind,
                namespace=meta.namespace or "",
                name=meta.name,
                api_version=getattr(obj, "api_version", None),
                uid=getattr(meta, "uid", None),
            ),
            severity=severity,
            reason=str(reason),
            message=message,
            metadata=metadata or {},
            reporting_controller=self.controller,
            reporting_instance=self.instance,
        )
        return await self._bus.emit_event(event)


@dataclass
class _Written:
    """The status last written for a reconcile in flight, and its KV revision."""

    status: dict[str, Any]
    revision: int


class Runtime:
    """Runs one reconciler (one kind) until cancelled."""

    def __init__(
        self,
        bus: Bus,
        reconciler: Reconciler[Any],
        settings: RuntimeSettings,
        *,
        service: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.bus = bus
        self.reconciler = reconciler
        self.settings = settings
        self.kind = reconciler.kind.lower()
        self.service = service
        self.metrics = metrics or Metrics()
        self.queue = WorkQueue()
        self.objects: dict[str, dict[str, Any]] = {}
        """The latest stored document (without status) of every object of the kind."""
        self._revisions: dict[str, int] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._status: dict[str, tuple[dict[str, Any], int]] = {}
        self._backoff: dict[str, Iterator[float]] = {}
        self._stalled_generation: dict[str, int] = {}
        self._owned: set[int] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        """The reconcile in flight per key, cancelled when its shard is lost."""
        self._bus_failing: set[str] = set()
        """Keys whose last reconcile failed on the bus (warned about once per outage)."""
        self._renewed_at = 0.0
        """time.monotonic() at the start of the last lease renewal that fully succeeded."""
        self.synced = asyncio.Event()
        """Set once the initial list of objects has been read."""
        self.active = asyncio.Event()
        """Set while this replica holds at least one shard."""
        self.recorder = EventRecorder(bus, service, settings.instance)

    # -- ownership -------------------------------------------------------

    @property
    def owned_shards(self) -> tuple[int, ...]:
        """The shards whose leases this replica holds now (its heartbeat reports them)."""
        return tuple(sorted(self._owned))

    def owns(self, key: str) -> bool:
        return shard_of(key, self.settings.shards) in self._owned

    def _lease_key(self, shard: int) -> str:
        return subjects.lease_key(self.service, self.kind, shard)

    async def _lease_loop(self) -> None:
        """Hold a fair share of the shard leases; give up extras; take over dead ones.

        A shard is given up (voluntarily, or because renewals failed for
        FENCE_FRACTION of the TTL) only after its reconciles were cancelled, so
        no two replicas ever act on one key at once.
        """
        ttl = self.settings.lease_ttl
        group = subjects.members_key(self.service, self.kind)
        shards = max(1, self.settings.shards)
        lease_keys = [self._lease_key(s) for s in range(shards)]
        failing = False
        try:
            while True:
                started = time.monotonic()
                try:
                    members = await self.bus.heartbeat(group, self.settings.instance, ttl)
                    fair = math.ceil(shards / max(1, len(members)))
                    held = await self.bus.lease_holders(lease_keys)
                    mine = sorted(
                        s
                        for s in range(shards)
                        if held.get(self._lease_key(s)) == self.settings.instance
                    )
                    # Renew what we hold, up to our fair share; release the rest
                    # once their reconciles have stopped.
                    keep = mine[:fair]
                    extra = set(mine[fair:])
                    if extra:
                        await self._drop(extra)
                    for s in sorted(extra):
                        await self.bus.release_lease(self._lease_key(s), self.settings.instance)
                    owned: set[int] = set()
                    for s in keep:
                        if await self.bus.acquire_lease(
                            self._lease_key(s), self.settings.instance, ttl
                        ):
                            owned.add(s)
                    for s in range(shards):
                        if len(owned) >= fair:
                            break
                        if s in owned or self._lease_key(s) in held:
                            continue
                        if await self.bus.acquire_lease(
                            self._lease_key(s), self.settings.instance, ttl
                        ):
                            owned.add(s)
                    lost = self._owned - owned
                    if lost:
                        await self._drop(lost)
                    self._set_owned(owned)
                    self._renewed_at = started
                    if failing:
                        log.info("lease.renewed", kind=self.kind)
                    failing = False
                except BusError as e:
                    if not failing:  # one warning per outage, not one per attempt
                        log.warning("lease.renew_failed", kind=self.kind, error=str(e))
                    failing = True
                    if self._owned and time.monotonic() - self._renewed_at > ttl * FENCE_FRACTION:
                        log.warning(
                            "lease.fenced",
                            kind=self.kind,
                            shards=sorted(self._owned),
                            reason="leases not renewed in time; stopping their reconciles",
                        )
                        await self._drop(set(self._owned))
                raise_if_cancelling()
                await asyncio.sleep(ttl / 3)
        finally:
            self._set_owned(set())
            with contextlib.suppress(BusError, Exception):
                for s in range(shards):
                    await self.bus.release_lease(self._lease_key(s), self.settings.instance)
                await self.bus.heartbeat(group, self.settings.instance, 0)

    async def _drop(self, shards: set[int]) -> None:
        """Stop owning `shards`: no new work for their keys, their running reconciles
        cancelled and awaited (for at most FENCE_WAIT_FRACTION of the TTL)."""
        self._set_owned(self._owned - shards)
        tasks = [
            task
            for key, task in self._running.items()
            if shard_of(key, self.settings.shards) in shards and not task.done()
        ]
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(
            tasks, timeout=self.settings.lease_ttl * FENCE_WAIT_FRACTION
        )
        if pending:
            log.warning("lease.fence_timeout", kind=self.kind, still_running=len(pending))

    def _set_owned(self, owned: set[int]) -> None:
        gained = owned - self._owned
        lost = self._owned - owned
        self._owned = owned
        if gained or lost:
            log.info(
                "lease.changed",
                kind=self.kind,
                owned=sorted(owned),
                instance=self.settings.instance,
            )
        if owned:
            self.active.set()
        else:
            self.active.clear()
        if gained:
            for key in self.objects:
                if shard_of(key, self.settings.shards) in gained:
                    self.queue.add(key)
        for key in list(self.objects):
            if shard_of(key, self.settings.shards) in lost:
                self.queue.forget(key)

    # -- watches ---------------------------------------------------------

    async def _watch_objects(self) -> None:
        async for change in self.bus.watch_objects(self.kind, mark_initial=True):
            if not change.key:  # end of the initial values
                self.synced.set()
                continue
            self._on_object(change)

    def _on_object(self, change: KVChange) -> None:
        key = change.key
        if change.value is None:
            self.objects.pop(key, None)
            self._triggers.pop(key, None)
            self._revisions.pop(key, None)
            self._status.pop(key, None)
            self._backoff.pop(key, None)
            self.queue.forget(key)
            return
        self.objects[key] = change.value
        self._revisions[key] = change.revision
        trigger = _trigger(change.value)
        previous = self._triggers.get(key)
        self._triggers[key] = trigger
        if previous != trigger and self.owns(key):
            self.queue.add(key)

    async def _watch_own_status(self) -> None:
        """Keep the status cache current (also with what another replica wrote),
        so a reconcile never has to read its status first."""
        async for change in self.bus.watch_status(self.kind):
            if change.value is None:
                self._status.pop(change.key, None)
                continue
            cached = self._status.get(change.key)
            if cached is None or cached[1] < change.revision:
                self._status[change.key] = (change.value, change.revision)

    async def _watch_dependency(self, watch: DependencyWatch) -> None:
        if watch.bucket is not None:
            source = self.bus.kv_watch(watch.bucket, subjects.kind_filter(watch.kind))
        elif watch.source == "status":
            source = self.bus.watch_status(watch.kind)
        elif watch.source == "secrets":
            source = self.bus.kv_watch(subjects.SECRETS_BUCKET)
        else:
            source = self.bus.watch_objects(watch.kind)
        async for change in source:
            try:
                targets = list(watch.map(change.key, change.value, self.objects))
            except Exception:
                log.exception("watch.map_failed", kind=self.kind, dependency=change.key)
                continue
            for key in targets:
                if key in self.objects and self.owns(key):
                    self.queue.add(key)

    # -- work ------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            raise_if_cancelling()
            key = await self.queue.get()
            if not key:
                return
            try:
                if self.owns(key) and key in self.objects:
                    await self._run_fenced(key)
            except asyncio.CancelledError:
                raise
            except BusError as e:
                # NATS is unreachable or slow (a status write timed out): an outage,
                # not a bug. One warning per object and outage, no traceback.
                if key not in self._bus_failing:
                    log.warning("reconcile.bus_unavailable", key=key, error=str(e))
                    self._bus_failing.add(key)
                self.queue.add(key, self._next_backoff(key))
            except Exception:
                log.exception("reconcile.crashed", key=key)
                self.queue.add(key, self._next_backoff(key))
            finally:
                self.queue.done(key)
                self.metrics.queue_depth.labels(self.kind).set(self.queue.depth)

    async def _run_fenced(self, key: str) -> None:
        """Reconcile `key` in a task of its own, which `_drop` cancels when the key's
        shard is lost; a reconcile cancelled that way is simply over (the new owner
        runs it)."""
        task = asyncio.create_task(self._process(key), name=f"{self.kind}-reconcile-{key}")
        self._running[key] = task
        try:
            await asyncio.shield(task)
            if key in self._bus_failing:
                self._bus_failing.discard(key)
                log.info("reconcile.bus_recovered", key=key)
        except asyncio.CancelledError:
            if not task.done():  # the worker itself is being cancelled
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # a second cancel of this worker is re-raised below anyway
                raise
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            log.info("reconcile.fenced", key=key)
        finally:
            if self._running.get(key) is task:
                del self._running[key]

    async def _process(self, key: str) -> None:
        doc = self.objects[key]
        revision = self._revisions[key]
        meta = doc.get("metadata") or {}
        trigger = _trigger(doc)
        if trigger.deleting:
            await self._finalize(key, doc)
            return
        if trigger.suspended:
            log.debug("reconcile.suspended", key=key)
            self.metrics.record_object(doc, (await self._load_status(key))[0])
            return
        if keys.FINALIZER not in (meta.get("finalizers") or []):
            doc = {
                **doc,
                "metadata": {
                    **meta,
                    "finalizers": [*(meta.get("finalizers") or []), keys.FINALIZER],
                },
            }
            try:
                self._revisions[key] = await self.bus.update_object(key, doc, revision)
                self.objects[key] = doc
            except RevisionConflict:
                self.queue.add(key)  # the watch brings the newer object
                return

        status, status_rev = await self._load_status(key)
        try:
            obj = self.reconciler.parse({**doc, "status": status})
        except ValueError as e:
            await self._write_invalid(key, doc, status, status_rev, str(e))
            return

        requested = trigger.requested_at
        bound = structlog.contextvars.bound_contextvars(
            kind=self.reconciler.kind,
            namespace=obj.metadata.namespace,
            name=obj.metadata.name,
        )
        written = _Written(status, status_rev)
        with bound, progress_to(lambda o: self._publish_progress(key, o, written)):
            start = time.monotonic()
            error: ReconcileError | None = None
            result: Result | None = None
            try:
                result = await self.reconciler.reconcile(obj)
            except ReconcileError as e:
                error = e
            except Exception as e:  # a bug or an unwrapped library error: retry with backoff
                log.exception("reconcile.unexpected_error")
                error = Generic(f"unexpected error: {e}")
            self.reconciler.summarize(obj, result, error)
            if requested is not None:
                obj.status.last_handled_reconcile_at = requested
            new_status = obj.status.model_dump(by_alias=True, exclude_none=True, mode="json")
            status, status_rev = written.status, written.revision
            if new_status != status or status_rev == 0:
                try:
                    rev = await self.bus.put_status(key, new_status, status_rev)
                    self._status[key] = (new_status, rev)
                except RevisionConflict:
                    self._status.pop(key, None)
                    log.warning("status.conflict", key=key)
                    self.queue.add(key)
                    return
            if error is not None:
                await self.recorder.event(obj, Severity.ERROR, error.reason, error.message)
            delay = self._schedule(key, obj, result, error, trigger)
            duration = time.monotonic() - start
            outcome = _outcome(error)
            meta = obj.metadata
            self.metrics.observe_reconcile(
                self.reconciler.kind, meta.namespace or "", meta.name, duration
            )
            self.metrics.record_object(doc, new_status)
            self.metrics.reconcile_total.labels(self.kind, outcome).inc()
            # A failure needs attention (alerts on error logs catch it); a wait does not.
            log.log(
                logging.ERROR if outcome in ("failed", "stalled") else logging.INFO,
                "reconcile.finished",
                result=outcome,
                duration_ms=round(duration * 1000, 1),
                next_run_s=None if delay is None else round(delay, 1),
                error=None if error is None else error.message,
            )

    async def _publish_progress(self, key: str, obj: Any, written: _Written) -> None:
        """Write the status of a reconcile still running (best effort: a conflict or a
        bus failure only loses this intermediate state; the final write follows)."""
        new = obj.status.model_dump(by_alias=True, exclude_none=True, mode="json")
        if new == written.status:
            return
        try:
            rev = await self.bus.put_status(key, new, written.revision)
        except (RevisionConflict, BusError) as e:
            log.warning("status.progress_not_written", key=key, error=str(e))
            return
        written.status, written.revision = new, rev
        self._status[key] = (new, rev)

    def _schedule(
        self,
        key: str,
        obj: Any,
        result: Result | None,
        error: ReconcileError | None,
        trigger: _Trigger,
    ) -> float | None:
        """Queue the next run of `key` and return its delay (None: none planned)."""
        delay: float | None
        if error is None:
            self._backoff.pop(key, None)
            base = (
                result.requeue_after
                if result is not None and result.requeue_after is not None
                else self.reconciler.interval(obj)
            )
            delay = jittered(base)
        elif isinstance(error, Stalling):
            self._backoff.pop(key, None)
            delay = None  # a new generation (object watch) brings it back
        elif isinstance(error, Waiting):
            delay = error.requeue_after
        elif isinstance(error, Generic) and error.retry_after is not None:
            delay = error.retry_after
        elif (retry := self.reconciler.retry_interval(obj)) is not None:
            delay = retry
        else:
            delay = self._next_backoff(key)
        if delay is not None:
            self.queue.add(key, delay)
        return delay

    def _next_backoff(self, key: str) -> float:
        it = self._backoff.get(key)
        if it is None:
            it = exponential(base=self.settings.backoff_base, cap=self.settings.backoff_cap)
            self._backoff[key] = it
        return next(it)

    async def _load_status(self, key: str) -> tuple[dict[str, Any], int]:
        cached = self._status.get(key)
        if cached is not None:
            return dict(cached[0]), cached[1]
        entry = await self.bus.get_status(key)
        if entry is None:
            return {}, 0
        self._status[key] = (entry.value, entry.revision)
        return dict(entry.value), entry.revision

    async def _write_invalid(
        self, key: str, doc: dict[str, Any], status: dict[str, Any], rev: int, message: str
    ) -> None:
        """A stored object the model rejects: Ready=False, Stalled, until the spec changes."""
        conds = [Condition.model_validate(c) for c in status.get("conditions", [])]
        gen = int((doc.get("metadata") or {}).get("generation") or 0)
        set_condition(conds, ConditionType.READY, False, Reason.INVALID_SPEC, message, gen)
        set_condition(conds, ConditionType.STALLED, True, Reason.INVALID_SPEC, message, gen)
        new = {
            **status,
            "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conds],
        }
        with contextlib.suppress(RevisionConflict):
            self._status[key] = (new, await self.bus.put_status(key, new, rev))
        log.warning("reconcile.invalid_object", key=key, error=message)

    async def _finalize(self, key: str, doc: dict[str, Any]) -> None:
        status, _ = await self._load_status(key)
        try:
            obj = self.reconciler.parse({**doc, "status": status})
        except ValueError:
            obj = None
        try:
            if obj is not None:
                await self.reconciler.finalize(obj)
        except ReconcileError as e:
            log.warning("finalize.failed", key=key, error=e.message)
            self.queue.add(key, self._next_backoff(key))
            return
        await self.bus.remove_object(key)
        _, namespace, name = subjects.split_object_key(key)
        self.metrics.forget_object(self.reconciler.kind, namespace, name)
        log.info("reconcile.finalized", key=key)

    # -- entry point -----------------------------------------------------

    async def run(self) -> None:
        """Run watches, the lease loop and the workers until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._lease_loop(), name=f"{self.kind}-leases")
            tg.create_task(self._watch_own_status(), name=f"{self.kind}-status")
            tg.create_task(self._watch_objects(), name=f"{self.kind}-watch")
            for watch in self.reconciler.watches:
                tg.create_task(self._watch_dependency(watch), name=f"{self.kind}-dep-{watch.kind}")
            for i in range(max(1, self.settings.workers)):
                tg.create_task(self._worker(), name=f"{self.kind}-worker-{i}")

    def request(self, key: str) -> None:
        """Reconcile `key` now (if owned)."""
        if key in self.objects and self.owns(key):
            self.queue.add(key)
