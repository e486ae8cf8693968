"""`fluxbus delete KIND NAME`: ask first (Flux's habit: deleting a Kustomization
prunes what it applied), request the deletion and, when the owner is finalizing
(pruning, garbage-collecting), wait a bounded time until the key is gone."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import click

from fluxbus_cli import store
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common import subjects
from fluxbus_common.api import KindInfo
from fluxbus_common.bus import Bus


def confirm(what: Sequence[str], *, silent: bool) -> None:
    """Ask on the terminal before deleting `what` (as `flux delete` does) unless `silent`.

    Raises CliError when the answer is no, and when stdin is not a terminal (a script
    must say `--silent`: nothing can be asked, and deleting unasked is what this prevents).
    """
    if silent:
        return
    target = what[0] if len(what) == 1 else f"these {len(what)} objects ({', '.join(what)})"
    if not sys.stdin.isatty():
        raise CliError(
            f"not deleting {target}: stdin is not a terminal to confirm on "
            "(give -s/--silent to delete without asking)"
        )
    question = f"Are you sure you want to delete {target}?"
    if not click.confirm(question, default=False, err=True):
        raise CliError("aborted: nothing deleted")


async def delete_one(
    bus: Bus,
    out: Output,
    info: KindInfo,
    namespace: str,
    name: str,
    *,
    wait: bool,
    timeout: float,
) -> bool:
    """Delete one object; print the outcome; return False when it did not exist.

    Raises CliError when `wait` and the finalizer does not finish within `timeout`.
    """
    what = store.describe(info, namespace, name)
    if info.store == "secrets":
        if await store.get_doc(bus, info, namespace, name) is None:
            out.failure(f"{what} not found")
            return False
        if info.kind == "Secret":
            await bus.delete_secret(namespace, name)
        else:
            await bus.delete_configmap(namespace, name)
        out.data(f"{what} deleted")
        return True
    key = subjects.object_key(info.kind, namespace, name)
    if not await bus.request_delete(key):
        out.failure(f"{what} not found")
        return False
    if await bus.get_object(key) is None:
        out.data(f"{what} deleted")
        return True
    if not wait:
        out.data(f"{what} marked for deletion")
        return True
    if True:
        with out.spinner(f"waiting for {what} to be finalized"):
            try:
                async with asyncio.timeout(timeout):
                    await store.wait_gone(bus, key)
            except TimeoutError:
                raise CliError(
                    f"{what} is still being finalized after {timeout:g}s "
                    "(is its controller running?)"
                ) from None
    out.data(f"{what} deleted")
    return True


async def delete(
    bus: Bus, out: Output, info: KindInfo, namespace: str, name: str, *, wait: bool, timeout: float
) -> int:
    """Delete one object by kind and name; exit code 1 when it does not exist."""
    found = await delete_one(bus, out, info, namespace, name, wait=wait, timeout=timeout)
    return 0 if found else 1
