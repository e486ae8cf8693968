"""Chaos on a rollout: a 3-node NATS cluster (R3 buckets) loses one node after
another, a kustomize replica crashes and comes back, and new commits land
meanwhile (issue "Faults of the bus and the runtime", Done when).

Everything runs in this process against kubelite and a real Git server: one
source runtime, two kustomize replicas (`shards=2`), each with its own bus
connection given all three NATS URLs. A ledger shared by the replicas records
every reconcile (who, when) and every revision a replica finished applying;
a status watch samples every `lastAppliedRevision` the store ever shows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fluxbus_common import subjects
from fluxbus_common.api import Kustomization
from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder, Runtime
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.ledger import Ledger
from fluxbus_common.testing.nats_cluster import NatsCluster
from fluxbus_common.testing.plugin import wait_for
from fluxbus_common.workdir import WorkDirs
from fluxbus_git.client import GitClient
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_kube import Cluster
from fluxbus_kustomize.reconcilers import KustomizationReconciler
from fluxbus_kustomize.reconcilers.kustomization import KustomizeState
from fluxbus_kustomize.settings import KustomizeSettings
from fluxbus_source.reconcilers import GitRepositoryReconciler

COUNT = 12
"""Kustomizations in the rollout: enough for both shards to hold several."""
NAMESPACE = "chaos"
LEASE_TTL = 2.5
"""Short, so a crashed replica's shards are taken over within the test's budget."""

KUSTOMIZE = RuntimeSettings(
    workers=4,
    shards=2,
    lease_ttl=LEASE_TTL,
    instance="a",
    http_addr="",
    backoff_base=0.1,
    backoff_cap=1.0,
)
SOURCE = replace(KUSTOMIZE, shards=1, workers=2, instance="src")


class LedgerKustomizations(KustomizationReconciler):
    """The real Kustomization reconciler, writing each reconcile into the ledger."""

    def __init__(self, *args: Any, instance: str, ledger: Ledger, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.ledger = ledger

    async def reconcile(self, obj: Kustomization):  # type: ignore[override]
        with self.ledger.record(self.key_of(obj), self.instance):
            return await super().reconcile(obj)

    async def reconcile_apply(self, obj: Kustomization, state: KustomizeState) -> None:
        await super().reconcile_apply(obj, state)
        self.ledger.applied.setdefault(self.key_of(obj), set()).add(state.revision)


@dataclass
class Replica:
    bus: Bus
    cluster: Cluster
    runtime: Runtime
    task: asyncio.Task[None]

    async def crash(self) -> None:
        """Die like a killed pod: the connection drops, nothing is released."""
        await self.bus._nc.close()  # abrupt: no drain, no lease release reaches NATS
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.cluster.close()


async def start_replica(
    bus_settings: BusSettings, kubeconfig: str, instance: str, ledger: Ledger
) -> Replica:
    bus = await Bus.connect(bus_settings, f"kustomize-{instance}")
    cluster = await Cluster.connect(kubeconfig)
    reconciler = LedgerKustomizations(
        bus,
        cluster,
        settings=KustomizeSettings(dependency_requeue=0.5),
        instance=instance,
        ledger=ledger,
    )
    runtime = Runtime(bus, reconciler, replace(KUSTOMIZE, instance=instance), service="kustomize")
    task = asyncio.create_task(runtime.run(), name=f"kustomize-{instance}")
    return Replica(bus, cluster, runtime, task)


@contextlib.asynccontextmanager
async def source_service(bus_settings: BusSettings, work: Path) -> AsyncIterator[Runtime]:
    await asyncio.to_thread(work.mkdir)
    bus = await Bus.connect(bus_settings, "source")
    git = GitClient(timeout=10)
    recorder = EventRecorder(bus, "source-controller", SOURCE.instance)
    reconciler = GitRepositoryReconciler(bus, git, recorder, WorkDirs(work), keep_artifacts=8)
    runtime = Runtime(bus, reconciler, SOURCE, service="source")
    task = asyncio.create_task(runtime.run(), name="source")
    try:
        yield runtime
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()
        git.close()


def commit_files(marker: str) -> dict[str, str]:
    """One directory per Kustomization, each with a ConfigMap carrying `marker`."""
    files = {}
    for i in range(COUNT):
        files[f"k{i}/kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n  - configmap.yaml\n"
        )
        files[f"k{i}/configmap.yaml"] = (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n"
            f"  namespace: {NAMESPACE}\ndata:\n  marker: {marker}\n"
        )
    return files


def kustomization(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": f"k{i}", "namespace": NAMESPACE},
        "spec": {
            "interval": "3s",
            "path": f"./k{i}",
            "prune": True,
            "wait": False,
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
        },
    }


async def test_a_rollout_survives_nats_nodes_and_a_replica_dying_in_turn(
    nats_cluster: NatsCluster,
    cluster_bus_settings: BusSettings,
    kubelite: Any,
    git_repo: GitRepo,
    git_http_server: GitHTTPServer,
    tmp_path: Path,
):
    bus_settings = replace(cluster_bus_settings, request_timeout=2.0)
    kubelite.ensure_namespace(NAMESPACE)
    markers: dict[str, str] = {}  # revision → the marker its ConfigMaps carry

    def push(marker: str) -> str:
        sha = git_repo.commit(commit_files(marker), branch="main", message=marker)
        revision = f"main@sha1:{sha}"
        markers[revision] = marker
        return revision

    first = push("gen-1")
    keys = [subjects.object_key("Kustomization", NAMESPACE, f"k{i}") for i in range(COUNT)]
    ledger = Ledger()
    observed: dict[str, set[str]] = {k: set() for k in keys}
    latest: dict[str, str] = {}

    admin = await Bus.connect(bus_settings, "admin")
    await admin.apply_object(
        subjects.object_key("GitRepository", NAMESPACE, "fleet"),
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet", "namespace": NAMESPACE},
            "spec": {
                "interval": "1s",
                "url": git_http_server.url(git_repo),
                "ref": {"branch": "main"},
            },
        },
    )
    for i, key in enumerate(keys):
        await admin.apply_object(key, kustomization(i))

    async def sample_statuses() -> None:
        async for change in admin.watch_status("kustomization"):
            applied = (change.value or {}).get("lastAppliedRevision")
            if applied and change.key in observed:
                observed[change.key].add(applied)
                latest[change.key] = applied

    def all_at(revision: str) -> bool:
        return all(latest.get(k) == revision for k in keys)

    replicas: dict[str, Replica] = {}
    double: list[tuple[float, int]] = []  # (when, shard) two live replicas both owned

    async def sample_ownership() -> None:
        while True:
            for shard in range(KUSTOMIZE.shards):
                if sum(shard in r.runtime._owned for r in replicas.values()) > 1:
                    double.append((time.monotonic(), shard))
            await asyncio.sleep(0.01)

    def split_between(*names: str) -> bool:
        """Whether the named replicas hold one shard each (the fair share)."""
        return all(len(replicas[n].runtime._owned) == 1 for n in names)

    sampler = asyncio.create_task(sample_statuses(), name="status-sampler")
    owners = asyncio.create_task(sample_ownership(), name="ownership-sampler")
    t: dict[str, float] = {"start": time.monotonic()}
    try:
        async with source_service(bus_settings, tmp_path / "source"):
            for name in ("a", "b"):
                replicas[name] = await start_replica(
                    bus_settings, kubelite.kubeconfig, name, ledger
                )
            await wait_for(
                lambda: all_at(first) and split_between("a", "b"),
                timeout=30,
                message=f"every Kustomization at {first}, a and b holding a shard each",
            )
            t["rolled out"] = time.monotonic()

            # The fault schedule: one NATS node down at a time, each fault only once
            # the system recovered from the previous one; a new commit during each.
            push("gen-2")
            nats_cluster.kill(0)
            await asyncio.sleep(1.0)
            await replicas.pop("a").crash()
            t["a crashed"] = time.monotonic()
            await wait_for(
                lambda: len(replicas["b"].runtime._owned) == 2,
                timeout=20,
                message="b taking over a's shard",
            )
            t["b took over"] = time.monotonic()
            nats_cluster.start(0)
            await nats_cluster.wait_ready()
            replicas["a2"] = await start_replica(bus_settings, kubelite.kubeconfig, "a2", ledger)
            await wait_for(lambda: split_between("a2", "b"), timeout=20, message="a2 joining")
            t["a2 joined"] = time.monotonic()

            push("gen-3")
            nats_cluster.kill(1)
            await asyncio.sleep(1.0)
            await replicas.pop("b").crash()
            t["b crashed"] = time.monotonic()
            nats_cluster.start(1)
            await nats_cluster.wait_ready()
            replicas["b2"] = await start_replica(bus_settings, kubelite.kubeconfig, "b2", ledger)
            await wait_for(lambda: split_between("a2", "b2"), timeout=20, message="b2 joining")
            t["b2 joined"] = time.monotonic()

            last = push("gen-4")
            nats_cluster.kill(2)
            await asyncio.sleep(LEASE_TTL)
            nats_cluster.start(2)
            t["faults over"] = time.monotonic()

            await wait_for(
                lambda: all_at(last), timeout=45, message=f"every Kustomization at {last}"
            )
            t["converged"] = time.monotonic()
            stored = {k: await admin.get_status(k) for k in keys}
    finally:
        for replica in replicas.values():
            await replica.crash()
        for task in (sampler, owners):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await admin.close()

    print(
        "timeline:",
        ", ".join(f"{k} {v - t['start']:.1f}s" for k, v in t.items()),
        "; reconciles per replica:",
        dict(collections.Counter(r.instance for r in ledger.runs)),
    )
    # 1. every commit is applied in the end: statuses and the cluster agree on the last
    out = await kubelite.akubectl("get", "configmaps", "-n", NAMESPACE, "-o", "json")
    assert out.returncode == 0, out.stderr
    live = {cm["metadata"]["name"]: cm["data"]["marker"] for cm in json.loads(out.stdout)["items"]}
    assert live == {f"cm-{i}": markers[last] for i in range(COUNT)}
    assert {k: e.value.get("lastAppliedRevision") for k, e in stored.items() if e} == {
        k: last for k in keys
    }
    # 2. no key was reconciled by two replicas at once, no shard held by two
    assert ledger.overlaps() == []
    assert double == []
    # 3. no status ever claimed a revision that no replica had applied
    for key in keys:
        assert observed[key] <= ledger.applied.get(key, set()), key
        assert observed[key] <= set(markers), key
