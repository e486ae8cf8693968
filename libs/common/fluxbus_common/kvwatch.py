"""A KV watch that survives what NATS clusters do: reconnects to another node,
a consumer lost with the node that held it, a consumer nats-py failed to re-create.

nats-py's watch is an ordered push consumer. When the node holding that
consumer dies, nats-py notices missing heartbeats and re-creates it in a
background task; if that request fails (no leader yet, a timeout) it reports
the error and the watch stays silent for good — a service then acts on a
stale view. Here a watch is restarted whenever the connection epoch moves (a
reconnect, a JetStream error reported by the client) or its consumer stops
answering, and every restart *resyncs*: the current value of every key is read
again and compared by revision with what was already yielded, so the caller
sees exactly the changes (and deletions) it missed, and nothing twice.

Adapter: imports nats.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors as jserrors
import structlog
from nats.js.kv import KeyValue

from fluxbus_common.backoff import exponential
from fluxbus_common.ports import KVChange
from fluxbus_common.tasks import raise_if_cancelling

log = structlog.get_logger("fluxbus.bus")

HEALTH_CHECK_INTERVAL = 3.0
"""Seconds of silence after which a watch checks that its consumer still exists
(nats-py itself needs two missed 5 s heartbeats to notice, and may then fail
silently); one small request per idle watch every 3 s."""
HEALTH_CHECK_TIMEOUT = 2.0
"""Seconds a consumer has to answer that check before the watch is restarted."""


class Epoch:
    """A counter bumped on every reconnect or client-reported JetStream error;
    watches restart (and resync) when it moves."""

    def __init__(self) -> None:
        self.value = 0
        self._changed = asyncio.Event()

    def bump(self) -> None:
        self.value += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_past(self, value: int) -> None:
        """Return once the epoch is past `value`."""
        while self.value <= value:
            await self._changed.wait()


Decode = Callable[[bytes | None], dict[str, Any] | None]


async def _values_in_flight(watcher: Any) -> bool:
    """Whether a KV watch that just signalled "no initial values" has some on the way.

    nats-py signals it when the consumer has nothing *pending*, which also holds
    once the server has sent every value but the client has not read them yet; an
    empty listing would then be returned for a full bucket. The consumer's
    delivered count tells the two apart.
    """
    try:
        info = await watcher._sub.consumer_info()
    except Exception:  # no better answer than nats-py's own
        return False
    delivered = getattr(info, "delivered", None)
    return bool(delivered is not None and (delivered.consumer_seq or 0) > 0)


async def _consumer_alive(watcher: Any) -> bool:
    try:
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT):
            await watcher._sub.consumer_info()
    except (TimeoutError, nats.errors.Error, jserrors.Error):
        return False
    return True


class _Restart(Exception):
    """The watch must be re-created and resynced."""


async def _next_entry(watcher: Any, epoch: Epoch, seen_epoch: int, deadline: float) -> Any:
    """The next entry of `watcher`; raise _Restart when the epoch moves first,
    TimeoutError at `deadline` (loop time)."""
    raise_if_cancelling()  # nats-py may have swallowed it
    queue: asyncio.Queue[Any] = watcher._updates
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    moved = asyncio.ensure_future(epoch.wait_past(seen_epoch))
    try:
        loop = asyncio.get_running_loop()
        done, _ = await asyncio.wait(
            {getter, moved},
            timeout=max(0.0, deadline - loop.time()),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        # Cancelled, never awaited: awaiting them here would also receive (and a
        # suppress would swallow) a cancellation of this very task arriving now.
        # A cancelled Queue.get leaves its item in the queue.
        for f in (getter, moved):
            if not f.done():
                f.cancel()
    if getter in done:
        return getter.result()
    if getter.done() and not getter.cancelled():  # arrived while cancelling
        return getter.result()
    if moved in done:
        raise _Restart
    raise TimeoutError


async def resilient_watch(
    kv: Callable[[], KeyValue],
    name: str,
    pattern: str,
    epoch: Epoch,
    decode: Decode,
    *,
    mark_initial: bool,
    on_first_error: Callable[[Exception], Awaitable[None]] | None = None,
) -> AsyncIterator[KVChange]:
    """Yield the current value of every key matching `pattern`, then every change,
    for as long as the caller iterates — across reconnects and lost consumers.

    With `mark_initial`, a KVChange with an empty key marks the end of the
    first listing (resyncs after a restart are not marked: they only yield
    what changed). A watch that cannot be created (NATS unreachable) is retried
    with backoff, not raised.
    """
    known: dict[str, int] = {}
    """Revision of every key yielded as present."""
    first = True
    delays = exponential(base=0.2, cap=5.0)
    failing = False
    while True:
        raise_if_cancelling()  # nats-py may have swallowed it
        seen_epoch = epoch.value
        try:
            watcher = await kv().watch(pattern)
        except (nats.errors.Error, jserrors.Error, TimeoutError) as err:
            if not failing:
                log.warning("watch.unavailable", watch=name, error=str(err) or type(err).__name__)
                failing = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next(delays)):
                    await epoch.wait_past(seen_epoch)
            continue
        if failing:
            log.info("watch.restored", watch=name)
        failing = False
        delays = exponential(base=0.2, cap=5.0)
        fresh: dict[str, tuple[dict[str, Any] | None, int]] = {}
        initial_done = False
        seen = 0
        loop = asyncio.get_running_loop()
        check_at = loop.time() + HEALTH_CHECK_INTERVAL
        try:
            while True:
                try:
                    e = await _next_entry(watcher, epoch, seen_epoch, check_at)
                except TimeoutError:
                    if not await _consumer_alive(watcher):
                        log.info("watch.consumer_lost", watch=name)
                        raise _Restart from None
                    check_at = loop.time() + HEALTH_CHECK_INTERVAL
                    continue
                if e is KeyValue.KeyWatcher.STOP_ITER:
                    raise _Restart
                end_of_initial = False
                if e is None:
                    if initial_done:
                        continue
                    if seen == 0 and await _values_in_flight(watcher):
                        continue  # the entry with delta 0 will mark the end instead
                    end_of_initial = True
                else:
                    seen += 1
                    deleted = e.operation in ("DEL", "PURGE")
                    value = None if deleted else decode(e.value)
                    revision = e.revision or 0
                    if initial_done or first:
                        # a live change, or the very first listing: yield as it comes
                        if value is None:
                            known.pop(e.key, None)
                        else:
                            known[e.key] = revision
                        yield KVChange(e.key, value, revision)
                    else:
                        fresh[e.key] = (value, revision)
                    if not e.delta and not initial_done:
                        end_of_initial = True
                if end_of_initial and not initial_done:
                    initial_done = True
                    if not first:
                        for change in _resync(known, fresh):
                            yield change
                    elif mark_initial:
                        yield KVChange("", None, 0)
                    first = False
                    fresh = {}
        except _Restart:
            log.info("watch.resync", watch=name)
        finally:
            with contextlib.suppress(Exception):
                # nats-py leaves KeyWatcher.stop unannotated.
                await watcher.stop()  # type: ignore[no-untyped-call]


def _resync(
    known: dict[str, int], fresh: dict[str, tuple[dict[str, Any] | None, int]]
) -> list[KVChange]:
    """The changes that turn what was yielded (`known`) into the fresh listing,
    updating `known`: changed revisions, new keys, and deletions."""
    out: list[KVChange] = []
    present = {k: v for k, v in fresh.items() if v[0] is not None}
    for key in sorted(set(known) - set(present)):
        del known[key]
        out.append(KVChange(key, None, 0))
    for key, (value, revision) in present.items():
        if known.get(key) != revision:
            known[key] = revision
            out.append(KVChange(key, value, revision))
    return out
