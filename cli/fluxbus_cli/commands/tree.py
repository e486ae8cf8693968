"""`fluxbus tree kustomization NAME`: the inventory as a tree, recursing into
the Kustomizations this one manages (and, under each, its source when that is
managed here too) and into the HelmReleases it manages (the objects of the
release, from the helm service's `status.inventory`), as `flux tree` draws it."""

from __future__ import annotations

from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_kustomize.logic.inventory import InventoryError, ObjMetadata

TOOLKIT_GROUP = "kustomize.toolkit.fluxcd.io"
NESTED = {("Kustomization", TOOLKIT_GROUP), ("HelmRelease", "helm.toolkit.fluxcd.io")}
"""The toolkit kinds whose own inventory `tree` shows under them."""


async def _children(
    bus: Bus, namespace: str, name: str, kind: str = "Kustomization"
) -> list[ObjMetadata]:
    status = await bus.get_status(subjects.object_key(kind, namespace, name))
    entries = ((status.value if status else {}).get("inventory") or {}).get("entries") or []
    out = []
    for e in entries:
        try:
            out.append(ObjMetadata.parse(str(e.get("id", ""))))
        except InventoryError:
            continue
    return sorted(out, key=lambda m: (m.kind != "Namespace", m.kind, m.namespace, m.name))


async def lines(bus: Bus, namespace: str, name: str) -> list[str]:
    """Return the tree's lines, the Kustomization first."""
    out = [f"Kustomization/{namespace}/{name}"]
    seen = {("Kustomization", namespace, name)}

    async def walk(kind: str, ns: str, nm: str, prefix: str) -> None:
        children = await _children(bus, ns, nm, kind)
        for i, child in enumerate(children):
            last = i == len(children) - 1
            out.append(f"{prefix}{'└── ' if last else '├── '}{child.describe()}")
            nested = (child.kind, child.group) in NESTED
            if nested and (child.kind, child.namespace, child.name) not in seen:
                seen.add((child.kind, child.namespace, child.name))
                deeper = prefix + ("    " if last else "│   ")
                await walk(child.kind, child.namespace, child.name, deeper)

    await walk("Kustomization", namespace, name, "")
    return out


async def tree(bus: Bus, out: Output, namespace: str, name: str) -> int:
    """Print the inventory tree of a Kustomization."""
    key = subjects.object_key("Kustomization", namespace, name)
    if await bus.get_object(key) is None:
        raise CliError(f"Kustomization '{namespace}/{name}' not found")
    out.data("\n".join(await lines(bus, namespace, name)))
    return 0
