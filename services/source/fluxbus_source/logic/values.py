"""Merging a HelmChart's `spec.valuesFiles`, as Flux does.

Pure: no I/O.

Files are merged in order, a later file overriding an earlier one: mappings
merge key by key at every depth, anything else (lists, scalars, null) replaces
the earlier value (Flux's `transform.MergeMaps`). The result becomes the
packaged chart's `values.yaml`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from fluxbus_common import safeyaml

__all__ = ["ValuesFileError", "dump_values", "merge_files", "merge_values", "parse_values"]


class ValuesFileError(ValueError):
    """A values file that is not a YAML mapping."""


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` deep-merged with `override` (neither is modified)."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = merge_values(current, value)
        else:
            out[key] = value
    return out


def parse_values(path: str, data: bytes) -> dict[str, Any]:
    """Parse one values file; an empty file is `{}`.

    Raises `ValuesFileError` ("unmarshaling values from '<path>' failed: ...").
    """
    try:
        doc = safeyaml.load(data)
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValuesFileError(f"unmarshaling values from '{path}' failed: {first}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValuesFileError(f"unmarshaling values from '{path}' failed: not a YAML mapping")
    return doc


def merge_files(files: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """Parse and merge `(path, bytes)` values files in order."""
    merged: dict[str, Any] = {}
    for path, data in files:
        merged = merge_values(merged, parse_values(path, data))
    return merged


def dump_values(values: Mapping[str, Any]) -> str:
    """The merged values as the `values.yaml` text of the packaged chart."""
    return yaml.safe_dump(dict(values), sort_keys=False, default_flow_style=False)
