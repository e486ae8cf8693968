"""Takeover and recovery times on a 3-node NATS cluster (issue "Faults of the
bus and the runtime"), for the README's scale-out section:

1. a standby replica takes over when the active one is killed (no clean
   release): from the kill to the standby's first reconcile, at a given TTL;
2. a clean shutdown hands over at once: from SIGTERM-equivalent (cancel) to
   the other replica's first reconcile;
3. a KV watch after kill -9 of a NATS node (the one the client is connected to,
   and another one): from the write that follows the kill to its delivery.

Run: .venv/bin/python bench/faults_bench.py [--rounds 3] [--ttl 6] [--out bench/results/faults.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from fluxbus_common import logconfig
from fluxbus_common.bus import Bus
from fluxbus_common.ports import BusError
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.nats_cluster import NatsCluster
from fluxbus_common.testing.widgets import Widget, WidgetReconciler, widget_doc


class Stamped(WidgetReconciler):
    """Records when each replica reconciled (monotonic)."""

    def __init__(self, instance: str, log: list[tuple[str, float]]) -> None:
        super().__init__(instance)
        self.log = log

    async def reconcile_widget(self, obj: Widget, state: None):  # type: ignore[override]
        self.log.append((self.instance, time.monotonic()))
        return await super().reconcile_widget(obj, state)


async def wait(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.01)


async def takeover(settings: BusSettings, ttl: float, clean: bool) -> float:
    log: list[tuple[str, float]] = []
    rs = RuntimeSettings(workers=2, shards=1, lease_ttl=ttl, http_addr="", backoff_base=0.1)
    bus_a = await Bus.connect(settings, "a")
    bus_b = await Bus.connect(settings, "b")
    key = f"widget.default.t{time.monotonic_ns()}"
    await bus_a.apply_object(key, widget_doc(key.rsplit(".", 1)[1], interval=0.1))
    rt_a = Runtime(bus_a, Stamped("a", log), replace(rs, instance="a"), service="bench")
    task_a = asyncio.create_task(rt_a.run())
    await wait(lambda: any(i == "a" for i, _ in log))
    rt_b = Runtime(bus_b, Stamped("b", log), replace(rs, instance="b"), service="bench")
    task_b = asyncio.create_task(rt_b.run())
    await asyncio.sleep(0.5)
    start = time.monotonic()
    if clean:
        task_a.cancel()  # what SIGTERM does: leases released on the way out
        with contextlib.suppress(asyncio.CancelledError):
            await task_a
    else:
        await bus_a._nc.close()  # a crash: the connection is gone, nothing released
        task_a.cancel()
        with contextlib.suppress(asyncio.CancelledError, BusError):
            await task_a
    await wait(lambda: any(i == "b" and t > start for i, t in log))
    took = min(t for i, t in log if i == "b" and t > start) - start
    task_b.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task_b
    await bus_a.close()
    await bus_b.close()
    return took


async def watch_recovery(cluster: NatsCluster, settings: BusSettings, victim: str) -> float:
    bus = await Bus.connect(settings, "watcher")
    writer = await Bus.connect(settings, "writer")
    key = f"gitrepository.default.w{time.monotonic_ns()}"
    seen: dict[str, float] = {}

    async def watch() -> None:
        async for change in bus.watch_status("gitrepository"):
            if change.key == key and change.value and change.value.get("v") == 2:
                seen["at"] = time.monotonic()

    task = asyncio.create_task(watch())
    await writer.kv_put("fluxbus-status", key, {"v": 1})
    await asyncio.sleep(0.5)
    port = int(bus.connected_url.rsplit(":", 1)[1])
    index = next(i for i, n in enumerate(cluster.nodes) if n.port == port)
    if victim == "other":
        index = (index + 1) % len(cluster.nodes)
    cluster.kill(index)
    while True:
        try:
            await writer.kv_put("fluxbus-status", key, {"v": 2})
            break
        except BusError:
            await asyncio.sleep(0.1)
    written = time.monotonic()
    await wait(lambda: "at" in seen, timeout=60)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await bus.close()
    await writer.close()
    cluster.start(index)
    await cluster.wait_ready()
    return seen["at"] - written


async def run(rounds: int, ttl: float) -> list[tuple[str, list[float]]]:
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = NatsCluster(Path(tmp))
        cluster.start()
        try:
            await cluster.wait_ready()
            settings = BusSettings(url=cluster.url, replicas=3)
            seed = await Bus.connect(settings, "seed")
            await seed.close()
            rows.append(
                (
                    f"standby takeover after the active replica crashed (lease TTL {ttl:g} s)",
                    [await takeover(settings, ttl, clean=False) for _ in range(rounds)],
                )
            )
            rows.append(
                (
                    "handover on a clean shutdown (leases released)",
                    [await takeover(settings, ttl, clean=True) for _ in range(rounds)],
                )
            )
            for victim, label in (
                ("connected", "the node the client is connected to"),
                ("other", "another node"),
            ):
                rows.append(
                    (
                        f"KV watch: write after kill -9 of {label} → delivered",
                        [await watch_recovery(cluster, settings, victim) for _ in range(rounds)],
                    )
                )
        finally:
            cluster.stop_all()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ttl", type=float, default=6.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "faults.md"))
    parser.add_argument(
        "--quick", action="store_true", help="a small run for `make bench QUICK=1`: --rounds 1"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    logconfig.configure("error", json=True)
    rows = asyncio.run(run(args.rounds, args.ttl))
    lines = [
        "# Takeover and recovery on a 3-node NATS cluster",
        "",
        f"Machine: 2 cores, {platform.machine()}, Python {platform.python_version()}; three "
        "nats-server processes routed on loopback, R3 buckets, file storage in a temp dir. "
        f"Run: `.venv/bin/python bench/faults_bench.py --rounds {args.rounds} --ttl {args.ttl:g}` "
        f"({time.strftime('%Y-%m-%d')}).",
        "",
        "| what | median | min | max | rounds |",
        "|---|---|---|---|---|",
    ]
    for label, values in rows:
        lines.append(
            f"| {label} | {statistics.median(values):.2f} s | {min(values):.2f} s "
            f"| {max(values):.2f} s | {len(values)} |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
