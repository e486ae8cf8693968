"""`fluxbus history helmrelease` and `fluxbus rollback helmrelease`.

History lists the Helm releases the helm service recorded in `status.history`,
newest first (revision, chart, app version, config digest, status, deployed).
Rollback asks the service for a Helm rollback to an earlier revision
(annotation `fluxbus.io/rollback-to: <revision>` with a reconcile request, as
`fluxbus rollback kustomization`), waits until a new release with that
revision's chart and values is recorded, then holds there: the HelmRelease is
suspended with the reason "rolled back to revision N" until `fluxbus resume
helmrelease NAME` returns it to Git.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fluxbus_cli import controllers, render, store
from fluxbus_cli.commands import rollback_request
from fluxbus_cli.errors import CliError
from fluxbus_cli.logic import helm as helm_logic
from fluxbus_cli.render import Output
from fluxbus_common.api import resolve_kind
from fluxbus_common.bus import Bus

HELM_RELEASE = resolve_kind("HelmRelease")


async def _load(bus: Bus, namespace: str, name: str) -> dict[str, Any]:
    doc = await store.get_doc(bus, HELM_RELEASE, namespace, name)
    if doc is None:
        raise store.not_found(HELM_RELEASE, namespace, name)
    return doc


def _history(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = (doc.get("status") or {}).get("history") or []
    return helm_logic.newest_first([e for e in raw if isinstance(e, Mapping)])


async def history(bus: Bus, out: Output, namespace: str, name: str, fmt: str) -> int:
    """Print the HelmRelease's releases, newest first, as a table or JSON."""
    entries = _history(await _load(bus, namespace, name))
    if fmt == "json":
        out.data(json.dumps(entries, indent=2))
        return 0
    if not entries:
        out.warning(f"HelmRelease '{namespace}/{name}' has no release history yet")
        return 0
    rows = [helm_logic.history_row(e) for e in entries]
    out.data(render.format_table(helm_logic.HISTORY_HEADERS, rows))
    return 0


async def rollback(
    bus: Bus,
    out: Output,
    namespace: str,
    name: str,
    *,
    to_revision: int | None,
    steps: int | None,
    timeout: float,
) -> int:
    """Roll the release back to an earlier Helm revision and hold there (suspended).

    Raises CliError when no revision matches, or the rollback fails or times out
    (then the HelmRelease goes back to following Git).
    """
    entries = _history(await _load(bus, namespace, name))
    try:
        target = helm_logic.rollback_target(entries, to_revision=to_revision, steps=steps)
    except helm_logic.RollbackTargetError as e:
        raise CliError(f"HelmRelease '{namespace}/{name}': {e}") from None
    revision = int(target.get("version") or 0)
    current = int(entries[0].get("version") or 0)
    await controllers.require_controller(bus, HELM_RELEASE.kind)
    out.step(f"rolling back HelmRelease {name} in {namespace} namespace to revision {revision}")
    status = await rollback_request.ask(
        bus,
        out,
        HELM_RELEASE,
        namespace,
        name,
        str(revision),
        waiting="waiting for the Helm rollback",
        timeout=timeout,
    )
    if not helm_logic.rolled_back(status, target, current):
        raise await rollback_request.failed(
            bus, HELM_RELEASE, namespace, name, status, "no new release was recorded"
        )
    reason = f"rolled back to revision {revision}"
    await rollback_request.hold(bus, HELM_RELEASE, namespace, name, reason)
    out.success(f"{reason}; suspended until `fluxbus resume helmrelease {name}`")
    return 0
