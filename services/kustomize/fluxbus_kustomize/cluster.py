"""The target-cluster adapter: the only module of the kustomize service that
imports kubernetes_asyncio (and aiohttp, which it runs on).

What it does, as kustomize-controller (fluxcd/pkg/ssa) does it:

- connects from `KUBECONFIG` (or `~/.kube/config`) or the in-cluster service
  account;
- discovers each apiVersion's resources lazily (`/api/v1`, `/apis/<g>/<v>`)
  and refreshes a group once its CRDs were applied;
- applies staged (`logic.ordering`): stage 1 CRDs, Namespaces, ClusterRoles
  (then waits until the CRDs are Established), stage 2 `*Class` kinds, stage 3
  the rest. In each stage every object is first read and *server-side
  dry-run* applied; only when every dry-run passed are the objects whose
  dry-run result differs from the live object applied (field manager
  `fluxbus`, `force=true`). Unchanged objects are not written at all;
- under ssa Override (the default) takes over the fields `kubectl` changed by
  hand, so the apply removes them (Merge leaves them);
- honours the per-object policies of `logic.policy` (ssa Override / Merge /
  IfNotPresent / Ignore, `reconcile: disabled`, `force: enabled`): an
  immutable-field error is answered by delete-and-recreate only when forced,
  otherwise it fails naming the object and the field;
- deletes with propagation Background and can wait for objects to be gone;
- waits for health *driven by Kubernetes watches*: one shared cluster-wide
  watch per resource type (started on first use, resumed from its last
  resourceVersion, relisted on 410), whose events wake the waiters
  interested in the object; the caller evaluates health per event.

Raw REST goes through `ApiClient.call_api` (its auth, TLS and connection
pool) with the response read here, so 4xx/5xx are our typed errors and query
booleans are spelled `true`/`false` as the API server expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from kubernetes_asyncio import client, config

from fluxbus_common.backoff import exponential
from fluxbus_common.conditions import Reason
from fluxbus_common.keys import FIELD_MANAGER
from fluxbus_kustomize.logic.ordering import Stage, apply_stages, group_of
from fluxbus_kustomize.logic.policy import Action, apply_policy

log = structlog.get_logger("fluxbus.kustomize.cluster")

CONCURRENCY = 8
"""Requests one apply or delete batch keeps in flight: enough to hide the
round trip, few enough that one large Kustomization does not starve others."""
WATCH_TIMEOUT = 290
"""Seconds a watch request lives before it is resumed (API servers cap it near 5 min)."""
WATCH_RETRY = 1.0
"""Seconds before a failed watch is started again."""
REQUEST_TIMEOUT = 60.0
"""Seconds one non-watch request may take."""


# --------------------------------------------------------------------------- errors


class ClusterError(Exception):
    """Any failure talking to the target cluster; the message names the object."""


class ApiError(ClusterError):
    """The API server answered with a `Status` failure."""

    def __init__(self, status: int, body: Mapping[str, Any] | None, what: str = "") -> None:
        body = body or {}
        self.status = status
        self.reason = str(body.get("reason") or "")
        self.api_message = str(body.get("message") or f"HTTP {status}")
        self.details = dict(body.get("details") or {})
        super().__init__(f"{what}: {self.api_message}" if what else self.api_message)

    @property
    def causes(self) -> list[dict[str, Any]]:
        return [c for c in self.details.get("causes") or [] if isinstance(c, dict)]

    @property
    def immutable(self) -> bool:
        """Whether a 422 Invalid complains about an immutable field."""
        if self.status != 422:
            return False
        texts = [self.api_message, *(str(c.get("message", "")) for c in self.causes)]
        return any("immutable" in t.lower() for t in texts)

    def field_message(self) -> str:
        """Return `field: message` of the causes (or the API message)."""
        parts = [
            f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
            for c in self.causes
        ]
        return "; ".join(parts) or self.api_message


class ApplyError(ClusterError):
    """Some objects could not be applied; `changes` holds what was done before."""

    def __init__(self, message: str, changes: Sequence[Change], reason: str) -> None:
        super().__init__(message)
        self.changes = list(changes)
        self.reason = reason


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Resource:
    """One API resource: how to address objects of an apiVersion/kind."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


@dataclass(frozen=True)
class Ref:
    """One object: its resource, namespace ("" when cluster-scoped) and name."""

    resource: Resource
    namespace: str
    name: str

    def describe(self) -> str:
        """`Kind/namespace/name` (or `Kind/name`), as Flux prints it."""
        kind = self.resource.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


@dataclass
class Change:
    """What happened to one object: created, configured, unchanged, skipped or deleted."""

    ref: Ref
    action: str
    object: dict[str, Any] | None = None
    """The object as the server answered (or the live one when unchanged)."""

    @property
    def subject(self) -> str:
        return self.ref.describe()


def _rv(obj: Mapping[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without what moves on every write (resourceVersion, managedFields times)."""
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata") or {}
    meta.pop("resourceVersion", None)
    for entry in meta.get("managedFields") or []:
        if isinstance(entry, dict):
            entry.pop("time", None)
    return out


CLEANUP_MANAGERS: tuple[tuple[str, str], ...] = (
    ("kubectl", "Apply"),
    ("kubectl", "Update"),
    ("before-first-apply", "Update"),
)
"""(manager prefix, operation) whose fields fluxbus takes over under ssa Override, as
kustomize-controller does: `kubectl apply/edit/patch/label/scale` and the
`before-first-apply` entry the API server writes for client-side-applied objects."""


def _merge_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_fields(out[key], value)
        else:
            out.setdefault(key, value)
    return out


def _pointer_fields(pointer: str) -> list[str] | None:
    """Return the fieldsV1 path (`f:spec`, `f:replicas`) of a JSON pointer through
    maps only, or None when it goes through a list (no simple fieldsV1 path)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts or any(p.isdigit() or p == "-" for p in parts):
        return None
    return [f"f:{p}" for p in parts]


def _split_fields(
    fields: Mapping[str, Any], paths: Sequence[list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a fieldsV1 set into (the parts under `paths`, the rest)."""
    rest = copy.deepcopy(dict(fields))
    held: dict[str, Any] = {}
    for path in paths:
        node: Any = rest
        parents = []
        for part in path[:-1]:
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            parents.append((node, part))
            node = node[part]
        if not isinstance(node, dict) or path[-1] not in node:
            continue
        value = node.pop(path[-1])
        target = held
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
        for parent, part in reversed(parents):  # drop maps left holding only "."
            if set(parent[part]) <= {"."}:
                del parent[part]
    return held, rest


def _takeover(
    managed: Sequence[Mapping[str, Any]], keep: Sequence[str] = ()
) -> list[dict[str, Any]] | None:
    """Return managedFields with the cleanup managers' fields moved into fluxbus's
    Apply entry, or None when there is nothing to take over.

    Fields under the JSON pointers in `keep` (drift ignore rules) stay with
    their manager; a pointer through a list disables the takeover for the object.
    """
    keep_paths = [_pointer_fields(p) for p in keep]
    if any(p is None for p in keep_paths):
        return None
    paths = [p for p in keep_paths if p]

    def foreign(e: Mapping[str, Any]) -> bool:
        manager = str(e.get("manager") or "")
        return any(
            manager.startswith(name) and e.get("operation") == op for name, op in CLEANUP_MANAGERS
        )

    taken = [e for e in managed if foreign(e)]
    if not taken:
        return None
    ours = next(
        (
            e
            for e in managed
            if e.get("manager") == FIELD_MANAGER
            and e.get("operation") == "Apply"
            and not e.get("subresource")
        ),
        None,
    )
    fields: dict[str, Any] = dict((ours or {}).get("fieldsV1") or {})
    left: list[dict[str, Any]] = []
    for e in taken:
        held, rest = _split_fields(e.get("fieldsV1") or {}, paths)
        fields = _merge_fields(fields, rest)
        if held:
            left.append({**e, "fieldsV1": held})
    entry = {
        "manager": FIELD_MANAGER,
        "operation": "Apply",
        "apiVersion": (ours or taken[0]).get("apiVersion"),
        "time": (ours or taken[0]).get("time"),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    kept = [dict(e) for e in managed if not foreign(e) and e is not ours]
    if left == [dict(e) for e in taken]:
        return None  # everything they own is ignored: nothing to take over
    return [*kept, *left, entry]


def _rv_str(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --------------------------------------------------------------------------- watches


class _Waiter:
    """One caller waiting on some objects: the latest state of each, and a wake-up."""

    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        self.latest: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.keys = set(keys)
        self.wake = asyncio.Event()
        self.resync = True

    def deliver(self, key: tuple[str, str], obj: dict[str, Any] | None, rv: int) -> None:
        old = self.latest.get(key, ...)
        if old is not ... and old is not None and obj is not None and _rv(old) > rv:
            return  # an older view than what we have (a GET raced the watch)
        self.latest[key] = obj
        self.wake.set()


class _KindWatch:
    """A shared cluster-wide watch on one resource type, fanned out to waiters."""

    def __init__(self, cluster: Cluster, resource: Resource) -> None:
        self.cluster = cluster
        self.resource = resource
        self.waiters: dict[tuple[str, str], set[_Waiter]] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def subscribe(self, waiter: _Waiter) -> None:
        for key in waiter.keys:
            self.waiters.setdefault(key, set()).add(waiter)

    def unsubscribe(self, waiter: _Waiter) -> None:
        for key in waiter.keys:
            subs = self.waiters.get(key)
            if subs is not None:
                subs.discard(waiter)
                if not subs:
                    del self.waiters[key]

    async def run(self) -> None:
        path = self.resource.path()
        delays = exponential(base=WATCH_RETRY, cap=30.0)
        while True:
            try:
                listing = await self.cluster.call("GET", path, query=[("limit", "1")])
                rv = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                self.ready.set()
                delays = exponential(base=WATCH_RETRY, cap=30.0)
                for subs in list(self.waiters.values()):
                    for w in subs:
                        w.resync = True
                        w.wake.set()
                await self._stream(path, rv)
            except asyncio.CancelledError:
                raise
            except _Expired:
                continue
            except (ClusterError, aiohttp.ClientError, TimeoutError, ValueError) as e:
                delay = next(delays)
                log.warning("watch.failed", resource=path, error=str(e), retry_in_s=round(delay, 1))
                self.ready.clear()
                await asyncio.sleep(delay)
                continue
            self.ready.clear()  # the watch ended (timeoutSeconds): list and watch again

    async def _stream(self, path: str, rv: str) -> None:
        while True:
            query = [
                ("watch", "true"),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", str(WATCH_TIMEOUT)),
            ]
            if rv:
                query.append(("resourceVersion", rv))
            resp = await self.cluster.open_stream(path, query, WATCH_TIMEOUT + 30)
            try:
                async for line in _lines(resp):
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    etype = event.get("type")
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            raise _Expired
                        raise ApiError(int(obj.get("code") or 500), obj, f"watch {path}")
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if etype == "BOOKMARK":
                        continue
                    meta = obj.get("metadata") or {}
                    key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                    for w in list(self.waiters.get(key, ())):
                        w.deliver(key, None if etype == "DELETED" else obj, _rv(obj))
            finally:
                resp.release()


async def _lines(resp: Any) -> Any:
    """Yield the non-empty lines of a streamed body, however long (a CRD can be megabytes)."""
    buffer = b""
    async for chunk in resp.content.iter_any():
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


class _Expired(Exception):
    """The watch's resourceVersion is too old (410): list again."""


# --------------------------------------------------------------------------- cluster


class Cluster:
    """A connection to one Kubernetes cluster. Use `await Cluster.connect()`."""

    def __init__(self, api: Any, *, concurrency: int = CONCURRENCY) -> None:
        self._api = api
        self.concurrency = concurrency
        self._discovery: dict[str, dict[str, Resource]] = {}
        self._discovery_locks: dict[str, asyncio.Lock] = {}
        self._watches: dict[Resource, _KindWatch] = {}
        self._root = self
        self.user: str | None = None
        """The user requests impersonate (None: the service's own identity)."""

    def as_user(self, user: str | None) -> Cluster:
        """Return a view of this cluster whose requests impersonate `user`
        (`Impersonate-User`), sharing the connection pool and discovery.

        Health watches keep running as the service itself (they only read).
        """
        if not user:
            return self._root
        view = copy.copy(self._root)
        view.user = user
        return view

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, **kwargs: Any) -> Cluster:
        """Connect with `kubeconfig`, else `$KUBECONFIG` / `~/.kube/config`, else the
        in-cluster service account. Raises ClusterError when none works."""
        cfg = client.Configuration()
        path = kubeconfig or os.environ.get("KUBECONFIG") or ""
        path = path.split(os.pathsep)[0] if path else ""
        default = Path.home() / ".kube" / "config"
        try:
            if path or default.exists():
                await config.load_kube_config(
                    config_file=path or str(default), client_configuration=cfg
                )
            else:
                config.load_incluster_config(client_configuration=cfg)
        except Exception as e:  # the loaders raise ConfigException, OSError, yaml errors
            raise ClusterError(f"cannot load the cluster configuration: {e}") from e
        cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, 128)
        return cls(client.ApiClient(configuration=cfg), **kwargs)

    async def close(self) -> None:
        """Stop the shared watches and close the connection pool (of the root cluster)."""
        if self._root is not self:
            return
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._watches.clear()
        await self._api.close()

    # -- raw REST ----------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] | None,
        body: Any,
        content_type: str,
        timeout: Any,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        if self.user:
            headers["Impersonate-User"] = self.user
        try:
            return await self._api.call_api(
                path,
                method,
                query_params=list(query or []),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
        except (aiohttp.ClientError, OSError) as e:
            raise ClusterError(f"{method} {path}: {e}") from e

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
    ) -> dict[str, Any]:
        """Send one request and return the decoded answer; raise ApiError on 4xx/5xx."""
        resp = await self._send(method, path, query, body, content_type, REQUEST_TIMEOUT)
        try:
            data = await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise ClusterError(f"{what or path}: {e}") from e
        finally:
            resp.release()
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            doc = {"message": data[:200].decode("utf-8", "replace")}
        if resp.status >= 400 or (
            isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("status") == "Failure"
        ):
            raise ApiError(resp.status, doc if isinstance(doc, dict) else None, what)
        return doc if isinstance(doc, dict) else {}

    async def open_stream(self, path: str, query: Sequence[tuple[str, str]], read: float) -> Any:
        """Open a streaming GET (a watch); the caller reads lines and releases it."""
        timeout = aiohttp.ClientTimeout(sock_connect=10, sock_read=read)
        resp = await self._send("GET", path, query, None, "application/json", timeout)
        if resp.status >= 400:
            try:
                body = json.loads(await resp.read() or b"{}")
            except ValueError:
                body = {}
            finally:
                resp.release()
            raise ApiError(resp.status, body, f"watch {path}")
        return resp

    # -- discovery -----------------------------------------------------------

    async def _group_version(self, api_version: str, refresh: bool) -> dict[str, Resource]:
        lock = self._discovery_locks.setdefault(api_version, asyncio.Lock())
        async with lock:
            cached = self._discovery.get(api_version)
            if cached is not None and not refresh:
                return cached
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = await self.call("GET", path, what=f"discovery of {api_version}")
            except ApiError as e:
                if e.status != 404:
                    raise
                doc = {}
            group = group_of(api_version)
            version = api_version.rsplit("/", 1)[-1]
            found: dict[str, Resource] = {}
            for r in doc.get("resources") or []:
                name = str(r.get("name") or "")
                if not name or "/" in name:
                    continue  # subresources
                found[str(r.get("kind"))] = Resource(
                    group, version, str(r.get("kind")), name, bool(r.get("namespaced"))
                )
            self._discovery[api_version] = found
            return found

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        """Return the resource of an apiVersion/kind, refreshing discovery once on a miss.

        Raises ClusterError(`no matches for kind "X" in version "Y"`).
        """
        known = await self._group_version(api_version, refresh=False)
        if kind not in known:
            known = await self._group_version(api_version, refresh=True)
        if kind not in known:
            raise ClusterError(f'no matches for kind "{kind}" in version "{api_version}"')
        return known[kind]

    def forget_group(self, group: str) -> None:
        """Drop the discovery of a group (its CRDs changed)."""
        for gv in [gv for gv in self._discovery if group_of(gv) == group]:
            del self._discovery[gv]

    async def ref_of(self, obj: Mapping[str, Any]) -> Ref:
        """Return the Ref of a manifest (namespace dropped for cluster-scoped kinds).

        Raises ClusterError for an unknown kind or a namespaced object without namespace.
        """
        resource = await self.resource_for(str(obj.get("apiVersion")), str(obj.get("kind")))
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        namespace = str(meta.get("namespace") or "") if resource.namespaced else ""
        if resource.namespaced and not namespace:
            raise ClusterError(f"{resource.kind}/{name} namespace not specified")
        return Ref(resource, namespace, name)

    # -- single objects ------------------------------------------------------

    async def get(self, ref: Ref) -> dict[str, Any] | None:
        """Return the live object, or None when it does not exist."""
        try:
            return await self.call(
                "GET", ref.resource.path(ref.namespace, ref.name), what=ref.describe()
            )
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    async def server_side_apply(
        self, ref: Ref, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply `obj` as the `fluxbus` field manager; return the result."""
        body = dict(obj)
        if not ref.resource.namespaced and (body.get("metadata") or {}).get("namespace"):
            body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "namespace"}
        query = [("fieldManager", FIELD_MANAGER), ("force", _bool(force))]
        if dry_run:
            query.append(("dryRun", "All"))
        return await self.call(
            "PATCH",
            ref.resource.path(ref.namespace, ref.name),
            query=query,
            body=body,
            content_type="application/apply-patch+yaml",
            what=ref.describe(),
        )

    async def take_over_fields(
        self, ref: Ref, live: dict[str, Any], keep: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Make fluxbus the owner of what kubectl changed by hand (ssa Override).

        The fields of the `kubectl*` and `before-first-apply` managers move into
        fluxbus's Apply entry, so the next apply removes those not in Git (a
        label added with `kubectl label`, a key added with client-side
        `kubectl apply`). Fields under the JSON pointers in `keep` (drift
        ignore rules) are left to their manager. Returns the live object
        (patched when needed).
        """
        managed = (live.get("metadata") or {}).get("managedFields") or []
        takeover = _takeover(managed, keep)
        if takeover is None:
            return live
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": _rv_str(live)},
            {"op": "replace", "path": "/metadata/managedFields", "value": takeover},
        ]
        return await self.call(
            "PATCH",
            ref.resource.path(ref.namespace, ref.name),
            query=[("fieldManager", FIELD_MANAGER)],
            body=patch,
            content_type="application/json-patch+json",
            what=f"{ref.describe()} managed fields",
        )

    async def delete(self, ref: Ref, propagation: str = "Background") -> bool:
        """Delete an object; return False when it was already gone."""
        try:
            await self.call(
                "DELETE",
                ref.resource.path(ref.namespace, ref.name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
                what=ref.describe(),
            )
        except ApiError as e:
            if e.status == 404:
                return False
            raise
        return True

    # -- staged apply ----------------------------------------------------------

    async def apply_all(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        timeout: float = 300.0,
        ignored: Mapping[tuple[str, str, str, str], Sequence[str]] | None = None,
    ) -> list[Change]:
        """Apply objects in Flux's stages; return one Change per object.

        `force` is the Kustomization's `spec.force`. `ignored` maps
        (apiVersion, kind, namespace, name) to the JSON pointers of drift
        ignore rules, whose fields are never taken over. Raises ApplyError (reason
        `DryRunFailed` or `ApplyFailed`) listing every failed object, with the
        changes made by the stages before.
        """
        changes: list[Change] = []
        for stage, members in apply_stages(objects):
            changes += await self._apply_stage(members, force, changes, ignored or {})
            if stage is Stage.CLUSTER_DEFINITIONS:
                crds = [c for c in changes if c.ref.resource.kind == "CustomResourceDefinition"]
                await self._wait_established(crds, timeout, changes)
        return changes

    async def _apply_stage(
        self,
        members: Sequence[Mapping[str, Any]],
        force: bool,
        before: list[Change],
        ignored: Mapping[tuple[str, str, str, str], Sequence[str]],
    ) -> list[Change]:
        sem = asyncio.Semaphore(self.concurrency)
        failures: list[str] = []

        async def plan(obj: Mapping[str, Any]) -> tuple[Change, Mapping[str, Any], bool] | None:
            async with sem:
                desc = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
                try:
                    ref = await self.ref_of(obj)
                    desc = ref.describe()
                    live = await self.get(ref)
                    policy = apply_policy(obj, live, force=force)
                    if policy.action is Action.SKIP:
                        return Change(ref, "skipped", live), obj, False
                    if live is not None and not policy.merge:
                        meta = obj.get("metadata") or {}
                        ident = (
                            str(obj.get("apiVersion")),
                            str(obj.get("kind")),
                            str(meta.get("namespace") or ""),
                            str(meta.get("name") or ""),
                        )
                        live = await self.take_over_fields(ref, live, ignored.get(ident, ()))
                    try:
                        dry = await self.server_side_apply(ref, obj, dry_run=True)
                    except ApiError as e:
                        if e.immutable and live is not None and policy.force:
                            return Change(ref, "configured", live), obj, True
                        if e.immutable:
                            failures.append(
                                f"{desc} dry-run failed: {e.field_message()} "
                                "(set spec.force or the kustomize.toolkit.fluxcd.io/force: "
                                "enabled annotation to recreate it)"
                            )
                        else:
                            failures.append(f"{desc} dry-run failed: {e.field_message()}")
                        return None
                    if live is not None and _comparable(dry) == _comparable(live):
                        return Change(ref, "unchanged", live), obj, False
                    action = "created" if live is None else "configured"
                    return Change(ref, action, live), obj, False
                except ClusterError as e:
                    failures.append(f"{desc} dry-run failed: {e}")
                    return None

        planned = await asyncio.gather(*(plan(o) for o in members))
        if failures:
            raise ApplyError("\n".join(sorted(failures)), before, Reason.DRY_RUN_FAILED)
        results = [p for p in planned if p is not None]

        async def write(change: Change, obj: Mapping[str, Any], recreate: bool) -> None:
            async with sem:
                try:
                    if recreate:
                        await self.delete(change.ref)
                        await self.wait_gone([change.ref], REQUEST_TIMEOUT)
                        change.action = "created"
                    change.object = await self.server_side_apply(change.ref, obj)
                except (ClusterError, TimeoutError) as e:
                    change.action = "failed"
                    failures.append(f"{change.subject} apply failed: {e}")

        await asyncio.gather(
            *(write(c, o, r) for c, o, r in results if c.action in ("created", "configured"))
        )
        stage = [c for c, _, _ in results]
        if failures:
            done = [c for c in stage if c.action != "failed"]
            raise ApplyError("\n".join(sorted(failures)), before + done, Reason.APPLY_FAILED)
        return stage

    async def _wait_established(
        self, crds: list[Change], timeout: float, changes: list[Change]
    ) -> None:
        if not crds:
            return

        def established(_: Ref, obj: Mapping[str, Any] | None) -> bool:
            conds = ((obj or {}).get("status") or {}).get("conditions") or []
            return any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)

        ok, _ = await self.watch_until([c.ref for c in crds], established, timeout)
        for c in crds:
            spec = (c.object or {}).get("spec") or {}
            if spec.get("group"):
                self.forget_group(str(spec["group"]))
        if not ok:
            names = ", ".join(c.subject for c in crds)
            raise ApplyError(
                f"CustomResourceDefinitions not established: {names}", changes, Reason.APPLY_FAILED
            )

    # -- delete --------------------------------------------------------------

    async def delete_all(
        self, refs: Sequence[Ref], propagation: str = "Background"
    ) -> list[Change]:
        """Delete objects (in the given order's spirit, concurrently); return deleted ones.

        Raises ClusterError listing the objects that could not be deleted.
        """
        sem = asyncio.Semaphore(self.concurrency)
        failures: list[str] = []
        deleted: list[Change] = []

        async def one(ref: Ref) -> None:
            async with sem:
                try:
                    if await self.delete(ref, propagation):
                        deleted.append(Change(ref, "deleted"))
                except ClusterError as e:
                    failures.append(f"{ref.describe()} delete failed: {e}")

        await asyncio.gather(*(one(r) for r in refs))
        if failures:
            raise ClusterError("\n".join(sorted(failures)))
        order = {r: i for i, r in enumerate(refs)}
        return sorted(deleted, key=lambda c: order[c.ref])

    async def wait_gone(self, refs: Sequence[Ref], timeout: float) -> None:
        """Wait (watch-driven) until every object is gone; raise TimeoutError naming those left."""
        ok, latest = await self.watch_until(refs, lambda _r, obj: obj is None, timeout)
        if not ok:
            left = ", ".join(r.describe() for r in refs if latest.get(r) is not None)
            raise TimeoutError(f"objects not terminated after {timeout:g}s: {left}")

    # -- watching ------------------------------------------------------------

    def _watch(self, resource: Resource) -> _KindWatch:
        w = self._watches.get(resource)
        if w is None:
            w = _KindWatch(self._root, resource)
            w.task = asyncio.get_running_loop().create_task(
                w.run(), name=f"watch-{resource.api_version}-{resource.plural}"
            )
            self._watches[resource] = w
        return w

    async def watch_until(
        self,
        refs: Sequence[Ref],
        done: Callable[[Ref, Mapping[str, Any] | None], bool],
        timeout: float,
        initial: Mapping[Ref, Mapping[str, Any] | None] | None = None,
    ) -> tuple[bool, dict[Ref, dict[str, Any] | None]]:
        """Wait until `done(ref, obj)` holds for every ref at once (obj None: absent).

        Driven by the shared watches: every event on one of the objects
        re-evaluates it. `initial` may give states already known (an apply's
        answer); the others are read once the watch runs. Returns (all done,
        latest states) after at most `timeout` seconds; cancellable.
        """
        by_resource: dict[Resource, list[Ref]] = {}
        for ref in refs:
            by_resource.setdefault(ref.resource, []).append(ref)
        waiters: dict[Resource, _Waiter] = {}
        latest: dict[Ref, dict[str, Any] | None] = {
            r: (dict(initial[r]) if initial[r] is not None else None)  # type: ignore[arg-type]
            for r in refs
            if initial and r in initial
        }
        wake = asyncio.Event()
        for resource, members in by_resource.items():
            waiter = _Waiter((r.namespace, r.name) for r in members)
            waiter.wake = wake
            for r in members:  # a late event older than a known state must not win
                if r in latest:
                    waiter.latest[(r.namespace, r.name)] = latest[r]
            waiters[resource] = waiter
            self._watch(resource).subscribe(waiter)

        def pending() -> set[Ref]:
            return {r for r in refs if r not in latest or not done(r, latest[r])}

        try:
            async with asyncio.timeout(timeout):
                for resource in waiters:
                    await self._watches[resource].ready.wait()
                while True:
                    for resource, waiter in waiters.items():
                        if waiter.resync:
                            waiter.resync = False
                            unfinished = pending()
                            todo = [r for r in by_resource[resource] if r in unfinished]
                            got = await asyncio.gather(*(self.get(r) for r in todo))
                            for r, obj in zip(todo, got, strict=True):
                                waiter.deliver((r.namespace, r.name), obj, _rv(obj))
                        for key, obj in waiter.latest.items():
                            latest[Ref(resource, key[0], key[1])] = obj
                    if not pending():
                        return True, latest
                    wake.clear()
                    if any(w.resync for w in waiters.values()):
                        continue
                    await wake.wait()
        except TimeoutError:
            return False, latest
        finally:
            for resource, waiter in waiters.items():
                self._watches[resource].unsubscribe(waiter)
