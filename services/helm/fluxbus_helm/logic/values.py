"""Chart values as helm-controller composes them: `valuesFrom` documents merged in
order (a `targetPath` sets one value with Helm's `--set` rules), then
`spec.values` on top; and the config digest Flux records for them.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import yaml

from fluxbus_common.safeyaml import load as load_yaml

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_INDEX = re.compile(r"^(.*)\[(\d+)\]$")
MAX_INDEX = 65536
"""Helm's strvals refuses list indexes past this (a guard against huge allocations)."""


class ValuesFormatError(ValueError):
    """A values document or a `--set` expression that cannot be used."""


def merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` updated by `override`, recursing where both hold a mapping
    (Helm's and Flux's MergeMaps: later documents win, maps merge, lists replace)."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = merge_maps(old, value)
        else:
            out[key] = value
    return out


def read_values(text: str) -> dict[str, Any]:
    """Parse a values document (YAML mapping; empty is {}). Raises ValuesFormatError."""
    try:
        doc = load_yaml(text)
    except (yaml.YAMLError, ValueError) as e:
        raise ValuesFormatError(f"error converting YAML to JSON: {_first_line(e)}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValuesFormatError("values are not a YAML mapping")
    return doc


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on `sep` not preceded by a backslash; keep the escapes (removed later)."""
    parts, cur, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if ch == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _typed(raw: str, as_string: bool) -> Any:
    """Helm's strvals typing: true/false, null, integers; anything else a string."""
    value = _unescape(raw)
    if as_string:
        return value
    if value in ("true", "false"):
        return value == "true"
    if value == "null":
        return None
    if _INT.match(value) and not (len(value.lstrip("+-")) > 1 and value.lstrip("+-")[0] == "0"):
        number = int(value)
        if -(2**63) <= number < 2**63:
            return number
    return value


def _parse_value(raw: str, as_string: bool) -> Any:
    if not as_string and raw.startswith("{") and raw.endswith("}"):
        return [_typed(p, False) for p in _split_unescaped(raw[1:-1], ",") if p != ""]
    return _typed(raw, as_string)


def _set(node: Any, keys: list[str], value: Any, path: str) -> Any:
    """Set `value` at `keys` below `node` (a dict, a list or None); return the node."""
    key = keys[0]
    m = _INDEX.match(key)
    if m is not None:
        name, index = m.group(1), int(m.group(2))
        if index > MAX_INDEX:
            raise ValuesFormatError(f"{path}: index of {index} is greater than {MAX_INDEX}")
        container = node if isinstance(node, dict) else {}
        items = container.get(name) if name else node
        items = list(items) if isinstance(items, list) else []
        items.extend([None] * (index + 1 - len(items)))
        items[index] = value if len(keys) == 1 else _set(items[index], keys[1:], value, path)
        if not name:
            return items
        container[name] = items
        return container
    container = node if isinstance(node, dict) else {}
    if len(keys) == 1:
        container[key] = value
    else:
        container[key] = _set(container.get(key), keys[1:], value, path)
    return container


def set_path(values: dict[str, Any], path: str, raw: str) -> None:
    """Set `raw` at the dotted `path` of `values` as `helm --set path=raw` would
    (`\\.` escapes a dot in a key, `name[0]` indexes a list, `true`/`false`/`null`/
    integers are typed, `{a,b}` is a list; a single- or double-quoted value stays a
    string, as Flux's targetPath does). Raises ValuesFormatError."""
    if not path or path.startswith(".") or path.endswith("."):
        raise ValuesFormatError(f"key {path!r} has no value")
    quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\""
    value_raw = raw.strip("'\"") if quoted else raw
    if not quoted and len(_split_unescaped(value_raw, ",")) > 1 and not value_raw.startswith("{"):
        raise ValuesFormatError(f"key {_split_unescaped(value_raw, ',')[1]!r} has no value")
    keys = [_unescape(k) for k in _split_unescaped(path, ".")]
    if any(k == "" for k in keys):
        raise ValuesFormatError(f"key {path!r} has an empty segment")
    _set(values, keys, _parse_value(value_raw, quoted), path)


def config_digest(values: Mapping[str, Any] | None) -> str:
    """Flux's config digest: `sha256:` of the values as sorted YAML (empty values
    hash the empty document)."""
    data = b""
    if values:
        data = yaml.safe_dump(
            dict(values), sort_keys=True, default_flow_style=False, allow_unicode=True
        ).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()
