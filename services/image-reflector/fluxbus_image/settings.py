"""Settings of the image-reflector service, from the environment (12-factor).

Pure: reads only the mapping it is given (defaults to os.environ).

- FLUXBUS_LOG_LEVEL: log level (default info).
- FLUXBUS_IMAGE_WORK_DIR: where automation clones are made (default: the system temp dir).
- FLUXBUS_IMAGE_DEPENDENCY_REQUEUE: seconds before an ImagePolicy whose
  ImageRepository has no tags yet is looked at again (default 10 s; Flux's
  `--requeue-dependency` default is 30 s, but a scan wakes the policy at
  once through the bus, so this is only the fallback).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fluxbus_common.settings import EnvVar, http_addr_env

DEFAULT_HTTP_ADDR = "127.0.0.1:9792"
"""/healthz /readyz /metrics unless FLUXBUS_HTTP_ADDR says otherwise: this
service's own port (each service has one, so they run side by side on one
host), loopback only outside containers (they set 0.0.0.0 explicitly)."""
DEPENDENCY_REQUEUE = 10.0
"""Seconds before re-checking a dependency that is not ready (the bus usually wakes it sooner)."""


IMAGE_ENV: tuple[EnvVar, ...] = (
    http_addr_env(DEFAULT_HTTP_ADDR),
    EnvVar("FLUXBUS_IMAGE_WORK_DIR", "<system temp dir>", "where automation clones are made"),
    EnvVar(
        "FLUXBUS_IMAGE_DEPENDENCY_REQUEUE",
        f"{DEPENDENCY_REQUEUE:g}",
        "seconds before a policy waiting for tags looks again",
    ),
)
"""What `fluxbus-image-reflector --help` lists beside the shared settings."""


@dataclass(frozen=True)
class ImageSettings:
    """What the image-reflector service needs beyond the shared bus and runtime settings."""

    log_level: str = "info"
    work_dir: Path | None = None
    dependency_requeue: float = DEPENDENCY_REQUEUE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ImageSettings:
        """Read the FLUXBUS_* variables above; raise ValueError naming a bad one."""
        e = os.environ if env is None else env
        work_dir = e.get("FLUXBUS_IMAGE_WORK_DIR")
        raw = e.get("FLUXBUS_IMAGE_DEPENDENCY_REQUEUE", str(DEPENDENCY_REQUEUE))
        try:
            requeue = float(raw)
        except ValueError:
            raise ValueError(
                f"FLUXBUS_IMAGE_DEPENDENCY_REQUEUE: not a number of seconds: {raw!r}"
            ) from None
        if requeue <= 0:
            raise ValueError("FLUXBUS_IMAGE_DEPENDENCY_REQUEUE: must be positive")
        return cls(
            log_level=e.get("FLUXBUS_LOG_LEVEL", "info"),
            work_dir=Path(work_dir) if work_dir else None,
            dependency_requeue=requeue,
        )
