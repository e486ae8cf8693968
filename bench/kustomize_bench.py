"""kustomize service benchmark, after Flux's own (fluxcd/flux-benchmark).

N Kustomizations, each with its own GitRepository artifact holding 4 objects
(ServiceAccount, Service, Deployment with replicas 0, Ingress), 3 post-build
variables and `wait: true`. Measures the time from creating the
Kustomizations to all of them Ready, and the peak RSS of the processes.

Everything runs on this machine: `nats-server` (JetStream in a temp dir),
`fluxbus-kubelite` (workload simulation on) and `fluxbus-kustomize`, each a
subprocess; this process only publishes the sources, creates the
Kustomizations and watches their status. Not part of the test suite.

    .venv/bin/python bench/kustomize_bench.py --n 100 [--workers 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer, free_port
from fluxbus_kubelite.access import Access

APP = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${app}
  namespace: ${namespace}
---
apiVersion: v1
kind: Service
metadata:
  name: ${app}
  namespace: ${namespace}
spec:
  selector:
    app: ${app}
  ports:
    - name: http
      port: 80
      targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  namespace: ${namespace}
spec:
  replicas: ${replicas}
  selector:
    matchLabels:
      app: ${app}
  template:
    metadata:
      labels:
        app: ${app}
    spec:
      serviceAccountName: ${app}
      containers:
        - name: app
          image: ghcr.io/stefanprodan/podinfo:6.7.0
          ports:
            - containerPort: 8080
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${app}
  namespace: ${namespace}
spec:
  rules:
    - host: ${app}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: ${app}
                port:
                  number: 80
"""


DISTINCT = False
"""--distinct: give every app's manifest its own content (a comment), so no two
Kustomizations can share a kustomize render (the realistic worst case)."""


def tarball(i: int) -> bytes:
    """A deterministic source artifact for app `i` (a distinct file per app)."""
    app = f"# app {i}\n{APP}" if DISTINCT else APP
    files = {"app.yaml": app, "README.md": f"app {i}\n"}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def status_kib(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, waited-for children) CPU seconds of a process (Linux /proc)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        own = (int(fields[11]) + int(fields[12])) / tick
        children = (int(fields[13]) + int(fields[14])) / tick
        return own, children
    return 0.0, 0.0


def start_kubelite(workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    kubeconfig = workdir / "kubeconfig"
    exe = Path(sys.executable).parent / "fluxbus-kubelite"
    proc = subprocess.Popen(
        [str(exe), "--port", str(free_port()), "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not kubeconfig.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("kubelite did not start")
        time.sleep(0.05)
    return proc, kubeconfig


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> None:
    exe = Path(sys.executable).parent / "kubectl"
    subprocess.run(
        [str(exe), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
    )


async def publish_sources(bus: Bus, n: int, workdir: Path) -> None:
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            data = tarball(i)
            hexdigest = hashlib.sha256(data).hexdigest()
            path = workdir / f"app-{i}.tar.gz"
            path.write_bytes(data)
            name = f"app-{i}"
            artifact = subjects.artifact_name("GitRepository", "flux-system", name, hexdigest)
            await bus.put_artifact(artifact, path)
            key = subjects.object_key("GitRepository", "flux-system", name)
            await bus.apply_object(
                key,
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "metadata": {"name": name, "namespace": "flux-system"},
                    "spec": {"url": f"https://git.example.com/{name}", "interval": "1h"},
                },
            )
            revision = f"main@sha1:{hashlib.sha1(data).hexdigest()}"
            status = {
                "observedGeneration": 1,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Succeeded",
                        "message": "stored",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
                "artifact": {
                    "revision": revision,
                    "digest": f"sha256:{hexdigest}",
                    "path": artifact,
                    "url": f"nats://{subjects.ARTIFACTS_STORE}/{artifact}",
                    "size": len(data),
                    "lastUpdateTime": "2026-01-01T00:00:00Z",
                },
            }
            entry = await bus.get_status(key)
            await bus.put_status(key, status, entry.revision if entry else 0)

    await asyncio.gather(*(one(i) for i in range(n)))


def kustomization(i: int) -> dict[str, Any]:
    name = f"app-{i}"
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {
            "interval": "1h",
            "retryInterval": "30s",
            "timeout": "5m",
            "path": "./",
            "prune": True,
            "wait": True,
            "sourceRef": {"kind": "GitRepository", "name": name},
            "postBuild": {
                "substitute": {"app": name, "namespace": "apps", "replicas": "0"},
            },
        },
    }


async def resync(bus: Bus, n: int) -> float:
    """Request a reconcile of every Kustomization (nothing changed) and return the
    seconds until all were handled: the steady-state cost of one interval."""
    token = f"resync-{time.time()}"
    start = time.monotonic()
    for i in range(n):
        key = subjects.object_key("Kustomization", "flux-system", f"app-{i}")
        entry = await bus.get_object(key)
        assert entry is not None
        doc = entry.value
        doc["metadata"].setdefault("annotations", {})["reconcile.fluxcd.io/requestedAt"] = token
        await bus.update_object(key, doc, entry.revision)
    handled: set[str] = set()
    async for change in bus.watch_status("Kustomization"):
        if change.value is not None and change.value.get("lastHandledReconcileAt") == token:
            handled.add(change.key)
            if len(handled) >= n:
                break
    return round(time.monotonic() - start, 2)


async def raw_apply_baseline(kubeconfig: Path, n: int, concurrency: int = 16) -> float:
    """Seconds to server-side apply the same 4*N objects straight to kubelite.

    The "physical limit" the service is measured against, in the same run: the
    objects the N Kustomizations produce (substituted by hand, into namespace
    `baseline`), one PATCH each with raw aiohttp, `concurrency` in flight, no
    dry-run, no reads, no NATS.
    """
    kube = Access.from_kubeconfig(kubeconfig)
    plurals = {
        "ServiceAccount": "/api/v1/namespaces/baseline/serviceaccounts",
        "Service": "/api/v1/namespaces/baseline/services",
        "Deployment": "/apis/apps/v1/namespaces/baseline/deployments",
        "Ingress": "/apis/networking.k8s.io/v1/namespaces/baseline/ingresses",
    }
    bodies: list[tuple[str, str]] = []
    for i in range(n):
        text = (
            APP.replace("${app}", f"app-{i}")
            .replace("${namespace}", "baseline")
            .replace("${replicas}", "0")
        )
        for doc in yaml.safe_load_all(text):
            path = f"{plurals[doc['kind']]}/{doc['metadata']['name']}"
            bodies.append((path, json.dumps(doc)))
    sem = asyncio.Semaphore(concurrency)
    async with kube.session(base_url=kube.url) as http:

        async def apply(path: str, body: str) -> None:
            async with sem:
                async with http.patch(
                    path,
                    params={"fieldManager": "bench", "force": "true"},
                    data=body,
                    headers={"Content-Type": "application/apply-patch+yaml"},
                ) as r:
                    if r.status >= 300:
                        raise RuntimeError(f"{path}: {r.status} {await r.text()}")

        start = time.monotonic()
        await asyncio.gather(*(apply(p, b) for p, b in bodies))
        return time.monotonic() - start


def ready(status: dict[str, Any] | None) -> bool:
    for c in (status or {}).get("conditions", []):
        if c.get("type") == "Ready":
            return c.get("status") == "True" and bool(status and status.get("lastAppliedRevision"))
    return False


async def run(n: int, workers: int, profile: str = "", tmpdir: str = "") -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="kustomize-bench-"))
    nats = NatsServer(workdir / "nats")
    nats.start()
    kube, kubeconfig = start_kubelite(workdir)
    service: subprocess.Popen[bytes] | None = None
    peaks = {"kustomize": 0, "kubelite": 0, "nats": 0}
    try:
        kubectl(kubeconfig, "create", "namespace", "apps")
        bus = await Bus.connect(BusSettings(url=nats.url), "bench")
        await publish_sources(bus, n, workdir)
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "FLUXBUS_NATS_URL": nats.url,
            "FLUXBUS_HTTP_ADDR": "",
            "FLUXBUS_WORKERS": str(workers),
            "FLUXBUS_LOG_LEVEL": "warning",
        }
        if tmpdir:
            env["TMPDIR"] = tmpdir  # where artifacts are unpacked and kustomize runs
        command = [str(Path(sys.executable).parent / "fluxbus-kustomize")]
        if profile:
            command = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "fluxbus_kustomize"]
        service = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)  # let the service connect and take its lease
        done: set[str] = set()
        all_ready = asyncio.Event()

        async def watch() -> None:
            async for change in bus.watch_status("Kustomization"):
                if change.value is not None and ready(change.value):
                    done.add(change.key)
                    if len(done) >= n:
                        all_ready.set()
                        return

        async def sample() -> None:
            while True:
                for name, proc in (("kustomize", service), ("kubelite", kube), ("nats", nats.proc)):
                    if proc is not None:
                        peaks[name] = max(peaks[name], status_kib(proc.pid, "VmHWM"))
                await asyncio.sleep(0.5)

        watcher = asyncio.create_task(watch())
        sampler = asyncio.create_task(sample())
        start = time.monotonic()
        sem = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with sem:
                key = subjects.object_key("Kustomization", "flux-system", f"app-{i}")
                await bus.apply_object(key, kustomization(i))

        await asyncio.gather(*(create(i) for i in range(n)))
        created = time.monotonic() - start
        try:
            async with asyncio.timeout(max(600.0, n * 1.0)):
                await all_ready.wait()
        except TimeoutError:
            pass
        elapsed = time.monotonic() - start
        watcher.cancel()
        cpu_before = {
            name: sum(cpu_seconds(proc.pid))
            for name, proc in (("kustomize", service), ("kubelite", kube))
            if proc is not None
        }
        resync_s = await resync(bus, n) if len(done) >= n else None
        resync_cpu = {
            name: round(sum(cpu_seconds(proc.pid)) - cpu_before[name], 1)
            for name, proc in (("kustomize", service), ("kubelite", kube))
            if proc is not None
        }
        sampler.cancel()
        kubectl(kubeconfig, "create", "namespace", "baseline")
        baseline_s = await raw_apply_baseline(kubeconfig, n)
        cpu: dict[str, float] = {}
        for name, proc in (("kustomize", service), ("kubelite", kube), ("nats", nats.proc)):
            if proc is not None:
                peaks[name] = max(peaks[name], status_kib(proc.pid, "VmHWM"))
                own, children = cpu_seconds(proc.pid)
                cpu[name] = round(own, 1)
                if children:
                    cpu[f"{name}-children"] = round(children, 1)
        await bus.close()
        return {
            "n": n,
            "workers": workers,
            "tmpdir": tmpdir or "default",
            "ready": len(done),
            "create_s": round(created, 2),
            "all_ready_s": round(elapsed, 2),
            "peak_rss_mib": {k: round(v / 1024, 1) for k, v in peaks.items()},
            "cpu_s": cpu,
            "resync_all_s": resync_s,
            "resync_cpu_s": resync_cpu,
            "distinct_manifests": DISTINCT,
            "raw_apply_same_objects_s": round(baseline_s, 2),
            "raw_apply_objects_per_s": round(4 * n / baseline_s),
        }
    finally:
        if service is not None:
            service.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.wait(timeout=20)
            if service.poll() is None:
                service.kill()
        kube.terminate()
        kube.wait(timeout=20)
        nats.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100])
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--profile", default="", help="write a cProfile of the service here")
    p.add_argument(
        "--tmpdir",
        default="",
        help="TMPDIR of the service, e.g. /dev/shm (a memory-backed emptyDir in Kubernetes)",
    )
    p.add_argument("--distinct", action="store_true", help="no two apps share manifest content")
    p.add_argument(
        "--also-distinct", action="store_true", help="run each N shared, then with --distinct"
    )
    p.add_argument("--out", default="", help="also write the results as a markdown table here")
    p.add_argument(
        "--quick", action="store_true", help="a small run for `make bench QUICK=1`: --n 100"
    )
    args = p.parse_args()
    if args.quick:
        args.n = [100]
    global DISTINCT
    print(f"# {platform.python_version()} on {os.cpu_count()} cores ({platform.machine()})")
    results = []
    for n in args.n:
        for distinct in (False, True) if args.also_distinct else (args.distinct,):
            DISTINCT = distinct
            result = asyncio.run(run(n, args.workers, args.profile, args.tmpdir))
            print(result, flush=True)
            results.append(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(markdown(results, args))


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The results as a table: each N beside kubelite's raw apply of the same objects."""
    lines = [
        "# kustomize service benchmark",
        "",
        f"`.venv/bin/python bench/kustomize_bench.py --n {' '.join(map(str, args.n))}"
        f"{' --also-distinct' if args.also_distinct else ''}` ({time.strftime('%Y-%m-%d')}); "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Each row: N Kustomizations "
        "created to all Ready, then a no-change resync of all of them, then the same 4×N objects "
        "applied straight to the same kubelite (raw server-side apply, the floor).",
        "",
        "| N | manifests | all Ready | resync all | raw SSA of the same objects | service CPU |"
        " peak RSS service |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        resync = f"{r['resync_all_s']:.1f} s" if r["resync_all_s"] is not None else "-"
        lines.append(
            f"| {r['n']} | {'distinct' if r['distinct_manifests'] else 'shared'} "
            f"| {r['all_ready_s']:.1f} s | {resync} | {r['raw_apply_same_objects_s']:.1f} s "
            f"({r['raw_apply_objects_per_s']} objects/s) | {r['cpu_s'].get('kustomize', 0):.1f} s "
            f"| {r['peak_rss_mib'].get('kustomize', 0):.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
