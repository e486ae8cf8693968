"""A real 3-node NATS JetStream cluster on loopback, for fault tests.

`NatsCluster(tmp_path, size=3)` runs `size` nats-server processes that route
to each other (one cluster name, a server name each, JetStream in their own
data dirs). Tests kill and restart them node by node: `kill(i)` is a SIGKILL
(no clean leave: what a crashed pod does), `stop(i)` a SIGTERM, `start(i)`
brings a node back on the same ports and data. `url` lists every client URL
comma-separated, as `FLUXBUS_NATS_URL` takes them; `wait_ready()` returns
once JetStream has a meta leader and answers.

The `nats_cluster` fixture yields a started 3-node cluster; `cluster_bus_settings`
points at all three with R3 buckets.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import free_port, nats_server_binary, wait_for_server

CLUSTER_NAME = "fluxbus-test"


class NatsNode:
    """One server of the cluster."""

    def __init__(self, name: str, data_dir: Path, port: int, cluster_port: int) -> None:
        self.name = name
        self.data_dir = data_dir
        self.port = port
        self.cluster_port = cluster_port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class NatsCluster:
    """`size` routed nats-server processes with JetStream (see the module docstring)."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.nodes = [
            NatsNode(f"n{i}", base / f"n{i}", free_port(), free_port()) for i in range(size)
        ]

    @property
    def url(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def _routes(self) -> str:
        return ",".join(f"nats://127.0.0.1:{n.cluster_port}" for n in self.nodes)

    def start(self, i: int | None = None, timeout: float = 15.0) -> None:
        """Start node `i` (or every node that is not running); wait until they accept."""
        targets = [self.nodes[i]] if i is not None else [n for n in self.nodes if not n.running]
        for node in targets:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            node.proc = subprocess.Popen(
                [
                    nats_server_binary(),
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(node.port),
                    "-n",
                    node.name,
                    "-js",
                    "-sd",
                    str(node.data_dir),
                    "--cluster_name",
                    CLUSTER_NAME,
                    "--cluster",
                    f"nats://127.0.0.1:{node.cluster_port}",
                    "--routes",
                    self._routes(),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        for node in targets:
            assert node.proc is not None
            wait_for_server(node.proc, node.port, deadline, f"nats-server {node.name}")

    def kill(self, i: int) -> None:
        """SIGKILL node `i` (a crash: no clean leave)."""
        self._signal(i, signal.SIGKILL)

    def stop(self, i: int) -> None:
        """SIGTERM node `i` and wait for it to exit."""
        self._signal(i, signal.SIGTERM)

    def _signal(self, i: int, sig: signal.Signals) -> None:
        node = self.nodes[i]
        if node.proc is None:
            return
        if node.proc.poll() is None:
            node.proc.send_signal(sig)
            try:
                node.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
        node.proc = None

    def stop_all(self) -> None:
        for i in range(len(self.nodes)):
            self.stop(i)

    def index_of(self, server_name: str) -> int:
        """The index of the node called `server_name` (e.g. a stream leader's name)."""
        return next(i for i, n in enumerate(self.nodes) if n.name == server_name)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once JetStream can place a stream on every running node (a meta
        leader is elected and every peer is known)."""
        deadline = time.monotonic() + timeout
        urls = [n.url for n in self.nodes if n.running]
        replicas = len(urls)
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                nc = await nats.connect(servers=urls, connect_timeout=1, allow_reconnect=False)
                try:
                    js = nc.jetstream(timeout=2)
                    await js.add_stream(name="READY_PROBE", subjects=[], num_replicas=replicas)
                    await js.delete_stream("READY_PROBE")
                    return
                finally:
                    await nc.close()
            except Exception as e:  # not ready yet: no meta leader, peer offline, timeout
                last = e
            await asyncio.sleep(0.2)
        raise RuntimeError(f"JetStream cluster not ready after {timeout}s: {last}")


@pytest.fixture
async def nats_cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats-cluster")
    cluster.start()
    try:
        await cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def cluster_bus_settings(nats_cluster: NatsCluster) -> BusSettings:
    return BusSettings(url=nats_cluster.url, replicas=3)
