"""Whether the controller of a kind is alive, for the commands that wait on it.

`fluxbus reconcile` asks first (`require_controller`) and fails at once when
no live instance of the owning service reports the kind in its heartbeat; while
it waits, `wait_on_controller` also fails as soon as the last instance is gone
and shows the time elapsed (a spinner on a terminal, a line every
`NOTE_EVERY` seconds otherwise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common import liveness
from fluxbus_common.bus import Bus
from fluxbus_common.ports import BusError
from fluxbus_common.tasks import cancel_and_wait, raise_if_cancelling

T = TypeVar("T")

NOTE_EVERY = 15.0
"""Seconds between two "still waiting" lines when stderr is not a terminal."""
RECHECK_MARGIN = 0.5
"""Seconds after an instance's heartbeat would expire before looking again."""
RECHECK_MAX = 30.0
"""Longest pause between two looks at the heartbeats (new instances also count)."""


def elapsed(seconds: float) -> str:
    """`7s`, `1m05s`, `1h02m`: how long a wait has lasted."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _absent(kind: str) -> str:
    service = liveness.controller_of(kind) or "its"
    return (
        f"no live instance of the {service} service reconciles {kind} objects "
        f"(is fluxbus-{service} running? see `fluxbus check`)"
    )


async def serving(bus: Bus, kind: str) -> list[liveness.Heartbeat]:
    """Return the live instances reconciling `kind` now."""
    return liveness.serving(await bus.heartbeats(), kind, datetime.now(UTC))


async def require_controller(bus: Bus, kind: str) -> None:
    """Raise CliError at once when no live instance reconciles `kind`."""
    if not await serving(bus, kind):
        raise CliError(_absent(kind))


async def _until_gone(bus: Bus, kind: str) -> None:
    """Return (raising CliError) once no live instance reconciles `kind`; look again
    when the earliest heartbeat would expire (nothing notifies a missed one)."""
    while True:
        try:
            beats = await serving(bus, kind)
        except BusError:
            beats = None  # NATS trouble is the waiter's to report, not a dead controller
        raise_if_cancelling()  # nats-py may have swallowed our cancellation
        if beats == []:
            raise CliError(f"{_absent(kind)}: its last instance went away")
        pause = RECHECK_MAX
        now = datetime.now(UTC)
        for beat in beats or []:
            seen = liveness.parse_rfc3339(beat.last_seen) or now
            expiry = seen + timedelta(seconds=beat.ttl + RECHECK_MARGIN)
            pause = min(pause, max(RECHECK_MARGIN, (expiry - now).total_seconds()))
        await asyncio.sleep(pause)


async def _tick(update: Callable[[str], None], message: str, start: float, live: bool) -> None:
    step = 1.0 if live else NOTE_EVERY
    while True:
        await asyncio.sleep(step)
        update(f"{message} ({elapsed(time.monotonic() - start)} elapsed)")


async def wait_on_controller(
    bus: Bus, out: Output, kind: str, message: str, waiter: Awaitable[T], timeout: float
) -> T:
    """Return what `waiter` returns; raise CliError when the controller of `kind`
    goes away first, TimeoutError after `timeout` seconds."""
    start = time.monotonic()
    main = asyncio.ensure_future(waiter)
    guard = asyncio.create_task(_until_gone(bus, kind), name="fluxbus-controller-guard")
    with out.spinner(message) as update:
        ticker = asyncio.create_task(
            _tick(update, message, start, out.interactive), name="fluxbus-wait-ticker"
        )
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait([main, guard], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(*(t for t in (ticker, guard, main) if not t.done()))
    if guard.done() and not guard.cancelled() and (gone := guard.exception()) is not None:
        raise gone  # the CliError saying the controller went away
    return main.result()
