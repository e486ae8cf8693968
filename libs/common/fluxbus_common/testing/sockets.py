"""Test support: which local addresses a port is listening on (Linux
/proc/net/tcp and tcp6), to prove a server binds loopback only."""

from __future__ import annotations

import socket
from pathlib import Path

LISTEN = "0A"
"""The TCP state LISTEN as /proc/net/tcp writes it."""


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    # tcp6 writes four 32-bit words, each in host (little-endian) order
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening_hosts(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` on this host."""
    hosts: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            hex_addr, _, hex_port = fields[1].partition(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                hosts.add(_address(hex_addr))
    return hosts
