"""The worker processes that run Helm for `HelmEngine`, with memory and time limits.

`WorkerPool` keeps up to `limits.workers` processes (`python -m
fluxbus_helmsdk.worker`), started on demand, and gives each request to one
idle worker over asyncio subprocess pipes (the event loop never blocks):

- past the call's deadline the worker is killed: `WorkerLimitExceeded("time")`;
- past `limits.memory_bytes` of data memory (RLIMIT_DATA, set by the worker on
  itself) Go stops with "out of memory": `WorkerLimitExceeded("memory")`;
- a worker that dies otherwise (a native crash, a kill): `WorkerCrashed`.

A worker that failed is gone; the next call starts a fresh one, so the pool
keeps serving. Workers get a minimal environment and a private HOME (Helm's
config, cache and registry logins stay there and are removed with it); secrets
only travel in request frames, never in argv or the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import sys
import tempfile
from typing import Any

import structlog

from fluxbus_common.tasks import cancel_and_wait

from . import protocol
from .errors import (
    HelmEngineError,
    HelmUnavailable,
    WorkerCrashed,
    WorkerLimitExceeded,
    from_wire,
)
from .models import WorkerLimits

log = structlog.get_logger(__name__)

# How long a new worker may take to import Helm and say it is ready.
START_TIMEOUT = 60.0
# How long a worker asked to stop (stdin closed) may take before it is killed.
STOP_TIMEOUT = 5.0
# Bytes of a worker's stderr kept (never logged: it may quote values).
STDERR_TAIL = 16384
# What Go's runtime prints when an allocation is refused.
_OOM_MARKERS = (b"out of memory", b"cannot allocate memory")
# Environment variables a worker may inherit: none holds a secret.
_INHERITED = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "PYTHONPATH",
    "HELM_C_LIB",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
)


class _Worker:
    """One worker process and the tail of its stderr."""

    def __init__(self, proc: asyncio.subprocess.Process, home: str) -> None:
        self.proc = proc
        self.home = home
        self.pid = proc.pid
        self.stderr_tail = bytearray()
        self.saw_out_of_memory = False
        self._drain = asyncio.create_task(self._drain_stderr(), name=f"helm-worker-{proc.pid}")
        self.ids = itertools.count(1)

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            # Go's stack dump after its one-line reason is long: look at every chunk
            # (with the end of the previous one, where a marker may start).
            seen = bytes(self.stderr_tail[-64:]) + chunk
            if any(marker in seen.lower() for marker in _OOM_MARKERS):
                self.saw_out_of_memory = True
            self.stderr_tail += chunk
            del self.stderr_tail[:-STDERR_TAIL]

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        header = await self.proc.stdout.readexactly(protocol.HEADER.size)
        body = await self.proc.stdout.readexactly(protocol.body_length(header))
        return protocol.decode(body)

    async def write(self, doc: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(protocol.encode(doc))
        await self.proc.stdin.drain()

    async def exited(self) -> int:
        """Wait for the process to end (killing it when it lingers) and its stderr to be
        read; its exit status."""
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                code = await self.proc.wait()
        except TimeoutError:  # it broke the protocol but lives on
            self.proc.kill()
            code = await self.proc.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT):
                await asyncio.shield(self._drain)
        return code

    async def stop(self, *, kill: bool) -> None:
        """End the process (politely: close stdin; or kill) and clean up after it."""
        try:
            if self.proc.returncode is None:
                if kill:
                    self.proc.kill()
                elif self.proc.stdin is not None:
                    self.proc.stdin.close()
                try:
                    async with asyncio.timeout(STOP_TIMEOUT):
                        await self.proc.wait()
                except TimeoutError:
                    self.proc.kill()
                    await self.proc.wait()
        finally:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            await cancel_and_wait(self._drain)
            shutil.rmtree(self.home, ignore_errors=True)


def worker_env(home: str, limits: WorkerLimits) -> dict[str, str]:
    """The environment of a worker: a few harmless variables and a private Helm home."""
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        HOME=home,
        HELM_CACHE_HOME=os.path.join(home, "cache"),
        HELM_CONFIG_HOME=os.path.join(home, "config"),
        HELM_DATA_HOME=os.path.join(home, "data"),
        # Go's collector works harder before the hard limit is reached.
        GOMEMLIMIT=str(limits.memory_bytes * 3 // 4),
        PYTHONUNBUFFERED="1",
    )
    return env


class WorkerPool:
    """Up to `limits.workers` Helm worker processes; one request per idle worker."""

    def __init__(self, limits: WorkerLimits, *, python: str | None = None) -> None:
        self.limits = limits
        self._python = python or sys.executable
        self._slots = asyncio.Semaphore(max(1, limits.workers))
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False

    def pids(self, *, busy: bool | None = None) -> list[int]:
        """The process ids of the running workers: all, or only the busy (idle) ones."""
        idle = {w.pid for w in self._idle}
        return sorted(w.pid for w in self._all if busy is None or (w.pid not in idle) == busy)

    async def start(self) -> None:
        """Nothing to do: workers start with the first calls."""
        self._closed = False

    async def _spawn(self) -> _Worker:
        home = tempfile.mkdtemp(prefix="fluxbus-helm-worker-")
        args = [self._python, "-m", "fluxbus_helmsdk.worker"]
        if self.limits.memory_bytes:
            args += ["--memory-bytes", str(self.limits.memory_bytes)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=worker_env(home, self.limits),
                cwd=home,
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
        worker = _Worker(proc, home)
        self._all.add(worker)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                hello = await worker.read()
        except BaseException as e:
            await self._discard(worker, kill=True)
            if isinstance(e, TimeoutError | asyncio.IncompleteReadError | ValueError):
                raise WorkerCrashed("the Helm worker did not start") from None
            raise
        if not hello.get("available"):
            await self._discard(worker, kill=True)
            raise HelmUnavailable()
        log.debug("helm.worker.started", pid=worker.pid)
        return worker

    async def _discard(self, worker: _Worker, *, kill: bool) -> None:
        self._all.discard(worker)
        await worker.stop(kill=kill)

    async def call(self, op: str, args: dict[str, Any], *, timeout: float) -> Any:
        """Run `op` in a worker within `timeout` seconds; its result, or its error raised."""
        if self._closed:
            raise HelmEngineError("the Helm engine is closed")
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._spawn()
            answer = await self._exchange(worker, op, args, timeout)
        if "error" in answer:
            error = from_wire(answer["error"])
            if isinstance(error, WorkerLimitExceeded):  # the worker exits after a MemoryError
                await self._discard(worker, kill=True)
            raise error
        return answer.get("ok")

    async def _exchange(
        self, worker: _Worker, op: str, args: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """One request and its answer; the worker goes back to the idle list only after both."""
        request_id = next(worker.ids)
        healthy = False
        try:
            async with asyncio.timeout(timeout):
                await worker.write({"id": request_id, "op": op, "args": args})
                answer = await worker.read()
            if answer.get("id") != request_id:
                raise ValueError("the Helm worker answered another request")
            healthy = True
        except TimeoutError:
            log.warning("helm.worker.timeout", pid=worker.pid, op=op, timeout=timeout)
            raise WorkerLimitExceeded(
                "time", f"the Helm worker took longer than {timeout:g}s for {op} and was killed"
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            code = await worker.exited()
            if worker.saw_out_of_memory:
                log.warning("helm.worker.memory", pid=worker.pid, op=op)
                raise WorkerLimitExceeded(
                    "memory",
                    f"the Helm worker went over {self.limits.memory_bytes} bytes "
                    f"for {op} and was stopped",
                ) from None
            log.warning("helm.worker.crashed", pid=worker.pid, op=op, exit_code=code)
            raise WorkerCrashed(
                f"the Helm worker died during {op} (exit status {code}); it is replaced"
            ) from None
        finally:
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                # a failed, timed-out or cancelled exchange leaves the worker mid-request
                await self._discard(worker, kill=True)
        return answer

    async def close(self) -> None:
        """Stop every worker (idle ones politely, busy ones killed) and wait for each."""
        self._closed = True
        idle, self._idle = self._idle, []
        busy = [w for w in self._all if w not in idle]
        self._all.clear()
        await asyncio.gather(
            *(w.stop(kill=False) for w in idle), *(w.stop(kill=True) for w in busy)
        )
