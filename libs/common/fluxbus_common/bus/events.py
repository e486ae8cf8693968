"""Events of the bus: Flux-schema events published durably on the events
stream (through the outbox, so none is lost while NATS is away), consumed at
least once (pull consumer, explicit ack), or read back.

Every event published through `emit_event` carries a stable id in the
`Nats-Msg-Id` header: the stream drops a retry of an event it already stored,
and consumers see the id as `Delivery.event_id` (the notifier sends it to
webhooks, so they can drop duplicates too).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import nats.errors
import nats.js.api as jsapi
import nats.js.errors as jserrors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from fluxbus_common import subjects
from fluxbus_common.backoff import exponential
from fluxbus_common.bus.connection import Connection
from fluxbus_common.bus.outbox import EventOutbox
from fluxbus_common.events import Event
from fluxbus_common.ports import BusError
from fluxbus_common.tasks import raise_if_cancelling

log = structlog.get_logger("fluxbus.bus")

MSG_ID_HEADER = "Nats-Msg-Id"
"""JetStream's de-duplication header: the stable id of an event."""


def new_event_id() -> str:
    """Return a fresh stable event id (made once, when the event is created)."""
    return uuid.uuid4().hex


class Delivery:
    """One event from the stream, its stable id, and how to acknowledge it.

    Acknowledgements wrap nats-py's errors in BusError.
    """

    def __init__(self, event: Event, event_id: str, msg: Msg) -> None:
        self.event = event
        self.event_id = event_id
        self._msg = msg

    @property
    def attempt(self) -> int:
        """How often the stream has handed out this event, this time included."""
        return self._msg.metadata.num_delivered or 1

    async def ack(self) -> None:
        """Done with it: the stream never delivers it to this consumer again.

        Waits for the server to confirm, so an acknowledgement lost in an outage
        is reported rather than silently turned into a redelivery.
        """
        try:
            await self._msg.ack_sync()
        except (nats.errors.Error, TimeoutError) as err:
            raise BusError(f"ack event: {err}") from err

    async def nak(self, delay: float | None = None) -> None:
        """Not done: deliver it again (after `delay` seconds), perhaps to another replica."""
        try:
            await self._msg.nak(delay)
        except nats.errors.Error as err:
            raise BusError(f"nak event: {err}") from err

    async def in_progress(self) -> None:
        """Still working on it: restart the ack-wait clock (no redelivery meanwhile)."""
        try:
            await self._msg.in_progress()
        except nats.errors.Error as err:
            raise BusError(f"in-progress event: {err}") from err


class Events(Connection):
    """Publish, consume and list events (subjects from `subjects.event_subject`)."""

    @property
    def outbox(self) -> EventOutbox:
        """The outbox of this connection (created on first use)."""
        box: EventOutbox | None = self.__dict__.get("_event_outbox")
        if box is None:
            box = EventOutbox(
                self._publish_with_id,
                lambda: self.connected,
                self._epoch,
                limit=self._outbox_limit,
            )
            self.__dict__["_event_outbox"] = box
        return box

    async def _publish_with_id(self, event: Event, event_id: str) -> None:
        await self.publish_event(event, event_id=event_id)

    async def publish_event(self, event: Event, *, event_id: str | None = None) -> None:
        """Publish an event durably on the events stream; raise BusError if NATS does not take it.

        With `event_id`, the stream stores the event once however often it is sent.
        """
        o = event.involved_object
        subject = subjects.event_subject(o.kind, o.namespace, o.name)
        headers = {MSG_ID_HEADER: event_id} if event_id else None
        try:
            await self._js.publish(
                subject, event.model_dump_json(by_alias=True).encode(), headers=headers
            )
        except nats.errors.Error as err:  # JetStream's errors derive from it too
            raise BusError(f"publish event: {err}") from err

    async def emit_event(self, event: Event, event_id: str | None = None) -> str:
        """Publish an event now, or keep it in the outbox until NATS is back.

        Never raises BusError. Returns the event's stable id (made here if not given).
        """
        event_id = event_id or new_event_id()
        await self.outbox.send(event, event_id)
        return event_id

    async def close(self) -> None:
        """Hand what the outbox holds to a reachable server, then close the connection."""
        box: EventOutbox | None = self.__dict__.get("_event_outbox")
        if box is not None:
            await box.close()
        await super().close()

    async def ensure_event_consumer(
        self, durable: str, *, deliver_all: bool = False, ack_wait: float = 30.0
    ) -> None:
        """Create the durable consumer `durable` on the events stream if it does not
        exist yet (from then on, every event is kept for it until acknowledged).

        A new consumer starts with the events published from now on (or, with
        `deliver_all`, every stored one). Raises BusError when JetStream does not answer.
        """
        try:
            with contextlib.suppress(jserrors.NotFoundError):
                await self._js.consumer_info(subjects.EVENTS_STREAM, durable)
                return
            await self._js.add_consumer(
                subjects.EVENTS_STREAM,
                config=self._consumer_config(durable, deliver_all, ack_wait, None),
            )
        except nats.errors.Error as err:  # JetStream's errors derive from it too
            raise BusError(f"create events consumer {durable}: {err}") from err

    @staticmethod
    def _consumer_config(
        durable: str | None, deliver_all: bool, ack_wait: float, max_ack_pending: int | None
    ) -> jsapi.ConsumerConfig:
        return jsapi.ConsumerConfig(
            name=durable,
            durable_name=durable,
            deliver_policy=jsapi.DeliverPolicy.ALL if deliver_all else jsapi.DeliverPolicy.NEW,
            ack_wait=ack_wait,
            ack_policy=jsapi.AckPolicy.EXPLICIT,
            max_ack_pending=max_ack_pending,
            filter_subject=subjects.EVENTS_SUBJECTS,
        )

    async def events(
        self,
        *,
        durable: str | None = None,
        filter_subject: str = subjects.EVENTS_SUBJECTS,
        deliver_all: bool = True,
        ack_wait: float = 30.0,
        max_ack_pending: int | None = None,
        batch: int = 64,
    ) -> AsyncGenerator[Delivery]:
        """Yield deliveries from the events stream; call `await d.ack()` once handled.

        An event not acknowledged (the consumer crashed mid-way) is delivered
        again after `ack_wait`: at-least-once. With `durable`, delivery resumes
        where that consumer stopped (what a restarted notifier missed is
        delivered), and several processes bound to one durable share the work
        (each event goes to one of them); without, from the start
        (`deliver_all`) or only new events. `max_ack_pending` bounds the events
        handed out and not yet acknowledged. A lost connection or consumer is
        waited out (woken by the reconnect), never raised.
        """
        config = self._consumer_config(None, deliver_all, ack_wait, max_ack_pending)
        delays = exponential(base=0.2, cap=5.0)
        failing = False
        while True:
            raise_if_cancelling()  # nats-py may have swallowed a cancellation
            seen = self._epoch.value
            try:
                # A pull consumer: several notifier replicas bound to one durable
                # share the work, and a consumer that went away leaves nothing bound.
                sub = await self._js.pull_subscribe(
                    filter_subject,
                    durable=durable,
                    stream=subjects.EVENTS_STREAM,
                    config=config,
                )
            except (nats.errors.Error, TimeoutError) as err:
                if not failing:
                    log.warning("events.consumer_unavailable", durable=durable, error=str(err))
                failing = True
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(next(delays)):
                        await self._epoch.wait_past(seen)
                continue
            if failing:
                log.info("events.consumer_restored", durable=durable)
            failing = False
            try:
                async for delivery in self._pull(sub, batch, ack_wait):
                    delays = exponential(base=0.2, cap=5.0)
                    yield delivery
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            # The consumer failed (an outage, a lost consumer): re-subscribe once
            # the connection is back, or after a capped backoff.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next(delays)):
                    await self._epoch.wait_past(seen)

    async def _pull(
        self, sub: JetStreamContext.PullSubscription, batch: int, ack_wait: float
    ) -> AsyncIterator[Delivery]:
        """Fetch and yield deliveries until the consumer fails (then return: re-subscribe)."""
        while True:
            raise_if_cancelling()
            try:
                msgs = await sub.fetch(batch=batch, timeout=min(5.0, ack_wait))
            except nats.errors.TimeoutError:
                continue
            except (nats.errors.Error, TimeoutError) as err:
                log.info("events.fetch_failed", error=str(err) or type(err).__name__)
                return
            for msg in msgs:
                try:
                    event = Event.model_validate_json(msg.data)
                except ValueError:
                    with contextlib.suppress(nats.errors.Error):
                        await msg.term()
                    continue
                event_id = (msg.headers or {}).get(MSG_ID_HEADER) or (
                    f"{subjects.EVENTS_STREAM}-{msg.metadata.sequence.stream}"
                )
                yield Delivery(event, event_id, msg)

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
