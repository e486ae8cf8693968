"""`fluxbus build kustomization` and `fluxbus diff kustomization`.

`build` prints exactly the manifests the service would apply (the same
render, substitution and owner labels), from the stored artifact or from a
local directory standing in for `spec.path`. `diff` dry-runs them against the
target cluster and prints a unified diff per object that would be created,
changed or pruned (server-owned fields left out, Secret values masked).
Exit codes, as Flux and Argo CD: 0 no difference, 1 differences, 2 error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fluxbus_cli.commands import ks_access
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common.api import Kustomization
from fluxbus_common.bus import Bus
from fluxbus_common.errors import ReconcileError
from fluxbus_kube.errors import ClusterError
from fluxbus_kustomize.compare import compare
from fluxbus_kustomize.logic.inventory import inventory_of, parse_entries, stale_entries
from fluxbus_kustomize.ports import ClusterPort
from fluxbus_kustomize.render import owned

ERROR = ks_access.ERROR


async def _objects(
    bus: Bus, obj: Kustomization, cluster: ClusterPort, path: str | None
) -> list[dict[str, Any]]:
    """The objects the service would apply (owner labels on)."""
    render = ks_access.renderer(bus)
    try:
        if path is not None:
            objects = await render.render_local(obj, Path(path), cluster)
        else:
            artifact = await ks_access.source_artifact(bus, obj)
            objects = await render.render(obj, artifact, cluster)
    except ReconcileError as e:
        raise CliError(e.message, ERROR) from None
    return [owned(obj, o) for o in objects]


async def build(
    bus: Bus, out: Output, namespace: str, name: str, *, path: str | None, kubeconfig: str | None
) -> int:
    """Print the manifests the Kustomization would apply as a YAML stream."""
    obj, _ = await ks_access.load(bus, namespace, name)
    async with ks_access.target(bus, obj, kubeconfig) as cluster:
        objects = await _objects(bus, obj, cluster, path)
    out.data(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


async def diff(
    bus: Bus, out: Output, namespace: str, name: str, *, path: str | None, kubeconfig: str | None
) -> int:
    """Print what applying would change; return 0 (none) or 1 (differences)."""
    obj, _ = await ks_access.load(bus, namespace, name)
    inventory = obj.status.inventory.entries if obj.status.inventory else []
    old = parse_entries([e.model_dump() for e in inventory])
    async with ks_access.target(bus, obj, kubeconfig) as cluster:
        objects = await _objects(bus, obj, cluster, path)
        stale = stale_entries(old, inventory_of(objects)) if obj.spec.prune else []
        try:
            diffs = await compare(
                cluster,
                objects,
                force=obj.spec.force,
                rules=obj.spec.ignore_rules,
                stale=stale,
                owner=(obj.metadata.name, obj.metadata.namespace),
            )
        except ClusterError as e:
            raise CliError(str(e), ERROR) from None
    if not diffs:
        out.success(f"Kustomization '{namespace}/{name}': no differences")
        return 0
    for d in diffs:
        out.data(f"► {d.subject} {d.action}")
        out.data(d.diff)
    return 1
