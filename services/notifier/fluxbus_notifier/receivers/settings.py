"""Settings of the Receiver webhook server, read from the environment.

FLUXBUS_RECEIVER_ADDR: `host:port` the server listens on (default
`0.0.0.0:9292`, notification-controller's receiver port; port 0: any free
port). The request body limit is Flux's (3 MiB).

Pure: reads only the mapping it is given (defaults to os.environ).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fluxbus_common.settings import EnvVar

DEFAULT_RECEIVER_ADDR = "0.0.0.0:9292"
MAX_BODY_BYTES = 3 * 1024 * 1024
"""Flux's maxRequestSizeBytes: larger bodies get 413."""
ADDR_ENV = "FLUXBUS_RECEIVER_ADDR"
RECEIVER_ENV: tuple[EnvVar, ...] = (
    EnvVar(ADDR_ENV, DEFAULT_RECEIVER_ADDR, "host:port of the Receiver webhook server"),
)


@dataclass(frozen=True)
class ReceiverSettings:
    """Where the webhook server listens and how much body it reads."""

    addr: str = DEFAULT_RECEIVER_ADDR
    max_body: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReceiverSettings:
        """Read FLUXBUS_RECEIVER_ADDR; raise ValueError when it is not `host:port`."""
        e = os.environ if env is None else env
        addr = e.get(ADDR_ENV, "").strip() or DEFAULT_RECEIVER_ADDR
        _host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise ValueError(f'{ADDR_ENV}: expected host:port, got "{addr}"')
        return cls(addr=addr)
