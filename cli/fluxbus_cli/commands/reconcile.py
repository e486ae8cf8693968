"""`fluxbus reconcile`, `suspend` and `resume`.

A reconcile request is Flux's: the `reconcile.fluxcd.io/requestedAt`
annotation set to a fresh value; the owning service copies it to
`status.lastHandledReconcileAt` when done, and the CLI waits (KV watch) for that —
unless no live instance of the kind's controller is there to handle it: that is
said at once, before and during the wait (`fluxbus_cli.controllers`). An object
handled while a dependency is still catching up (`DependencyNotReady`) is shown
as waiting for it, and the wait goes on until the retry the dependency landing
triggers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluxbus_cli import controllers, render, store
from fluxbus_cli.errors import CliError
from fluxbus_cli.logic import helm as helm_logic
from fluxbus_cli.render import Output
from fluxbus_common import keys, subjects
from fluxbus_common.api import KindInfo, UnknownKind, parse_object, resolve_kind
from fluxbus_common.bus import Bus
from fluxbus_common.conditions import Reason
from fluxbus_common.reconcile_requests import annotate_request, request_token
from fluxbus_helm.logic.reasons import HelmReason


def _annotate(token: str) -> Callable[[dict[str, Any]], None]:
    return lambda doc: annotate_request(doc, token)


def _outcome(info: KindInfo, status: dict[str, Any]) -> tuple[bool, str]:
    """Return (ready, message) of a handled reconcile, worded like `flux reconcile`."""
    ready = render.ready_condition({"status": status})
    if ready is None or ready.get("status") != "True":
        message = (ready or {}).get("message") or "reconciliation failed"
        return False, str(message)
    revision = render.revision_of(status)
    if info.kind == "Kustomization" and revision:
        return True, f"applied revision {revision}"
    if info.kind in ("GitRepository", "HelmChart") and revision:
        return True, f"fetched revision {revision}"
    if info.kind == "HelmRepository":
        if revision:
            return True, f"fetched revision {render.truncate_hex(revision)}"
        return True, str(ready.get("message") or render.OCI_HELM_REPOSITORY_READY)
    if info.kind == "HelmRelease":
        return True, f"applied revision {render.helm_release_revision(status)}"
    if info.kind == "ImageRepository":
        count = (status.get("lastScanResult") or {}).get("tagCount", 0)
        return True, f"scan fetched {count} tags"
    if info.kind == "ImagePolicy":
        return True, str(ready.get("message") or "policy evaluated")
    if info.kind == "ImageUpdateAutomation":
        commit = str(status.get("lastPushCommit") or "")
        suffix = f" (last push commit '{commit[:7]}')" if commit else ""
        return True, f"{ready.get('message') or 'repository up-to-date'}{suffix}"
    return True, f"{info.kind} reconciliation completed"


def _static(info: KindInfo, doc: dict[str, Any]) -> bool:
    """An object no controller reconciles (an OCI HelmRepository is a static data
    container, as in Flux): nothing to wait for."""
    return info.kind == "HelmRepository" and (doc.get("spec") or {}).get("type") == "oci"


def _toolkit(info: KindInfo, verb: str) -> None:
    if info.store != "objects":
        raise CliError(f"{info.plural} cannot be {verb}")


WAITING_REASONS = (Reason.DEPENDENCY_NOT_READY, HelmReason.SOURCE_NOT_READY)
"""Ready=False reasons that mean "requeued when something else lands": a dependency,
or a HelmRelease's chart (the HelmChart it generates has no artifact yet)."""


def _dependency_wait(status: dict[str, Any]) -> str | None:
    """The message of a Ready=False status waiting for a dependency or a source (the
    object is requeued when it lands), else None."""
    ready = render.ready_condition({"status": status}) or {}
    if ready.get("status") == "False" and ready.get("reason") in WAITING_REASONS:
        return str(ready.get("message") or "a dependency is not ready")
    return None


def blocked_reason(status: dict[str, Any]) -> str:
    """The reason of the Ready condition (empty when none)."""
    return str((render.ready_condition({"status": status}) or {}).get("reason") or "")


async def wait_handled(
    bus: Bus, out: Output, info: KindInfo, namespace: str, name: str, token: str, timeout: float
) -> int:
    """Wait until the reconcile requested with `token` is handled; return 0 when Ready.

    An object handled while waiting for a dependency (`DependencyNotReady`) is
    not a failure: say so and keep waiting for the reconcile the dependency
    landing triggers. Raises CliError with the controller's message when it ends
    not Ready, or on timeout.
    """
    key = subjects.object_key(info.kind, namespace, name)
    waiting: list[str] = []  # the dependency messages already shown

    def settled(status: dict[str, Any]) -> bool:
        if status.get("lastHandledReconcileAt") != token:
            return False
        blocked = _dependency_wait(status)
        if blocked is not None:
            if blocked not in waiting:
                waiting.append(blocked)
                what = (
                    "a dependency"
                    if blocked_reason(status) == Reason.DEPENDENCY_NOT_READY
                    else "its source"
                )
                out.waiting(f"{info.kind} {name} is waiting for {what}: {blocked}")
            return False
        # While waiting for a dependency, the retry publishes Ready=Unknown as it runs.
        ready = render.ready_condition({"status": status}) or {}
        return not (waiting and ready.get("status") == "Unknown")

    try:
        status = await controllers.wait_on_controller(
            bus,
            out,
            info.kind,
            f"waiting for {info.kind} reconciliation",
            store.wait_for_status(bus, key, settled),
            timeout,
        )
    except TimeoutError:
        still = f": still waiting for a dependency ({waiting[-1]})" if waiting else ""
        raise CliError(
            f"timed out after {timeout:g}s waiting for {info.kind} "
            f"'{namespace}/{name}' to be reconciled{still}"
        ) from None
    ready, message = _outcome(info, status)
    if not ready:
        raise CliError(message)
    out.success(message)
    return 0


async def _reconcile_one(
    bus: Bus, out: Output, info: KindInfo, namespace: str, name: str, timeout: float
) -> int:
    doc = await store.get_doc(bus, info, namespace, name)
    if doc is None:
        raise store.not_found(info, namespace, name)
    if (doc.get("spec") or {}).get("suspend"):
        raise CliError(f"{info.kind} '{namespace}/{name}' is suspended")
    if _static(info, doc):
        out.success("reconciliation not supported by the object")
        return 0
    await controllers.require_controller(bus, info.kind)
    out.step(f"annotating {info.kind} {name} in {namespace} namespace")
    token = request_token()
    await store.edit(bus, info, namespace, name, _annotate(token))
    out.success(f"{info.kind} annotated")
    return await wait_handled(bus, out, info, namespace, name, token, timeout)


def _resolved(ref: helm_logic.SourceRef) -> tuple[KindInfo, str, str]:
    try:
        return resolve_kind(ref.kind), ref.namespace, ref.name
    except UnknownKind:
        raise CliError(f"source kind {ref.kind} is not served by fluxbus") from None


async def _sources(
    bus: Bus, info: KindInfo, doc: dict[str, Any]
) -> list[tuple[KindInfo, str, str]]:
    """The sources to reconcile first, the farthest first: a Kustomization's
    GitRepository; a HelmRelease's HelmChart after the chart's own HelmRepository
    or GitRepository (as `flux reconcile hr --with-source`)."""
    chain: list[tuple[KindInfo, str, str]] = []
    kind = info.kind
    while True:
        try:
            ref = helm_logic.source_of(kind, doc)
        except helm_logic.NoSource as e:
            raise CliError(str(e)) from None
        source = _resolved(ref)
        chain.insert(0, source)
        if ref.kind != "HelmChart":
            return chain
        found = await store.get_doc(bus, source[0], ref.namespace, ref.name)
        if found is None:
            raise store.not_found(source[0], ref.namespace, ref.name)
        kind, doc = ref.kind, found


async def reconcile(
    bus: Bus,
    out: Output,
    info: KindInfo,
    namespace: str,
    name: str,
    *,
    with_source: bool = False,
    timeout: float = 300.0,
) -> int:
    """Request a reconcile (first of the source with `with_source`) and wait for it.

    Returns 0 when the object ends Ready; raises CliError when it does not, on
    timeout, or when it is missing or suspended.
    """
    _toolkit(info, "reconciled")
    if with_source:
        doc = await store.get_doc(bus, info, namespace, name)
        if doc is None:
            raise store.not_found(info, namespace, name)
        for source, source_ns, source_name in await _sources(bus, info, doc):
            await _reconcile_one(bus, out, source, source_ns, source_name, timeout)
    return await _reconcile_one(bus, out, info, namespace, name, timeout)


def _check_suspendable(info: KindInfo, doc: dict[str, Any]) -> None:
    try:
        parse_object({k: v for k, v in doc.items() if k != "status"})
    except ValueError:
        raise CliError(f"{info.plural} cannot be suspended") from None


async def suspend(
    bus: Bus, out: Output, info: KindInfo, namespace: str, name: str, reason: str | None
) -> int:
    """Set `spec.suspend: true` (and the reason annotation, when given)."""
    _toolkit(info, "suspended")
    out.step(f"suspending {info.kind} {name} in {namespace} namespace")

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("spec", {})["suspend"] = True
        _check_suspendable(info, doc)
        meta = doc.setdefault("metadata", {})
        annotations = dict(meta.get("annotations") or {})
        if reason:
            annotations[keys.SUSPENDED_REASON_ANNOTATION] = reason
        else:
            annotations.pop(keys.SUSPENDED_REASON_ANNOTATION, None)
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)

    await store.edit(bus, info, namespace, name, change)
    out.success(f"{info.kind} suspended")
    return 0


async def resume(
    bus: Bus, out: Output, info: KindInfo, namespace: str, name: str, *, timeout: float = 300.0
) -> int:
    """Set `spec.suspend: false` with a reconcile request in the same write, and wait for it."""
    _toolkit(info, "resumed")
    out.step(f"resuming {info.kind} {name} in {namespace} namespace")
    token = request_token()

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("spec", {})["suspend"] = False
        _check_suspendable(info, doc)
        _annotate(token)(doc)
        annotations = doc["metadata"]["annotations"]
        annotations.pop(keys.SUSPENDED_REASON_ANNOTATION, None)
        annotations.pop(keys.ROLLBACK_ANNOTATION, None)  # back to Git after a rollback

    await store.edit(bus, info, namespace, name, change)
    out.success(f"{info.kind} resumed")
    return await wait_handled(bus, out, info, namespace, name, token, timeout)
