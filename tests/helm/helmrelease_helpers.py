"""Helpers for the helm service tests: small charts packed as Helm would, the
HelmChart status + artifact the source service would publish (written through
the same Bus API it uses), HelmRelease documents, and a running helm runtime
against kubelite and nats-server with Helm's real worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import itertools
import json
import tarfile
import textwrap
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fluxbus_common import keys, subjects
from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder, Runtime
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.testing.plugin import running_runtime, wait_for
from fluxbus_helm.cluster import ClusterAccess
from fluxbus_helm.reconcilers import HelmReleaseReconciler
from fluxbus_helm.settings import HelmSettings
from fluxbus_helmsdk import HelmEngine, KubeTarget, Release, WorkerLimits
from fluxbus_kube import Cluster

SETTINGS = RuntimeSettings(
    workers=4,
    shards=1,
    lease_ttl=0.6,
    instance="test",
    http_addr="",
    backoff_base=0.05,
    backoff_cap=0.5,
)

CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  labels:
    app: {{ .Chart.Name }}
data:
  mode: {{ .Values.mode | quote }}
  replicas: {{ .Values.replicaCount | quote }}
"""
GUARD = """
{{- if .Values.fail }}{{ fail "values.fail is set" }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-guard
data:
  owner: {{ required "values.owner is required" .Values.owner | quote }}
"""
BROKEN = """
{{- if .Values.broken }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: Not_A_Valid_Name
data: {}
{{- end }}
"""


def chart(
    name: str = "demo",
    version: str = "0.1.0",
    values: Mapping[str, Any] | None = None,
    templates: Mapping[str, str] | None = None,
) -> bytes:
    """Return a packaged chart (`<name>-<version>.tgz` bytes, deterministic)."""
    files = {
        f"{name}/Chart.yaml": yaml.safe_dump(
            {"apiVersion": "v2", "name": name, "version": version, "appVersion": "1.0"}
        ),
        f"{name}/values.yaml": yaml.safe_dump(
            dict(values or {"mode": "default", "replicaCount": 1, "owner": "team"})
        ),
    }
    for path, text in (
        templates or {"configmap.yaml": CONFIGMAP, "guard.yaml": GUARD, "broken.yaml": BROKEN}
    ).items():
        files[f"{name}/templates/{path}"] = textwrap.dedent(text).lstrip("\n")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def helmrelease(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """Return a stored HelmRelease document (spec camelCase), by default with
    `spec.chart` from HelmRepository `charts`."""
    body: dict[str, Any] = {
        "interval": "1m",
        "chart": {
            "spec": {
                "chart": "demo",
                "version": "*",
                "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            }
        },
        **spec,
    }
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def condition(status: Mapping[str, Any] | None, ctype: str = "Ready") -> dict[str, Any]:
    for c in (status or {}).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    return {}


@dataclass
class Env:
    """A running helm service (one runtime) and handles to poke it."""

    bus: Bus
    kube: Any
    engine: HelmEngine | None
    runtime: Runtime
    reconciler: HelmReleaseReconciler
    tmp: Path
    _requests: itertools.count = field(default_factory=itertools.count)

    @property
    def target(self) -> KubeTarget:
        return KubeTarget(kubeconfig_path=self.kube.kubeconfig)

    async def publish_chart(
        self, namespace: str, name: str, data: bytes, *, wait_object: bool = True
    ) -> str:
        """Publish a HelmChart artifact and Ready status as the source service does
        (the HelmChart object is the helm service's when generated; else written
        here). Return the artifact revision (the chart version)."""
        key = subjects.object_key("HelmChart", namespace, name)
        if wait_object:
            await wait_for(lambda: self._exists(key), message=f"{key} written")
        else:
            await self.bus.apply_object(
                key,
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "HelmChart",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "chart": "demo",
                        "interval": "1m",
                        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                    },
                },
            )
        doc = await self.bus.get_object(key)
        assert doc is not None
        version = str(
            yaml.safe_load(_member(data, "Chart.yaml"))["version"]  # the packaged chart's version
        )
        hexdigest = hashlib.sha256(data).hexdigest()
        path = self.tmp / f"{hexdigest}.tgz"
        await asyncio.to_thread(path.write_bytes, data)
        artifact = subjects.artifact_name("HelmChart", namespace, name, hexdigest)
        await self.bus.put_artifact(artifact, path)
        current = await self.bus.get_status(key)
        status = {
            "observedGeneration": doc.value["metadata"].get("generation", 1),
            "observedChartName": "demo",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ChartPullSucceeded",
                    "message": f"pulled 'demo' chart with version '{version}'",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
            "artifact": {
                "revision": version,
                "digest": f"sha256:{hexdigest}",
                "path": artifact,
                "url": f"nats://fluxbus-artifacts/{artifact}",
                "size": len(data),
                "lastUpdateTime": "2026-01-01T00:00:00Z",
            },
        }
        await self.bus.put_status(key, status, current.revision if current else 0)
        return version

    async def _exists(self, key: str) -> bool:
        return await self.bus.get_object(key) is not None

    async def apply(self, doc: dict[str, Any]) -> str:
        meta = doc["metadata"]
        key = subjects.object_key(doc["kind"], meta.get("namespace", "default"), meta["name"])
        await self.bus.apply_object(key, doc)
        return key

    async def status(self, key: str) -> dict[str, Any]:
        entry = await self.bus.get_status(key)
        return {} if entry is None else entry.value

    async def request(self, key: str, **annotations: str) -> str:
        """Set requestedAt (and any other annotations); return the token."""
        token = f"req-{next(self._requests)}"
        stored = await self.bus.get_object(key)
        assert stored is not None, key
        doc = json.loads(json.dumps(stored.value))
        ann = doc["metadata"].setdefault("annotations", {})
        ann[keys.RECONCILE_REQUESTED_AT] = token
        for k, v in annotations.items():
            ann[k] = token if v == "token" else v
        await self.bus.update_object(key, doc, stored.revision)
        return token

    async def reconciled(self, key: str, timeout: float = 20.0) -> dict[str, Any]:
        """Request a reconcile and return the status that handled it."""
        token = await self.request(key)

        async def handled() -> dict[str, Any] | None:
            st = await self.status(key)
            return st if st.get("lastHandledReconcileAt") == token else None

        return await wait_for(handled, timeout=timeout, message=f"{key} handled {token}")

    async def until(
        self, key: str, ctype: str, status: str, reason: str | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Wait until condition `ctype` has `status` (and `reason`); return the status."""

        async def check() -> dict[str, Any] | None:
            st = await self.status(key)
            c = condition(st, ctype)
            ok = c.get("status") == status and (reason is None or c.get("reason") == reason)
            return st if ok else None

        return await wait_for(
            check, timeout=timeout, message=f"{key} {ctype}={status} {reason or ''}"
        )

    async def ready(self, key: str, timeout: float = 20.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            st = await self.status(key)
            stored = await self.bus.get_object(key)
            gen = stored.value["metadata"].get("generation") if stored else None
            ok = condition(st).get("status") == "True" and st.get("observedGeneration") == gen
            return st if ok else None

        return await wait_for(check, timeout=timeout, message=f"{key} ready")

    async def history(self, release: str, namespace: str = "default") -> list[Release]:
        """What `helm history` sees (through the SDK, as a user would)."""
        assert self.engine is not None
        return await self.engine.history(self.target, release, storage_namespace=namespace)

    def get(self, *args: str) -> dict[str, Any] | None:
        r = self.kube.kubectl("get", *args, "-o", "json")
        if r.returncode != 0:
            assert "NotFound" in r.stderr or "not found" in r.stderr, r.stderr
            return None
        return json.loads(r.stdout)

    async def events(self, key: str) -> list[Any]:
        _, ns, name = subjects.split_object_key(key)
        return await self.bus.recent_events(subjects.event_subject("HelmRelease", ns, name))


def _member(data: bytes, suffix: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for m in tf.getmembers():
            if m.name.endswith("/" + suffix) and m.name.count("/") == 1:
                f = tf.extractfile(m)
                assert f is not None
                return f.read().decode()
    raise KeyError(suffix)


@contextlib.asynccontextmanager
async def running(
    bus: Bus,
    kube: Any,
    tmp: Path,
    *,
    settings: HelmSettings | None = None,
    helm: bool = True,
) -> AsyncIterator[Env]:
    """Run the HelmRelease reconciler (one runtime) against kubelite until the block ends."""
    async with contextlib.AsyncExitStack() as stack:
        engine = None
        if helm:
            engine = await stack.enter_async_context(HelmEngine(WorkerLimits(workers=2)))
        cluster = await Cluster.connect(kube.kubeconfig)
        stack.push_async_callback(cluster.close)
        access = ClusterAccess(cluster)
        reconciler = HelmReleaseReconciler(
            bus,
            engine,
            recorder=EventRecorder(bus, "helm-controller", SETTINGS.instance),
            settings=settings or HelmSettings(dependency_requeue=0.5),
            kubeconfig_path=kube.kubeconfig,
            cluster_get=access.get,
            drift=access,
            storage=access,
        )
        runtime = await stack.enter_async_context(
            running_runtime(bus, reconciler, SETTINGS, service="helm")
        )
        await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
        yield Env(bus, kube, engine, runtime, reconciler, tmp)
