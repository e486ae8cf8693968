"""Cancelling tasks without losing the caller's own cancellation.

`with suppress(CancelledError): await task` after `task.cancel()` is the usual
idiom, and wrong: if the *caller* is cancelled while it waits there, that
cancellation is swallowed too, and the caller runs on as if nothing happened
(a service that never stops, a test teardown that hangs). `cancel_and_wait`
swallows only the cancelled task's own CancelledError.

`to_daemon_thread` runs blocking work that may hang (network I/O in a library
without cancellation) so that it can never keep the process from exiting.

Pure: no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


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


async def to_daemon_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking `func(*args, **kwargs)` in a daemon thread and return its result.

    Unlike `asyncio.to_thread`, a call still blocked when the service stops
    (a Git server that never answers) does not hold the process: interpreter
    exit joins every executor thread, but not daemon threads. Cancelling the
    awaiting task abandons the thread (its result is dropped); the callee is
    expected to notice its own cancel flag or time out.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(result: tuple[T] | BaseException) -> None:
        if future.done():
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result[0])

    def run() -> None:
        result: tuple[T] | BaseException
        try:
            result = (context.run(func, *args, **kwargs),)
        except BaseException as e:  # handed to the awaiting task
            result = e
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(deliver, result)

    threading.Thread(
        target=run, name=f"fluxbus-{getattr(func, '__name__', 'work')}", daemon=True
    ).start()
    return await future


def raise_if_cancelling() -> None:
    """Raise CancelledError if the current task has a pending cancel request.

    nats-py swallows a CancelledError that arrives while it flushes a publish or
    a request; the request is still counted by the task (`cancelling()`), so
    loops built on nats-py check it before they block again.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
