"""helm service benchmark: N HelmReleases of one small chart, all Ready.

One HelmRepository (a local chart repository over HTTP, indexed with the SDK)
holding one small chart (a ConfigMap and a Deployment, the test chart of
`fluxbus_helmsdk.testing`); N HelmReleases of it (`spec.chart`, so the helm
service generates N HelmCharts the source service packages), each into its own
release in namespace `apps`. Measures the time from creating the HelmReleases
to all of them Ready (beside Flux's published 1000 HelmReleases in 4 m 39 s),
the cost of one render through a Helm worker process, and the memory of the
helm service and of its Helm worker processes.

Everything runs on this machine: `nats-server`, `fluxbus-kubelite` (workload
simulation on), `fluxbus-source` and `fluxbus-helm`, each a subprocess; this
process serves the chart repository, creates the objects and watches their
status. Not part of the test suite.

    .venv/bin/python bench/helm_bench.py --n 100 [--helm-workers 2] [--out bench/results/helm.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kustomize_bench import cpu_seconds, kubectl, start_kubelite, status_kib

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer
from fluxbus_helmsdk import HelmEngine, WorkerLimits
from fluxbus_helmsdk.testing import ChartRepo, make_chart, package_chart

FLUX_1000 = "Flux: 1000 HelmReleases in 4 m 39 s (279 s)"
CHART = "bench"
CHART_VERSION = "1.0.0"


def helm_repository(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": "flux-system"},
        "spec": {"interval": "1h", "url": url},
    }


def helm_release(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": f"app-{i}", "namespace": "flux-system"},
        "spec": {
            "interval": "1h",
            "targetNamespace": "apps",
            "storageNamespace": "apps",
            "chart": {
                "spec": {
                    "chart": CHART,
                    "version": "1.x",
                    "interval": "1h",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                }
            },
            "values": {"replicaCount": 1, "greeting": f"app {i}"},
        },
    }


def ready(status: dict[str, Any] | None) -> bool:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def children(pid: int) -> list[int]:
    """Every descendant process of `pid` (Linux /proc)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    out += [int(child), *children(int(child))]
    return out


async def render_cost(chart: bytes, samples: int) -> dict[str, float]:
    """Milliseconds per render of the chart through one Helm worker process."""
    async with HelmEngine(WorkerLimits(workers=1)) as engine:
        await engine.render(chart, {}, release_name="warm-up", namespace="apps")
        times = []
        for i in range(samples):
            start = time.perf_counter()
            await engine.render(chart, {"greeting": f"r{i}"}, release_name=f"r-{i}", namespace="a")
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50": round(statistics.median(times), 2),
        "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "samples": samples,
    }


class Sampler:
    """Peak RSS of the services and of the helm service's worker processes."""

    def __init__(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        self.procs = procs
        self.peaks = dict.fromkeys(procs, 0)
        self.workers_peak_sum = 0
        self.worker_peak = 0
        self.worker_count = 0

    def sample(self) -> None:
        for name, proc in self.procs.items():
            self.peaks[name] = max(self.peaks[name], status_kib(proc.pid, "VmHWM"))
        pids = children(self.procs["helm"].pid)
        rss = [status_kib(pid, "VmRSS") for pid in pids]
        self.worker_count = max(self.worker_count, len(pids))
        self.workers_peak_sum = max(self.workers_peak_sum, sum(rss))
        for pid in pids:
            self.worker_peak = max(self.worker_peak, status_kib(pid, "VmHWM"))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.5)


async def services_ready(bus: Bus, kinds: dict[str, str], timeout: float = 60.0) -> None:
    """Wait until each service's heartbeat says it is ready and holds the shards of
    its kind (`service -> kind`), so the clock starts with both reconciling."""
    ready: set[str] = set()
    async with asyncio.timeout(timeout):
        async for beat in bus.watch_heartbeats():
            kind = kinds.get(beat.service)
            if kind is not None and beat.ready and beat.shards.get(kind):
                ready.add(beat.service)
            if ready == set(kinds):
                return


def start_service(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / f"fluxbus-{name}"
    return subprocess.Popen([str(exe)], env=env, stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def run(n: int, helm_workers: int, samples: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="helm-bench-"))
    chart_dir = make_chart(workdir / "src", CHART, CHART_VERSION)
    chart = package_chart(chart_dir, workdir / "dist").read_bytes()
    render = await render_cost(chart, samples)
    nats = NatsServer(workdir / "nats")
    nats.start()
    kube, kubeconfig = start_kubelite(workdir)
    procs: dict[str, subprocess.Popen[bytes]] = {"kubelite": kube, "nats": nats.proc}
    try:
        kubectl(kubeconfig, "create", "namespace", "apps")
        async with HelmEngine(WorkerLimits(workers=1)) as engine:
            repo = await ChartRepo(workdir / "repo", engine).start()
            await repo.add(chart_dir)
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "FLUXBUS_NATS_URL": nats.url,
            "FLUXBUS_HTTP_ADDR": "",
            "FLUXBUS_LOG_LEVEL": "warning",
            "FLUXBUS_HELM_WORKERS": str(helm_workers),
            # concurrent reconciles per kind: at least one per Helm worker
            "FLUXBUS_WORKERS": str(max(4, helm_workers)),
        }
        procs["source"] = start_service("source", env)
        procs["helm"] = start_service("helm", env)
        bus = await Bus.connect(BusSettings(url=nats.url), "bench")
        await services_ready(bus, {"source": "helmchart", "helm": "helmrelease"})
        await bus.apply_object(
            subjects.object_key("HelmRepository", "flux-system", "charts"),
            helm_repository(repo.url),
        )
        done: set[str] = set()
        all_ready = asyncio.Event()

        async def watch() -> None:
            async for change in bus.watch_status("HelmRelease"):
                if change.value is not None and ready(change.value):
                    done.add(change.key)
                    if len(done) >= n:
                        all_ready.set()
                        return

        sampler = Sampler(procs)
        tasks = [asyncio.create_task(watch()), asyncio.create_task(sampler.run())]
        start = time.monotonic()
        sem = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with sem:
                key = subjects.object_key("HelmRelease", "flux-system", f"app-{i}")
                await bus.apply_object(key, helm_release(i))

        await asyncio.gather(*(create(i) for i in range(n)))
        created = time.monotonic() - start
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(600.0, n * 2.0)):
                await all_ready.wait()
        elapsed = time.monotonic() - start
        sampler.sample()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cpu = {name: round(sum(cpu_seconds(p.pid)), 1) for name, p in procs.items()}
        await bus.close()
        await repo.close()
        return {
            "n": n,
            "helm_workers": helm_workers,
            "ready": len(done),
            "create_s": round(created, 2),
            "all_ready_s": round(elapsed, 2),
            "per_release_ms": round(elapsed / max(1, len(done)) * 1000, 1),
            "render_ms": render,
            "peak_rss_mib": {k: round(v / 1024, 1) for k, v in sampler.peaks.items()},
            "worker_peak_rss_mib": round(sampler.worker_peak / 1024, 1),
            "workers_rss_sum_mib": round(sampler.workers_peak_sum / 1024, 1),
            "worker_processes": sampler.worker_count,
            "cpu_s": cpu,
        }
    finally:
        for name in ("helm", "source"):
            if name in procs:
                stop(procs[name])
        kube.terminate()
        kube.wait(timeout=20)
        nats.stop()


def markdown(results: list[dict[str, Any]], commands: list[str]) -> str:
    """The results as tables: the N releases beside Flux's figure, render cost, memory."""
    lines = [
        "# helm benchmark",
        "",
        f"Machine: {platform.machine()}, CPython {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (shared with other engineers' "
        f"test runs); run {time.strftime('%Y-%m-%d')}. Every service is its own process "
        "(`nats-server`, `fluxbus-kubelite` with workload simulation, `fluxbus-source`, "
        "`fluxbus-helm` and its Helm worker processes).",
        "",
        *(f"`.venv/bin/python bench/helm_bench.py {c}`  " for c in commands),
        "",
        "## N HelmReleases of one chart, created at once, until all are Ready",
        "",
        "| HelmReleases | Ready | all Ready s | per release ms | helm workers | "
        "Flux's figure | CPU s helm / source / kubelite |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu = r["cpu_s"]
        lines.append(
            f"| {r['n']} | {r['ready']} | **{r['all_ready_s']} s** | {r['per_release_ms']} | "
            f"{r['helm_workers']} | {FLUX_1000} | "
            f"{cpu.get('helm', 0)} / {cpu.get('source', 0)} / {cpu.get('kubelite', 0)} |"
        )
    lines += [
        "",
        "Each HelmRelease names the chart with `spec.chart`, so the helm service writes "
        "a HelmChart per release and the source service packages it (as Flux's "
        "source-controller does); then the helm service renders and installs the release "
        "with Helm's SDK in a worker process (`wait` on: kubelite's simulated Deployment "
        "must be available). The clock starts before the first HelmRelease is stored and "
        "stops when the last reports Ready=True. The CPU columns are CPU seconds over the "
        "whole run: their sum beside the wall time shows how much of it was waiting "
        "(Helm's readiness wait, the releases running at once: one per Helm worker) "
        "rather than computing.",
        "",
        "## Render cost per release, through a Helm worker process",
        "",
        "| render p50 ms | render p99 ms | samples |",
        "|---|---|---|",
    ]
    render = results[-1]["render_ms"]
    lines.append(f"| **{render['p50']}** | {render['p99']} | {render['samples']} |")
    lines += [
        "",
        "`HelmEngine.render` of the chart with distinct values each time: the JSON request "
        "over the worker's pipe, Helm's chart load and template engine, the answer back.",
        "",
        "## Memory",
        "",
        "| HelmReleases | helm service peak RSS MiB | one Helm worker peak RSS MiB | "
        "all workers RSS MiB (peak sum) | worker processes | source peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        rss = r["peak_rss_mib"]
        lines.append(
            f"| {r['n']} | {rss.get('helm', 0)} | **{r['worker_peak_rss_mib']} MiB** | "
            f"{r['workers_rss_sum_mib']} | {r['worker_processes']} | {rss.get('source', 0)} |"
        )
    lines += [
        "",
        "The service keeps Helm out of its own process: each worker is a separate Python "
        "process with the Go SDK loaded (`helm-python-sdk`), limited by "
        "`FLUXBUS_HELM_WORKER_MEMORY`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100])
    p.add_argument("--helm-workers", type=int, default=2)
    p.add_argument("--samples", type=int, default=200, help="renders timed")
    p.add_argument("--out", default="", help="also write the results as markdown here")
    p.add_argument("--quick", action="store_true", help="a small run: --n 10, 50 renders")
    args = p.parse_args()
    if args.quick:
        args.n, args.samples = [10], 50
    print(f"# {platform.python_version()} on {os.cpu_count()} cores ({platform.machine()})")
    results = []
    for n in args.n:
        result = asyncio.run(run(n, args.helm_workers, args.samples))
        print(result, flush=True)
        results.append(result)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shown = [os.path.relpath(a) if a == args.out else a for a in sys.argv[1:]]
        out.write_text(markdown(results, [" ".join(shown)]))


if __name__ == "__main__":
    main()
