"""The bus on a 3-node NATS cluster (R3 buckets) while nodes die: watches keep
delivering, reads never go back in time, and no operation hangs.

Each test reproduces a fault seen when fluxbus was run on a NATS cluster with
kill -9 of its nodes (issue "Faults of the bus and the runtime").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fluxbus_common.bus import Bus
from fluxbus_common.ports import BusError, KVChange
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.nats_cluster import NatsCluster
from fluxbus_common.testing.plugin import NatsServer, wait_for

KEY = "gitrepository.default.app"


def connected_index(bus: Bus, cluster: NatsCluster) -> int:
    port = int(bus.connected_url.rsplit(":", 1)[1])
    return next(i for i, n in enumerate(cluster.nodes) if n.port == port)


async def put_retrying(bus: Bus, value: dict, deadline: float = 30.0) -> int:
    """Write KEY unconditionally, retrying while the cluster elects new leaders."""
    end = time.monotonic() + deadline
    while True:
        try:
            return await bus.kv_put("fluxbus-status", KEY, value)
        except BusError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def status_watch(bus: Bus) -> AsyncIterator[list[KVChange]]:
    """Watch GitRepository status for the block; yield the changes seen so far."""
    seen: list[KVChange] = []

    async def watch() -> None:
        async for change in bus.watch_status("gitrepository"):
            seen.append(change)

    task = asyncio.create_task(watch())
    try:
        yield seen
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def delivered(seen: list[KVChange], revision: int, value: dict) -> bool:
    return any(c.revision >= revision and c.value == value for c in seen)


@pytest.mark.parametrize("victim", ["connected", "other"])
async def test_a_watch_delivers_the_latest_value_after_a_node_is_killed(
    nats_cluster: NatsCluster, cluster_bus_settings: BusSettings, victim: str
):
    """A status watch must not go blind when the node holding the client or its
    consumer dies: the one write made after the kill reaches the watcher soon.

    nats-py alone notices a lost consumer only after two missed 5 s heartbeats
    and then re-creates it (measured here: 13-15 s blind, and for good when that
    re-creation fails); a service reconciling in that window acts on a stale
    view. The bound below is a liveness bound, not a speed goal."""
    bus = await Bus.connect(cluster_bus_settings, "watcher")
    writer = await Bus.connect(cluster_bus_settings, "writer")
    try:
        async with status_watch(bus) as seen:
            first = await put_retrying(writer, {"revision": "one"})
            await wait_for(lambda: delivered(seen, first, {"revision": "one"}), message="first")
            index = connected_index(bus, nats_cluster)
            if victim == "other":
                index = (index + 1) % 3
            nats_cluster.kill(index)
            latest = await put_retrying(writer, {"revision": "two"})
            await wait_for(
                lambda: delivered(seen, latest, {"revision": "two"}),
                timeout=12,
                message=f"the value written after killing node {index}",
            )
    finally:
        await bus.close()
        await writer.close()


async def test_a_watch_recovers_after_the_cluster_lost_and_regained_its_quorum(
    nats_cluster: NatsCluster, cluster_bus_settings: BusSettings
):
    """Two of three nodes down for longer than nats-py's heartbeat check: its own
    attempt to re-create the watch's consumer fails (no quorum) and it gives up
    silently. Once a node is back, the value written then must still arrive."""
    bus = await Bus.connect(cluster_bus_settings, "watcher")
    try:
        async with status_watch(bus) as seen:
            first = await put_retrying(bus, {"revision": "one"})
            await wait_for(lambda: delivered(seen, first, {"revision": "one"}), message="first")
            mine = connected_index(bus, nats_cluster)
            others = [i for i in range(3) if i != mine]
            for i in others:
                nats_cluster.kill(i)
            await asyncio.sleep(12)  # the outage: past nats-py's two missed 5 s heartbeats
            nats_cluster.start(others[0])
            latest = await put_retrying(bus, {"revision": "two"}, deadline=60)
            await wait_for(
                lambda: delivered(seen, latest, {"revision": "two"}),
                timeout=30,
                message="the value written after the quorum came back",
            )
    finally:
        await bus.close()


async def test_a_watch_misses_no_key_written_while_its_consumer_was_lost(
    nats_cluster: NatsCluster, cluster_bus_settings: BusSettings
):
    """One key written once right after a node dies, another written on and on:
    the watcher must end up with both latest values (a KV watch may skip
    intermediate values of one key, never the last value of any key)."""
    bus = await Bus.connect(cluster_bus_settings, "watcher")
    writer = await Bus.connect(cluster_bus_settings, "writer")
    latest: dict[str, KVChange] = {}

    async def watch() -> None:
        async for change in bus.watch_status("gitrepository"):
            latest[change.key] = change

    task = asyncio.create_task(watch())
    try:
        first = await put_retrying(writer, {"n": 0})
        await wait_for(lambda: KEY in latest and latest[KEY].revision == first, message="first")
        nats_cluster.kill((connected_index(bus, nats_cluster) + 1) % 3)
        once = "gitrepository.default.once"
        end = time.monotonic() + 30
        while True:
            try:
                await writer.kv_put("fluxbus-status", once, {"written": "once"})
                break
            except BusError:
                assert time.monotonic() < end, "no write went through"
                await asyncio.sleep(0.2)
        for n in range(1, 41):
            await put_retrying(writer, {"n": n})
            await asyncio.sleep(0.25)
        await wait_for(
            lambda: latest.get(KEY) is not None and latest[KEY].value == {"n": 40},
            timeout=30,
            message="the last value of the busy key",
        )
        assert once in latest and latest[once].value == {"written": "once"}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await bus.close()
        await writer.close()


async def test_reads_never_return_a_value_older_than_one_already_written(
    nats_cluster: NatsCluster, cluster_bus_settings: BusSettings
):
    """A node that was down and comes back must not serve its stale copy: every read
    after a write returns that write or a newer one."""
    bus = await Bus.connect(cluster_bus_settings, "reader")
    try:
        await put_retrying(bus, {"n": 0})
        for round_ in range(3):
            index = (connected_index(bus, nats_cluster) + 1 + round_) % 3
            nats_cluster.kill(index)
            latest = 0
            for n in range(1, 6):
                latest = await put_retrying(bus, {"n": n})
            nats_cluster.start(index)
            for _ in range(60):
                entry = await bus.kv_get("fluxbus-status", KEY)
                assert entry is not None
                assert entry.revision >= latest, (entry, latest)
            await nats_cluster.wait_ready()
    finally:
        await bus.close()


async def test_an_artifact_download_from_a_hung_server_fails_within_its_deadline(
    tmp_path: Path,
):
    """A server that stops answering mid-download (SIGSTOP) must not hang the reader:
    the download fails with a BusError and leaves no partial file behind."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    settings = BusSettings(url=server.url, request_timeout=1.0)
    bus = await Bus.connect(settings, "artifacts")
    try:
        blob = tmp_path / "blob.tar.gz"
        blob.write_bytes(os.urandom(8 * 1024 * 1024))
        await bus.put_artifact("gitrepository/default/app/x.tar.gz", blob)
        dest = tmp_path / "out" / "artifact.tar.gz"
        dest.parent.mkdir()
        assert server.proc is not None
        download = asyncio.create_task(bus.get_artifact("gitrepository/default/app/x.tar.gz", dest))
        await wait_for(
            lambda: download.done() or (dest.exists() and dest.stat().st_size > 0),
            interval=0.001,
            message="the download under way",
        )
        assert not download.done(), "downloaded before the server could be stopped"
        server.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(BusError, match="no data"):
                async with asyncio.timeout(60):
                    await download
            assert not dest.exists()
        finally:
            server.proc.send_signal(signal.SIGCONT)
    finally:
        await bus.close()
        server.stop()
