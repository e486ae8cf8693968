"""Watch streaming: initial events, resuming from a resourceVersion, bookmarks.

A watch subscribes to the store before its first await, so no event can slip
between the initial list (or the replayed history) and the live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import errors
from .httputil import dumps, qbool, request_filters, wants_table
from .resources import ResourceType
from .store import Event, Store
from .tables import table_of

#: seconds between BOOKMARK events on watches that allow them (real servers: about a minute)
DEFAULT_BOOKMARK_INTERVAL = 5.0


class Watches:
    """Serves watch requests from a `Store`'s event fan-out."""

    def __init__(
        self,
        store: Store,
        stopping: asyncio.Event,
        bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
    ) -> None:
        self.store = store
        #: set on server stop: every open watch ends
        self.stopping = stopping
        self.bookmark_interval = bookmark_interval

    async def stream(
        self, request: web.Request, rt: ResourceType, ns: str | None, name: str | None = None
    ) -> web.StreamResponse:
        """Stream the events of rt in ns (one object when name is set) until the client
        goes, timeoutSeconds pass or the server stops."""
        label_ok, field_ok = request_filters(request)
        q = request.query
        if name is not None:
            field_ok_base = field_ok
            field_ok = lambda o: o["metadata"]["name"] == name and field_ok_base(o)  # noqa: E731

        def matches(obj: dict[str, Any] | None) -> bool:
            return (
                obj is not None and label_ok(obj["metadata"].get("labels") or {}) and field_ok(obj)
            )

        timeout = q.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        bookmarks = qbool(q.get("allowWatchBookmarks"))
        initial_events = qbool(q.get("sendInitialEvents"))
        rv_param = q.get("resourceVersion", "")
        table = wants_table(request)
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        resp.headers["Transfer-Encoding"] = "chunked"
        # everything up to subscribe runs without awaiting: no event can slip between
        initial: list[dict[str, Any]] = []
        replay: list[Event] = []
        expired: str | None = None
        start_rv = self.store.rv
        if initial_events or rv_param in ("", "0"):
            initial = [o for o in self.store.list(rt.key, ns) if matches(o)]
        else:
            try:
                since = int(rv_param)
            except ValueError as e:
                raise errors.bad_request(f'invalid resource version "{rv_param}"') from e
            if since < self.store.compacted_rv:
                expired = f"too old resource version: {since} ({self.store.compacted_rv})"
            else:
                replay = self.store.since(since, rt.key, ns)
        watcher = self.store.subscribe(rt.key, ns) if expired is None else None
        try:
            await resp.prepare(request)
            if expired is not None:
                err = errors.gone(expired).status()
                await resp.write((dumps({"type": "ERROR", "object": err}) + "\n").encode())
                return resp
            buf = []
            for obj in initial:
                if table is not None:
                    rv = obj["metadata"].get("resourceVersion", "")
                    shown = table_of(rt, [obj], rv, table)
                else:
                    shown = rt.present(obj)
                buf.append(dumps({"type": "ADDED", "object": shown}))
            if initial_events:
                buf.append(dumps({"type": "BOOKMARK", "object": _bookmark(rt, start_rv, True)}))
            for past in replay:
                line = _event_line(rt, past, matches, table)
                if line:
                    buf.append(line)
            if buf:
                await resp.write(("\n".join(buf) + "\n").encode())
            assert watcher is not None
            last_bookmark = time.monotonic()
            last_rv = max(start_rv, replay[-1].rv if replay else 0)
            while not self.stopping.is_set():
                # wake at least once a second: aiohttp does not cancel a handler whose
                # client went away, so the watch checks its transport, and sends bookmarks
                wait = 1.0
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
                except TimeoutError:
                    ev = None
                    if request.transport is None or request.transport.is_closing():
                        break
                    if bookmarks and time.monotonic() - last_bookmark >= self.bookmark_interval:
                        last_bookmark = time.monotonic()
                        await resp.write(
                            (
                                dumps(
                                    {
                                        "type": "BOOKMARK",
                                        "object": _bookmark(rt, last_rv, False),
                                    }
                                )
                                + "\n"
                            ).encode()
                        )
                    continue
                if ev is None:
                    break
                last_rv = ev.rv
                lines = [_event_line(rt, ev, matches, table)]
                while not watcher.queue.empty():
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        self.stopping.set()
                        break
                    last_rv = nxt.rv
                    lines.append(_event_line(rt, nxt, matches, table))
                text = "\n".join(x for x in lines if x)
                if text:
                    await resp.write((text + "\n").encode())
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            if watcher is not None:
                self.store.unsubscribe(watcher)
        with contextlib.suppress(ConnectionResetError, ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp


def _bookmark(rt: ResourceType, rv: int, initial_end: bool) -> dict[str, Any]:
    md: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md}


def _event_line(
    rt: ResourceType,
    ev: Event,
    matches: Callable[[dict[str, Any] | None], bool],
    table: str | None = None,
) -> str:
    """ev as one watch line as a client matching with matches sees it ("" if unseen)."""
    new_ok = matches(ev.obj)
    old_ok = matches(ev.old) if ev.old is not None else False
    if ev.type == "DELETED":
        if not old_ok and not new_ok:
            return ""
        t = "DELETED"
    elif ev.type == "ADDED":
        if not new_ok:
            return ""
        t = "ADDED"
    else:
        if new_ok and old_ok:
            t = "MODIFIED"
        elif new_ok:
            t = "ADDED"
        elif old_ok:
            t = "DELETED"
        else:
            return ""
    if table is not None:
        rv = ev.obj["metadata"].get("resourceVersion", "")
        return dumps({"type": t, "object": table_of(rt, [ev.obj], rv, table)})
    return dumps({"type": t, "object": rt.present(ev.obj)})
