"""A Helm worker process: `python -m fluxbus_helmsdk.worker [--memory-bytes N]`.

Imports helm_python once and serves many requests, one at a time, as frames
(`fluxbus_helmsdk.protocol`) on stdin/stdout; anything Helm or Python prints
goes to stderr, never into the protocol. `--memory-bytes` sets RLIMIT_DATA on
itself before Helm's Go runtime loads: the kernel refuses the allocation past
the limit and Go stops with "fatal error: ... out of memory", which the engine
reports as `WorkerLimitExceeded("memory")`. (RLIMIT_AS cannot be used: the Go
runtime reserves ~1.7 GB of address space at start and fails below that.)

Secrets (kubeconfigs, registry passwords) arrive only in request frames.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import sys
from typing import Any, BinaryIO

from . import protocol
from .errors import HelmEngineError, WorkerLimitExceeded, to_wire

# prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1
# Exit status after a Python MemoryError: the process may be in a bad state.
EXIT_MEMORY = 3


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = stream.read(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read(stream: BinaryIO) -> dict[str, Any] | None:
    header = _read_exact(stream, protocol.HEADER.size)
    if header is None:
        return None
    body = _read_exact(stream, protocol.body_length(header))
    return None if body is None else protocol.decode(body)


def _write(stream: BinaryIO, doc: dict[str, Any]) -> None:
    stream.write(protocol.encode(doc))
    stream.flush()


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    from . import sdk

    try:
        return {"id": request.get("id"), "ok": sdk.call(str(request["op"]), request["args"])}
    except HelmEngineError as e:
        return {"id": request.get("id"), "error": to_wire(e)}
    except MemoryError:
        raise
    except Exception as e:  # a bug or an unexpected library error: report its kind, no values
        error = HelmEngineError(f"the Helm worker failed: {type(e).__name__}")
        return {"id": request.get("id"), "error": to_wire(error)}


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the engine's process dies (no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not fatal: the worker still exits on stdin EOF
        return
    if os.getppid() == 1:  # the parent is already gone
        sys.exit(0)


def serve(memory_bytes: int | None) -> int:
    """Serve requests until stdin closes; returns the exit status."""
    _die_with_parent()
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray output goes to stderr
    from . import sdk  # loads Helm's Go runtime, once

    _write(answers, {"ready": True, "available": sdk.available(), "pid": os.getpid()})
    while True:
        request = _read(requests)
        if request is None:
            return 0
        try:
            answer = _answer(request)
        except MemoryError:
            answer = {"id": request.get("id"), "error": to_wire(WorkerLimitExceeded("memory"))}
            _write(answers, answer)
            return EXIT_MEMORY
        _write(answers, answer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fluxbus_helmsdk.worker")
    parser.add_argument("--memory-bytes", type=int, default=0)
    options = parser.parse_args(argv)
    sys.exit(serve(options.memory_bytes or None))


if __name__ == "__main__":
    main()
