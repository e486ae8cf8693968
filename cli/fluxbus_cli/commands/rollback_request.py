"""The protocol `fluxbus rollback kustomization|helmrelease` share with their
services: ask (annotation `fluxbus.io/rollback-to` with a reconcile request,
resuming the object), wait until the service handled it, then hold (suspended
with the reason shown by `fluxbus get`) — or, when it failed, drop the request
so the object follows Git again.
"""

from __future__ import annotations

from typing import Any

from fluxbus_cli import controllers, render, store
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common import keys, subjects
from fluxbus_common.api import KindInfo
from fluxbus_common.bus import Bus
from fluxbus_common.reconcile_requests import annotate_request, request_token


async def ask(
    bus: Bus,
    out: Output,
    info: KindInfo,
    namespace: str,
    name: str,
    target: str,
    *,
    waiting: str,
    timeout: float,
) -> dict[str, Any]:
    """Ask the service to roll back to `target`; return the status that handled it.

    Raises CliError (after dropping the request) on timeout or when the service
    is gone.
    """
    token = request_token()

    def request(doc: dict[str, Any]) -> None:
        doc.setdefault("spec", {})["suspend"] = False
        annotate_request(doc, token)
        annotations = doc["metadata"]["annotations"]
        annotations[keys.ROLLBACK_ANNOTATION] = target
        annotations.pop(keys.SUSPENDED_REASON_ANNOTATION, None)

    await store.edit(bus, info, namespace, name, request)
    key = subjects.object_key(info.kind, namespace, name)
    try:
        return await controllers.wait_on_controller(
            bus,
            out,
            info.kind,
            waiting,
            store.wait_for_status(bus, key, lambda s: s.get("lastHandledReconcileAt") == token),
            timeout,
        )
    except TimeoutError:
        await back_to_git(bus, info, namespace, name)
        raise CliError(
            f"timed out after {timeout:g}s waiting for the rollback of '{namespace}/{name}'; "
            "it follows Git again"
        ) from None
    except CliError:
        await back_to_git(bus, info, namespace, name)
        raise


async def failed(
    bus: Bus, info: KindInfo, namespace: str, name: str, status: dict[str, Any], default: str
) -> CliError:
    """Drop the request and return the error naming why the rollback did not happen."""
    await back_to_git(bus, info, namespace, name)
    ready = render.ready_condition({"status": status}) or {}
    message = ready.get("message") or default
    return CliError(f"rollback failed: {message}; it follows Git again")


async def hold(bus: Bus, info: KindInfo, namespace: str, name: str, reason: str) -> None:
    """Hold the object where it was rolled back to: suspended, with `reason`."""

    def suspend(doc: dict[str, Any]) -> None:
        # The service may already hold it; writing the same hold again is harmless.
        doc.setdefault("spec", {})["suspend"] = True
        annotations = doc.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[keys.SUSPENDED_REASON_ANNOTATION] = reason

    await store.edit(bus, info, namespace, name, suspend)


async def back_to_git(bus: Bus, info: KindInfo, namespace: str, name: str) -> None:
    """Drop the rollback request: the object follows Git again."""

    def drop(doc: dict[str, Any]) -> None:
        (doc.get("metadata", {}).get("annotations") or {}).pop(keys.ROLLBACK_ANNOTATION, None)

    await store.edit(bus, info, namespace, name, drop)
