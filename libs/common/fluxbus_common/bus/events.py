"""Events of the bus: Flux-schema events published durably on the events
stream, consumed at least once (pull consumer, explicit ack), or read back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import nats.errors
import nats.js.api as jsapi
import nats.js.errors as jserrors

from fluxbus_common import subjects
from fluxbus_common.bus.connection import Connection
from fluxbus_common.events import Event
from fluxbus_common.ports import BusError


@dataclass(frozen=True)
class Delivery:
    """One event from the stream and how to acknowledge it."""

    event: Event
    ack: Callable[[], Awaitable[None]]


class Events(Connection):
    """Publish, consume and list events (subjects from `subjects.event_subject`)."""

    async def publish_event(self, event: Event) -> None:
        """Publish an event durably on the events stream."""
        o = event.involved_object
        subject = subjects.event_subject(o.kind, o.namespace, o.name)
        try:
            await self._js.publish(subject, event.model_dump_json(by_alias=True).encode())
        except nats.errors.Error as err:  # JetStream's errors derive from it too
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
