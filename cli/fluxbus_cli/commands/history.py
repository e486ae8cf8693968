"""`fluxbus history kustomization` and `fluxbus rollback kustomization`.

History lists the applied outputs, newest first (revision, digest of the
rendered output, first and last applied, duration, result, what the apply
pruned). Rollback asks the service to apply the output of an earlier entry
(annotation `fluxbus.io/rollback-to: <digest>` with a reconcile request),
waits for it, then holds there: the Kustomization is suspended with the reason
"rolled back to <revision>" until `fluxbus resume` returns it to Git.
"""

from __future__ import annotations

import json
from typing import Any

from fluxbus_cli import controllers, render
from fluxbus_cli.commands import ks_access, rollback_request
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common.api import Snapshot
from fluxbus_common.bus import Bus
from fluxbus_kustomize import history_output
from fluxbus_kustomize.logic import history as hist

HEADERS = ("REVISION", "DIGEST", "FIRST APPLIED", "LAST APPLIED", "DURATION", "RESULT", "PRUNED")
DIGEST_CHARS = 12
"""Hex digits of the output digest shown in the table (enough to tell entries apart)."""
ERROR = ks_access.ERROR


def _short(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    return f"{algo}:{hexdigest[:DIGEST_CHARS]}" if hexdigest else digest


def _row(entry: Snapshot) -> list[str]:
    return [
        hist.revision_of(entry) or "-",
        _short(entry.digest),
        entry.first_reconciled,
        entry.last_reconciled,
        entry.last_reconciled_duration,
        entry.last_reconciled_status,
        ", ".join(hist.pruned_of(entry)) or "-",
    ]


def _json(entry: Snapshot) -> dict[str, Any]:
    return {
        "revision": hist.revision_of(entry),
        "digest": entry.digest,
        "firstApplied": entry.first_reconciled,
        "lastApplied": entry.last_reconciled,
        "duration": entry.last_reconciled_duration,
        "result": entry.last_reconciled_status,
        "reconciliations": entry.total_reconciliations,
        "pruned": hist.pruned_of(entry),
    }


async def history(bus: Bus, out: Output, namespace: str, name: str, fmt: str) -> int:
    """Print the Kustomization's history, newest first, as a table or JSON."""
    obj, _ = await ks_access.load(bus, namespace, name)
    entries = obj.status.history
    if fmt == "json":
        out.data(json.dumps([_json(e) for e in entries], indent=2))
        return 0
    if not entries:
        out.warning(f"Kustomization '{namespace}/{name}' has no history yet")
        return 0
    out.data(render.format_table(HEADERS, [_row(e) for e in entries]))
    return 0


async def rollback(
    bus: Bus,
    out: Output,
    namespace: str,
    name: str,
    *,
    to: str | None,
    steps: int | None,
    timeout: float,
) -> int:
    """Apply an earlier history entry again and hold there (suspended with a reason).

    Raises CliError when no entry matches, its output is gone, or the apply fails
    (then the Kustomization goes back to following Git).
    """
    obj, _ = await ks_access.load(bus, namespace, name)
    try:
        entry = hist.rollback_target(obj.status.history, to=to, steps=steps)
    except hist.RollbackTargetError as e:
        raise CliError(f"Kustomization '{namespace}/{name}': {e}") from None
    revision = hist.revision_of(entry) or entry.digest
    if not await history_output.exists(bus, namespace, name, entry.digest):
        raise CliError(
            f"cannot roll back to {revision}: its rendered output is no longer stored "
            "(older than the history limit)"
        )
    info = ks_access.KUSTOMIZATION
    await controllers.require_controller(bus, info.kind)
    out.step(f"rolling back Kustomization {name} in {namespace} namespace to {revision}")
    status = await rollback_request.ask(
        bus,
        out,
        info,
        namespace,
        name,
        entry.digest,
        waiting="waiting for the rollback to be applied",
        timeout=timeout,
    )
    ready = render.ready_condition({"status": status}) or {}
    if ready.get("status") != "True" or status.get("lastAppliedRevision") != hist.revision_of(
        entry
    ):
        raise await rollback_request.failed(
            bus, info, namespace, name, status, "the rollback was not applied"
        )
    await rollback_request.hold(bus, info, namespace, name, f"rolled back to {revision}")
    out.success(f"rolled back to {revision}; suspended until `fluxbus resume ks {name}`")
    return 0
