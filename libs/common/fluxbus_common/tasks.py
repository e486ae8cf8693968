"""Cancelling tasks without losing the caller's own cancellation.

`with suppress(CancelledError): await task` after `task.cancel()` is the usual
idiom, and wrong: if the *caller* is cancelled while it waits there, that
cancellation is swallowed too, and the caller runs on as if nothing happened
(a service that never stops, a test teardown that hangs). `cancel_and_wait`
swallows only the cancelled task's own CancelledError.

Pure: no I/O.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel `tasks` and wait until they are done; their errors are not raised.

    Raises CancelledError only when the calling task itself is being cancelled.
    """
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:  # the task's own failure: it was being stopped anyway
            pass
