"""The few controllers a cluster runs that fluxbus's health checks read.

- CRDs: register their types at once, then report Established/NamesAccepted;
  deleting a CRD deletes its custom resources.
- Workloads (simulation, switchable): a Deployment / StatefulSet / DaemonSet /
  ReplicaSet gets observedGeneration, replica counts and an Available
  condition shortly after each spec change; an image matching the broken
  pattern never becomes ready. A Deployment also gets a ReplicaSet per pod
  template (`<name>-<pod-template-hash>`, controlled by it; older ones are
  scaled to 0), which Helm's legacy wait and `kubectl rollout` read. Pods and
  Jobs run to completion as `statuses` describes (echo / exit in their
  command), and `pods/<name>/log` serves what they echo.
- Namespaces: a deleted Namespace goes Terminating, deletes what it holds,
  then disappears once the last object (finalizers included) is gone.
- Garbage collection: deleting an owner deletes its dependents.

Controllers react to store events; their writes are scheduled with
`loop.call_soon` / `call_later` so they never run inside another write.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from . import statuses
from .errors import ApiError
from .resources import CRD_KEY, NS_KEY, ResourceType
from .ssa import jcopy
from .store import Event, Key
from .verbs import FOREGROUND, Kubelite, Options, now

WORKLOADS: set[Key] = {
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("", "pods"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
}
CONTROLLER_MANAGER = "kube-controller-manager"
RS_KEY: Key = ("apps", "replicasets")


@dataclass
class SimulationConfig:
    """Workload simulation: on by default, `delay` seconds after a spec change.

    Images matching `broken_image` (a regex searched in the image name;
    default: tag `broken`) never become ready.
    """

    enabled: bool = True
    delay: float = 0.1
    broken_image: str = r":broken$"


class Controllers:
    """Reacts to store events; see the module docstring."""

    def __init__(self, kube: Kubelite, sim: SimulationConfig) -> None:
        self.kube = kube
        self.store = kube.store
        self.sim = sim
        self._broken = re.compile(sim.broken_image)
        # keyed by (resource, namespace, name, controller function name)
        self._pending: dict[tuple[Any, ...], asyncio.TimerHandle | asyncio.Handle] = {}
        self._terminating: set[str] = set()
        self._dependents: dict[str, set[tuple[Key, str, str]]] = {}
        self._foreground_owners: dict[str, tuple[Key, str, str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for key, bucket in self.store.objects.items():
            for obj in list(bucket.values()):
                self._index_owner(key, obj, None)
        self.store.listeners.append(self.on_event)
        for obj in self.store.list(CRD_KEY):
            self._schedule(CRD_KEY, "", obj["metadata"]["name"], 0, self._crd_status)
        for obj in self.store.list(NS_KEY):
            if obj["metadata"].get("deletionTimestamp"):
                self._terminating.add(obj["metadata"]["name"])
                self._schedule(NS_KEY, "", obj["metadata"]["name"], 0, self._terminate)
        if self.sim.enabled:
            for key in WORKLOADS:
                for obj in self.store.list(key):
                    md = obj["metadata"]
                    self._schedule(
                        key, md.get("namespace", ""), md["name"], self.sim.delay, self._workload
                    )

    async def stop(self) -> None:
        if self.on_event in self.store.listeners:
            self.store.listeners.remove(self.on_event)
        for h in self._pending.values():
            h.cancel()
        self._pending.clear()

    # ------------------------------------------------------------------ plumbing

    def _schedule(self, key: Key, ns: str, name: str, delay: float, fn: Any) -> None:
        ident = (key, ns, name, fn.__name__)
        if ident in self._pending or self._loop is None:
            return

        def run() -> None:
            self._pending.pop(ident, None)
            try:
                fn(key, ns, name)
            except ApiError:
                pass

        if delay <= 0:
            self._pending[ident] = self._loop.call_soon(run)
        else:
            self._pending[ident] = self._loop.call_later(delay, run)

    def on_event(self, ev: Event) -> None:
        md = ev.obj["metadata"]
        name = md["name"]
        self._index_owner(ev.key, ev.obj, ev)
        if ev.key == CRD_KEY:
            if ev.type == "DELETED":
                self._crd_deleted(ev.obj)
            else:
                self.kube.registry.sync_crd(ev.obj, name)
                self._schedule(CRD_KEY, "", name, 0, self._crd_status)
        elif ev.key == NS_KEY:
            if ev.type != "DELETED" and md.get("deletionTimestamp"):
                self._terminating.add(name)
                self._schedule(NS_KEY, "", name, 0, self._terminate)
        elif ev.key in WORKLOADS and ev.type != "DELETED" and self.sim.enabled:
            self._schedule(ev.key, ev.namespace, name, self.sim.delay, self._workload)
        if ev.namespace in self._terminating:
            self._schedule(NS_KEY, "", ev.namespace, 0, self._terminate)
        if (
            ev.type != "DELETED"
            and md.get("deletionTimestamp")
            and FOREGROUND in (md.get("finalizers") or [])
        ):
            self._schedule(ev.key, ev.namespace, name, 0, self._foreground)
        if ev.type == "DELETED":
            self.collect_dependents(ev.obj)
            for ref in ev.obj["metadata"].get("ownerReferences") or []:
                owner = self._foreground_owners.get(ref.get("uid", ""))
                if owner is not None:
                    self._schedule(*owner, 0, self._foreground)

    def _rt(self, key: Key) -> ResourceType | None:
        return self.kube.registry.type_for_key(key)

    def _write_status(
        self, key: Key, obj: dict[str, Any], status: dict[str, Any], manager: str
    ) -> None:
        rt = self._rt(key)
        if rt is None or obj.get("status") == status:
            return
        new = jcopy(obj)
        new["status"] = status
        new["metadata"].pop("managedFields", None)
        self.kube.finish_update(rt, obj, new, Options(manager=manager), "", "status")

    # ------------------------------------------------------------------ CRDs

    def _crd_status(self, key: Key, ns: str, name: str) -> None:
        crd = self.store.get(CRD_KEY, "", name)
        if crd is None or crd["metadata"].get("deletionTimestamp"):
            return
        spec = crd.get("spec") or {}
        old = crd.get("status") or {}
        conds: dict[str, dict[str, Any]] = {c.get("type"): c for c in old.get("conditions") or []}
        t = now()

        def cond(ctype: str, reason: str, message: str) -> dict[str, Any]:
            prev = conds.get(ctype)
            if prev and prev.get("status") == "True" and prev.get("reason") == reason:
                return prev
            return {
                "type": ctype,
                "status": "True",
                "lastTransitionTime": t,
                "reason": reason,
                "message": message,
            }

        storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        stored = list(old.get("storedVersions") or [])
        for v in storage:
            if v not in stored:
                stored.append(v)
        status = {
            "acceptedNames": spec.get("names") or {},
            "conditions": [
                cond("NamesAccepted", "NoConflicts", "no conflicts found for the names"),
                cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
            "storedVersions": stored,
        }
        self._write_status(CRD_KEY, crd, status, "kube-apiserver")

    def _crd_deleted(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        spec = crd.get("spec") or {}
        key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        for obj in self.store.list(key):
            self.store.remove(key, obj)
        self.kube.registry.sync_crd(None, name)

    # ------------------------------------------------------------------ workloads

    def _workload(self, key: Key, ns: str, name: str) -> None:
        obj = self.store.get(key, ns, name)
        if obj is None or not self.sim.enabled:
            return
        spec = obj.get("spec") or {}
        kind = obj.get("kind")
        pod = spec if kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
        images = [c.get("image", "") for c in (pod.get("containers") or []) if isinstance(c, dict)]
        broken = any(self._broken.search(i or "") for i in images)
        if kind not in ("Pod", "Job"):  # a template whose container exits non-zero crash-loops
            containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
            broken = broken or any(statuses.run_container(c).exit_code for c in containers)
        gen = obj["metadata"].get("generation", 1)
        old = obj.get("status") or {}
        status: dict[str, Any]
        if kind == "Service":
            if spec.get("type") != "LoadBalancer":
                return
            status = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
        elif kind == "PersistentVolumeClaim":
            status = {
                "phase": "Bound",
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "capacity": {
                    "storage": ((spec.get("resources") or {}).get("requests") or {}).get(
                        "storage", "1Gi"
                    )
                },
            }
        elif kind == "Pod":
            status = statuses.pod_status(pod, broken, old, now())
        elif kind == "Job":
            status = statuses.job_status(spec, broken, old, now())
        elif kind == "DaemonSet":
            status = statuses.daemonset_status(gen, broken)
        else:
            replicas = spec.get("replicas", 1)
            if kind == "Deployment":
                rs = self._replicaset(obj)
                status = statuses.deployment_status(rs, gen, replicas, broken, old, now())
            elif kind == "StatefulSet":
                status = statuses.statefulset_status(name, gen, replicas, broken)
            else:
                status = statuses.replicaset_status(gen, replicas, broken)
        self._write_status(key, obj, status, CONTROLLER_MANAGER)

    def _replicaset(self, deployment: dict[str, Any]) -> str:
        """The deployment controller: one ReplicaSet per template, older ones scaled to 0."""
        want = statuses.replicaset_for(deployment)
        rt = self._rt(RS_KEY)
        name: str = want["metadata"]["name"]
        if rt is None or deployment["metadata"].get("deletionTimestamp"):
            return name
        opts = Options(manager=CONTROLLER_MANAGER)
        uid = deployment["metadata"].get("uid")
        ns = deployment["metadata"].get("namespace", "")
        found = False
        for rs in self.store.list(RS_KEY, ns):
            refs = rs["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid and r.get("controller") for r in refs):
                continue
            is_current = rs["metadata"]["name"] == name
            found = found or is_current
            replicas = want["spec"]["replicas"] if is_current else 0
            if (rs.get("spec") or {}).get("replicas") != replicas:
                new = jcopy(rs)
                new["spec"]["replicas"] = replicas
                self.kube.finish_update(rt, rs, new, opts, "")
        if not found:
            self.kube.create(rt, ns, want, opts)
        return name

    # ------------------------------------------------------------------ namespaces

    def _terminate(self, key: Key, ns_: str, name: str) -> None:
        nsobj = self.store.get(NS_KEY, "", name)
        if nsobj is None:
            self._terminating.discard(name)
            return
        if not nsobj["metadata"].get("deletionTimestamp"):
            self._terminating.discard(name)
            return
        remaining = 0
        for skey in list(self.store.objects):
            rt = self._rt(skey)
            if rt is None or not rt.namespaced:
                continue
            for obj in self.store.list(skey, name):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    _, gone = self.kube.delete(rt, name, obj["metadata"]["name"], {}, False)
                    if gone:
                        remaining -= 1
        if remaining == 0:
            self._terminating.discard(name)
            current = self.store.get(NS_KEY, "", name)
            if current is not None:
                self.store.remove(NS_KEY, current)

    # ------------------------------------------------------------------ garbage collection

    def _index_owner(self, key: Key, obj: dict[str, Any], ev: Event | None) -> None:
        md = obj["metadata"]
        refs = md.get("ownerReferences") or []
        if not refs and (
            ev is None or ev.old is None or not ev.old["metadata"].get("ownerReferences")
        ):
            return
        ident = (key, md.get("namespace", ""), md["name"])
        if ev is not None and ev.old is not None:
            for r in ev.old["metadata"].get("ownerReferences") or []:
                self._dependents.get(r.get("uid", ""), set()).discard(ident)
        if ev is not None and ev.type == "DELETED":
            return
        for r in refs:
            self._dependents.setdefault(r.get("uid", ""), set()).add(ident)

    def _foreground(self, key: Key, ns: str, name: str) -> None:
        """Foreground deletion: delete the dependents first, then let the owner go."""
        owner = self.store.get(key, ns, name)
        if owner is None or FOREGROUND not in (owner["metadata"].get("finalizers") or []):
            return
        uid = owner["metadata"].get("uid", "")
        self._foreground_owners[uid] = (key, ns, name)
        remaining = [d for d in self._dependents.get(uid, set()) if self.store.get(*d) is not None]
        for dkey, dns, dname in remaining:
            rt = self._rt(dkey)
            dep = self.store.get(dkey, dns, dname)
            if rt is None or dep is None or dep["metadata"].get("deletionTimestamp"):
                continue
            self.kube.delete(rt, dns, dname, {"propagationPolicy": "Foreground"}, False)
        if any(self.store.get(*d) is not None for d in remaining):
            return
        self._foreground_owners.pop(uid, None)
        self._dependents.pop(uid, None)
        rt = self._rt(key)
        if rt is None:
            return
        new = jcopy(owner)
        md = new["metadata"]
        md["finalizers"] = [f for f in md.get("finalizers") or [] if f != FOREGROUND]
        md.pop("managedFields", None)
        self.kube.finish_update(rt, owner, new, Options(manager=CONTROLLER_MANAGER), "")

    def orphan_dependents(self, owner: dict[str, Any]) -> None:
        """Orphan propagation: dependents lose their ownerReference to owner and stay."""
        uid = owner["metadata"].get("uid", "")
        for key, ns, name in list(self._dependents.pop(uid, set())):
            rt = self._rt(key)
            obj = self.store.get(key, ns, name)
            if rt is None or obj is None:
                continue
            new = jcopy(obj)
            refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            new["metadata"]["ownerReferences"] = refs
            new["metadata"].pop("managedFields", None)
            self.kube.finish_update(rt, obj, new, Options(manager=CONTROLLER_MANAGER), "")

    def collect_dependents(self, owner: dict[str, Any]) -> None:
        """Delete the dependents of a deleted owner (background propagation)."""
        uid = owner["metadata"].get("uid", "")
        deps = self._dependents.pop(uid, set())
        if not deps or self._loop is None:
            return

        def run() -> None:
            for key, ns, name in deps:
                rt = self._rt(key)
                obj = self.store.get(key, ns, name)
                if rt is None or obj is None:
                    continue
                refs = [
                    r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                try:
                    if refs:
                        new = jcopy(obj)
                        new["metadata"]["ownerReferences"] = refs
                        new["metadata"].pop("managedFields", None)
                        self.kube.finish_update(
                            rt, obj, new, Options(manager=CONTROLLER_MANAGER), ""
                        )
                    else:
                        self.kube.delete(rt, ns, name, {}, False)
                except ApiError:
                    continue

        self._loop.call_soon(run)
