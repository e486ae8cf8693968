"""The verbs of the API: get, create, update, patch, apply, scale, finalize, delete.

`Kubelite` runs each verb synchronously on the event loop (no awaits), which
makes read-decide-write atomic. Verbs raise `ApiError` and return plain dicts;
the HTTP handlers turn them into responses. Admission (defaults, validation)
lives in `admission`, the served types in `registry`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from fluxbus_common.selectors import selector_string

from . import errors, ssa
from .admission import check_fields, check_type_meta, set_defaults, validate
from .errors import ApiError
from .patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from .registry import Registry
from .resources import NS_KEY, ResourceType
from .ssa import jcopy
from .store import Store

#: the finalizer a Foreground delete puts on the owner until its dependents are gone
FOREGROUND = "foregroundDeletion"


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Options:
    """Request options that shape a write."""

    dry_run: bool = False
    manager: str = ""
    field_validation: str = "Warn"
    force: bool = False
    warnings: list[str] = field(default_factory=list)


class Kubelite:
    """The verbs of the API over a `Store` and a `Registry`."""

    def __init__(self, store: Store, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry if registry is not None else Registry()

    def check_namespace(self, rt: ResourceType, ns: str, creating: bool) -> None:
        """Raise ApiError unless ns exists (404) and, when creating, is not terminating (403)."""
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
        """The stored object; raises ApiError (404) when there is none."""
        obj = self.store.get(rt.key, ns, name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

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
                if _generation_changed(rt, old, new):
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

    def create(
        self, rt: ResourceType, ns: str, body: dict[str, Any], opts: Options, user_agent: str = ""
    ) -> dict[str, Any]:
        """POST: create body in ns; returns the stored object (what it would be on dry run).

        Raises ApiError: 400 bad body, 404 no namespace, 409 exists, 422 invalid.
        """
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        check_type_meta(self.registry, rt, body)
        body = check_fields(rt, body, opts.field_validation, opts.warnings, apply=False)
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
        set_defaults(rt, obj)
        validate(rt, obj, None)
        entries = ssa.update(
            None,
            obj,
            rt.shape(),
            [],
            _manager(opts, user_agent),
            rt.api_version,
            "",
            _scope(rt, ""),
            now(),
        )
        if entries:
            md["managedFields"] = ssa.encode_managed(entries)
        return self.commit(rt, None, obj, opts.dry_run)

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
        new = _reset(rt, old, new, subresource)
        md = new.setdefault("metadata", {})
        old_md = old["metadata"]
        md["name"] = old_md["name"]
        if "namespace" in old_md:
            md["namespace"] = old_md["namespace"]
        set_defaults(rt, new)
        validate(rt, new, old)
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
            _manager(opts, user_agent),
            rt.api_version,
            subresource,
            _scope(rt, subresource),
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
        """PUT: replace the object (or its status); returns the stored object. Raises ApiError."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        check_type_meta(self.registry, rt, body)
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
        body = check_fields(rt, body, opts.field_validation, opts.warnings, apply=False)
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
        base = rt.present(old)
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
        new = check_fields(rt, new, opts.field_validation, opts.warnings, apply=False)
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
        check_type_meta(self.registry, rt, config)
        cmd = config.get("metadata") or {}
        if cmd.get("name") and cmd["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({cmd['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and cmd.get("namespace") and cmd["namespace"] != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        config = check_fields(rt, config, opts.field_validation, opts.warnings, apply=True)
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
            live = jcopy(rt.present(old))
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
                _scope(rt, subresource),
                now(),
            )
        except ssa.ApplyConflict as e:
            raise ApiError(409, "Conflict", e.message, {"causes": e.causes()}) from e
        merged = _strip_nulls(merged)
        if not created:
            assert old is not None
            merged["apiVersion"] = old["apiVersion"]
            merged = _reset(rt, old, merged, subresource)
        mmd = merged.setdefault("metadata", {})
        if entries:
            mmd["managedFields"] = ssa.encode_managed(entries)
        else:
            mmd.pop("managedFields", None)
        if created:
            mmd["name"] = name
            if rt.namespaced:
                mmd["namespace"] = ns
            set_defaults(rt, merged)
            validate(rt, merged, None)
            return self.commit(rt, None, merged, opts.dry_run), True
        set_defaults(rt, merged)
        validate(rt, merged, old)
        return self.commit(rt, old, merged, opts.dry_run), False

    def finalize_namespace(self, name: str, body: Any, opts: Options) -> dict[str, Any]:
        """PUT .../namespaces/<name>/finalize: set spec.finalizers; a terminating
        namespace whose finalizers are all gone disappears at once."""
        rt = self.registry.type_for_key(NS_KEY)
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

    def update_scale(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        scale: dict[str, Any],
        opts: Options,
        user_agent: str,
    ) -> dict[str, Any]:
        """PUT .../scale: set the replicas; returns the new Scale. Raises ApiError."""
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
        new = jcopy(rt.present(old))
        _set_path(new, rt.scale_paths[0], replicas)
        new["metadata"].pop("managedFields", None)
        stored = self.finish_update(rt, old, new, opts, user_agent, "scale")
        return scale_of(rt, stored)

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


def _scope(rt: ResourceType, subresource: str) -> ssa.Scope:
    """The fields a write through this endpoint manages (status or all but status)."""
    if subresource == "status":
        return ssa.Scope(ignored=ssa.STRIPPED, only=(("f:status",),))
    if rt.status and subresource == "":
        return ssa.Scope(ignored=(*ssa.STRIPPED, ("f:status",)))
    return ssa.Scope(ignored=ssa.STRIPPED)


def _reset(
    rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
) -> dict[str, Any]:
    """Keep what a write through this endpoint may not change."""
    if subresource == "status":
        out: dict[str, Any] = jcopy(old)
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


def _generation_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the write changes more than metadata (and status, where it is a subresource)."""
    skip = {"metadata", "apiVersion", "kind"}
    if rt.status:
        skip.add("status")
    a = {k: v for k, v in old.items() if k not in skip}
    b = {k: v for k, v in new.items() if k not in skip}
    return a != b


def _manager(opts: Options, user_agent: str) -> str:
    """The field manager of a write: fieldManager, else the client's name."""
    if opts.manager:
        return opts.manager
    return (user_agent or "unknown").split("/")[0]


def scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale of obj (its scale subresource)."""
    spec_path, status_path, sel_path = rt.scale_paths
    md = obj["metadata"]
    selector: str | None
    if rt.crd is None:
        selector = selector_string((obj.get("spec") or {}).get("selector"))
    else:
        selector = _get_path(obj, sel_path) if sel_path else None
    status: dict[str, Any] = {"replicas": _get_path(obj, status_path) or 0}
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
        "spec": {"replicas": _get_path(obj, spec_path) or 0},
        "status": status,
    }


def _get_path(obj: Any, dotted: str) -> Any:
    cur = obj
    for part in dotted.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _strip_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_nulls(x) for x in v]
    return v
