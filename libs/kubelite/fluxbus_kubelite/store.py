"""The object store: one global resourceVersion, watch fan-out, optional SQLite.

Every mutation runs synchronously on the event loop, so reading an object,
deciding and writing it back is atomic without locks. Stored objects are never
mutated in place: a write stores a new dict. SQLite writes are handed to a
writer thread so the loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import json
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]  # (group, plural)

#: events kept for watches that resume from a resourceVersion; older ones get 410
DEFAULT_HISTORY = 20000


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    key: Key
    namespace: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Watcher:
    """A subscription to the events of one resource (optionally one namespace)."""

    def __init__(self, key: Key, namespace: str | None) -> None:
        self.key = key
        self.namespace = namespace
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def wants(self, ev: Event) -> bool:
        return ev.key == self.key and (self.namespace is None or ev.namespace == self.namespace)


class Persistence:
    """Mirror of the store in a SQLite file, written by one background thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._q: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS objects (k TEXT PRIMARY KEY, grp TEXT, plural TEXT,"
                " data TEXT NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        conn.close()

    def load(self) -> tuple[int, list[tuple[Key, dict[str, Any]]]]:
        """The stored resourceVersion and objects."""
        conn = sqlite3.connect(self.path)
        try:
            row = conn.execute("SELECT v FROM meta WHERE k='rv'").fetchone()
            rv = int(row[0]) if row else 1
            objs = [
                ((g, p), json.loads(d))
                for g, p, d in conn.execute("SELECT grp, plural, data FROM objects")
            ]
        finally:
            conn.close()
        return rv, objs

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kubelite-sqlite", daemon=True)
        self._thread.start()

    def put(self, key: Key, ns: str, name: str, obj: dict[str, Any], rv: int) -> None:
        self._q.put(("put", key, ns, name, json.dumps(obj, separators=(",", ":")), rv))

    def delete(self, key: Key, ns: str, name: str, rv: int) -> None:
        self._q.put(("del", key, ns, name, None, rv))

    def close(self) -> None:
        """Flush pending writes and stop the writer thread."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self.path)
        try:
            stop = False
            while not stop:
                batch = [self._q.get()]
                while True:
                    try:
                        batch.append(self._q.get_nowait())
                    except queue.Empty:
                        break
                with conn:
                    rv = None
                    for item in batch:
                        if item is None:
                            stop = True
                            continue
                        op, key, ns, name, data, rv = item
                        k = f"{key[0]}/{key[1]}/{ns}/{name}"
                        if op == "put":
                            conn.execute(
                                "INSERT OR REPLACE INTO objects VALUES (?,?,?,?)",
                                (k, key[0], key[1], data),
                            )
                        else:
                            conn.execute("DELETE FROM objects WHERE k=?", (k,))
                    if rv is not None:
                        conn.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(rv),))
        finally:
            conn.close()


class Store:
    """All objects, keyed by resource then (namespace, name)."""

    def __init__(self, history: int = DEFAULT_HISTORY, persistence: Persistence | None = None):
        self.rv = 1
        self.objects: dict[Key, dict[tuple[str, str], dict[str, Any]]] = {}
        self.history: collections.deque[Event] = collections.deque()
        self.history_size = history
        self.compacted_rv = 1
        self.watchers: set[Watcher] = set()
        self.listeners: list[Callable[[Event], None]] = []
        self.persistence = persistence

    def load(self) -> list[tuple[Key, dict[str, Any]]]:
        """Load persisted objects; returns them for the caller to register CRDs."""
        if self.persistence is None:
            return []
        rv, objs = self.persistence.load()
        self.rv = max(rv, 1)
        self.compacted_rv = self.rv
        for key, obj in objs:
            md = obj["metadata"]
            self.objects.setdefault(key, {})[(md.get("namespace", ""), md["name"])] = obj
        return objs

    # ------------------------------------------------------------------ reads

    def get(self, key: Key, ns: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(key, {}).get((ns, name))

    def list(self, key: Key, ns: str | None = None) -> list[dict[str, Any]]:
        """Objects of a resource sorted by namespace and name."""
        bucket = self.objects.get(key, {})
        if ns is None:
            items = sorted(bucket.items())
        else:
            items = sorted((k, v) for k, v in bucket.items() if k[0] == ns)
        return [v for _, v in items]

    def count(self) -> int:
        return sum(len(b) for b in self.objects.values())

    # ------------------------------------------------------------------ writes

    def _record(self, ev: Event) -> None:
        self.history.append(ev)
        while len(self.history) > self.history_size:
            old = self.history.popleft()
            self.compacted_rv = old.rv
        for w in list(self.watchers):
            if w.wants(ev):
                w.queue.put_nowait(ev)
        for cb in list(self.listeners):
            cb(ev)

    def compact(self) -> None:
        """Forget all history: watches from any earlier resourceVersion get 410."""
        self.history.clear()
        self.compacted_rv = self.rv

    def put(self, key: Key, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Persist obj with the next resourceVersion; returns the stored object."""
        self.rv += 1
        md = obj["metadata"]
        md["resourceVersion"] = str(self.rv)
        ns = md.get("namespace", "")
        self.objects.setdefault(key, {})[(ns, md["name"])] = obj
        if self.persistence is not None:
            self.persistence.put(key, ns, md["name"], obj, self.rv)
        self._record(Event(self.rv, key, ns, "MODIFIED" if old else "ADDED", obj, old))
        return obj

    def remove(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """Delete obj; the DELETED event carries a new resourceVersion."""
        self.rv += 1
        md = obj["metadata"]
        ns = md.get("namespace", "")
        self.objects.get(key, {}).pop((ns, md["name"]), None)
        gone = {**obj, "metadata": {**md, "resourceVersion": str(self.rv)}}
        if self.persistence is not None:
            self.persistence.delete(key, ns, md["name"], self.rv)
        self._record(Event(self.rv, key, ns, "DELETED", gone, obj))
        return gone

    def since(self, rv: int, key: Key, ns: str | None) -> builtins.list[Event]:
        """Recorded events after rv for a resource (caller checks compacted_rv)."""
        return [
            e
            for e in self.history
            if e.rv > rv and e.key == key and (ns is None or e.namespace == ns)
        ]

    def subscribe(self, key: Key, ns: str | None) -> Watcher:
        w = Watcher(key, ns)
        self.watchers.add(w)
        return w

    def unsubscribe(self, w: Watcher) -> None:
        self.watchers.discard(w)

    def close_watchers(self) -> None:
        for w in list(self.watchers):
            w.queue.put_nowait(None)
