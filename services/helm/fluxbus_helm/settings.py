"""The helm service's settings (environment: FLUXBUS_HELM_*).

Pure: reads only the mapping it is given (defaults to os.environ).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fluxbus_common.settings import EnvVar, http_addr_env

DEFAULT_HTTP_ADDR = "127.0.0.1:9794"
"""/healthz /readyz /metrics unless FLUXBUS_HTTP_ADDR says otherwise: this
service's own port, loopback only outside containers."""
MIB = 2**20


def _bytes(text: str) -> int:
    """Parse `768Mi`, `1Gi`, `500M` or a plain number of bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    t = text.strip()
    for suffix, factor in units.items():
        if t.endswith(suffix) and t[: -len(suffix)].strip().isdigit():
            return int(t[: -len(suffix)]) * factor
    return int(t)


@dataclass(frozen=True)
class HelmSettings:
    """Service knobs (environment: FLUXBUS_HELM_*).

    WORKERS: Helm worker processes (each runs one action at a time).
    WORKER_MEMORY: memory limit of one worker (e.g. 768Mi); a worker past it is
      killed and replaced, the action fails with WorkerLimitExceeded.
    WORKER_TIMEOUT: seconds one worker call may take beyond the action's own
      timeout before it is killed.
    CONCURRENT: HelmReleases whose release step runs at the same time (the
      others wait their turn; default: WORKERS).
    DEPENDENCY_REQUEUE: seconds before a HelmRelease waiting on dependsOn or on
      its chart looks again (Flux's `--requeue-dependency`, 30 s); a dependency
      or chart turning ready requeues at once anyway.
    DEFAULT_SERVICE_ACCOUNT: impersonated when a HelmRelease names none
      (Flux's `--default-service-account`).
    CHART_CACHE: loaded charts kept in memory by artifact digest.
    """

    workers: int = 2
    worker_memory: int = 768 * MIB
    worker_timeout: float = 600.0
    concurrent: int = 0
    dependency_requeue: float = 30.0
    default_service_account: str | None = None
    chart_cache: int = 64

    @property
    def max_concurrent(self) -> int:
        return self.concurrent if self.concurrent > 0 else max(1, self.workers)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HelmSettings:
        """Read the settings from `env` (default: the process environment).

        Raises ValueError naming the variable when one is malformed."""
        e = os.environ if env is None else env
        d = cls()

        def get(name: str, parse: type[float] | type[int], default: float) -> float:
            raw = e.get(f"FLUXBUS_HELM_{name}")
            try:
                return parse(raw) if raw else default
            except ValueError:
                raise ValueError(f"FLUXBUS_HELM_{name}: invalid value {raw!r}") from None

        memory = e.get("FLUXBUS_HELM_WORKER_MEMORY")
        try:
            worker_memory = _bytes(memory) if memory else d.worker_memory
        except ValueError:
            raise ValueError(f"FLUXBUS_HELM_WORKER_MEMORY: invalid value {memory!r}") from None
        return cls(
            workers=int(get("WORKERS", int, d.workers)),
            worker_memory=worker_memory,
            worker_timeout=get("WORKER_TIMEOUT", float, d.worker_timeout),
            concurrent=int(get("CONCURRENT", int, d.concurrent)),
            dependency_requeue=get("DEPENDENCY_REQUEUE", float, d.dependency_requeue),
            default_service_account=e.get("FLUXBUS_HELM_DEFAULT_SERVICE_ACCOUNT") or None,
            chart_cache=int(get("CHART_CACHE", int, d.chart_cache)),
        )


_D = HelmSettings()
HELM_ENV: tuple[EnvVar, ...] = (
    http_addr_env(DEFAULT_HTTP_ADDR),
    EnvVar("KUBECONFIG", "<in-cluster service account>", "the target cluster"),
    EnvVar("FLUXBUS_HELM_WORKERS", str(_D.workers), "Helm worker processes"),
    EnvVar("FLUXBUS_HELM_WORKER_MEMORY", "768Mi", "memory limit of one Helm worker"),
    EnvVar(
        "FLUXBUS_HELM_WORKER_TIMEOUT", f"{_D.worker_timeout:g}", "seconds one worker call may take"
    ),
    EnvVar("FLUXBUS_HELM_CONCURRENT", "<workers>", "HelmReleases released at the same time"),
    EnvVar(
        "FLUXBUS_HELM_DEPENDENCY_REQUEUE",
        f"{_D.dependency_requeue:g}",
        "seconds before a HelmRelease waiting on dependsOn or its chart looks again",
    ),
    EnvVar(
        "FLUXBUS_HELM_DEFAULT_SERVICE_ACCOUNT", "", "impersonated when a HelmRelease names none"
    ),
    EnvVar("FLUXBUS_HELM_CHART_CACHE", str(_D.chart_cache), "loaded charts kept in memory"),
)
"""What `fluxbus-helm --help` lists beside the shared settings."""
