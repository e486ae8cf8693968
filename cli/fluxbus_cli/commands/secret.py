"""`fluxbus create secret generic|git|docker-registry`: build the Secret, then
store it (or print it with `--export`). Only this module reads credential files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fluxbus_cli import render, store
from fluxbus_cli.errors import CliError
from fluxbus_cli.manifests import check_namespace
from fluxbus_cli.render import Output
from fluxbus_common.api import InvalidObject, Secret, parse_object
from fluxbus_common.bus import Bus


def read_file(path: str, flag: str) -> bytes:
    """Return a file's bytes; CliError naming the flag and path (never the content)."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"{flag} {path}: {e.strerror or e}") from None


def validated(doc: dict[str, Any]) -> Secret:
    """Check a built Secret against the API model (name, namespace, keys)."""
    check_namespace(doc["metadata"]["namespace"])
    try:
        obj = parse_object(doc)
    except InvalidObject as e:
        raise CliError(f"invalid secret: {e}") from None
    assert isinstance(obj, Secret)
    return obj


async def store_secret(bus: Bus, out: Output, doc: dict[str, Any]) -> int:
    """Store a built Secret; print `secret/<ns>/<name> created|configured|unchanged`."""
    obj = validated(doc)
    result = await store.put(bus, obj)
    out.data(f"secret/{obj.metadata.namespace}/{obj.metadata.name} {result}")
    return 0


def export_secret(out: Output, doc: dict[str, Any]) -> int:
    """Print a built Secret as YAML (the user asked for it with --export)."""
    validated(doc)
    out.data(render.to_yaml_stream([doc]))
    return 0
