"""The kustomize service's settings (environment: FLUXBUS_KUSTOMIZE_*)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fluxbus_common.api.kustomize import MIN_KUSTOMIZATION_TIMEOUT
from fluxbus_kustomize.logic.history import HISTORY_LIMIT

DEFAULT_HTTP_ADDR = "127.0.0.1:9791"
"""/healthz /readyz /metrics unless FLUXBUS_HTTP_ADDR says otherwise: this
service's own port (each service has one, so they run side by side on one
host), loopback only outside containers (they set 0.0.0.0 explicitly)."""


@dataclass(frozen=True)
class KustomizeSettings:
    """Service knobs (environment: FLUXBUS_KUSTOMIZE_*).

    DEPENDENCY_REQUEUE: seconds before a Kustomization waiting on a dependency
      looks again (Flux's `--requeue-dependency`, 30 s); a dependency turning
      Ready requeues at once anyway.
    STRICT_SUBSTITUTION: an unset variable without default is an error (1/0).
    RENDER_CACHE: rendered builds kept in memory (one per Kustomization is
      enough to never render the same inputs twice).
    MIN_TIMEOUT: the floor of a Kustomization's timeout (Flux's GetTimeout()
      never goes below 30 s; tests lower it to keep timeouts short).
    HISTORY_LIMIT: entries kept in a Kustomization's status.history, each with
      its rendered output in the object store for `fluxbus rollback` (10).
    DEFAULT_SERVICE_ACCOUNT: impersonated when a Kustomization names none
      (Flux's `--default-service-account`, for multi-tenant lockdown).

    The bounds of a render are read by `build.BuildLimits.from_env`:
    FLUXBUS_RENDER_MEMORY (kustomize's memory, default 1Gi; 0 lifts it),
    FLUXBUS_RENDER_MAX_OUTPUT (its output, default 256Mi), FLUXBUS_RENDER_TIMEOUT
    (seconds, default 120) and FLUXBUS_ARTIFACT_MAX_* (what an artifact may hold).
    """

    dependency_requeue: float = 30.0
    strict_substitution: bool = True
    render_cache: int = 4096
    min_timeout: float = MIN_KUSTOMIZATION_TIMEOUT
    default_service_account: str | None = None
    history_limit: int = HISTORY_LIMIT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KustomizeSettings:
        """Read the settings from `env` (default: the process environment)."""
        e = os.environ if env is None else env
        d = cls()
        return cls(
            dependency_requeue=float(
                e.get("FLUXBUS_KUSTOMIZE_DEPENDENCY_REQUEUE") or d.dependency_requeue
            ),
            strict_substitution=(e.get("FLUXBUS_KUSTOMIZE_STRICT_SUBSTITUTION") or "1")
            not in ("0", "false", "False"),
            render_cache=int(e.get("FLUXBUS_KUSTOMIZE_RENDER_CACHE") or d.render_cache),
            min_timeout=float(e.get("FLUXBUS_KUSTOMIZE_MIN_TIMEOUT") or d.min_timeout),
            default_service_account=e.get("FLUXBUS_KUSTOMIZE_DEFAULT_SERVICE_ACCOUNT") or None,
            history_limit=int(e.get("FLUXBUS_KUSTOMIZE_HISTORY_LIMIT") or d.history_limit),
        )
