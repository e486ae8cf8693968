"""Ports on 127.0.0.1 for the test servers: a free one, and waiting until one listens.

Test support, not production code.
"""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, banner: bytes | None = None) -> None:
    """Block until 127.0.0.1:port accepts a connection (and sends `banner`), or fail."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if banner is None or s.recv(64).startswith(banner):
                    return
        except OSError as e:
            last = e
        time.sleep(0.02)  # polling a port that has no event to wait on
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s: {last}")
