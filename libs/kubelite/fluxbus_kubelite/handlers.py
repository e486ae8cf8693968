"""The REST handlers: routing /api and /apis paths to the verbs, list, patch and bodies.

Requests are decoded here (JSON, YAML, protobuf; query options), the verbs run
in `verbs.Kubelite`, watches stream from `watch.Watches`, and every `ApiError`
becomes a Status response.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import structlog
import yaml
from aiohttp import web
from prometheus_client import Counter

from fluxbus_common.selectors import SelectorError

from . import errors, protobuf, statuses
from .controllers import Controllers
from .discovery import api_group, resource_list
from .errors import ApiError
from .httputil import dumps, error_response, json_response, qbool, request_filters, wants_table
from .patches import PatchError, json_patch, merge_patch
from .resources import NS_KEY, ResourceType, review_status
from .tables import table_of
from .verbs import Kubelite, Options, scale_of
from .watch import Watches

log = structlog.get_logger("kubelite")

POD_KEY = ("", "pods")

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _YamlLoader = yaml.SafeLoader


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


def pod_log(pod: dict[str, Any], container: str | None, tail_lines: int) -> web.Response:
    """GET pods/<name>/log: what the container prints (statuses.run_container), once started."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    defined = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    every = {c.get("name", ""): c for c in [*(spec.get("initContainers") or []), *defined]}
    if not container:
        if len(defined) != 1:
            choices = " ".join(c.get("name", "") for c in defined)
            raise errors.bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{choices}]"
            )
        container = defined[0].get("name", "")
    if container not in every:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    found = (pod.get("status") or {}).get("containerStatuses") or []
    state = next((cs.get("state") or {} for cs in found if cs.get("name") == container), {})
    waiting = state.get("waiting") if state else {"reason": "ContainerCreating"}
    if waiting is not None and not any(cs.get("lastState") for cs in found):
        raise errors.bad_request(
            f'container "{container}" in pod "{name}" is waiting to start: '
            f"{waiting.get('reason', 'ContainerCreating')}"
        )
    lines = statuses.run_container(every[container]).log.splitlines(keepends=True)
    text = "".join(lines[-tail_lines:] if tail_lines > 0 else lines)
    return web.Response(text=text, content_type="text/plain")


class RestHandlers:
    """aiohttp handlers of every verb on /api/v1/... and /apis/<g>/<v>/... over a `Kubelite`."""

    def __init__(
        self,
        kube: Kubelite,
        watches: Watches,
        requests: Counter,
        controllers: Controllers | None = None,
    ) -> None:
        self.kube = kube
        self.store = kube.store
        self.watches = watches
        #: kubelite_requests{verb, code}
        self.requests = requests
        #: orphaning deletes ask the garbage collector to let go of dependents
        self.controllers = controllers

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Serve one request under /api or /apis; errors become Status responses."""
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
            return json_response(api_group(self.kube.registry, group))
        if (group, version) not in self.kube.registry.types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if request.method != "GET":
                raise errors.method_not_allowed()
            return json_response(resource_list(self.kube.registry, group, version))
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            plural, tail = rest[0], rest[1:]
        rt = self.kube.registry.lookup(group, version, plural)
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
            or (sub == "log" and rt.key == POD_KEY)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "finalize":
            if request.method != "PUT" or name is None:
                raise errors.method_not_allowed()
            body = await self._body(request)
            obj = self.kube.finalize_namespace(name, body, self._opts(request))
            return json_response(rt.present(obj))
        nsv = ns or ""
        m = request.method
        q = request.query
        if name is None:
            if m == "GET":
                if qbool(q.get("watch")):
                    return await self.watches.stream(request, rt, ns)
                return self.list(request, rt, ns)
            if m == "POST":
                if rt.namespaced and ns is None:
                    raise errors.method_not_allowed()
                body = await self._body(request)
                opts = self._opts(request)
                obj = self.kube.create(rt, nsv, body, opts, request.headers.get("User-Agent", ""))
                return json_response(rt.present(obj), 201, opts.warnings)
            if m == "DELETE":
                return await self.delete_collection(request, rt, ns)
            raise errors.method_not_allowed()
        if m == "GET":
            if qbool(q.get("watch")):
                return await self.watches.stream(request, rt, ns, name)
            obj = self.kube.get(rt, nsv, name)
            if sub == "log":
                return pod_log(obj, q.get("container"), int(q.get("tailLines") or 0))
            if sub == "scale":
                return json_response(scale_of(rt, obj))
            include = wants_table(request)
            if include is not None and not sub:
                rv = obj["metadata"].get("resourceVersion", "")
                return json_response(table_of(rt, [obj], rv, include))
            return json_response(rt.present(obj))
        if m == "PUT":
            body = await self._body(request)
            opts = self._opts(request)
            ua = request.headers.get("User-Agent", "")
            if sub == "scale":
                return json_response(
                    self.kube.update_scale(rt, nsv, name, body, opts, ua), 200, opts.warnings
                )
            obj = self.kube.replace(rt, nsv, name, body, opts, ua, sub)
            return json_response(rt.present(obj), 200, opts.warnings)
        if m == "PATCH":
            return await self.patch(request, rt, nsv, name, sub)
        if m == "DELETE":
            body = await self._body(request, allow_empty=True) or {}
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            if q.get("propagationPolicy") and "propagationPolicy" not in body:
                body["propagationPolicy"] = q["propagationPolicy"]
            if body.get("orphanDependents") is not None and "propagationPolicy" not in body:
                # the deprecated form of the same choice
                body["propagationPolicy"] = "Orphan" if body["orphanDependents"] else "Background"
            dry = self._dry_run(request) or "All" in (body.get("dryRun") or [])
            if rt.namespaced:
                self.kube.check_namespace(rt, nsv, creating=False)
            if body.get("propagationPolicy") == "Orphan" and not dry:
                owner = self.kube.get(rt, nsv, name)  # 404 before touching dependents
                if self.controllers is not None:
                    self.controllers.orphan_dependents(owner)
            obj, _ = self.kube.delete(rt, nsv, name, body, dry)
            return json_response(rt.present(obj))
        raise errors.method_not_allowed()

    def list(self, request: web.Request, rt: ResourceType, ns: str | None) -> web.Response:
        label_ok, field_ok = request_filters(request)
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
            items.append(rt.present(obj))
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if remaining and items:
            last = items[-1]["metadata"]
            token = {"rv": rv, "ns": last.get("namespace", ""), "name": last["name"]}
            cont = base64.urlsafe_b64encode(dumps(token).encode()).decode()
            meta["continue"] = cont
            meta["remainingItemCount"] = remaining
        include = wants_table(request)
        if include is not None:
            table = table_of(rt, items, str(rv), include)
            table["metadata"] = meta
            return json_response(table)
        return json_response(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}
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
            return json_response(rt.present(obj), 201 if created else 200, opts.warnings)
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
            current = scale_of(rt, obj)
            try:
                if ctype == "application/json-patch+json":
                    new_scale = json_patch(current, patch)
                else:
                    new_scale = merge_patch(current, patch)
            except PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from e
            return json_response(self.kube.update_scale(rt, ns, name, new_scale, opts, ua))
        obj = self.kube.patch(rt, ns, name, ctype, patch, opts, ua, sub)
        return json_response(rt.present(obj), 200, opts.warnings)

    async def delete_collection(
        self, request: web.Request, rt: ResourceType, ns: str | None
    ) -> web.Response:
        label_ok, field_ok = request_filters(request)
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
            out.append(rt.present(gone_obj))
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": out,
            }
        )

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
                raise errors.unsupported_media(ctype, protobuf=False) from e
        try:
            if "yaml" in ctype:
                return yaml.load(raw.decode("utf-8"), Loader=_YamlLoader)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise errors.bad_request(f"the body of the request could not be decoded: {e}") from e
