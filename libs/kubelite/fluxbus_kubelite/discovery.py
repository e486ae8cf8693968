"""API discovery: /version, /api, /apis (legacy and aggregated), /apis/<g>[/<v>], OpenAPI.

The document builders are pure functions of the `Registry`; `Discovery` serves
them over aiohttp.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .errors import ApiError
from .httputil import dumps, json_response
from .openapi import OpenAPI
from .registry import Registry
from .resources import VERBS

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
GIT_VERSION = "v1.37.0-kubelite"


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any]:
    """The APIResourceList of /apis/<group>/<version> (legacy discovery)."""
    resources = []
    for rt in sorted(registry.types.get((group, version), {}).values(), key=lambda r: r.plural):
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["create"] if rt.virtual else VERBS,
        }
        if rt.short_names:
            entry["shortNames"] = rt.short_names
        if rt.categories:
            entry["categories"] = rt.categories
        resources.append(entry)
        if rt.status:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if rt.scale:
            resources.append(
                {
                    "name": f"{rt.plural}/scale",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        if rt.key == ("", "pods"):
            resources.append(
                {
                    "name": "pods/log",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def aggregated(registry: Registry, groups: list[str]) -> dict[str, Any]:
    """The APIGroupDiscoveryList of groups (aggregated discovery, one request for all)."""
    items = []
    for group in groups:
        versions = []
        for version in registry.group_versions(group):
            resources = []
            for rt in sorted(registry.types[(group, version)].values(), key=lambda r: r.plural):
                rk = {"group": group, "version": version, "kind": rt.kind}
                entry: dict[str, Any] = {
                    "resource": rt.plural,
                    "responseKind": rk,
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular,
                    "verbs": ["create"] if rt.virtual else VERBS,
                }
                if rt.short_names:
                    entry["shortNames"] = rt.short_names
                if rt.categories:
                    entry["categories"] = rt.categories
                subs = []
                if rt.status:
                    subs.append(
                        {
                            "subresource": "status",
                            "responseKind": rk,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
                if rt.scale:
                    subs.append(
                        {
                            "subresource": "scale",
                            "responseKind": {
                                "group": "autoscaling",
                                "version": "v1",
                                "kind": "Scale",
                            },
                            "verbs": ["get", "patch", "update"],
                        }
                    )
                if rt.key == ("", "pods"):
                    subs.append({"subresource": "log", "responseKind": rk, "verbs": ["get"]})
                if subs:
                    entry["subresources"] = subs
                resources.append(entry)
            versions.append({"version": version, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def api_group(registry: Registry, group: str) -> dict[str, Any]:
    """The APIGroup of /apis/<group>; raises ApiError (404) for a group not served."""
    versions = registry.group_versions(group)
    if not versions:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": vs,
        "preferredVersion": vs[0],
    }


def _wants_aggregated(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" in accept.replace(" ", "")


def _aggregated_response(body: dict[str, Any]) -> web.Response:
    resp = web.Response(text=dumps(body))
    resp.headers["Content-Type"] = AGGREGATED
    return resp


class Discovery:
    """aiohttp handlers of /version, /api, /apis and /openapi over a `Registry`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.openapi = OpenAPI(registry)
        #: host:port clients reach the server at (set once it listens)
        self.address = "127.0.0.1:0"

    def add_routes(self, app: web.Application) -> None:
        """Route /version, /api, /apis and /openapi to these handlers."""
        app.router.add_get("/version", self.version)
        app.router.add_get("/api", self.api_root)
        app.router.add_get("/apis", self.apis_root)
        app.router.add_get("/openapi/v3", self.openapi_index)
        app.router.add_get("/openapi/v3/{path:.*}", self.openapi_doc)
        app.router.add_get("/openapi/v2", self.openapi_v2)

    async def version(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "major": "1",
                "minor": "37",
                "gitVersion": GIT_VERSION,
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    async def api_root(self, request: web.Request) -> web.Response:
        if _wants_aggregated(request):
            return _aggregated_response(aggregated(self.registry, [""]))
        return json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}
                ],
            }
        )

    async def apis_root(self, request: web.Request) -> web.Response:
        groups = [g for g in self.registry.group_order if g]
        if _wants_aggregated(request):
            return _aggregated_response(aggregated(self.registry, groups))
        out = []
        for g in groups:
            versions = [
                {"groupVersion": f"{g}/{v}", "version": v} for v in self.registry.group_versions(g)
            ]
            out.append({"name": g, "versions": versions, "preferredVersion": versions[0]})
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": out})

    async def openapi_index(self, request: web.Request) -> web.Response:
        return json_response(self.openapi.index())

    async def openapi_doc(self, request: web.Request) -> web.Response:
        doc = self.openapi.document(request.match_info["path"])
        if doc is None:
            return web.Response(status=404, text="404 page not found")
        return web.Response(body=doc, content_type="application/json")

    async def openapi_v2(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="404 page not found")
