"""Watch-driven waiting on cluster objects (health, CRD establishment, deletion).

One shared cluster-wide watch per resource type, started on first use as the
service's own identity, resumed from its last resourceVersion and relisted
on 410 (Expired); its events wake the waiters interested in the object, and
the caller judges each new state. No polling: a waiter sleeps until an event
(or a relist) arrives.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import aiohttp
import structlog

from fluxbus_common.backoff import exponential
from fluxbus_common.keys import FIELD_MANAGER
from fluxbus_common.tasks import cancel_and_wait
from fluxbus_kube.client import CONCURRENCY, ClusterClient
from fluxbus_kube.discovery import DiscoveringClient
from fluxbus_kube.errors import ApiError, ClusterError
from fluxbus_kube.logic.dryrun import resource_version
from fluxbus_kube.resources import Judge, Ref, Resource

log = structlog.get_logger("fluxbus.kube")

WATCH_TIMEOUT = 290
"""Seconds a watch request lives before it is resumed (API servers cap it near 5 min)."""
WATCH_RETRY = 1.0
"""Seconds before a failed watch is started again."""


class _Waiter:
    """One caller waiting on some objects: the latest state of each, and a wake-up."""

    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        self.latest: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.keys = set(keys)
        self.wake = asyncio.Event()
        self.resync = True

    def deliver(self, key: tuple[str, str], obj: dict[str, Any] | None, rv: int) -> None:
        old = self.latest.get(key, ...)
        if old is not ... and old is not None and obj is not None and resource_version(old) > rv:
            return  # an older view than what we have (a GET raced the watch)
        self.latest[key] = obj
        self.wake.set()


class _KindWatch:
    """A shared cluster-wide watch on one resource type, fanned out to waiters."""

    def __init__(self, cluster: ClusterClient, resource: Resource) -> None:
        self.cluster = cluster
        self.resource = resource
        self.waiters: dict[tuple[str, str], set[_Waiter]] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def subscribe(self, waiter: _Waiter) -> None:
        for key in waiter.keys:
            self.waiters.setdefault(key, set()).add(waiter)

    def unsubscribe(self, waiter: _Waiter) -> None:
        for key in waiter.keys:
            subs = self.waiters.get(key)
            if subs is not None:
                subs.discard(waiter)
                if not subs:
                    del self.waiters[key]

    async def run(self) -> None:
        path = self.resource.path()
        delays = exponential(base=WATCH_RETRY, cap=30.0)
        while True:
            try:
                listing = await self.cluster.call("GET", path, query=[("limit", "1")])
                rv = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                self.ready.set()
                delays = exponential(base=WATCH_RETRY, cap=30.0)
                for subs in list(self.waiters.values()):
                    for w in subs:
                        w.resync = True
                        w.wake.set()
                await self._stream(path, rv)
            except asyncio.CancelledError:
                raise
            except _Expired:
                continue
            except (ClusterError, aiohttp.ClientError, TimeoutError, ValueError) as e:
                delay = next(delays)
                log.warning("watch.failed", resource=path, error=str(e), retry_in_s=round(delay, 1))
                self.ready.clear()
                await asyncio.sleep(delay)
                continue
            self.ready.clear()  # the watch ended (timeoutSeconds): list and watch again

    async def _stream(self, path: str, rv: str) -> None:
        while True:
            query = [
                ("watch", "true"),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", str(WATCH_TIMEOUT)),
            ]
            if rv:
                query.append(("resourceVersion", rv))
            resp = await self.cluster.open_stream(path, query, WATCH_TIMEOUT + 30)
            try:
                async for line in _lines(resp):
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    etype = event.get("type")
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            raise _Expired
                        raise ApiError(int(obj.get("code") or 500), obj, f"watch {path}")
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if etype == "BOOKMARK":
                        continue
                    meta = obj.get("metadata") or {}
                    key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                    for w in list(self.waiters.get(key, ())):
                        w.deliver(key, None if etype == "DELETED" else obj, resource_version(obj))
            finally:
                resp.release()


async def _lines(resp: Any) -> AsyncIterator[bytes]:
    """Yield the non-empty lines of a streamed body, however long (a CRD can be megabytes)."""
    buffer = b""
    async for chunk in resp.content.iter_any():
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


class _Expired(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class WatchingClient(DiscoveringClient):
    """A cluster client that can wait on objects through the shared watches."""

    def __init__(
        self, api: Any, *, concurrency: int = CONCURRENCY, field_manager: str = FIELD_MANAGER
    ) -> None:
        super().__init__(api, concurrency=concurrency, field_manager=field_manager)
        self._watches: dict[Resource, _KindWatch] = {}

    async def close(self) -> None:
        """Stop the shared watches, then close the connection pool (root only)."""
        if self._root is not self:
            return
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        await cancel_and_wait(*tasks)
        self._watches.clear()
        await super().close()

    def _watch(self, resource: Resource) -> _KindWatch:
        w = self._watches.get(resource)
        if w is None:
            w = _KindWatch(self._root, resource)
            w.task = asyncio.get_running_loop().create_task(
                w.run(), name=f"watch-{resource.api_version}-{resource.plural}"
            )
            self._watches[resource] = w
        return w

    async def watch_until(
        self,
        refs: Sequence[Ref],
        done: Judge,
        timeout: float,
        initial: Mapping[Ref, Mapping[str, Any] | None] | None = None,
    ) -> tuple[bool, dict[Ref, dict[str, Any] | None]]:
        """Wait until `done(ref, obj)` holds for every ref at once (obj None: absent).

        Driven by the shared watches: every event on one of the objects
        re-evaluates it. `initial` may give states already known (an apply's
        answer); the others are read once the watch runs. Returns (all done,
        latest states) after at most `timeout` seconds; cancellable.
        """
        by_resource: dict[Resource, list[Ref]] = {}
        for ref in refs:
            by_resource.setdefault(ref.resource, []).append(ref)
        waiters: dict[Resource, _Waiter] = {}
        latest: dict[Ref, dict[str, Any] | None] = {}
        for r in refs:
            if initial and r in initial:
                known = initial[r]
                latest[r] = dict(known) if known is not None else None
        wake = asyncio.Event()
        for resource, members in by_resource.items():
            waiter = _Waiter((r.namespace, r.name) for r in members)
            waiter.wake = wake
            for r in members:  # a late event older than a known state must not win
                if r in latest:
                    waiter.latest[(r.namespace, r.name)] = latest[r]
            waiters[resource] = waiter
            self._watch(resource).subscribe(waiter)

        def pending() -> set[Ref]:
            return {r for r in refs if r not in latest or not done(r, latest[r])}

        try:
            async with asyncio.timeout(timeout):
                for resource in waiters:
                    await self._watches[resource].ready.wait()
                while True:
                    for resource, waiter in waiters.items():
                        if waiter.resync:
                            waiter.resync = False
                            unfinished = pending()
                            todo = [r for r in by_resource[resource] if r in unfinished]
                            got = await asyncio.gather(*(self.get(r) for r in todo))
                            for r, obj in zip(todo, got, strict=True):
                                waiter.deliver((r.namespace, r.name), obj, resource_version(obj))
                        for key, obj in waiter.latest.items():
                            latest[Ref(resource, key[0], key[1])] = obj
                    if not pending():
                        return True, latest
                    wake.clear()
                    if any(w.resync for w in waiters.values()):
                        continue
                    await wake.wait()
        except TimeoutError:
            return False, latest
        finally:
            for resource, waiter in waiters.items():
                self._watches[resource].unsubscribe(waiter)
