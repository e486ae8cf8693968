"""A keyed, de-duplicating, delaying work queue (client-go's workqueue, asyncio).

Guarantees: a key is handed to at most one worker at a time; adding a key that
is queued keeps one entry (the earliest due time wins); adding a key that is
being processed marks it dirty so it runs again right after `done()`.

Pure asyncio: no I/O.
"""

from __future__ import annotations

import asyncio
import heapq
import time


class WorkQueue:
    """Keys become ready at their due time; `get()` waits for the next ready key."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._processing: set[str] = set()
        self._dirty: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._due) + len(self._dirty)

    @property
    def depth(self) -> int:
        """Keys waiting (queued or dirty), not counting those being processed."""
        return len(self)

    def add(self, key: str, delay: float = 0.0) -> None:
        """Schedule `key` after `delay` seconds (earlier schedules win)."""
        if self._closed:
            return
        due = time.monotonic() + max(0.0, delay)
        if key in self._processing:
            if key not in self._dirty or due < self._dirty[key]:
                self._dirty[key] = due
            return
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))
        self._wake.set()

    def forget(self, key: str) -> None:
        """Drop any pending schedule of `key` (it was deleted)."""
        self._due.pop(key, None)
        self._dirty.pop(key, None)

    def scheduled(self, key: str) -> float | None:
        """Seconds until `key` is due, or None when it is not scheduled."""
        due = self._due.get(key, self._dirty.get(key))
        return None if due is None else max(0.0, due - time.monotonic())

    async def get(self) -> str:
        """Wait for the next due key, mark it processing and return it.

        Raises asyncio.CancelledError when cancelled; returns "" once closed.
        """
        while True:
            if self._closed:
                return ""
            now = time.monotonic()
            while self._heap:
                due, key = self._heap[0]
                if self._due.get(key) != due:  # superseded entry
                    heapq.heappop(self._heap)
                    continue
                if due > now:
                    break
                heapq.heappop(self._heap)
                del self._due[key]
                self._processing.add(key)
                return key
            timeout = self._heap[0][0] - now if self._heap else None
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def done(self, key: str) -> None:
        """Mark `key` finished; re-queue it if it was added while processing."""
        self._processing.discard(key)
        due = self._dirty.pop(key, None)
        if due is not None:
            self.add(key, max(0.0, due - time.monotonic()))

    def close(self) -> None:
        """Stop handing out keys; waiting `get()` calls return ""."""
        self._closed = True
        self._wake.set()
