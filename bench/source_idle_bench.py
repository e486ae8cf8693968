"""Benchmark (d) of issue 4: N GitRepositories at a 1m interval, idle.

Runs the real `fluxbus-source` process against a real nats-server and the
smart-HTTP test server, waits until every GitRepository is Ready (cold
start), then measures the service's CPU time and RSS over an idle window in
which each repository is polled about once (ls-remote, no clone).

    .venv/bin/python bench/source_idle_bench.py [--n 200] [--window 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer
from fluxbus_git.testing import GitHTTPServer, make_repo

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


async def count_ready(bus: Bus) -> int:
    ready = 0
    for entry in await bus.list_status("gitrepository"):
        for c in entry.value.get("conditions", []):
            if c["type"] == "Ready" and c["status"] == "True":
                ready += 1
    return ready


async def measure(n: int, window: float, workdir: Path) -> dict[str, float]:
    nats = NatsServer(workdir / "nats")
    nats.start()
    repos = []
    for i in range(n):
        repo = make_repo(workdir / "git", f"repo{i}")
        repo.commit({"deploy.yaml": f"kind: ConfigMap\nmetadata: {{name: c{i}}}\n"}, branch="main")
        repos.append(repo)
    server = GitHTTPServer(workdir / "git").start()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "fluxbus-source")],
        env={
            **os.environ,
            "FLUXBUS_NATS_URL": nats.url,
            "FLUXBUS_HTTP_ADDR": "127.0.0.1:0",
            "FLUXBUS_LOG_LEVEL": "warning",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        bus = await Bus.connect(BusSettings(url=nats.url), "bench")
        t0 = time.monotonic()
        for i, repo in enumerate(repos):
            await bus.apply_object(
                f"gitrepository.flux-system.r{i}",
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "metadata": {"name": f"r{i}", "namespace": "flux-system"},
                    "spec": {"interval": "1m", "url": server.url(repo), "ref": {"branch": "main"}},
                },
            )
        while await count_ready(bus) < n:
            if time.monotonic() - t0 > 600:
                raise RuntimeError("GitRepositories not Ready within 600 s")
            await asyncio.sleep(0.5)
        cold = time.monotonic() - t0
        await asyncio.sleep(5)  # let the cold-start burst settle
        polls0, fetches0 = server.ref_listings, server.fetches
        cpu0, w0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(window)
        cpu1, w1 = cpu_seconds(proc.pid), time.monotonic()
        result = {
            "cold": cold,
            "cpu_pct": 100 * (cpu1 - cpu0) / (w1 - w0),
            "rss": rss_mib(proc.pid),
            "polls": server.ref_listings - polls0,
            "fetches": server.fetches - fetches0,
            "window": w1 - w0,
        }
        await bus.close()
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        server.stop()
        nats.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--out", default="bench/results/source_idle.md")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run for `make bench QUICK=1`: --n 50, --window 15.0",
    )
    args = parser.parse_args()
    if args.quick:
        args.n = 50
        args.window = 15.0
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(measure(args.n, args.window, Path(tmp)))
    report = f"""# Source service: {args.n} GitRepositories at a 1m interval, idle

Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};
the real `fluxbus-source` process, nats-server and the smart-HTTP test server
(`git http-backend`) on the same machine. Run:
`.venv/bin/python bench/source_idle_bench.py --n {args.n} --window {args.window:.0f}`
({time.strftime("%Y-%m-%d")}).

| measure | result |
|---|---|
| cold start: all {args.n} Ready (clone + archive + store each) | {r["cold"]:.1f} s |
| idle CPU of the service over {r["window"]:.0f} s | {r["cpu_pct"]:.1f} % of one core |
| idle RSS of the service | {r["rss"]:.1f} MiB |
| ref listings served in the window (polls) | {r["polls"]} |
| fetches served in the window (must be 0: nothing changed) | {r["fetches"]} |
"""
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
