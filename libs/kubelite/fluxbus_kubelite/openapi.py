"""`/openapi/v3`: an index of group-versions and one OpenAPI 3 document each.

kubectl reads the PATCH operations of a kind to learn that the server does
field validation (the `fieldValidation` parameter); with that it skips
client-side validation and sends `fieldValidation=Strict`. The component
schemas come from kubernetes-validate (built-ins) and CRDs.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from .schema import definitions, gvk_index

if TYPE_CHECKING:
    from .registry import Registry
    from .resources import ResourceType

_REF = "#/$defs/"
_COMPONENT = "#/components/schemas/"


def _convert(node: Any) -> Any:
    """A JSON-schema node as OpenAPI 3.0: component refs, single types."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out[k] = _COMPONENT + v.rsplit("/", 1)[-1]
            elif k == "type" and isinstance(v, list):
                types = [t for t in v if t != "null"]
                if len(types) == 1:
                    out[k] = types[0]
            else:
                out[k] = _convert(v)
        return out
    if isinstance(node, list):
        return [_convert(x) for x in node]
    return node


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            out.add(ref[len(_REF) :])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def _closure(names: list[str]) -> list[str]:
    defs = definitions()
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen or n not in defs:
            continue
        seen.add(n)
        found: set[str] = set()
        _refs(defs[n], found)
        todo.extend(found - seen)
    return sorted(seen)


def _param(name: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": schema_type, "uniqueItems": True},
    }


_FIELD_VALIDATION = _param(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request containing "
    "unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
)
_FIELD_MANAGER = _param(
    "fieldManager",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
)
_DRY_RUN = _param("dryRun", "When present, indicates that modifications should not be persisted.")
_FORCE = _param("force", "Force is going to force Apply requests.", "boolean")


class OpenAPI:
    """Builds and caches the OpenAPI v3 documents of the served group-versions."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, str], tuple[Any, bytes, str]] = {}

    @staticmethod
    def _path(group: str, version: str) -> str:
        return f"apis/{group}/{version}" if group else f"api/{version}"

    def _signature(self, group: str, version: str) -> Any:
        types = self.registry.types.get((group, version), {})
        return tuple(sorted((p, id(rt)) for p, rt in types.items()))

    def _get(self, group: str, version: str) -> tuple[bytes, str]:
        sig = self._signature(group, version)
        cached = self._cache.get((group, version))
        if cached is not None and cached[0] == sig:
            return cached[1], cached[2]
        doc = self._build(group, version)
        body = json.dumps(doc, separators=(",", ":")).encode()
        digest = hashlib.sha512(body).hexdigest()[:64].upper()
        self._cache[(group, version)] = (sig, body, digest)
        return body, digest

    def index(self) -> dict[str, Any]:
        paths = {}
        for group, version in sorted(self.registry.types):
            p = self._path(group, version)
            _, digest = self._get(group, version)
            paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={digest}"}
        return {"paths": paths}

    def document(self, path: str) -> bytes | None:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) == 2:
            gv = ("", parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 3:
            gv = (parts[1], parts[2])
        else:
            return None
        if gv not in self.registry.types:
            return None
        return self._get(*gv)[0]

    def _build(self, group: str, version: str) -> dict[str, Any]:
        types = self.registry.types.get((group, version), {})
        schemas: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        builtin_names = []
        for rt in types.values():
            if rt.crd is None:
                name = gvk_index().get((group, version, rt.kind))
                if name:
                    builtin_names.append(name)
            else:
                name = f"{'.'.join(reversed(group.split('.')))}.{version}.{rt.kind}"
                schema = _convert(rt.crd_schema or {"type": "object"})
                schema = dict(schema)
                props = dict(schema.get("properties") or {})
                props["metadata"] = {
                    "$ref": _COMPONENT + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
                }
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                schema["properties"] = props
                schema["type"] = "object"
                schema["x-kubernetes-group-version-kind"] = [
                    {"group": group, "kind": rt.kind, "version": version}
                ]
                schemas[name] = schema
                builtin_names.append("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            paths.update(self._paths(rt, name or ""))
        defs = definitions()
        for n in _closure(builtin_names):
            schemas.setdefault(n, _convert(defs[n]))
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        }

    def _paths(self, rt: ResourceType, schema_name: str) -> dict[str, Any]:
        base = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
        if rt.namespaced:
            coll = f"{base}/namespaces/{{namespace}}/{rt.plural}"
        else:
            coll = f"{base}/{rt.plural}"
        item = coll + "/{name}"
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ref = {"$ref": _COMPONENT + schema_name} if schema_name else {"type": "object"}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        body = {"content": {"*/*": {"schema": ref}}, "required": True}

        def op(
            action: str, params: list[dict[str, Any]], with_body: bool = False, patch: bool = False
        ) -> dict[str, Any]:
            o: dict[str, Any] = {
                "operationId": f"{action}{rt.kind}",
                "parameters": params,
                "responses": ok,
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }
            if with_body:
                o["requestBody"] = body
            if patch:
                o["requestBody"] = {
                    "content": {
                        ct: {"schema": {"type": "object"}}
                        for ct in (
                            "application/apply-patch+yaml",
                            "application/json-patch+json",
                            "application/merge-patch+json",
                            "application/strategic-merge-patch+json",
                        )
                    },
                    "required": True,
                }
            return o

        write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
        out = {
            coll: {
                "get": op("list", []),
                "post": op("post", write, with_body=True),
            },
            item: {
                "get": op("get", []),
                "put": op("put", write, with_body=True),
                "patch": op("patch", [*write, _FORCE], patch=True),
                "delete": op("delete", [_DRY_RUN]),
            },
        }
        if rt.status:
            out[item + "/status"] = {
                "get": op("get", []),
                "put": op("put", write, with_body=True),
                "patch": op("patch", [*write, _FORCE], patch=True),
            }
        return out
