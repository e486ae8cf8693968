"""One Git operation's scratch space: cancellation, size limits, private temp files.

Runs in the worker thread `GitClient` hands each operation to. A `Session`
owns what the operation started — a private 0700 temp dir for keys, ssh
children, open protocols — and a cancel flag the event loop sets when the
caller's timeout fires; `check()` raises `Cancelled` at every chunk, so a
cancelled fetch stops promptly, and `close()` kills and reaps the rest.

Size limits are enforced while data arrives: `SizeExceeded` for pack bytes
and checked-out bytes, and `check_unpacked_size` refuses a pack whose
objects would inflate past the limit before anything is inflated.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from fluxbus_git.logic.auth import GitProxy

DEFAULT_TIMEOUT = 60.0
"""Flux's default `spec.timeout`."""

CANCELLED = "operation cancelled"


class Cancelled(Exception):
    """Raised inside the worker thread once the caller gave up (timeout)."""


class SizeExceeded(Exception):
    """More than the size limit arrived (`what`: pack data, unpacked objects, files)."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(what)
        self.what = what
        self.size = size


class Closable(Protocol):
    """A transport protocol dulwich opened (closing it ends the ssh child's pipes)."""

    def close(self) -> None: ...


def close_streams(proc: subprocess.Popen[bytes]) -> None:
    """Close a child's pipes (after it was reaped), ignoring already-closed ones."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


@dataclass
class Session:
    """Per-operation scratch: temp files for keys, ssh children, a cancel flag."""

    _tmp: Path | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    protocols: list[Closable] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    timeout: float = DEFAULT_TIMEOUT
    proxy: GitProxy | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tmp(self) -> Path:
        """A private (0700) temp dir, made on first use (HTTP polls never need one)."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="fluxbus-git-auth-"))
        return self._tmp

    def write(self, name: str, data: bytes, mode: int = 0o600) -> Path:
        """Write `data` to a private file `name` in `tmp` (created with `mode`); return its path."""
        path = self.tmp / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    @property
    def needs_cleanup(self) -> bool:
        """Whether `close()` has anything to do (HTTP polls usually leave nothing)."""
        with self.lock:
            return bool(self.procs or self.protocols or self._tmp is not None)

    def check(self) -> None:
        """Raise `Cancelled` once the caller gave up."""
        if self.cancelled.is_set():
            raise Cancelled(CANCELLED)

    def cancel(self) -> None:
        """Flag the operation cancelled and kill its ssh children (they unblock reads)."""
        self.cancelled.set()
        with self.lock:
            for p in self.procs:
                if p.poll() is None:
                    p.kill()

    def close(self) -> None:
        """Cancel, close protocols, reap children and remove the temp dir (blocking)."""
        self.cancel()
        with self.lock:
            for proto in self.protocols:
                with contextlib.suppress(Exception):
                    proto.close()
            self.protocols.clear()
            for p in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=5)
                close_streams(p)
            self.procs.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


_OFS_DELTA, _REF_DELTA = 6, 7
"""Pack object types of deltas (by offset, by reference), from Git's pack format."""


def _read_varint_size(data: bytes) -> int:
    """Decode one size varint at the start of a delta (little-endian base-128)."""
    size = shift = 0
    for b in data:
        size |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return size


def check_unpacked_size(f: IO[bytes], limit: int, session: Session) -> None:
    """Refuse a pack whose objects inflate to more than `limit` bytes, before inflating it.

    A pack under the byte limit can still hold a blob that compresses a
    million to one; a checkout would write it whole to disk. This walks
    the pack's object headers, streaming each zlib body through a
    decompressor that keeps nothing, and adds up the declared sizes (for a
    delta, the size of the object it produces). Raises `SizeExceeded`.
    """
    end = f.tell()
    f.seek(0)
    try:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"PACK":
            return  # not a pack; dulwich's own checks will report it
        count = int.from_bytes(header[8:12], "big")
        total = 0
        for _ in range(count):
            session.check()
            byte = f.read(1)[0]
            kind, size, shift = (byte >> 4) & 7, byte & 0x0F, 4
            while byte & 0x80:
                byte = f.read(1)[0]
                size |= (byte & 0x7F) << shift
                shift += 7
            if kind == _OFS_DELTA:
                while f.read(1)[0] & 0x80:
                    pass
            elif kind == _REF_DELTA:
                f.read(20)
            inflater = zlib.decompressobj()
            head = b""
            while not inflater.eof:
                chunk = f.read(1 << 16)
                if not chunk:
                    return  # truncated: dulwich's checksum verification reports it
                out = inflater.decompress(chunk, 1 << 16)
                while inflater.unconsumed_tail and not inflater.eof:
                    if len(head) < 20:
                        head += out[:20]
                    out = inflater.decompress(inflater.unconsumed_tail, 1 << 16)
                if len(head) < 20:
                    head += out[:20]
            f.seek(-len(inflater.unused_data), os.SEEK_CUR)
            if kind in (_OFS_DELTA, _REF_DELTA):
                # Delta header: base size varint, then result size varint.
                i = 0
                while i < len(head) and head[i] & 0x80:
                    i += 1
                size = _read_varint_size(head[i + 1 :])
            total += size
            if total > limit:
                raise SizeExceeded("unpacked objects", limit)
    finally:
        f.seek(end)
