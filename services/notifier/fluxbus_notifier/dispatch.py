"""The dispatcher: events from the durable stream consumer → matching Alerts →
their Providers, at least once, never twice between replicas.

For each event: the Alerts (cached from a KV watch) that match it, with the
object's labels read from the store only when a source selects by label; the
dedup window (shared in KV) drops identical events; each Alert's Provider is
resolved (suspended ones skipped), on-change Alerts apply their rule (state
shared in KV, compare-and-set), and the event is sent with retries
(exponential backoff with a cap, bounded in total by the delivery timeout). A
delivery that gives up raises a warning event on the Alert and marks the
Provider failing (its reconciler reports Ready=False) until a later success.
The event is acknowledged once every matching Provider accepted it or gave up.

Delivery guarantees:
- replicas bound to one durable consumer share the work; JetStream hands each
  event to one of them, and the dispatcher reports progress (`in_progress`)
  for every event it holds, so a long retry never lets the event be handed to
  another replica;
- events of one object are handled in order; events of different objects
  concurrently (up to `in_flight`), so one dead endpoint does not hold the rest;
- a stop or a crash before the ack leaves the event to be delivered again
  (at-least-once; the stable event id goes with every request).

Adapter: owns the HTTP client session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import aiohttp
import structlog

from fluxbus_common import subjects
from fluxbus_common.api.notification import Alert, Provider
from fluxbus_common.backoff import exponential
from fluxbus_common.bus import Bus, Delivery
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import ReconcileError
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.ports import BusError, KVChange
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.tasks import raise_if_cancelling
from fluxbus_notifier import providers
from fluxbus_notifier.logic.matching import alert_matches, enrich, provider_accepts
from fluxbus_notifier.logic.noise import dedup_key, is_on_change, on_change, on_change_key
from fluxbus_notifier.logic.provider_config import ProviderConfig
from fluxbus_notifier.resolve import resolve_provider
from fluxbus_notifier.settings import NotifierSettings
from fluxbus_notifier.state import NotifierState

log = structlog.get_logger("fluxbus.notifier")

OWN_KINDS = frozenset({"Alert", "Provider", "Receiver"})
"""Events about the notifier's own objects are never dispatched (a failing
Provider would otherwise notify about itself, forever)."""
PROGRESS_FRACTION = 1 / 3
"""Progress is reported for held events every third of the ack wait."""


def _describe(o: ObjectReference) -> str:
    """`Kind/namespace/name`, as messages name an object."""
    return f"{o.kind}/{o.namespace}/{o.name}"


class Dispatcher:
    """Consumes the events stream for one replica until cancelled."""

    def __init__(
        self,
        bus: Bus,
        state: NotifierState,
        recorder: EventRecorder,
        settings: NotifierSettings,
    ) -> None:
        self._bus = bus
        self._state = state
        self._recorder = recorder
        self._settings = settings
        self.alerts: dict[str, Alert] = {}
        self.providers: dict[str, Provider] = {}
        self._failing: set[str] = set()
        """Health keys of Providers some replica recorded as failing."""
        self._held: dict[int, Delivery] = {}
        """Events taken from the stream and not acknowledged yet."""
        self._chains: dict[str, asyncio.Task[None]] = {}
        """The last task per object: the next event of that object waits for it."""
        self._session: aiohttp.ClientSession | None = None
        self.synced = asyncio.Event()
        """Set once Alerts and Providers are listed and consuming has begun."""
        self.handled = 0
        """Events this replica acknowledged."""
        self.progress_reports = 0
        """Rounds of in-progress reports sent for held events."""

    # -- entry point -------------------------------------------------------

    async def run(self) -> None:
        """Watch Alerts, Providers and Provider health, then consume until cancelled."""
        async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tg:
            self._session = session
            alerts = asyncio.Event()
            provs = asyncio.Event()
            tg.create_task(self._watch("Alert", self.alerts, Alert, alerts), name="notify-alerts")
            tg.create_task(
                self._watch("Provider", self.providers, Provider, provs), name="notify-providers"
            )
            tg.create_task(self._watch_health(), name="notify-provider-health")
            await alerts.wait()
            await provs.wait()
            await self._bus.ensure_event_consumer(
                self._settings.consumer, ack_wait=self._settings.ack_wait
            )
            tg.create_task(self._report_progress(), name="notify-in-progress")
            await self._consume(tg)

    # -- caches --------------------------------------------------------------

    async def _watch(
        self,
        kind: str,
        cache: dict[str, Any],
        model: type[Alert] | type[Provider],
        synced: asyncio.Event,
    ) -> None:
        async for change in self._bus.watch_objects(kind, mark_initial=True):
            if not change.key:
                synced.set()
                continue
            doc = change.value
            if doc is None or (doc.get("metadata") or {}).get("deletionTimestamp"):
                cache.pop(change.key, None)
                continue
            try:
                cache[change.key] = model.model_validate(doc)
            except ValueError as e:
                # The reconciler reports it on the object; here it just takes no part.
                log.info("notify.invalid_object", key=change.key, error=str(e).splitlines()[0])
                cache.pop(change.key, None)

    async def _watch_health(self) -> None:
        change: KVChange
        async for change in self._state.watch_provider_health():
            if change.value is None:
                self._failing.discard(change.key)
            else:
                self._failing.add(change.key)

    # -- consuming -----------------------------------------------------------

    async def _consume(self, tg: asyncio.TaskGroup) -> None:
        """Take events one at a time, when a slot is free, so that none waits
        unreported in a fetched batch; hand each to its object's chain."""
        slots = asyncio.Semaphore(max(1, self._settings.in_flight))
        deliveries: AsyncGenerator[Delivery] = self._bus.events(
            durable=self._settings.consumer, ack_wait=self._settings.ack_wait, batch=1
        )
        self.synced.set()
        async with contextlib.aclosing(deliveries):
            while True:
                await slots.acquire()
                try:
                    delivery = await anext(deliveries)
                except BaseException:
                    slots.release()
                    raise
                self._held[id(delivery)] = delivery
                o = delivery.event.involved_object
                chain = subjects.object_key(o.kind, o.namespace, o.name)
                previous = self._chains.get(chain)
                task = tg.create_task(
                    self._run_one(delivery, previous, slots), name=f"notify-{delivery.event_id}"
                )
                self._chains[chain] = task
                task.add_done_callback(partial(self._forget_chain, chain))

    def _forget_chain(self, chain: str, task: asyncio.Task[None]) -> None:
        if self._chains.get(chain) is task:
            del self._chains[chain]

    async def _run_one(
        self, delivery: Delivery, previous: asyncio.Task[None] | None, slots: asyncio.Semaphore
    ) -> None:
        try:
            if previous is not None and not previous.done():
                await asyncio.wait({previous})  # its outcome is its own business
            o = delivery.event.involved_object
            with structlog.contextvars.bound_contextvars(
                event_id=delivery.event_id, kind=o.kind, namespace=o.namespace, name=o.name
            ):
                try:
                    await self._handle(delivery)
                    self.handled += 1
                except BusError as e:
                    log.warning("notify.bus_unavailable", error=str(e), action="redeliver")
                    await self._redeliver(delivery)
                except Exception:
                    log.exception("notify.crashed", action="redeliver")
                    await self._redeliver(delivery)
        except asyncio.CancelledError:
            # Stopping: hand the event back at once rather than after the ack wait.
            with contextlib.suppress(BusError):
                await delivery.nak()
            raise
        finally:
            self._held.pop(id(delivery), None)
            slots.release()

    async def _redeliver(self, delivery: Delivery) -> None:
        """Hand an event back to the stream, later each time it comes back."""
        s = self._settings
        delay = min(s.retry_cap, s.retry_base * 2 ** min(delivery.attempt - 1, 16))
        with contextlib.suppress(BusError):
            await delivery.nak(delay)

    async def _report_progress(self) -> None:
        """Keep the stream from handing held events to another replica."""
        while True:
            await asyncio.sleep(self._settings.ack_wait * PROGRESS_FRACTION)
            raise_if_cancelling()  # nats-py may have swallowed a cancellation
            held = list(self._held.values())
            for delivery in held:
                with contextlib.suppress(BusError):
                    await delivery.in_progress()
            if held:
                self.progress_reports += 1

    # -- one event -----------------------------------------------------------

    async def _handle(self, delivery: Delivery) -> None:
        event = delivery.event
        o = event.involved_object
        if o.kind in OWN_KINDS:
            await delivery.ack()
            return
        alerts = sorted(self.alerts.values(), key=lambda a: (a.metadata.namespace, a.metadata.name))
        labels = await self._labels(o) if _select_by_labels(alerts) else None
        matched = [a for a in alerts if alert_matches(a, event, labels)]
        if not matched:
            await delivery.ack()
            return
        if not await self._state.claim(dedup_key(event), delivery.event_id):
            log.info("notify.duplicate_dropped", reason=event.reason)
            await delivery.ack()
            return
        try:
            async with asyncio.TaskGroup() as tg:
                for alert in matched:
                    tg.create_task(self._notify(alert, event, delivery.event_id))
        except ExceptionGroup as group:
            outage = group.subgroup(BusError)
            if outage is not None:  # the shared state is out of reach: redeliver
                raise outage.exceptions[0] from group
            raise
        await delivery.ack()

    async def _labels(self, o: ObjectReference) -> dict[str, str]:
        entry = await self._bus.get_object(subjects.object_key(o.kind, o.namespace, o.name))
        if entry is None:
            return {}
        labels = (entry.value.get("metadata") or {}).get("labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    async def _notify(self, alert: Alert, event: Event, event_id: str) -> None:
        """Send `event` to `alert`'s Provider (or skip it, or give up) — never raises
        for a delivery problem; BusError when the shared state cannot be reached."""
        ns = alert.metadata.namespace
        provider_name = alert.spec.provider_ref.name
        provider = self.providers.get(subjects.object_key("Provider", ns, provider_name))
        if provider is None:
            await self._warn(alert, event, f"provider {ns}/{provider_name} not found")
            return
        if provider.spec.suspend:
            log.debug("notify.provider_suspended", provider=provider_name)
            return
        if not provider_accepts(provider.spec.type, event):  # a commit-status-only event
            return
        to_send = enrich(alert, event)
        onchange: tuple[str, Any, int] | None = None
        if is_on_change(alert):
            key = on_change_key(alert, event)
            last, revision = await self._state.last_failure(key)
            step = on_change(last, to_send)
            if step.send is None:
                return
            new_revision = await self._state.remember(key, step.remember, revision)
            if new_revision is None:  # another replica handled this change
                return
            onchange = (key, last, new_revision)
            to_send = step.send
        try:
            config = await resolve_provider(self._bus, provider)
            error = await self._send(config, to_send, event_id)
        except ReconcileError as e:  # the Provider's configuration is unusable
            error = e.message
        if error is None:
            health = subjects.object_key("Provider", ns, provider_name)
            if health in self._failing:
                await self._state.provider_recovered(ns, provider_name)
                self._failing.discard(health)
            log.info("notify.sent", alert=alert.metadata.name, provider=provider_name)
            return
        if onchange is not None:  # not told: an on-change Alert tries again next time
            key, last, new_revision = onchange
            await self._state.remember(key, last, new_revision)
        await self._state.provider_failing(ns, provider_name, error)
        self._failing.add(subjects.object_key("Provider", ns, provider_name))
        await self._warn(alert, event, error)

    async def _send(self, config: ProviderConfig, event: Event, event_id: str) -> str | None:
        """Send with retries; return None once accepted, or the (redacted) reason it gave up."""
        assert self._session is not None
        delays = exponential(base=self._settings.retry_base, cap=self._settings.retry_cap)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.delivery_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                await providers.send(self._session, config, event, event_id=event_id)
                return None
            except providers.DeliveryError as e:
                message = config.redact(str(e))
                if not e.retryable:
                    return message
                delay = max(next(delays), e.retry_after or 0.0)  # the server's Retry-After
                if loop.time() + delay > deadline:
                    return f"{message} (gave up after {attempt} attempts)"
                log.info(
                    "notify.retry",
                    provider=config.name,
                    attempt=attempt,
                    retry_in_s=round(delay, 2),
                    error=message,
                )
                await asyncio.sleep(delay)

    async def _warn(self, alert: Alert, event: Event, error: str) -> None:
        """A warning event on the Alert, as Flux raises it (`error` is redacted)."""
        message = f"failed to send notification for {_describe(event.involved_object)}: {error}"
        log.warning("notify.failed", alert=alert.metadata.name, error=error)
        await self._recorder.event(
            alert, Severity.ERROR, Reason.NOTIFICATION_DISPATCH_FAILED, message
        )


def _select_by_labels(alerts: list[Alert]) -> bool:
    """Whether any Alert selects objects by label (only then are labels read)."""
    return any(src.match_labels for a in alerts for src in a.spec.event_sources)
