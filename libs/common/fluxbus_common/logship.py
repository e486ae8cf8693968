"""Log shipping: every structured log record a service writes also goes to the
bounded logs stream on NATS, so `fluxbus logs` reads every replica's logs
from one place (Flux's `flux logs`).

`SHIPPER` is a structlog processor (installed by `logconfig.configure`) and a
sender task (started by `service.run_service` once the bus is connected):

- the processor never blocks and never fails the log call: it encodes a
  redacted copy of the record and appends it to a bounded in-memory buffer
  (the oldest record is dropped, and counted, when it is full); it may be
  called from any thread;
- the sender publishes the buffer, oldest first, without waiting for
  acknowledgements; while NATS is unreachable records wait in the buffer;
- records logged by the sender itself are not shipped (no recursion), and
  secrets are redacted (`fluxbus_common.redact`) before anything is kept.

No nats import: the bus hands in `publish_log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import threading
from collections import deque
from collections.abc import MutableMapping
from typing import Any, Protocol

import structlog

from fluxbus_common import subjects
from fluxbus_common.ports import BusError
from fluxbus_common.redact import redact_fields
from fluxbus_common.tasks import raise_if_cancelling

BUFFER_LIMIT = 2000
"""Records kept while NATS is slow or away: a few minutes of a busy service's
logs, well under a few MiB."""
MAX_RECORD_BYTES = 16 * 1024
"""A longer record is cut to its first fields (the stream refuses huge messages)."""
OUTAGE_RETRY = 1.0
"""Seconds between two attempts while NATS is unreachable."""
FINAL_FLUSH_TIMEOUT = 1.0
"""How long a stopping service spends handing its last records to NATS."""

_in_sender: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fluxbus_log_sender", default=False
)


class LogSink(Protocol):
    """What the sender needs from the bus."""

    @property
    def connected(self) -> bool: ...

    async def publish_log(self, subject: str, data: bytes) -> None: ...


def encode_record(event_dict: MutableMapping[str, Any]) -> bytes:
    """Return the JSON bytes shipped for one record: a redacted copy, exceptions as text."""
    record = dict(event_dict)
    if record.get("exc_info"):
        record = dict(structlog.processors.format_exc_info(None, "", record))
    record.pop("exc_info", None)
    record = redact_fields(record)
    data = json.dumps(record, default=str, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) <= MAX_RECORD_BYTES:
        return data
    short: dict[str, Any] = {k: record[k] for k in ("timestamp", "level", "event") if k in record}
    short["truncated"] = True
    return json.dumps(short, default=str, separators=(",", ":")).encode()[:MAX_RECORD_BYTES]


def stamp(data: bytes, service: str, instance: str) -> bytes:
    """Put the service and instance names first into an encoded record."""
    head = json.dumps({"service": service, "instance": instance}, separators=(",", ":")).encode()
    if data.startswith(b"{") and data != b"{}":
        return head[:-1] + b"," + data[1:]
    return head


class LogShipper:
    """The processor and the sender of one process (see the module docstring)."""

    def __init__(self, limit: int = BUFFER_LIMIT) -> None:
        self._buffer: deque[tuple[str, bytes]] = deque(maxlen=max(1, limit))
        self.dropped = 0
        """Records dropped because the buffer was full."""
        self.installed = False
        """Set by `logconfig.configure` when the processor is in the chain."""
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    @property
    def pending(self) -> int:
        """Records waiting to be published."""
        return len(self._buffer)

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor: keep a copy of the record; return it unchanged."""
        if _in_sender.get():
            return event_dict
        try:
            level = str(event_dict.get("level") or "info")
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            self._buffer.append((level, encode_record(event_dict)))
            self._notify()
        except Exception:  # shipping must never break (or recurse into) logging
            self.dropped += 1
        return event_dict

    def _notify(self) -> None:
        wake, loop = self._wake, self._loop
        if wake is None or loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    async def run(self, sink: LogSink, service: str, instance: str) -> None:
        """Publish buffered records until cancelled (then hand over what is left,
        briefly, if NATS answers)."""
        _in_sender.set(True)  # this task's context only: its own records are not shipped
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = wake = asyncio.Event()
        try:
            while True:
                raise_if_cancelling()
                wake.clear()
                if await self._drain(sink, service, instance):
                    await wake.wait()
                else:  # NATS away: the records wait in the buffer
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(OUTAGE_RETRY):
                            await wake.wait()
        finally:
            self._wake = None
            self._loop = None
            if sink.connected and self._buffer:
                with contextlib.suppress(TimeoutError, BusError):
                    async with asyncio.timeout(FINAL_FLUSH_TIMEOUT):
                        await self._drain(sink, service, instance)

    async def _drain(self, sink: LogSink, service: str, instance: str) -> bool:
        """Publish the buffer head first; return False when NATS did not take a record."""
        while self._buffer:
            if not sink.connected:
                return False
            item = self._buffer[0]
            level, data = item
            try:
                await sink.publish_log(
                    subjects.log_subject(service, level), stamp(data, service, instance)
                )
            except BusError:
                return False
            # The bound may have dropped this very item while it was in flight.
            if self._buffer and self._buffer[0] is item:
                self._buffer.popleft()
        return True


SHIPPER = LogShipper()
"""The process's shipper: one service per process."""
