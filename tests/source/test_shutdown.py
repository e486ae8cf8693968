"""SIGTERM stops the source service within seconds even while a Git fetch hangs
(issue "Faults of the bus and the runtime": it used to exit 57 s later, past
Kubernetes' 30 s grace period, held by a blocked worker thread)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings


async def test_sigterm_during_a_fetch_the_server_never_answers_exits_within_seconds(
    bus: Bus, bus_settings: BusSettings
):
    connected = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()  # accept, read the request, never answer
        try:
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {
        **os.environ,
        "FLUXBUS_NATS_URL": bus_settings.url,
        "FLUXBUS_HTTP_ADDR": "",
        "FLUXBUS_INSTANCE": "source-test",
        "FLUXBUS_LOG_LEVEL": "warning",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxbus_source",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await bus.apply_object(
            "gitrepository.default.hung",
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "hung", "namespace": "default"},
                "spec": {
                    "interval": "1h",
                    "timeout": "120s",
                    "url": f"http://127.0.0.1:{port}/repo.git",
                    "ref": {"branch": "main"},
                },
            },
        )
        async with asyncio.timeout(30):
            await connected.wait()  # the fetch is under way, and will never be answered
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await proc.wait()
        took = time.monotonic() - start
        assert code == 0
        assert took < 10, f"exited {took:.1f}s after SIGTERM"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        server.close()
        await server.wait_closed()
