"""Log records of the bus: every service's structured log records on the
bounded logs stream (`subjects.LOGS_STREAM`), published without waiting for
an acknowledgement and read back (optionally following) by `fluxbus logs`.

The stream's bounds (records, bytes, age) are set where the connection creates
it; the oldest records go first.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import nats.errors
import nats.js.api as jsapi
import nats.js.errors as jserrors

from fluxbus_common import subjects
from fluxbus_common.bus.connection import Connection
from fluxbus_common.ports import BusError
from fluxbus_common.tasks import raise_if_cancelling

IDLE_POLL = 1.0
"""Seconds a following reader waits for a record before it looks again (it
only re-checks for cancellation; records arrive as they are published)."""


class Logs(Connection):
    """`publish_log` (fire and forget) and `read_logs`."""

    async def publish_log(self, subject: str, data: bytes) -> None:
        """Hand one record to the client's send buffer (no acknowledgement is awaited).

        Raises BusError when the client is not connected or its buffer is full.
        """
        if not self._nc.is_connected:
            raise BusError("not connected")
        try:
            await self._nc.publish(subject, data)
        except (nats.errors.Error, OSError) as err:
            raise BusError(f"publish log record: {err}") from err

    async def log_records(self) -> int:
        """Return how many records the logs stream holds; raise BusError when it is missing."""
        try:
            info = await self._js.stream_info(subjects.LOGS_STREAM)
        except nats.errors.Error as err:  # includes NotFoundError
            raise BusError(f"read {subjects.LOGS_STREAM}: {err}") from err
        return int(info.state.messages or 0)

    async def read_logs(
        self,
        filter_subject: str = subjects.LOGS_SUBJECTS,
        *,
        follow: bool = False,
        start_seq: int = 0,
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Yield (stream sequence, record) of the stored records on a subject filter,
        oldest first (from `start_seq` when given); with `follow`, then every new
        one until the caller stops iterating.

        Raises BusError when the stream cannot be read.
        """
        try:
            info = await self._js.stream_info(subjects.LOGS_STREAM)
        except jserrors.NotFoundError:
            return
        except nats.errors.Error as err:
            raise BusError(f"read {subjects.LOGS_STREAM}: {err}") from err
        last = int(info.state.last_seq or 0)
        if not follow and (not info.state.messages or start_seq > last):
            return
        config = (
            jsapi.ConsumerConfig(
                deliver_policy=jsapi.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq
            )
            if start_seq
            else jsapi.ConsumerConfig(deliver_policy=jsapi.DeliverPolicy.ALL)
        )
        try:
            sub = await self._js.subscribe(
                filter_subject, stream=subjects.LOGS_STREAM, ordered_consumer=True, config=config
            )
        except nats.errors.Error as err:
            raise BusError(f"read {subjects.LOGS_STREAM}: {err}") from err
        try:
            while True:
                raise_if_cancelling()
                try:
                    msg = await sub.next_msg(timeout=IDLE_POLL if follow else 0.5)
                except nats.errors.TimeoutError:
                    if follow:
                        continue
                    return
                with contextlib.suppress(ValueError):
                    record = json.loads(msg.data)
                    if isinstance(record, dict):
                        yield msg.metadata.sequence.stream, record
                if not follow and msg.metadata.num_pending == 0:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
