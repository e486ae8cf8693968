"""Helpers for the reconciler tests: deterministic source artifacts published
straight to the object store (as the source service would), Kustomization
documents, and a running kustomize runtime against kubelite and nats-server.

The GitRepository status written here is the contract with the source
service: `status.artifact.{revision, digest, path, url, size, lastUpdateTime}`
where `path` is the object-store name of the tarball and `digest` its
`sha256:<hex>`; the reconciler reads `revision`, `digest` and `path`.
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
from fluxbus_kube import Cluster
from fluxbus_kustomize.build import Builder, RenderCache
from fluxbus_kustomize.reconcilers import KustomizationReconciler
from fluxbus_kustomize.settings import KustomizeSettings

SETTINGS = RuntimeSettings(
    workers=4,
    shards=1,
    lease_ttl=0.6,
    instance="test",
    http_addr="",
    backoff_base=0.05,
    backoff_cap=0.5,
)


def tarball(files: Mapping[str, str | bytes]) -> bytes:
    """Return a deterministic .tar.gz of `files` (path → content; str is dedented)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, content in sorted(files.items()):
            data = (
                textwrap.dedent(content).lstrip("\n").encode()
                if isinstance(content, str)
                else content
            )
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def manifests(*docs: Mapping[str, Any]) -> str:
    """Return a multi-document YAML stream of `docs`."""
    return yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False)


def deployment(
    name: str,
    namespace: str,
    image: str = "nginx:1.25",
    replicas: int = 1,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    sel = dict(labels or {"app": name})
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": sel},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def configmap(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def kustomization(
    name: str, namespace: str = "default", *, source: str = "repo", **spec: Any
) -> dict[str, Any]:
    """Return a stored Kustomization document (spec fields camelCase)."""
    body: dict[str, Any] = {
        "interval": "1m",
        "path": "./",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": source},
        **spec,
    }
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
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
    """A running kustomize service (one runtime) and handles to poke it."""

    bus: Bus
    kube: Any
    cluster: Cluster
    runtime: Runtime
    reconciler: KustomizationReconciler
    tmp: Path
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _requests: itertools.count = field(default_factory=itertools.count)

    async def publish(
        self,
        files: Mapping[str, str | bytes],
        *,
        name: str = "repo",
        namespace: str = "default",
        revision: str | None = None,
    ) -> str:
        """Publish a source artifact and its GitRepository status; return the revision."""
        data = tarball(files)
        hexdigest = hashlib.sha256(data).hexdigest()
        revision = revision or f"main@sha1:{hashlib.sha1(data).hexdigest()}"
        path = self.tmp / f"{hexdigest}.tar.gz"
        await asyncio.to_thread(path.write_bytes, data)
        artifact = subjects.artifact_name("GitRepository", namespace, name, hexdigest)
        await self.bus.put_artifact(artifact, path)
        key = subjects.object_key("GitRepository", namespace, name)
        await self.bus.apply_object(
            key,
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "url": f"https://git.example.com/{name}.git",
                    "interval": "1m",
                    "ref": {"branch": "main"},
                },
            },
        )
        current = await self.bus.get_status(key)
        status = {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": f"stored artifact for revision '{revision}'",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
            "artifact": {
                "revision": revision,
                "digest": f"sha256:{hexdigest}",
                "path": artifact,
                "url": f"nats://fluxbus-artifacts/{artifact}",
                "size": len(data),
                "lastUpdateTime": "2026-01-01T00:00:00Z",
            },
        }
        await self.bus.put_status(key, status, current.revision if current else 0)
        return revision

    async def apply(self, doc: dict[str, Any]) -> str:
        """Store a Kustomization (or any object); return its key."""
        meta = doc["metadata"]
        key = subjects.object_key(doc["kind"], meta.get("namespace", "default"), meta["name"])
        self.docs[key] = doc
        await self.bus.apply_object(key, doc)
        return key

    async def status(self, key: str) -> dict[str, Any]:
        entry = await self.bus.get_status(key)
        return {} if entry is None else entry.value

    async def reconciled(self, key: str, timeout: float = 15.0) -> dict[str, Any]:
        """Request a reconcile (requestedAt) and return the status that handled it."""
        token = f"req-{next(self._requests)}"
        stored = await self.bus.get_object(key)
        assert stored is not None, key
        doc = json.loads(json.dumps(stored.value))
        doc["metadata"].setdefault("annotations", {})[keys.RECONCILE_REQUESTED_AT] = token
        await self.bus.update_object(key, doc, stored.revision)

        async def handled() -> dict[str, Any] | None:
            st = await self.status(key)
            return st if st.get("lastHandledReconcileAt") == token else None

        return await wait_for(handled, timeout=timeout, message=f"{key} handled {token}")

    async def ready(
        self, key: str, revision: str | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """Wait until Ready=True (at `revision` when given) and return the status."""

        async def check() -> dict[str, Any] | None:
            st = await self.status(key)
            gen = ((await self.bus.get_object(key)).value["metadata"]).get("generation")
            ok = (
                condition(st).get("status") == "True"
                and st.get("observedGeneration") == gen
                and (revision is None or st.get("lastAppliedRevision") == revision)
            )
            return st if ok else None

        return await wait_for(check, timeout=timeout, message=f"{key} ready at {revision}")

    async def failing(self, key: str, reason: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until Ready=False with `reason` and return the status."""

        async def check() -> dict[str, Any] | None:
            st = await self.status(key)
            c = condition(st)
            return st if c.get("status") == "False" and c.get("reason") == reason else None

        return await wait_for(check, timeout=timeout, message=f"{key} failing with {reason}")

    def get(self, *args: str) -> dict[str, Any] | None:
        """`kubectl get <args> -o json` → the object, or None when absent."""
        r = self.kube.kubectl("get", *args, "-o", "json")
        if r.returncode != 0:
            assert "NotFound" in r.stderr or "not found" in r.stderr, r.stderr
            return None
        return json.loads(r.stdout)

    async def events(self, key: str) -> list[Any]:
        _, ns, name = subjects.split_object_key(key)
        return await self.bus.recent_events(subjects.event_subject("Kustomization", ns, name))


@contextlib.asynccontextmanager
async def running(
    bus: Bus,
    kube: Any,
    tmp: Path,
    *,
    settings: KustomizeSettings | None = None,
) -> AsyncIterator[Env]:
    """Run the kustomize reconciler (one runtime) against kubelite until the block ends."""
    cluster = await Cluster.connect(kube.kubeconfig)
    builder = Builder(cache=RenderCache(256), temp_dir=None)
    reconciler = KustomizationReconciler(
        bus,
        cluster,
        builder=builder,
        settings=settings or KustomizeSettings(dependency_requeue=0.5),
    )
    reconciler.recorder = EventRecorder(bus, "kustomize-controller", SETTINGS.instance)
    try:
        async with running_runtime(bus, reconciler, SETTINGS, service="kustomize") as runtime:
            await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
            yield Env(bus, kube, cluster, runtime, reconciler, tmp)
    finally:
        await reconciler.clusters.close()  # remote clusters (spec.kubeConfig)
        await cluster.close()
