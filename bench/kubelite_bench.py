"""kubelite benchmark: server-side apply throughput, big lists, memory per object.

Runs `fluxbus-kubelite` as a subprocess (simulation off, in-memory) and drives
it with kubernetes-asyncio from this process, so client and server each get a
core. Not part of the test suite.

    .venv/bin/python bench/kubelite_bench.py [--deployments 500] [--configmaps 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from fluxbus_kubelite.access import Access


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "main", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def wait_ready(kc: Path, timeout: float = 30.0) -> Access:
    """The server's access once the kubeconfig exists (the server writes it when listening)."""
    deadline = time.monotonic() + timeout
    while not kc.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("kubelite did not start")
        time.sleep(0.05)
    return Access.from_kubeconfig(kc)


async def typed_client(kube: Access, pool: int = 4) -> client.ApiClient:
    """A kubernetes-asyncio client for the server (token and CA from the kubeconfig)."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kube.kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(cfg)


async def ensure_ns(kube: Access, name: str) -> None:
    url = kube.url
    async with kube.session() as s:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        async with s.post(url + "/api/v1/namespaces", json=body) as r:
            assert r.status in (201, 409), await r.text()


async def apply_throughput(kube: Access, ns: str, count: int, concurrency: int) -> float:
    """Server-side applies of small Deployments per second."""
    async with await typed_client(kube, max(concurrency, 4)) as api:
        apps = client.AppsV1Api(api)
        names = [f"d{i}" for i in range(count)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for n in names:
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                name = queue.get_nowait()
                await apps.patch_namespaced_deployment(
                    name,
                    ns,
                    deployment(name),
                    field_manager="bench",
                    _content_type="application/apply-patch+yaml",
                )

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - start)


async def raw_apply_throughput(kube: Access, ns: str, count: int) -> float:
    """Server-side applies per second over plain aiohttp (no client-side models)."""
    url = kube.url
    async with kube.session() as s:
        start = time.perf_counter()
        for i in range(count):
            name = f"r{i}"
            async with s.patch(
                f"{url}/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                data=json.dumps(deployment(name)),
                params={"fieldManager": "bench"},
                headers={"Content-Type": "application/apply-patch+yaml"},
            ) as r:
                assert r.status in (200, 201), await r.text()
                await r.read()
        return count / (time.perf_counter() - start)


async def create_configmaps(kube: Access, ns: str, count: int) -> None:
    url = kube.url
    async with kube.session(limit=16) as s:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i:05d}", "labels": {"bench": "yes"}},
                "data": {"key": f"value-{i}", "other": "x" * 32},
            }
            async with sem, s.post(f"{url}/api/v1/namespaces/{ns}/configmaps", json=body) as r:
                assert r.status == 201, await r.text()

        await asyncio.gather(*(one(i) for i in range(count)))


async def list_times(kube: Access, ns: str) -> tuple[float, float, int]:
    """Seconds to list all ConfigMaps: raw JSON, and through the typed client."""
    url = kube.url
    async with kube.session() as s:
        start = time.perf_counter()
        async with s.get(f"{url}/api/v1/namespaces/{ns}/configmaps") as r:
            body = await r.json()
        raw = time.perf_counter() - start
    async with await typed_client(kube) as api:
        core = client.CoreV1Api(api)
        start = time.perf_counter()
        lst = await core.list_namespaced_config_map(ns)
        typed = time.perf_counter() - start
    assert len(lst.items) == len(body["items"])
    return raw, typed, len(body["items"])


async def measure(url: Access, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    await ensure_ns(url, "one")
    await ensure_ns(url, "many")
    await ensure_ns(url, "cms")
    # warm up schemas and connections
    await apply_throughput(url, "one", 20, 1)
    results["apply_1_client"] = await apply_throughput(url, "one", args.deployments, 1)
    results["apply_16_clients"] = await apply_throughput(url, "many", args.deployments, 16)
    results["apply_raw_1_client"] = await raw_apply_throughput(url, "one", args.deployments)
    # re-applying unchanged objects is a no-op (no write)
    results["noop_apply_16_clients"] = await apply_throughput(url, "many", args.deployments, 16)
    rss_before = rss_kib(pid)
    start = time.perf_counter()
    await create_configmaps(url, "cms", args.configmaps)
    results["create_cm_per_s"] = args.configmaps / (time.perf_counter() - start)
    rss_after = rss_kib(pid)
    raw, typed, n = await list_times(url, "cms")
    results["list_raw_s"] = raw
    results["list_typed_s"] = typed
    results["list_items"] = n
    results["rss_per_10k_mib"] = (rss_after - rss_before) / 1024 * (10000 / args.configmaps)
    results["rss_total_mib"] = rss_kib(pid) / 1024
    return results


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, measure, stop it."""
    with tempfile.TemporaryDirectory() as tmp:
        kc = Path(tmp) / "kc"
        cmd = [sys.executable, "-m", "fluxbus_kubelite", "--port", "0", "--kubeconfig", str(kc)]
        proc = subprocess.Popen([*cmd, "--no-simulate"], stdout=subprocess.DEVNULL)
        try:
            url = wait_ready(kc)
            return asyncio.run(measure(url, proc.pid, args))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    cpu = os.cpu_count()
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "\n".join(
        [
            f"machine: {cpu} cores ({model}), Python {platform.python_version()}",
            f"server-side apply, 1 client:    {results['apply_1_client']:8.0f} Deployments/s ({args.deployments} objects)",
            f"server-side apply, 16 clients:  {results['apply_16_clients']:8.0f} Deployments/s",
            f"server-side apply, raw aiohttp: {results['apply_raw_1_client']:8.0f} Deployments/s (1 client)",
            f"no-op re-apply, 16 clients:     {results['noop_apply_16_clients']:8.0f} Deployments/s",
            f"create ConfigMaps (16 conc.):   {results['create_cm_per_s']:8.0f} objects/s",
            f"list {results['list_items']} ConfigMaps, raw JSON:   {results['list_raw_s']:.3f} s",
            f"list {results['list_items']} ConfigMaps, typed client: {results['list_typed_s']:.3f} s",
            f"server memory per 10 000 ConfigMaps: {results['rss_per_10k_mib']:.1f} MiB (RSS growth)",
            f"server RSS at the end: {results['rss_total_mib']:.1f} MiB",
        ]
    )


def markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The results as `bench/results/kubelite.md`'s table (one column: this run)."""
    rows = [
        (
            "server-side apply of small Deployments, kubernetes-asyncio, 1 client",
            f"{results['apply_1_client']:.0f} objects/s",
        ),
        (
            "server-side apply of small Deployments, kubernetes-asyncio, 16 concurrent clients",
            f"{results['apply_16_clients']:.0f} objects/s",
        ),
        (
            "server-side apply of small Deployments, raw aiohttp, 1 client",
            f"{results['apply_raw_1_client']:.0f} objects/s",
        ),
        (
            "no-op re-apply (same config), kubernetes-asyncio, 16 concurrent clients",
            f"{results['noop_apply_16_clients']:.0f} objects/s",
        ),
        (
            "create ConfigMaps, 16 concurrent (raw aiohttp)",
            f"{results['create_cm_per_s']:.0f} objects/s",
        ),
        (
            f"list {results['list_items']} ConfigMaps, raw HTTP + `json`",
            f"{results['list_raw_s']:.2f} s",
        ),
        (
            "server memory per 10 000 ConfigMaps (RSS growth)",
            f"{results['rss_per_10k_mib']:.1f} MiB",
        ),
        ("server RSS after the run", f"{results['rss_total_mib']:.1f} MiB"),
    ]
    return "\n".join(
        [
            "# kubelite benchmark",
            "",
            f"`.venv/bin/python bench/kubelite_bench.py --deployments {args.deployments} "
            f"--configmaps {args.configmaps}` ({time.strftime('%Y-%m-%d')}); "
            f"{os.cpu_count()} cores, Python {platform.python_version()}.",
            "",
            "| measure | this run |",
            "|---|---|",
            *(f"| {label} | {value} |" for label, value in rows),
            "",
        ]
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deployments", type=int, default=500)
    p.add_argument("--configmaps", type=int, default=10000)
    p.add_argument("--out", default="", help="also write the results as a markdown table here")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run for `make bench QUICK=1`: --deployments 100, --configmaps 1000",
    )
    a = p.parse_args()
    if a.quick:
        a.deployments = 100
        a.configmaps = 1000
    results = main(a)
    print(report(results, a))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(markdown(results, a))
