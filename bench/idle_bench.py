"""Benchmark of issue 14: the idle cost of every service together.

1000 Kustomizations from 50 GitRepositories (20 paths each, one ConfigMap per
path; GitRepositories at Flux's usual 1m interval, Kustomizations at 10m), run
by the real processes `fluxbus up` starts (nats-server, kubelite, source,
kustomize, image-reflector, notifier). After every Kustomization is Ready, the
CPU time and RSS of the four service processes (and, apart, of nats-server and
kubelite) are measured over an idle window.

    .venv/bin/python bench/idle_bench.py [--repos 50] [--per-repo 20] [--window 600] [--quick]

Goal: <= 0.05 cores and <= 300 MiB for all services together.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

from fluxbus_cli.up import stack_up
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_git.testing import GitHTTPServer, make_repo

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICES = ("source", "kustomize", "image-reflector", "notifier")
NS = "flux-system"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


async def count_ready(bus: Bus, kind: str) -> int:
    ready = 0
    for entry in await bus.list_status(kind):
        for c in entry.value.get("conditions", []):
            if c["type"] == "Ready" and c["status"] == "True":
                ready += 1
    return ready


def configmap(repo: int, path: int) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        f"  name: cm-{repo}-{path}\n  namespace: default\ndata:\n  value: '{repo}-{path}'\n"
    )


async def measure(repos: int, per_repo: int, window: float, tmp: Path) -> dict[str, object]:
    git_root = tmp / "git"
    served = []
    for r in range(repos):
        repo = make_repo(git_root, f"fleet{r}")
        repo.commit(
            {f"apps/a{p}/cm.yaml": configmap(r, p) for p in range(per_repo)},
            branch="main",
            message="fleet",
        )
        served.append(repo)
    git = GitHTTPServer(git_root).start()
    total = repos * per_repo
    try:
        async with stack_up(
            tmp / "state",
            services=SERVICES,
            quiet=True,
            log_dir=tmp / "logs",
            extra_env={"FLUXBUS_LOG_LEVEL": "warning"},
        ) as stack:
            bus = await Bus.connect(BusSettings(url=stack.nats_url), "bench")
            try:
                t0 = time.monotonic()
                for r, repo in enumerate(served):
                    await bus.apply_object(
                        f"gitrepository.{NS}.fleet{r}",
                        {
                            "apiVersion": "source.toolkit.fluxcd.io/v1",
                            "kind": "GitRepository",
                            "metadata": {"name": f"fleet{r}", "namespace": NS},
                            "spec": {
                                "interval": "1m",
                                "url": git.url(repo),
                                "ref": {"branch": "main"},
                            },
                        },
                    )
                    for p in range(per_repo):
                        await bus.apply_object(
                            f"kustomization.{NS}.k{r}-{p}",
                            {
                                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                                "kind": "Kustomization",
                                "metadata": {"name": f"k{r}-{p}", "namespace": NS},
                                "spec": {
                                    "interval": "10m",
                                    "path": f"./apps/a{p}",
                                    "prune": True,
                                    "sourceRef": {"kind": "GitRepository", "name": f"fleet{r}"},
                                },
                            },
                        )
                while await count_ready(bus, "kustomization") < total:
                    if time.monotonic() - t0 > 900:
                        raise RuntimeError("Kustomizations not Ready within 900 s")
                    await asyncio.sleep(1.0)
                cold = time.monotonic() - t0
            finally:
                await bus.close()
            await asyncio.sleep(10)  # let the cold-start burst settle
            pids = {c.name: c.proc.pid for c in stack.children}
            cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
            w0 = time.monotonic()
            await asyncio.sleep(window)
            w1 = time.monotonic()
            cpu = {n: (cpu_seconds(p) - cpu0[n]) / (w1 - w0) for n, p in pids.items()}
            rss = {n: rss_mib(p) for n, p in pids.items()}
    finally:
        git.stop()
    return {"cold": cold, "window": w1 - w0, "cpu": cpu, "rss": rss, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--per-repo", type=int, default=20)
    parser.add_argument("--window", type=float, default=600.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "idle.md"))
    parser.add_argument(
        "--quick", action="store_true", help="a small run: 10 repositories x 10, 30 s window"
    )
    args = parser.parse_args()
    if args.quick:
        args.repos, args.per_repo, args.window = 10, 10, 30.0
    with tempfile.TemporaryDirectory(prefix="fluxbus-idle-") as tmp:
        r = asyncio.run(measure(args.repos, args.per_repo, args.window, Path(tmp)))
    cpu: dict[str, float] = r["cpu"]  # type: ignore[assignment]
    rss: dict[str, float] = r["rss"]  # type: ignore[assignment]
    services_cpu = sum(cpu.get(s, 0.0) for s in SERVICES)
    services_rss = sum(rss.get(s, 0.0) for s in SERVICES)
    rows = "\n".join(f"| {name} | {cpu[name]:.4f} | {rss[name]:.1f} |" for name in sorted(cpu))
    report = f"""# All services idle: {r["total"]} Kustomizations from {args.repos} GitRepositories

Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; the
processes `fluxbus up` starts (nats-server, kubelite, {", ".join(SERVICES)}) and the smart-HTTP test
server on the same machine. Run: `.venv/bin/python bench/idle_bench.py --repos {args.repos}
--per-repo {args.per_repo} --window {args.window:.0f}` ({time.strftime("%Y-%m-%d")}).
GitRepositories at `interval: 1m`, Kustomizations at `interval: 10m` (one ConfigMap each).

| measure | result |
|---|---|
| cold start: all {r["total"]} Kustomizations Ready | {r["cold"]:.1f} s |
| idle CPU of the four services together over {r["window"]:.0f} s | {services_cpu:.3f} cores |
| idle RSS of the four services together | {services_rss:.0f} MiB |

Per process (cores over the window; RSS at its end):

| process | cores | RSS MiB |
|---|---|---|
{rows}

Goal (issue 14): <= 0.05 cores and <= 300 MiB for all services together; nats-server and
kubelite (the cluster stand-in) are listed apart.
"""
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
