"""Settings of the source service, from the environment (12-factor).

Pure: reads only the mapping it is given (defaults to os.environ).

FLUXBUS_LOG_LEVEL: log level (default info). The bus and runtime settings
are the shared ones (`fluxbus_common.settings`); Git timeouts and size
limits come from each GitRepository's spec and `fluxbus_git`'s defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fluxbus_common.artifact import ARTIFACT_ENV
from fluxbus_common.settings import EnvVar, http_addr_env

DEFAULT_HTTP_ADDR = "127.0.0.1:9790"
"""/healthz /readyz /metrics unless FLUXBUS_HTTP_ADDR says otherwise: this
service's own port (each service has one, so they run side by side on one
host), loopback only outside containers (they set 0.0.0.0 explicitly)."""
KEEP_ARTIFACTS = 2
"""Artifacts kept per source object (Flux's default history: the current one and one more)."""


SOURCE_ENV: tuple[EnvVar, ...] = (http_addr_env(DEFAULT_HTTP_ADDR), *ARTIFACT_ENV)
"""Settings of its own beyond the shared ones (`fluxbus-source --help` lists both)."""


@dataclass(frozen=True)
class SourceSettings:
    """What the source service needs beyond the shared bus and runtime settings."""

    log_level: str = "info"
    work_dir: Path | None = None
    """Where fetched trees are unpacked (None: the system temp dir)."""
    keep_artifacts: int = KEEP_ARTIFACTS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SourceSettings:
        """Read FLUXBUS_LOG_LEVEL; everything else keeps its default."""
        e = os.environ if env is None else env
        return cls(log_level=e.get("FLUXBUS_LOG_LEVEL", "info"))
