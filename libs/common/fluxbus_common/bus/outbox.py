"""The event outbox: events that could not be published wait here, in order,
and are published with their original timestamps once NATS answers again.

An event is published at once when the connection is up and nothing older is
waiting; otherwise it joins a bounded in-memory queue (oldest dropped, counted
and logged once per outage when the bound is hit). One flusher task publishes
the queue head first; it wakes on every reconnect (the connection's `Epoch`),
with a capped backoff as a safety net for JetStream errors that come without
one. Every event carries a stable id, sent as JetStream's `Nats-Msg-Id`: a
retry of an event the server did store (the reply was lost in the outage) is
dropped by the stream's duplicate window, so retrying is always safe.

No nats import: the adapter hands in its publish function.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from fluxbus_common.backoff import exponential
from fluxbus_common.events import Event
from fluxbus_common.kvwatch import Epoch
from fluxbus_common.ports import BusError
from fluxbus_common.settings import DEFAULT_OUTBOX_LIMIT
from fluxbus_common.tasks import cancel_and_wait, raise_if_cancelling

log = structlog.get_logger("fluxbus.bus")

RETRY_CAP = 5.0
"""Longest wait between two flush attempts when no reconnect wakes the flusher."""
CLOSE_FLUSH_TIMEOUT = 2.0
"""How long closing the bus waits for a reachable server to take the queue."""

Publish = Callable[[Event, str], Awaitable[None]]
"""Publish one event with its id; raises BusError when NATS does not take it."""


class EventOutbox:
    """Ordered, bounded, at-least-once hand-over of events to the events stream."""

    def __init__(
        self,
        publish: Publish,
        connected: Callable[[], bool],
        epoch: Epoch,
        *,
        limit: int = DEFAULT_OUTBOX_LIMIT,
    ) -> None:
        self._publish = publish
        self._connected = connected
        self._epoch = epoch
        self.limit = max(1, limit)
        self._queue: deque[tuple[Event, str]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self.dropped = 0
        """Events dropped because the bound was hit (a Prometheus counter reads it)."""
        self.published_late = 0
        """Events published from the queue after an outage."""
        self._outage = False
        """An outage is under way: its warning was logged."""
        self._full_logged = False
        """The bound was hit in this outage and said so."""

    @property
    def pending(self) -> int:
        """Events waiting to be published."""
        return len(self._queue)

    async def send(self, event: Event, event_id: str) -> bool:
        """Publish `event` now, or queue it behind older ones; never raises BusError.

        Returns True when the event was published by this call, False when it
        waits in the outbox.
        """
        if not self._queue and self._connected():
            try:
                await self._publish(event, event_id)
                return True
            except BusError as e:
                self._begin_outage(str(e))
        elif not self._queue:
            self._begin_outage("not connected")
        self._append(event, event_id)
        self._start_flusher()
        return False

    def _begin_outage(self, error: str) -> None:
        if not self._outage:  # one warning per outage, not one per event
            log.warning("event.publish_failed", error=error, action="kept in the outbox")
        self._outage = True

    def _append(self, event: Event, event_id: str) -> None:
        if len(self._queue) >= self.limit:
            self._queue.popleft()
            self.dropped += 1
            if not self._full_logged:
                log.warning(
                    "event.outbox_full", limit=self.limit, action="dropping the oldest events"
                )
                self._full_logged = True
        self._queue.append((event, event_id))

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="fluxbus-event-outbox")

    async def _flush(self) -> None:
        """Publish the queue head first until the queue is empty."""
        delays = exponential(base=0.2, cap=RETRY_CAP)
        sent = 0
        while self._queue:
            raise_if_cancelling()  # nats-py may have swallowed a cancellation
            seen = self._epoch.value
            if self._connected():
                item = self._queue[0]
                try:
                    await self._publish(*item)
                except BusError:
                    pass
                else:
                    # The bound may have dropped this very item while it was in flight.
                    if self._queue and self._queue[0] is item:
                        self._queue.popleft()
                    sent += 1
                    self.published_late += 1
                    delays = exponential(base=0.2, cap=RETRY_CAP)
                    continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next(delays)):
                    await self._epoch.wait_past(seen)
        log.info("event.publish_recovered", published=sent, dropped=self.dropped)
        self._outage = False
        self._full_logged = False

    async def close(self) -> None:
        """Give a reachable server a moment to take the queue, then stop the flusher;
        what is still queued is lost (and said so)."""
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            if self._connected():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                        await asyncio.shield(flusher)
            await cancel_and_wait(flusher)
        if self._queue:
            log.warning("event.outbox_abandoned", events=len(self._queue))
