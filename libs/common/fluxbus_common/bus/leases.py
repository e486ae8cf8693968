"""Leases and group membership of the bus, kept in the leases KV bucket.

Every write is compare-and-set, so two contenders never both win a lease and
concurrent heartbeats never overwrite each other. Expiry is wall-clock time
stored in the value (replicas on different hosts compare it).
"""

from __future__ import annotations

import contextlib
import time

from fluxbus_common import subjects
from fluxbus_common.bus.kv import KV
from fluxbus_common.ports import RevisionConflict


class Leases(KV):
    """Shard leases (`acquire_lease`, `release_lease`, `lease_holders`) and `heartbeat`."""

    async def acquire_lease(self, key: str, holder: str, ttl: float) -> bool:
        """Take or renew a lease; return whether `holder` now holds it.

        A lease is held until its expiry (in the value) passes without renewal;
        every write is compare-and-set, so two contenders never both win.
        """
        loop_now = time.time()
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
        now = time.time()
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
            now = time.time()
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
