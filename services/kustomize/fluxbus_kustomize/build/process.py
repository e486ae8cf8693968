"""Running the render child within bounds: memory, output size and time.

- **Memory**: the child starts through a few lines of Python (`_SHIM`, run
  with `-I -S`: no site, no environment) that set `RLIMIT_DATA` and `exec`
  the real command, so the limit holds from its first instruction without a
  `preexec_fn` (unsafe in a process with threads). `RLIMIT_DATA`, not
  `RLIMIT_AS`: Go reserves ~800 MB of address space at start-up whatever it
  uses, while `RLIMIT_DATA` counts the memory it actually maps. `GOMEMLIMIT`
  is set a quarter below, so Go's collector works harder before the hard limit
  is hit. A Go child over the limit dies with "fatal error: runtime: out of
  memory"; the error then names the limit.
- **Output**: stdout is read in chunks and the child is killed as soon as it
  passes the cap (never buffered past it); stderr keeps its first
  `STDERR_KEPT` bytes and drains the rest (a Go crash dumps every goroutine).
- **Time**: the child is killed at the timeout.

A failure raises `BuildError` whose message names the limit, the signal or the
exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fluxbus_common.tasks import cancel_and_wait
from fluxbus_kustomize.build.errors import BuildError

MEMORY_ENV = "FLUXBUS_RENDER_MEMORY"
OUTPUT_ENV = "FLUXBUS_RENDER_MAX_OUTPUT"
TIMEOUT_ENV = "FLUXBUS_RENDER_TIMEOUT"

STDERR_KEPT = 64 * 1024
"""The head of stderr worth reporting; the rest (goroutine dumps) is read and dropped."""
_CHUNK = 1 << 16

_SHIM = (
    "import os,resource,sys\n"
    "n=int(sys.argv[1]);h=resource.getrlimit(resource.RLIMIT_DATA)[1]\n"
    "n=n if h==resource.RLIM_INFINITY else min(n,h)\n"
    "resource.setrlimit(resource.RLIMIT_DATA,(n,h))\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)
"""Set the data limit (never above the hard limit we were given), then become the child."""

_OOM_MARKERS = ("out of memory", "cannot allocate memory")
_GO_RUNTIME_CRASH = ("sigsegv: segmentation violation", "fatal error: runtime")
"""Under a data limit the Go runtime may also die this way when an allocation fails
(a nil mapping dereferenced inside the runtime rather than "out of memory")."""


@dataclass(frozen=True)
class ProcessLimits:
    """Bounds on one child: seconds, bytes of stdout, bytes of memory (None: unlimited)."""

    timeout: float
    max_output_bytes: int
    memory_bytes: int | None


def format_bytes(n: int) -> str:
    """Return `n` as the largest binary unit that divides it (`1GiB`, `300MiB`, `5000B`)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def parse_bytes(name: str, raw: str) -> int:
    """Return the byte count of `raw` (an integer, optionally with `Ki`, `Mi` or `Gi`).

    Raises ValueError naming the variable `name`.
    """
    text = raw.strip()
    factor = 1
    for suffix, size in (("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)):
        if text.endswith(suffix):
            text, factor = text[: -len(suffix)], size
            break
    try:
        value = int(text) * factor
    except ValueError:
        raise ValueError(f"{name}: not a byte count: {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name}: must not be negative: {raw!r}")
    return value


async def run_bounded(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    limits: ProcessLimits,
    what: str,
    scrub: str = "",
) -> bytes:
    """Run `args` within `limits` and return its stdout.

    `what` names the work in messages ("kustomize build"); `scrub` is removed from
    stderr (the private work dir). Raises BuildError on a non-zero exit, a signal,
    the memory limit, the output cap or the timeout (the child is killed).
    """
    env = dict(env)
    argv = list(args)
    if limits.memory_bytes:
        env["GOMEMLIMIT"] = str(limits.memory_bytes * 3 // 4)
        argv = [sys.executable, "-I", "-S", "-c", _SHIM, str(limits.memory_bytes), *argv]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(cwd),
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    err_task = asyncio.create_task(_read_head(proc.stderr), name=f"{what} stderr")
    try:
        async with asyncio.timeout(limits.timeout):
            stdout, over = await _read_capped(proc.stdout, limits.max_output_bytes)
            if over:
                await _kill(proc)
                raise BuildError(
                    f"{what} stopped: its output exceeds the limit of "
                    f"{format_bytes(limits.max_output_bytes)} ({OUTPUT_ENV})"
                )
            stderr = await err_task
            await proc.wait()
    except TimeoutError:
        await _kill(proc)
        raise BuildError(f"{what} timed out after {limits.timeout:g}s") from None
    except BaseException:
        await _kill(proc)
        raise
    finally:
        await cancel_and_wait(err_task)
    if proc.returncode != 0:
        raise BuildError(_failure(what, proc.returncode, stderr, limits, scrub))
    return stdout


def _failure(what: str, code: int | None, stderr: bytes, limits: ProcessLimits, scrub: str) -> str:
    """Return the message of a failed run: the limit, the signal, or stderr."""
    text = stderr.decode("utf-8", "replace").strip()
    if scrub:
        text = text.replace(scrub, "")
    first = text.splitlines()[0] if text else ""
    lowered = text.lower()
    if limits.memory_bytes and (
        any(m in lowered for m in _OOM_MARKERS)
        or any(lowered.startswith(m) for m in _GO_RUNTIME_CRASH)
    ):
        return (
            f"{what} killed at the memory limit of {format_bytes(limits.memory_bytes)} "
            f"({MEMORY_ENV}): {first}"
        )
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"{what} killed by {name}" + (f": {_trim(text)}" if text else "")
    return f"{what} failed: {_trim(text) or f'exit status {code}'}"


def _trim(text: str, limit: int = 2000) -> str:
    text = text.removeprefix("Error: ").removeprefix("error: ")
    return text if len(text) <= limit else text[:limit] + "…"


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, bool]:
    """Return what `stream` gives until its end, or `(what was read, True)` as soon as it
    passes `cap` bytes (the rest is never read)."""
    buf = bytearray()
    while chunk := await stream.read(_CHUNK):
        if len(buf) + len(chunk) > cap:
            return bytes(buf), True
        buf += chunk
    return bytes(buf), False


async def _read_head(stream: asyncio.StreamReader) -> bytes:
    """Return the first `STDERR_KEPT` bytes of `stream`, reading (and dropping) the rest."""
    buf = bytearray()
    while chunk := await stream.read(_CHUNK):
        if len(buf) < STDERR_KEPT:
            buf += chunk[: STDERR_KEPT - len(buf)]
    return bytes(buf)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
