"""Defaulting and validation of custom resources against their CRD's `openAPIV3Schema`.

Covers what GitOps users hit: types, required fields, enums, numeric bounds,
string patterns and lengths, item counts. Messages follow the API server's
(`spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"`).

Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

Causes = list[tuple[str, str]]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches(value: Any, t: str) -> bool:
    actual = _type_name(value)
    if t == "number":
        return actual in ("integer", "number")
    return actual == t


def _q(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


def validate(value: Any, schema: dict[str, Any] | None, path: str = "") -> Causes:
    """Problems of value against a structural schema, as (field, message) pairs."""
    out: Causes = []
    if not schema or (schema.get("x-kubernetes-preserve-unknown-fields") and "type" not in schema):
        return out
    field = path or "<root>"
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            out.append(
                (
                    field,
                    f'Invalid value: "null": {field} in body must be of type {schema["type"]}: "null"',
                )
            )
        return out
    t = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            out.append(
                (
                    field,
                    f'Invalid value: "{_type_name(value)}": {field} in body must be of type int-or-string: "{_type_name(value)}"',
                )
            )
        return out
    if t and not _matches(value, t):
        name = _type_name(value)
        out.append(
            (field, f'Invalid value: "{name}": {field} in body must be of type {t}: "{name}"')
        )
        return out
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(_q(e) for e in enum)
        out.append((field, f"Unsupported value: {_q(value)}: supported values: {supported}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "maximum" in schema and value > schema["maximum"]:
            out.append(
                (
                    field,
                    f"Invalid value: {_q(value)}: {field} in body should be less than or equal to {schema['maximum']}",
                )
            )
        if "minimum" in schema and value < schema["minimum"]:
            out.append(
                (
                    field,
                    f"Invalid value: {_q(value)}: {field} in body should be greater than or equal to {schema['minimum']}",
                )
            )
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(
                (
                    field,
                    f"Invalid value: {_q(value)}: {field} in body should match '{schema['pattern']}'",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append((field, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(
                (
                    field,
                    f"Invalid value: {_q(value)}: {field} in body should be at least {schema['minLength']} chars long",
                )
            )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(
                (field, f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(
                (
                    field,
                    f"Invalid value: {len(value)}: {field} in body should have at least {schema['minItems']} items",
                )
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                out.extend(validate(v, items, f"{path}[{i}]"))
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                out.append((f"{path}.{req}" if path else req, "Required value"))
        props = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k)
            if sub is None and isinstance(addl, dict):
                sub = addl
            if sub is not None:
                out.extend(validate(v, sub, f"{path}.{k}" if path else k))
    return out


def apply_defaults(value: Any, schema: dict[str, Any] | None) -> Any:
    """value with the schema's `default`s filled in where a field is absent.

    As the API server does: defaults apply inside objects that exist (a missing
    parent is not created, unless the parent itself has a default).
    """
    if not schema or value is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        out = dict(value)
        for k, sub in props.items():
            if k not in out and isinstance(sub, dict) and "default" in sub:
                out[k] = json.loads(json.dumps(sub["default"]))
        for k, v in list(out.items()):
            sub = props.get(k)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if isinstance(sub, dict):
                out[k] = apply_defaults(v, sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(v, schema["items"]) for v in value]
    return value


def default_object(obj: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """A custom resource with its schema defaults (metadata untouched)."""
    if not schema:
        return obj
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k != "metadata"}
    # apply_defaults maps an object to an object
    defaulted: dict[str, Any] = apply_defaults(obj, {**schema, "properties": props})
    return defaulted


def validate_object(obj: dict[str, Any], schema: dict[str, Any] | None) -> Causes:
    """Validate a custom resource; apiVersion, kind and metadata are checked elsewhere."""
    if not schema:
        return []
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    trimmed = dict(schema)
    trimmed["required"] = [
        r for r in schema.get("required") or [] if r not in ("apiVersion", "kind", "metadata")
    ]
    props = dict(schema.get("properties") or {})
    for k in ("apiVersion", "kind", "metadata"):
        props.pop(k, None)
    trimmed["properties"] = props
    return validate(body, trimmed)
