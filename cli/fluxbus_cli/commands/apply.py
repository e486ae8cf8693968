"""`fluxbus apply -f` and `fluxbus delete -f`: validate every document first,
then write (or delete) them; nothing is written when any document is invalid."""

from __future__ import annotations

from fluxbus_cli import manifests, store
from fluxbus_cli.commands.delete import delete_one
from fluxbus_cli.render import Output
from fluxbus_common.api import resolve_kind
from fluxbus_common.bus import Bus


async def apply(
    bus: Bus, out: Output, sources: list[tuple[str, str]], default_namespace: str
) -> int:
    """Store every object of `sources`; print `<kind>/<ns>/<name> <result>` per object.

    Raises CliError (nothing written) when any document is invalid.
    """
    objects = manifests.load(sources, default_namespace)
    for obj in objects:
        result = await store.put(bus, obj)
        info = resolve_kind(obj.kind)
        out.data(f"{store.describe(info, obj.metadata.namespace, obj.metadata.name)} {result}")
    return 0


async def delete_files(
    bus: Bus,
    out: Output,
    sources: list[tuple[str, str]],
    default_namespace: str,
    *,
    wait: bool,
    timeout: float,
) -> int:
    """Delete every object named in `sources` (validated first); 1 if any was absent."""
    objects = manifests.load(sources, default_namespace)
    code = 0
    for obj in objects:
        info = resolve_kind(obj.kind)
        found = await delete_one(
            bus, out, info, obj.metadata.namespace, obj.metadata.name, wait=wait, timeout=timeout
        )
        code = code or (0 if found else 1)
    return code
