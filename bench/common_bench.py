"""Benchmarks of the foundation (issue 2), on this machine, real nats-server:

1. KV put → watcher notified latency, p50 / p99 (goal p50 <= 2 ms);
2. controller-runtime throughput of no-op reconciles that each write status
   (compare-and-set) and publish an event (goal >= 1000/s);
3. RSS of an idle service process (runtime + bus + HTTP endpoints).

Run: .venv/bin/python bench/common_bench.py [--n 3000] [--out bench/results/common.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from fluxbus_common import logconfig
from fluxbus_common.bus import Bus
from fluxbus_common.events import Severity
from fluxbus_common.reconcile import Result
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.plugin import NatsServer
from fluxbus_common.testing.widgets import Widget, WidgetReconciler, widget_doc


class EventingReconciler(WidgetReconciler):
    """A no-op reconcile that publishes one info event, like a real success."""

    kind: ClassVar[str] = "Widget"

    def __init__(self, recorder: Any = None) -> None:
        super().__init__("bench")
        self.recorder = recorder
        self.done = 0
        self.all_done = asyncio.Event()
        self.target = 0

    async def reconcile_widget(self, obj: Widget, state: None) -> Result:
        await self.recorder.event(obj, Severity.INFO, "Succeeded", "no-op")
        return Result(ready_message="ok")

    def summarize(self, obj: Any, result: Any, error: Any) -> None:
        super().summarize(obj, result, error)
        self.done += 1
        if self.done >= self.target:
            self.all_done.set()


async def kv_latency(bus: Bus, samples: int) -> list[float]:
    seen: dict[str, float] = {}
    ready = asyncio.Event()
    arrived = asyncio.Event()

    async def watch() -> None:
        async for change in bus.kv_watch("fluxbus-status", "latency.>", mark_initial=True):
            if not change.key:
                ready.set()
                continue
            seen[change.key] = time.perf_counter()
            arrived.set()

    task = asyncio.create_task(watch())
    await ready.wait()
    out: list[float] = []
    for i in range(samples):
        key = f"latency.bench.k{i}"
        arrived.clear()
        t0 = time.perf_counter()
        await bus.kv_put("fluxbus-status", key, {"i": i})
        while key not in seen:
            await arrived.wait()
            arrived.clear()
        out.append((seen[key] - t0) * 1000)
    task.cancel()
    return out


async def runtime_throughput(bus: Bus, n: int, window: float = 5.0) -> tuple[float, float]:
    """Return (first-pass rate, steady-state rate) of reconciles per second.

    The first pass includes adding the finalizer to every object; in the
    steady state every object is due each second (more demand than capacity)
    and each reconcile changes status (a counter), so each one is a CAS status
    write plus an event.
    """
    for i in range(n):
        await bus.apply_object(f"widget.bench.w{i}", widget_doc(f"w{i}", "bench", interval=1.0))
    settings = RuntimeSettings(workers=16, shards=1, lease_ttl=15, instance="bench", http_addr="")
    rec = EventingReconciler()
    rt = Runtime(bus, rec, settings, service="bench")
    rec.recorder = rt.recorder
    rec.target = n
    t0 = time.perf_counter()
    task = asyncio.create_task(rt.run())
    await rec.all_done.wait()
    first = n / (time.perf_counter() - t0)
    start_count, t1 = rec.done, time.perf_counter()
    await asyncio.sleep(window)
    steady = (rec.done - start_count) / (time.perf_counter() - t1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return first, steady


IDLE_SERVICE = r"""
import asyncio, sys
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.widgets import WidgetReconciler

async def make(bus):
    return [WidgetReconciler("idle")]

def ready(runtimes, port):
    print("READY", file=sys.stderr, flush=True)

asyncio.run(run_service("idle", make, bus_settings=BusSettings(url=sys.argv[1]),
    runtime_settings=RuntimeSettings(http_addr="127.0.0.1:0"), on_ready=ready))
"""


def idle_rss_mib(url: str) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", IDLE_SERVICE, url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # skip the service's own log lines
            if "READY" in line:
                break
        else:
            raise RuntimeError("idle service did not start")
        time.sleep(3)  # let it settle: the number we want is the idle steady state
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kb = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS"))
        return rss_kb / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def measure(args: argparse.Namespace) -> tuple[list[float], float, float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:
            bus = await Bus.connect(BusSettings(url=server.url), "bench")
            lat = await kv_latency(bus, args.samples)
            first, steady = await runtime_throughput(bus, args.n)
            await bus.close()
        finally:
            server.stop()
    return lat, first, steady, server.url


def main() -> None:
    # Production logging: JSON, info level (one line per reconcile), to a sink.
    logconfig.configure("info", json=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--out", default="bench/results/common.md")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run for `make bench QUICK=1`: --n 300, --samples 200",
    )
    args = parser.parse_args()
    if args.quick:
        args.n = 300
        args.samples = 200
    lat, first, steady, _ = asyncio.run(measure(args))
    lat.sort()
    p50 = statistics.median(lat)
    p99 = lat[int(len(lat) * 0.99) - 1]
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:
            rss = idle_rss_mib(server.url)
        finally:
            server.stop()
    nats_version = subprocess.run(
        [str(Path(sys.executable).parent / "nats-server"), "--version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    report = f"""# Foundation benchmarks

Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()},
{nats_version}, single nats-server with JetStream on file storage in a temp dir,
everything on loopback on the same machine. Run: `.venv/bin/python bench/common_bench.py`
({time.strftime("%Y-%m-%d")}).

| benchmark | result | goal |
|---|---|---|
| KV put → watcher notified, p50 ({args.samples} samples) | {p50:.3f} ms | <= 2 ms |
| KV put → watcher notified, p99 | {p99:.3f} ms | — |
| runtime, steady state: no-op reconciles, each a CAS status write + an event, 16 workers, {args.n} objects due every second | {steady:.0f} /s | >= 1000 /s |
| runtime, first pass (adds the finalizer too: one more object write each) | {first:.0f} /s | — |
| idle service process RSS (runtime + bus + /metrics) | {rss:.1f} MiB | — |
"""
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
