"""The API machinery behind the HTTP surface: registry, writes, apply, delete.

Every operation runs synchronously on the event loop (no awaits), which makes
read-decide-write atomic. Operations raise `ApiError` and return plain dicts;
`server` turns them into HTTP.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from fluxbus_common.selectors import parse_label_selector, selector_string

from . import errors, ssa
from .crdvalidation import default_object
from .crdvalidation import validate_object as validate_custom_resource
from .errors import ApiError
from .patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from .resources import ResourceType, builtin_types, crd_types
from .schema import drop_unknown, type_errors, unknown_fields
from .ssa import jcopy
from .store import Key, Store
from .validation import (
    validate_annotations,
    validate_labels,
    validate_name,
)

CRD_KEY: Key = ("apiextensions.k8s.io", "customresourcedefinitions")
FOREGROUND = "foregroundDeletion"
NS_KEY: Key = ("", "namespaces")

APPS_WORKLOADS = {
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
}


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version_priority(v: str) -> tuple[int, int, int]:
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (0, 0, 0)
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (stage, int(m.group(1)), int(m.group(3) or 0))


def sort_versions(versions: list[str]) -> list[str]:
    """Versions by Kubernetes priority: GA before beta before alpha, higher first."""
    return sorted(versions, key=_version_priority, reverse=True)


@dataclass
class Options:
    """Request options that shape a write."""

    dry_run: bool = False
    manager: str = ""
    field_validation: str = "Warn"
    force: bool = False
    warnings: list[str] = field(default_factory=list)


def get_path(obj: Any, dotted: str) -> Any:
    cur = obj
    for part in dotted.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


class Kubelite:
    """Registry of resource types plus the operations of the API."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.types: dict[tuple[str, str], dict[str, ResourceType]] = {}
        self.group_order: list[str] = []
        for rt in builtin_types():
            self.register(rt)
        self.crd_types: dict[str, list[ResourceType]] = {}

    # ------------------------------------------------------------------ registry

    def register(self, rt: ResourceType) -> None:
        if rt.group not in self.group_order:
            self.group_order.append(rt.group)
        self.types.setdefault((rt.group, rt.version), {})[rt.plural] = rt

    def unregister(self, rt: ResourceType) -> None:
        gv = (rt.group, rt.version)
        self.types.get(gv, {}).pop(rt.plural, None)
        if not self.types.get(gv):
            self.types.pop(gv, None)
        if not any(g == rt.group for g, _ in self.types):
            self.group_order.remove(rt.group)

    def sync_crd(self, crd: dict[str, Any] | None, name: str) -> None:
        """(Re)register the types a CRD defines; None unregisters them."""
        for rt in self.crd_types.pop(name, []):
            self.unregister(rt)
        if crd is not None:
            rts = crd_types(crd)
            for rt in rts:
                self.register(rt)
            self.crd_types[name] = rts

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version), {}).get(plural)

    def group_versions(self, group: str) -> list[str]:
        return sort_versions([v for g, v in self.types if g == group])

    def type_for_key(self, key: Key) -> ResourceType | None:
        """A served type of a storage key (the preferred version)."""
        group, plural = key
        for v in self.group_versions(group):
            rt = self.lookup(group, v, plural)
            if rt is not None:
                return rt
        return None

    def type_for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self.types.get((group, version), {}).values():
            if rt.kind == kind:
                return rt
        return None

    # ------------------------------------------------------------------ helpers

    def present(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """obj as served through rt's version (CR versions share one store)."""
        if obj.get("apiVersion") == rt.api_version and obj.get("kind") == rt.kind:
            return obj
        return {**obj, "apiVersion": rt.api_version, "kind": rt.kind}

    def check_namespace(self, rt: ResourceType, ns: str, creating: bool) -> None:
        if not rt.namespaced:
            return
        nsobj = self.store.get(NS_KEY, "", ns)
        if nsobj is None:
            raise errors.not_found("namespaces", "", ns)
        if creating and nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{errors.qualified(rt.plural, rt.group)} "?" is forbidden: unable to create new '
                f"content in namespace {ns} because it is being terminated",
                {"kind": rt.plural, **({"group": rt.group} if rt.group else {})},
            )

    def get(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.key, ns, name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def _check_type_meta(self, rt: ResourceType, body: dict[str, Any]) -> None:
        av, kind = body.get("apiVersion"), body.get("kind")
        if av and av != rt.api_version:
            if self.type_for_kind(av, kind or "") is None or av.rpartition("/")[0] != rt.group:
                raise errors.bad_request(
                    f"the API version in the data ({av}) does not match the expected API "
                    f"version ({rt.api_version})"
                )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )

    def _fields(
        self, rt: ResourceType, obj: dict[str, Any], opts: Options, apply: bool
    ) -> dict[str, Any]:
        """Field validation: Strict rejects unknown fields, Warn warns, both prune them."""
        shape = rt.shape()
        if rt.crd is None:
            wrong = type_errors(obj, shape)
            if wrong:
                if apply:
                    gvk = f"{rt.api_version}, Kind={rt.kind}"
                    if not rt.group:
                        gvk = f"/{gvk}"
                    raise errors.bad_request(
                        f"failed to create typed patch object ({gvk}): " + "; ".join(wrong)
                    )
                raise errors.bad_request(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    + "; ".join(wrong)
                )
        unknown = unknown_fields(obj, shape)
        if not unknown:
            return obj
        if opts.field_validation == "Strict":
            if apply:
                gvk = f"{rt.api_version}, Kind={rt.kind}"
                if not rt.group:
                    gvk = f"/{gvk}"
                msg = "; ".join(f".{u}: field not declared in schema" for u in unknown)
                raise errors.bad_request(f"failed to create typed patch object ({gvk}): {msg}")
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
            )
        if opts.field_validation == "Warn":
            opts.warnings.extend(f'unknown field "{u}"' for u in unknown)
        return drop_unknown(obj, shape)

    def _validate(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        md = obj.get("metadata") or {}
        name = md.get("name", "")
        causes: list[tuple[str, str]] = []
        if old is None:
            causes.extend(validate_name(name, rt.kind))
        causes.extend(validate_labels(md.get("labels")))
        causes.extend(validate_annotations(md.get("annotations")))
        if (rt.group, rt.kind) in APPS_WORKLOADS:
            causes.extend(self._validate_workload(obj, old))
        if rt.crd is not None:
            causes.extend(validate_custom_resource(obj, rt.crd_schema))
        if old is not None:
            causes.extend(_immutable_fields(rt, obj, old))
        if rt.key == CRD_KEY:
            spec = obj.get("spec") or {}
            want = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"
            if name != want:
                causes.append(
                    (
                        "metadata.name",
                        f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                    )
                )
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)

    def _validate_workload(
        self, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> list[tuple[str, str]]:
        causes: list[tuple[str, str]] = []
        spec = obj.get("spec") or {}
        sel = spec.get("selector")
        if not sel:
            causes.append(("spec.selector", "Required value"))
        else:
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not parse_label_selector(selector_string(sel))(labels):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
                    )
                )
        if old is not None:
            old_sel = (old.get("spec") or {}).get("selector")
            if old_sel != sel:
                causes.append(
                    ("spec.selector", f"Invalid value: {_go_selector(sel)}: field is immutable")
                )
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
        if isinstance(containers, list):
            for i, c in enumerate(containers):
                if isinstance(c, dict) and not c.get("image"):
                    causes.append((f"spec.template.spec.containers[{i}].image", "Required value"))
        return causes

    def _defaults(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.crd is not None and rt.crd_schema:
            obj.update(default_object(obj, rt.crd_schema))
        spec = obj.get("spec")
        if (rt.group, rt.kind) in APPS_WORKLOADS and rt.kind != "DaemonSet":
            if isinstance(spec, dict) and "replicas" not in spec:
                spec["replicas"] = 1
        if rt.key == ("", "secrets") and "stringData" in obj:
            data = dict(obj.get("data") or {})
            for k, v in (obj.pop("stringData") or {}).items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
        if rt.key == ("", "secrets"):
            obj.setdefault("type", "Opaque")
        if rt.key == ("", "services") and isinstance(spec, dict):
            spec.setdefault("type", "ClusterIP")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
        if rt.key == NS_KEY:
            md = obj["metadata"]
            md["labels"] = {**(md.get("labels") or {}), "kubernetes.io/metadata.name": md["name"]}
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
        if rt.key == ("", "services") and isinstance(spec, dict):
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and "port" in p:
                    p.setdefault("targetPort", p["port"])
        if rt.key == ("apps", "deployments") and isinstance(spec, dict):
            strategy = spec.setdefault("strategy", {})
            if isinstance(strategy, dict):
                strategy.setdefault("type", "RollingUpdate")
                if strategy["type"] == "RollingUpdate":
                    ru = strategy.setdefault("rollingUpdate", {})
                    if isinstance(ru, dict):
                        ru.setdefault("maxUnavailable", "25%")
                        ru.setdefault("maxSurge", "25%")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        if isinstance(spec, dict):
            pod = (spec.get("template") or {}).get("spec") if "template" in spec else None
            if rt.key == ("", "pods"):
                pod = spec
            if rt.key == ("batch", "cronjobs"):
                job = (spec.get("jobTemplate") or {}).get("spec") or {}
                pod = (job.get("template") or {}).get("spec")
            if isinstance(pod, dict):
                _pod_defaults(pod, batch=rt.group == "batch")

    def _allocate_cluster_ip(self, svc: dict[str, Any]) -> None:
        """Give a new Service a cluster IP from 10.96.0.0/12, as the API server does."""
        spec = svc.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or spec.get("clusterIP"):
            return
        used = {(o.get("spec") or {}).get("clusterIP") for o in self.store.list(("", "services"))}
        n = len(used)
        while True:
            n += 1
            ip = f"10.{96 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255}"
            if ip not in used:
                break
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _generation_changed(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any]
    ) -> bool:
        skip = {"metadata", "apiVersion", "kind"}
        if rt.status:
            skip.add("status")
        a = {k: v for k, v in old.items() if k not in skip}
        b = {k: v for k, v in new.items() if k not in skip}
        return a != b

    def _manager(self, opts: Options, user_agent: str) -> str:
        if opts.manager:
            return opts.manager
        return (user_agent or "unknown").split("/")[0]

    # ------------------------------------------------------------------ commit

    def commit(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        dry_run: bool,
    ) -> dict[str, Any]:
        """Persist new (replacing old); no-ops keep old and its resourceVersion."""
        md = new["metadata"]
        for k in ("labels", "annotations", "finalizers", "ownerReferences"):
            if k in md and not md[k]:
                del md[k]
        if rt.crd is None:
            for k in ("data", "binaryData"):
                if k in new and not new[k]:
                    del new[k]
        if old is not None:
            if rt.key == ("", "services"):
                # like the API server: an update without clusterIP keeps the allocated one
                ospec, nspec = old.get("spec") or {}, new.setdefault("spec", {})
                for k in ("clusterIP", "clusterIPs"):
                    if ospec.get(k) and not nspec.get(k):
                        nspec[k] = ospec[k]
            omd = old["metadata"]
            for k in ("uid", "creationTimestamp", "name", "namespace"):
                if k in omd:
                    md[k] = omd[k]
                else:
                    md.pop(k, None)
            # only DELETE sets these; writes carry them over and cannot forge them
            md.pop("deletionTimestamp", None)
            md.pop("deletionGracePeriodSeconds", None)
            if "deletionTimestamp" in omd:
                md["deletionTimestamp"] = omd["deletionTimestamp"]
                md["deletionGracePeriodSeconds"] = omd.get("deletionGracePeriodSeconds", 0)
            md["resourceVersion"] = omd.get("resourceVersion", "")
            if rt.generation:
                gen = omd.get("generation", 1)
                if self._generation_changed(rt, old, new):
                    gen += 1
                md["generation"] = gen
            else:
                md.pop("generation", None)
            if new == old:
                return old
            if md.get("deletionTimestamp") and not md.get("finalizers") and rt.key != NS_KEY:
                if dry_run:
                    return new
                return self.store.remove(rt.key, new)
        else:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now()
            md.pop("deletionTimestamp", None)
            md.pop("deletionGracePeriodSeconds", None)
            if rt.key == ("", "services"):
                self._allocate_cluster_ip(new)
            if rt.generation:
                md["generation"] = 1
            md.pop("resourceVersion", None)
        if dry_run:
            return new
        return self.store.put(rt.key, new, old)

    # ------------------------------------------------------------------ create / update

    def create(
        self, rt: ResourceType, ns: str, body: dict[str, Any], opts: Options, user_agent: str = ""
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_type_meta(rt, body)
        body = self._fields(rt, body, opts, apply=False)
        obj = jcopy(body)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        md = obj.setdefault("metadata", {})
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + secrets.token_hex(3)[:5]
            else:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                )
        self.check_namespace(rt, ns, creating=True)
        if self.store.get(rt.key, ns if rt.namespaced else "", md["name"]) is not None:
            raise errors.already_exists(rt.plural, rt.group, md["name"])
        for k in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "selfLink",
        ):
            md.pop(k, None)
        md.pop("managedFields", None)
        if rt.status and rt.key != NS_KEY:
            obj.pop("status", None)
        self._defaults(rt, obj)
        self._validate(rt, obj, None)
        entries = ssa.update(
            None,
            obj,
            rt.shape(),
            [],
            self._manager(opts, user_agent),
            rt.api_version,
            "",
            self._scope(rt, ""),
            now(),
        )
        if entries:
            md["managedFields"] = ssa.encode_managed(entries)
        return self.commit(rt, None, obj, opts.dry_run)

    def _scope(self, rt: ResourceType, subresource: str) -> ssa.Scope:
        if subresource == "status":
            return ssa.Scope(ignored=ssa.STRIPPED, only=(("f:status",),))
        if rt.status and subresource == "":
            return ssa.Scope(ignored=(*ssa.STRIPPED, ("f:status",)))
        return ssa.Scope(ignored=ssa.STRIPPED)

    def _reset(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """Keep what a write through this endpoint may not change."""
        if subresource == "status":
            out = jcopy(old)
            if "status" in new:
                out["status"] = new["status"]
            else:
                out.pop("status", None)
            return out
        if rt.status and subresource == "":
            if "status" in old:
                new["status"] = jcopy(old["status"])
            else:
                new.pop("status", None)
        return new

    def finish_update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        opts: Options,
        user_agent: str,
        subresource: str = "",
        incoming_managed: Any = None,
    ) -> dict[str, Any]:
        """Shared tail of PUT and non-apply PATCH: reset, defaults, validation, managers."""
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        new = self._reset(rt, old, new, subresource)
        md = new.setdefault("metadata", {})
        old_md = old["metadata"]
        md["name"] = old_md["name"]
        if "namespace" in old_md:
            md["namespace"] = old_md["namespace"]
        self._defaults(rt, new)
        self._validate(rt, new, old)
        if old_md.get("deletionTimestamp"):
            added = set(md.get("finalizers") or []) - set(old_md.get("finalizers") or [])
            if added:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    old_md["name"],
                    [
                        (
                            "metadata.finalizers",
                            "Forbidden: no new finalizers can be added if the object is being deleted",
                        )
                    ],
                )
        base = old_md.get("managedFields")
        # as the API server: [] leaves managedFields alone, [{}] resets them
        if isinstance(incoming_managed, list) and incoming_managed and incoming_managed != base:
            base = [m for m in incoming_managed if m]
        entries = ssa.update(
            old,
            new,
            rt.shape(),
            ssa.decode_managed(base),
            self._manager(opts, user_agent),
            rt.api_version,
            subresource,
            self._scope(rt, subresource),
            now(),
        )
        if entries:
            md["managedFields"] = ssa.encode_managed(entries)
        else:
            md.pop("managedFields", None)
        return self.commit(rt, old, new, opts.dry_run)

    def replace(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: dict[str, Any],
        opts: Options,
        user_agent: str = "",
        subresource: str = "",
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_type_meta(rt, body)
        md = body.get("metadata") or {}
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced:
            self.check_namespace(rt, ns, creating=False)
        old = self.get(rt, ns, name)
        rv = md.get("resourceVersion")
        if rv and rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name)
        body = self._fields(rt, body, opts, apply=False)
        new = jcopy(body)
        new.setdefault("metadata", {}).pop("managedFields", None)
        for k in ("uid", "creationTimestamp", "resourceVersion", "generation"):
            new["metadata"].pop(k, None)
        return self.finish_update(
            rt, old, new, opts, user_agent, subresource, incoming_managed=md.get("managedFields")
        )

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        ctype: str,
        patch: Any,
        opts: Options,
        user_agent: str = "",
        subresource: str = "",
    ) -> dict[str, Any]:
        """A non-apply patch (merge, JSON or strategic)."""
        if rt.namespaced:
            self.check_namespace(rt, ns, creating=False)
        old = self.get(rt, ns, name)
        base = self.present(rt, old)
        try:
            if ctype == "application/merge-patch+json":
                new = merge_patch(base, patch)
            elif ctype == "application/json-patch+json":
                new = json_patch(base, patch)
            elif ctype == "application/strategic-merge-patch+json":
                if rt.crd is not None:
                    raise errors.unsupported_media(ctype)
                new = strategic_merge_patch(base, patch, rt.shape())
            else:
                raise errors.unsupported_media(ctype)
        except PatchError as e:
            raise ApiError(422, "Invalid", str(e)) from e
        if not isinstance(new, dict):
            raise errors.bad_request("the patch must produce an object")
        new = jcopy(new)
        md = new.get("metadata") or {}
        if md.get("name") not in (None, name):
            raise errors.bad_request(
                f'metadata.name: Invalid value: "{md.get("name")}": field is immutable'
            )
        rv = md.get("resourceVersion")
        if rv and rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name)
        new = self._fields(rt, new, opts, apply=False)
        incoming = md.get("managedFields")
        new.setdefault("metadata", {})
        return self.finish_update(
            rt,
            old,
            new,
            opts,
            user_agent,
            subresource,
            incoming_managed=incoming if incoming != old["metadata"].get("managedFields") else None,
        )

    # ------------------------------------------------------------------ server-side apply

    def apply(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        config: Any,
        opts: Options,
        subresource: str = "",
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply; returns the object and whether it was created."""
        if not opts.manager:
            raise errors.invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [("fieldManager", "Required value: is required for apply patch")],
            )
        if not isinstance(config, dict):
            raise errors.bad_request("the apply configuration must be an object")
        if not config.get("apiVersion") or not config.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply configuration")
        self._check_type_meta(rt, config)
        cmd = config.get("metadata") or {}
        if cmd.get("name") and cmd["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({cmd['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and cmd.get("namespace") and cmd["namespace"] != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        config = self._fields(rt, config, opts, apply=True)
        config = jcopy(config)
        cmd = config.setdefault("metadata", {})
        precondition = cmd.pop("resourceVersion", None)
        for k in (
            "managedFields",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
            "namespace",
            "name",
        ):
            cmd.pop(k, None)
        config["apiVersion"] = rt.api_version
        if subresource == "status":
            config = {
                "apiVersion": rt.api_version,
                "kind": rt.kind,
                "metadata": {},
                **({"status": config["status"]} if "status" in config else {}),
            }
        elif rt.status:
            config.pop("status", None)
        if rt.namespaced:
            self.check_namespace(rt, ns, creating=False)
        old = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if precondition and (old is None or precondition != old["metadata"].get("resourceVersion")):
            raise errors.conflict(rt.plural, rt.group, name)
        created = old is None
        if created:
            if subresource:
                raise errors.not_found(rt.plural, rt.group, name)
            self.check_namespace(rt, ns, creating=True)
            md: dict[str, Any] = {"name": name}
            if rt.namespaced:
                md["namespace"] = ns
            live: dict[str, Any] = {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": md}
            entries: list[ssa.Entry] = []
        else:
            assert old is not None
            live = jcopy(self.present(rt, old))
            entries = ssa.decode_managed(live["metadata"].get("managedFields"))
        live_cmp = jcopy(live)
        live_cmp["metadata"].pop("managedFields", None)
        try:
            merged, entries = ssa.apply(
                live_cmp,
                config,
                rt.shape(),
                entries,
                opts.manager,
                rt.api_version,
                subresource,
                opts.force,
                self._scope(rt, subresource),
                now(),
            )
        except ssa.ApplyConflict as e:
            raise ApiError(409, "Conflict", e.message, {"causes": e.causes()}) from e
        merged = _strip_nulls(merged)
        if not created:
            assert old is not None
            merged["apiVersion"] = old["apiVersion"]
            merged = self._reset(rt, old, merged, subresource)
        mmd = merged.setdefault("metadata", {})
        if entries:
            mmd["managedFields"] = ssa.encode_managed(entries)
        else:
            mmd.pop("managedFields", None)
        if created:
            mmd["name"] = name
            if rt.namespaced:
                mmd["namespace"] = ns
            self._defaults(rt, merged)
            self._validate(rt, merged, None)
            return self.commit(rt, None, merged, opts.dry_run), True
        self._defaults(rt, merged)
        self._validate(rt, merged, old)
        return self.commit(rt, old, merged, opts.dry_run), False

    def finalize_namespace(self, name: str, body: Any, opts: Options) -> dict[str, Any]:
        """PUT .../namespaces/<name>/finalize: set spec.finalizers; a terminating
        namespace whose finalizers are all gone disappears at once."""
        rt = self.type_for_key(NS_KEY)
        assert rt is not None
        old = self.get(rt, "", name)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        finalizers = list(((body.get("spec") or {}).get("finalizers")) or [])
        new = jcopy(old)
        new.setdefault("spec", {})["finalizers"] = finalizers
        new["metadata"].pop("managedFields", None)
        stored = self.finish_update(rt, old, new, opts, "", "finalize")
        if old["metadata"].get("deletionTimestamp") and not finalizers and not opts.dry_run:
            return self.store.remove(NS_KEY, stored)
        return stored

    # ------------------------------------------------------------------ scale

    def scale_of(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        spec_path, status_path, sel_path = rt.scale_paths
        md = obj["metadata"]
        selector: str | None
        if rt.crd is None:
            selector = selector_string((obj.get("spec") or {}).get("selector"))
        else:
            selector = get_path(obj, sel_path) if sel_path else None
        status: dict[str, Any] = {"replicas": get_path(obj, status_path) or 0}
        if selector:
            status["selector"] = selector
        out_md = {
            k: md[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in md
        }
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": out_md,
            "spec": {"replicas": get_path(obj, spec_path) or 0},
            "status": status,
        }

    def update_scale(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        scale: dict[str, Any],
        opts: Options,
        user_agent: str,
    ) -> dict[str, Any]:
        old = self.get(rt, ns, name)
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(
                "Scale",
                "autoscaling",
                name,
                [
                    (
                        "spec.replicas",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                    )
                ],
            )
        new = jcopy(self.present(rt, old))
        set_path(new, rt.scale_paths[0], replicas)
        new["metadata"].pop("managedFields", None)
        stored = self.finish_update(rt, old, new, opts, user_agent, "scale")
        return self.scale_of(rt, stored)

    # ------------------------------------------------------------------ delete

    def delete(
        self, rt: ResourceType, ns: str, name: str, options: dict[str, Any], dry_run: bool
    ) -> tuple[dict[str, Any], bool]:
        """Delete or start deleting; returns the object and whether it is gone."""
        if rt.namespaced:
            self.check_namespace(rt, ns, creating=False)
        old = self.get(rt, ns, name)
        pre = options.get("preconditions") or {}
        omd = old["metadata"]
        if pre.get("uid") and pre["uid"] != omd.get("uid"):
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {omd.get('uid')}",
                {"name": name, **({"group": rt.group} if rt.group else {}), "kind": rt.plural},
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != omd.get("resourceVersion"):
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {omd.get('resourceVersion')}",
                {"name": name, **({"group": rt.group} if rt.group else {}), "kind": rt.plural},
            )
        if omd.get("deletionTimestamp"):
            return old, False
        if rt.key == NS_KEY and name in ("default", "kube-system", "kube-public"):
            raise ApiError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": "namespaces"},
            )
        foreground = options.get("propagationPolicy") == "Foreground" and rt.key != NS_KEY
        pending = bool(omd.get("finalizers")) or rt.key == NS_KEY or foreground
        if pending:
            new = jcopy(old)
            md = new["metadata"]
            if foreground and FOREGROUND not in (md.get("finalizers") or []):
                # the garbage collector deletes the dependents, then drops this finalizer
                md["finalizers"] = [*(md.get("finalizers") or []), FOREGROUND]
            md["deletionTimestamp"] = now()
            md["deletionGracePeriodSeconds"] = 0
            if rt.key == NS_KEY:
                new.setdefault("status", {})["phase"] = "Terminating"
            if rt.generation:
                md["generation"] = md.get("generation", 1) + 1
            if dry_run:
                return new, False
            return self.store.put(rt.key, new, old), False
        if dry_run:
            return old, True
        return self.store.remove(rt.key, old), True


#: StatefulSet spec fields an update may change (all others are forbidden)
STATEFULSET_MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}


def _immutable_fields(
    rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]
) -> list[tuple[str, str]]:
    """Changes the API server refuses once an object exists (what Flux's force recreates)."""
    spec, ospec = obj.get("spec") or {}, old.get("spec") or {}
    if rt.key in (("", "configmaps"), ("", "secrets")) and old.get("immutable"):
        out = []
        for f in ("data", "binaryData"):
            if obj.get(f) != old.get(f):
                out.append((f, "Forbidden: field is immutable when `immutable` is set"))
        if not obj.get("immutable"):
            out.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
        return out
    if rt.key == ("batch", "jobs") and spec.get("template") != ospec.get("template"):
        return [("spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable")]
    if rt.key == ("apps", "statefulsets"):
        changed = {k for k in {**spec, **ospec} if spec.get(k) != ospec.get(k)}
        if changed - STATEFULSET_MUTABLE:
            return [
                (
                    "spec",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                    "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                    "and 'minReadySeconds' are forbidden",
                )
            ]
    if rt.key == ("", "persistentvolumeclaims"):
        a = {k: v for k, v in spec.items() if k not in ("resources", "volumeAttributesClassName")}
        b = {k: v for k, v in ospec.items() if k not in ("resources", "volumeAttributesClassName")}
        if a != b:
            return [
                (
                    "spec",
                    "Forbidden: spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims",
                )
            ]
    if rt.key == ("", "services"):
        old_ip, new_ip = ospec.get("clusterIP"), spec.get("clusterIP")
        if old_ip and new_ip and old_ip != new_ip:
            return [
                (
                    "spec.clusterIPs[0]",
                    f'Invalid value: []string{{"{new_ip}"}}: may not change once set',
                )
            ]
    return []


def _pod_defaults(pod: dict[str, Any], batch: bool) -> None:
    """The defaults the API server gives a pod spec and its containers."""
    if not batch:
        pod.setdefault("restartPolicy", "Always")
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("securityContext", {})
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        image = str(c.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")


def _strip_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_nulls(x) for x in v]
    return v


def _go_map(m: dict[str, Any]) -> str:
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(m.items()))
    return "map[string]string{" + inner + "}"


def _go_selector(sel: Any) -> str:
    sel = sel or {}
    ml = sel.get("matchLabels")
    mls = _go_map(ml) if ml else "map[string]string(nil)"
    return f"v1.LabelSelector{{MatchLabels:{mls}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}"
