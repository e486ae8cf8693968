"""The HTTP surface of kubelite (aiohttp) and `KubeliteServer`, its embeddable form.

Serves discovery (legacy and aggregated), `/version`, `/openapi/v3`, and every
verb on `/api/v1/...` and `/apis/<g>/<v>/...` as kubelite.md specifies.

    async with KubeliteServer(port=0) as srv:
        print(srv.url, srv.kubeconfig_path)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import structlog
import yaml
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from fluxbus_common.selectors import SelectorError, parse_field_selector, parse_label_selector

from . import errors, protobuf, tables
from .controllers import Controllers, SimulationConfig
from .core import NS_KEY, Kubelite, Options, now
from .errors import ApiError
from .openapi import OpenAPI
from .patches import PatchError, json_patch, merge_patch
from .resources import VERBS, ResourceType, review_status
from .store import DEFAULT_HISTORY, Event, Persistence, Store

log = structlog.get_logger("kubelite")

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#: seconds between BOOKMARK events on watches that allow them (real servers: about a minute)
DEFAULT_BOOKMARK_INTERVAL = 5.0
GIT_VERSION = "v1.37.0-kubelite"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _YamlLoader = yaml.SafeLoader


def qbool(value: str | None) -> bool:
    """A boolean query parameter as the API server parses it."""
    if value is None:
        return False
    return value.strip().lower() not in ("", "0", "false")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(text=dumps(obj), status=status, content_type="application/json")
    for w in warnings or []:
        resp.headers.add("Warning", f'299 - "{w}"'.replace("\n", " "))
    return resp


def _parse_apply_body(raw: bytes) -> Any:
    """An apply configuration: JSON (most clients, and fast) or YAML."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.bad_request(f"error decoding YAML: {e}") from e
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow mappings also start with "{"
    try:
        return yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error decoding YAML: {e}") from e


def error_response(err: ApiError) -> web.Response:
    return json_response(err.status(), status=err.code)


class Api:
    """aiohttp handlers over a `Kubelite`."""

    def __init__(
        self, kube: Kubelite, bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL
    ) -> None:
        self.kube = kube
        self.store = kube.store
        self.openapi = OpenAPI(kube)
        self.bookmark_interval = bookmark_interval
        self.stopping = asyncio.Event()
        self.address = "127.0.0.1:0"
        self.controllers: Controllers | None = None
        # a registry per server: several servers may run in one process (tests)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kubelite_requests",
            "API requests by verb and code",
            ["verb", "code"],
            registry=self.registry,
        )
        Gauge("kubelite_objects", "Objects stored", registry=self.registry).set_function(
            self.store.count
        )
        Gauge("kubelite_watches", "Open watches", registry=self.registry).set_function(
            lambda: len(self.store.watchers)
        )
        Gauge(
            "kubelite_resource_version", "Current resourceVersion", registry=self.registry
        ).set_function(lambda: self.store.rv)

    def app(self) -> web.Application:
        # large enough for any manifest a user applies (the API server's own limit is 3 MiB
        # per object, but lists of objects may be posted to deletecollection and the like)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/version", self.version)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.ok)
        app.router.add_get("/readyz", self.ok)
        app.router.add_get("/livez", self.ok)
        app.router.add_get("/api", self.api_root)
        app.router.add_get("/apis", self.apis_root)
        app.router.add_get("/openapi/v3", self.openapi_index)
        app.router.add_get("/openapi/v3/{path:.*}", self.openapi_doc)
        app.router.add_get("/openapi/v2", self.openapi_v2)
        app.router.add_route("*", "/api/{path:.*}", self.dispatch)
        app.router.add_route("*", "/apis/{path:.*}", self.dispatch)
        return app

    # ------------------------------------------------------------------ plain

    async def ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(self, request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

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

    # ------------------------------------------------------------------ discovery

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for rt in sorted(
            self.kube.types.get((group, version), {}).values(), key=lambda r: r.plural
        ):
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
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _aggregated(self, groups: list[str]) -> dict[str, Any]:
        items = []
        for group in groups:
            versions = []
            for version in self.kube.group_versions(group):
                resources = []
                for rt in sorted(
                    self.kube.types[(group, version)].values(), key=lambda r: r.plural
                ):
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
                    if subs:
                        entry["subresources"] = subs
                    resources.append(entry)
                versions.append(
                    {"version": version, "resources": resources, "freshness": "Current"}
                )
            items.append(
                {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}
            )
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }

    def _wants_aggregated(self, request: web.Request) -> bool:
        accept = request.headers.get("Accept", "")
        return "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" in accept.replace(" ", "")

    def _aggregated_response(self, body: dict[str, Any]) -> web.Response:
        resp = web.Response(text=dumps(body))
        resp.headers["Content-Type"] = AGGREGATED
        return resp

    async def api_root(self, request: web.Request) -> web.Response:
        if self._wants_aggregated(request):
            return self._aggregated_response(self._aggregated([""]))
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
        groups = [g for g in self.kube.group_order if g]
        if self._wants_aggregated(request):
            return self._aggregated_response(self._aggregated(groups))
        out = []
        for g in groups:
            versions = [
                {"groupVersion": f"{g}/{v}", "version": v} for v in self.kube.group_versions(g)
            ]
            out.append({"name": g, "versions": versions, "preferredVersion": versions[0]})
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": out})

    # ------------------------------------------------------------------ openapi

    async def openapi_index(self, request: web.Request) -> web.Response:
        return json_response(self.openapi.index())

    async def openapi_doc(self, request: web.Request) -> web.Response:
        doc = self.openapi.document(request.match_info["path"])
        if doc is None:
            return web.Response(status=404, text="404 page not found")
        return web.Response(body=doc, content_type="application/json")

    async def openapi_v2(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="404 page not found")

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        resp = await self._dispatch_safely(request)
        verb = "WATCH" if qbool(request.query.get("watch")) else request.method
        self.requests.labels(verb, str(resp.status)).inc()
        return resp

    async def _dispatch_safely(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as e:
            return error_response(e)
        except SelectorError as e:
            return error_response(errors.bad_request(str(e)))
        except (ValueError, TypeError, KeyError) as e:
            # malformed input that slipped past validation: answer like the API server would
            log.warning("kubelite.bad_request", path=request.path, error=repr(e))
            return error_response(errors.bad_request(f"invalid request: {e}"))
        except Exception as e:
            log.exception("kubelite.internal_error", path=request.path, method=request.method)
            return error_response(ApiError(500, "InternalError", f"Internal error occurred: {e}"))

    def _route(self, request: web.Request) -> tuple[str, str, list[str]]:
        parts = [p for p in request.path.split("/") if p]
        if parts[0] == "api":
            if len(parts) < 2 or parts[1] != "v1":
                raise errors.not_found("", "", request.path)
            return "", "v1", parts[2:]
        if len(parts) < 3:
            if len(parts) == 2:
                return parts[1], "", []
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return parts[1], parts[2], parts[3:]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        group, version, rest = self._route(request)
        if not version:
            versions = self.kube.group_versions(group)
            if not versions:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
            return json_response(
                {
                    "kind": "APIGroup",
                    "apiVersion": "v1",
                    "name": group,
                    "versions": vs,
                    "preferredVersion": vs[0],
                }
            )
        if (group, version) not in self.kube.types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if request.method != "GET":
                raise errors.method_not_allowed()
            return json_response(self._resource_list(group, version))
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            plural, tail = rest[0], rest[1:]
        rt = self.kube.lookup(group, version, plural)
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and ns is None and tail:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rt.namespaced and ns is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rt.virtual:
            if request.method != "POST" or tail:
                raise errors.method_not_allowed()
            try:
                body = await self._body(request)
            except ApiError:
                body = {}  # protobuf reviews: the answer does not depend on the question
            return json_response(review_status(rt, body if isinstance(body, dict) else {}), 201)
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else ""
        if sub and not (
            (sub == "status" and rt.status)
            or (sub == "scale" and rt.scale)
            or (sub == "finalize" and rt.key == NS_KEY)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "finalize":
            if request.method != "PUT" or name is None:
                raise errors.method_not_allowed()
            body = await self._body(request)
            obj = self.kube.finalize_namespace(name, body, self._opts(request))
            return json_response(self.kube.present(rt, obj))
        nsv = ns or ""
        m = request.method
        q = request.query
        if name is None:
            if m == "GET":
                if qbool(q.get("watch")):
                    return await self.watch(request, rt, ns)
                return self.list(request, rt, ns)
            if m == "POST":
                if rt.namespaced and ns is None:
                    raise errors.method_not_allowed()
                body = await self._body(request)
                opts = self._opts(request)
                obj = self.kube.create(rt, nsv, body, opts, request.headers.get("User-Agent", ""))
                return json_response(self.kube.present(rt, obj), 201, opts.warnings)
            if m == "DELETE":
                return await self.delete_collection(request, rt, ns)
            raise errors.method_not_allowed()
        if m == "GET":
            if qbool(q.get("watch")):
                return await self.watch(request, rt, ns, name)
            obj = self.kube.get(rt, nsv, name)
            if sub == "scale":
                return json_response(self.kube.scale_of(rt, obj))
            include = self._table(request)
            if include is not None and not sub:
                rv = obj["metadata"].get("resourceVersion", "")
                return json_response(self._as_table(rt, [obj], rv, include))
            return json_response(self.kube.present(rt, obj))
        if m == "PUT":
            body = await self._body(request)
            opts = self._opts(request)
            ua = request.headers.get("User-Agent", "")
            if sub == "scale":
                return json_response(
                    self.kube.update_scale(rt, nsv, name, body, opts, ua), 200, opts.warnings
                )
            obj = self.kube.replace(rt, nsv, name, body, opts, ua, sub)
            return json_response(self.kube.present(rt, obj), 200, opts.warnings)
        if m == "PATCH":
            return await self.patch(request, rt, nsv, name, sub)
        if m == "DELETE":
            body = await self._body(request, allow_empty=True) or {}
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            if q.get("propagationPolicy") and "propagationPolicy" not in body:
                body["propagationPolicy"] = q["propagationPolicy"]
            dry = self._dry_run(request) or "All" in (body.get("dryRun") or [])
            if rt.namespaced:
                self.kube.check_namespace(rt, nsv, creating=False)
            if body.get("propagationPolicy") == "Orphan" and not dry:
                owner = self.kube.get(rt, nsv, name)  # 404 before touching dependents
                if self.controllers is not None:
                    self.controllers.orphan_dependents(owner)
            obj, _ = self.kube.delete(rt, nsv, name, body, dry)
            return json_response(self.kube.present(rt, obj))
        raise errors.method_not_allowed()

    def _table(self, request: web.Request) -> str | None:
        """includeObject policy when the client asked for a Table, else None."""
        if "as=Table" not in request.headers.get("Accept", "").replace(" ", ""):
            return None
        return request.query.get("includeObject", "Metadata") or "Metadata"

    def _as_table(
        self, rt: ResourceType, objs: list[dict[str, Any]], rv: str, include: str
    ) -> dict[str, Any]:
        return tables.to_table(
            rt.kind, [self.kube.present(rt, o) for o in objs], rv, include, rt.printer_columns
        )

    async def patch(
        self, request: web.Request, rt: ResourceType, ns: str, name: str, sub: str
    ) -> web.Response:
        ctype = (request.content_type or "").lower()
        raw = await request.read()
        opts = self._opts(request)
        ua = request.headers.get("User-Agent", "")
        if ctype == "application/apply-patch+yaml":
            config = _parse_apply_body(raw)
            if sub == "scale":
                raise errors.unsupported_media(ctype)
            obj, created = self.kube.apply(rt, ns, name, config, opts, sub)
            return json_response(self.kube.present(rt, obj), 201 if created else 200, opts.warnings)
        if ctype not in (
            "application/merge-patch+json",
            "application/json-patch+json",
            "application/strategic-merge-patch+json",
        ):
            raise errors.unsupported_media(ctype)
        try:
            patch = json.loads(raw or b"null")
        except ValueError as e:
            raise errors.bad_request(f"error decoding patch: {e}") from e
        if sub == "scale":
            obj = self.kube.get(rt, ns, name)
            current = self.kube.scale_of(rt, obj)
            try:
                if ctype == "application/json-patch+json":
                    new_scale = json_patch(current, patch)
                else:
                    new_scale = merge_patch(current, patch)
            except PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from e
            return json_response(self.kube.update_scale(rt, ns, name, new_scale, opts, ua))
        obj = self.kube.patch(rt, ns, name, ctype, patch, opts, ua, sub)
        return json_response(self.kube.present(rt, obj), 200, opts.warnings)

    def _dry_run(self, request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for v in values:
            if v != "All":
                raise errors.bad_request(f'Invalid value: "{v}": supported values: "All"')
        return bool(values)

    def _opts(self, request: web.Request) -> Options:
        q = request.query
        fv = q.get("fieldValidation", "Warn") or "Warn"
        if fv not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f"invalid fieldValidation directive: {fv}")
        return Options(
            dry_run=self._dry_run(request),
            manager=q.get("fieldManager", ""),
            field_validation=fv,
            force=qbool(q.get("force")),
        )

    async def _body(self, request: web.Request, allow_empty: bool = False) -> Any:
        raw = await request.read()
        if not raw:
            if allow_empty:
                return None
            raise errors.bad_request("the request body is empty")
        ctype = (request.content_type or "application/json").lower()
        if "protobuf" in ctype:
            try:
                return protobuf.decode(raw)
            except protobuf.Unsupported as e:
                raise errors.unsupported_media(ctype) from e
        try:
            if "yaml" in ctype:
                return yaml.load(raw.decode("utf-8"), Loader=_YamlLoader)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise errors.bad_request(f"the body of the request could not be decoded: {e}") from e

    # ------------------------------------------------------------------ list / watch

    def _filters(self, request: web.Request) -> tuple[Any, Any]:
        q = request.query
        return parse_label_selector(q.get("labelSelector")), parse_field_selector(
            q.get("fieldSelector")
        )

    def list(self, request: web.Request, rt: ResourceType, ns: str | None) -> web.Response:
        label_ok, field_ok = self._filters(request)
        q = request.query
        limit = int(q.get("limit") or 0)
        start: tuple[str, str] | None = None
        rv = self.store.rv
        if q.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(q["continue"].encode()))
                start, rv = (token["ns"], token["name"]), token["rv"]
            except (ValueError, KeyError) as e:
                raise errors.bad_request("continue key is not valid") from e
        items: list[dict[str, Any]] = []
        cont = None
        remaining = 0
        for obj in self.store.list(rt.key, ns):
            md = obj["metadata"]
            pos = (md.get("namespace", ""), md["name"])
            if start is not None and pos <= start:
                continue
            if not label_ok(md.get("labels") or {}) or not field_ok(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(self.kube.present(rt, obj))
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if remaining and items:
            last = items[-1]["metadata"]
            token = {"rv": rv, "ns": last.get("namespace", ""), "name": last["name"]}
            cont = base64.urlsafe_b64encode(dumps(token).encode()).decode()
            meta["continue"] = cont
            meta["remainingItemCount"] = remaining
        include = self._table(request)
        if include is not None:
            table = self._as_table(rt, items, str(rv), include)
            table["metadata"] = meta
            return json_response(table)
        return json_response(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}
        )

    async def watch(
        self, request: web.Request, rt: ResourceType, ns: str | None, name: str | None = None
    ) -> web.StreamResponse:
        label_ok, field_ok = self._filters(request)
        q = request.query
        if name is not None:
            field_ok_base = field_ok
            field_ok = lambda o: o["metadata"]["name"] == name and field_ok_base(o)  # noqa: E731

        def matches(obj: dict[str, Any] | None) -> bool:
            return (
                obj is not None and label_ok(obj["metadata"].get("labels") or {}) and field_ok(obj)
            )

        timeout = q.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        bookmarks = qbool(q.get("allowWatchBookmarks"))
        initial_events = qbool(q.get("sendInitialEvents"))
        rv_param = q.get("resourceVersion", "")
        table = self._table(request)
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        resp.headers["Transfer-Encoding"] = "chunked"
        # everything up to subscribe runs without awaiting: no event can slip between
        initial: list[dict[str, Any]] = []
        replay: list[Event] = []
        expired: str | None = None
        start_rv = self.store.rv
        if initial_events or rv_param in ("", "0"):
            initial = [o for o in self.store.list(rt.key, ns) if matches(o)]
        else:
            try:
                since = int(rv_param)
            except ValueError as e:
                raise errors.bad_request(f'invalid resource version "{rv_param}"') from e
            if since < self.store.compacted_rv:
                expired = f"too old resource version: {since} ({self.store.compacted_rv})"
            else:
                replay = self.store.since(since, rt.key, ns)
        watcher = self.store.subscribe(rt.key, ns) if expired is None else None
        try:
            await resp.prepare(request)
            if expired is not None:
                err = errors.gone(expired).status()
                await resp.write((dumps({"type": "ERROR", "object": err}) + "\n").encode())
                return resp
            buf = []
            for obj in initial:
                if table is not None:
                    rv = obj["metadata"].get("resourceVersion", "")
                    shown = self._as_table(rt, [obj], rv, table)
                else:
                    shown = self.kube.present(rt, obj)
                buf.append(dumps({"type": "ADDED", "object": shown}))
            if initial_events:
                buf.append(
                    dumps({"type": "BOOKMARK", "object": self._bookmark(rt, start_rv, True)})
                )
            for past in replay:
                line = self._event_line(rt, past, matches, table)
                if line:
                    buf.append(line)
            if buf:
                await resp.write(("\n".join(buf) + "\n").encode())
            assert watcher is not None
            last_bookmark = time.monotonic()
            last_rv = max(start_rv, replay[-1].rv if replay else 0)
            while not self.stopping.is_set():
                # wake at least once a second: aiohttp does not cancel a handler whose
                # client went away, so the watch checks its transport, and sends bookmarks
                wait = 1.0
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
                except TimeoutError:
                    ev = None
                    if request.transport is None or request.transport.is_closing():
                        break
                    if bookmarks and time.monotonic() - last_bookmark >= self.bookmark_interval:
                        last_bookmark = time.monotonic()
                        await resp.write(
                            (
                                dumps(
                                    {
                                        "type": "BOOKMARK",
                                        "object": self._bookmark(rt, last_rv, False),
                                    }
                                )
                                + "\n"
                            ).encode()
                        )
                    continue
                if ev is None:
                    break
                last_rv = ev.rv
                lines = [self._event_line(rt, ev, matches, table)]
                while not watcher.queue.empty():
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        self.stopping.set()
                        break
                    last_rv = nxt.rv
                    lines.append(self._event_line(rt, nxt, matches, table))
                text = "\n".join(x for x in lines if x)
                if text:
                    await resp.write((text + "\n").encode())
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            if watcher is not None:
                self.store.unsubscribe(watcher)
        with contextlib.suppress(ConnectionResetError, ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp

    def _bookmark(self, rt: ResourceType, rv: int, initial_end: bool) -> dict[str, Any]:
        md: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md}

    def _event_line(
        self, rt: ResourceType, ev: Event, matches: Any, table: str | None = None
    ) -> str:
        new_ok = matches(ev.obj)
        old_ok = matches(ev.old) if ev.old is not None else False
        if ev.type == "DELETED":
            if not old_ok and not new_ok:
                return ""
            t = "DELETED"
        elif ev.type == "ADDED":
            if not new_ok:
                return ""
            t = "ADDED"
        else:
            if new_ok and old_ok:
                t = "MODIFIED"
            elif new_ok:
                t = "ADDED"
            elif old_ok:
                t = "DELETED"
            else:
                return ""
        if table is not None:
            rv = ev.obj["metadata"].get("resourceVersion", "")
            return dumps({"type": t, "object": self._as_table(rt, [ev.obj], rv, table)})
        return dumps({"type": t, "object": self.kube.present(rt, ev.obj)})

    async def delete_collection(
        self, request: web.Request, rt: ResourceType, ns: str | None
    ) -> web.Response:
        label_ok, field_ok = self._filters(request)
        body = await self._body(request, allow_empty=True) or {}
        dry = self._dry_run(request)
        if ns is not None:
            self.kube.check_namespace(rt, ns, creating=False)
        out = []
        for obj in self.store.list(rt.key, ns):
            md = obj["metadata"]
            if not label_ok(md.get("labels") or {}) or not field_ok(obj):
                continue
            gone_obj, _ = self.kube.delete(rt, md.get("namespace", ""), md["name"], body, dry)
            out.append(self.kube.present(rt, gone_obj))
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": out,
            }
        )


def write_kubeconfig(path: str | os.PathLike[str], url: str, context: str = "kubelite") -> None:
    """Write a kubeconfig pointing at url (plain HTTP, any token)."""
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": "kubelite"}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.replace(tmp, p)


class KubeliteServer:
    """kubelite in-process: `async with KubeliteServer(port=0) as srv: srv.url`.

    Arguments: host/port (0 picks a free port), kubeconfig (path written once
    listening), state (SQLite file for persistence), simulate (workload
    controllers), simulation (a SimulationConfig), history (watch events kept
    for resuming watches; older resourceVersions get 410), bookmark_interval.

    Once started: `.url`, `.port`, `.kubeconfig_path`, `.store` (the objects),
    `.kube` (the API operations). Touch `.store` only from the server's loop.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        kubeconfig: str | os.PathLike[str] | None = None,
        state: str | os.PathLike[str] | None = None,
        simulate: bool = True,
        simulation: SimulationConfig | None = None,
        history: int = DEFAULT_HISTORY,
        bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
    ) -> None:
        self.host = host
        self.port = port
        self.kubeconfig_path = str(kubeconfig) if kubeconfig else None
        self.persistence = Persistence(str(state)) if state else None
        self.store = Store(history=history, persistence=self.persistence)
        self.kube = Kubelite(self.store)
        self.simulation = simulation or SimulationConfig(enabled=simulate)
        if not simulate:
            self.simulation.enabled = False
        self.api = Api(self.kube, bookmark_interval=bookmark_interval)
        self.controllers = Controllers(self.kube, self.simulation)
        self.api.controllers = self.controllers
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> KubeliteServer:
        loaded = self.store.load()
        for key, obj in loaded:
            if key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                self.kube.sync_crd(obj, obj["metadata"]["name"])
        if self.persistence is not None:
            self.persistence.start()
        for ns in DEFAULT_NAMESPACES:
            if self.store.get(NS_KEY, "", ns) is None:
                rt = self.kube.lookup("", "v1", "namespaces")
                assert rt is not None
                self.kube.create(rt, "", {"metadata": {"name": ns}}, Options(manager="kubelite"))
        self.controllers.start()
        # open watches are told to end on stop; one second is plenty for them to go
        self._runner = web.AppRunner(self.api.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sock = server.sockets[0]  # type: ignore[attr-defined]
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self.api.address = f"{self.host}:{self.port}"
        if self.kubeconfig_path:
            write_kubeconfig(self.kubeconfig_path, self.url)
        return self

    async def stop(self) -> None:
        self.api.stopping.set()
        self.store.close_watchers()
        await self.controllers.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.persistence is not None:
            await asyncio.to_thread(self.persistence.close)

    async def __aenter__(self) -> KubeliteServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = ["KubeliteServer", "now", "write_kubeconfig"]
