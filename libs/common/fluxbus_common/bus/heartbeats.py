"""Heartbeats of the bus: every service instance's `Heartbeat` in the
heartbeats KV bucket (a bucket with a TTL), written, removed and listed.

Whether a heartbeat is still live is `fluxbus_common.liveness`'s decision.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import ValidationError

from fluxbus_common import subjects
from fluxbus_common.bus.kv import KV
from fluxbus_common.liveness import Heartbeat


class Heartbeats(KV):
    """`put_heartbeat`, `remove_heartbeat` and `heartbeats`."""

    async def put_heartbeat(self, beat: Heartbeat) -> None:
        """Write (or renew) an instance's heartbeat; raise BusError when NATS does not take it."""
        await self.kv_put(
            subjects.HEARTBEATS_BUCKET,
            subjects.heartbeat_key(beat.service, beat.instance),
            beat.model_dump(by_alias=True, mode="json"),
        )

    async def remove_heartbeat(self, service: str, instance: str) -> None:
        """Remove an instance's heartbeat (a clean stop: it is gone at once)."""
        await self.kv_delete(subjects.HEARTBEATS_BUCKET, subjects.heartbeat_key(service, instance))

    async def heartbeats(self) -> list[Heartbeat]:
        """Return every stored heartbeat, live or not (malformed ones are skipped)."""
        out: list[Heartbeat] = []
        for entry in await self.kv_list(subjects.HEARTBEATS_BUCKET):
            with contextlib.suppress(ValidationError):
                out.append(Heartbeat.model_validate(entry.value))
        return out

    async def watch_heartbeats(self) -> AsyncIterator[Heartbeat]:
        """Yield every stored heartbeat, then each one written from now on (removals
        and malformed values are skipped), for as long as the caller iterates."""
        async for change in self.kv_watch(subjects.HEARTBEATS_BUCKET):
            if change.value is None:
                continue
            with contextlib.suppress(ValidationError):
                yield Heartbeat.model_validate(change.value)
