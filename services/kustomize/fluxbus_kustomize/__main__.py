"""Entry point of the kustomize service (`fluxbus-kustomize`): settings →
logging → `asyncio.run(app.run())`."""

from __future__ import annotations

import os
import sys

import structlog

from fluxbus_common import logconfig
from fluxbus_common.artifact import ARTIFACT_ENV
from fluxbus_common.entrypoint import run_main
from fluxbus_common.settings import BusSettings, EnvVar, RuntimeSettings, http_addr_env
from fluxbus_common.usage import handle_args
from fluxbus_kube.errors import ClusterError
from fluxbus_kustomize import app
from fluxbus_kustomize.settings import DEFAULT_HTTP_ADDR, KustomizeSettings

SUMMARY = (
    "The kustomize service (Flux's kustomize-controller): renders each Kustomization\n"
    "from its source's artifact and applies it to the cluster with server-side apply."
)
_D = KustomizeSettings()
KUSTOMIZE_ENV: tuple[EnvVar, ...] = (
    http_addr_env(DEFAULT_HTTP_ADDR),
    EnvVar("KUBECONFIG", "<in-cluster service account>", "the target cluster"),
    EnvVar(
        "FLUXBUS_KUSTOMIZE_DEPENDENCY_REQUEUE",
        f"{_D.dependency_requeue:g}",
        "seconds before a Kustomization waiting on dependsOn looks again",
    ),
    EnvVar("FLUXBUS_KUSTOMIZE_STRICT_SUBSTITUTION", "1", "an unset variable without default fails"),
    EnvVar("FLUXBUS_KUSTOMIZE_RENDER_CACHE", str(_D.render_cache), "rendered builds kept"),
    EnvVar("FLUXBUS_KUSTOMIZE_MIN_TIMEOUT", f"{_D.min_timeout:g}", "floor of spec.timeout (s)"),
    EnvVar(
        "FLUXBUS_KUSTOMIZE_DEFAULT_SERVICE_ACCOUNT",
        "",
        "impersonated when a Kustomization names none",
    ),
    *ARTIFACT_ENV,
)
"""What `fluxbus-kustomize --help` lists beside the shared settings."""


def main() -> None:
    """Run the service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL).

    Exits 1 when no target cluster configuration can be loaded.
    """
    handle_args("fluxbus-kustomize", SUMMARY, KUSTOMIZE_ENV)
    bus_settings = BusSettings.from_env()
    runtime_settings = RuntimeSettings.from_env(default_http_addr=DEFAULT_HTTP_ADDR)
    settings = KustomizeSettings.from_env()
    logconfig.configure(os.environ.get("FLUXBUS_LOG_LEVEL", "info"))
    try:
        run_main(
            "fluxbus-kustomize",
            app.run(
                bus_settings=bus_settings, runtime_settings=runtime_settings, settings=settings
            ),
        )
    except ClusterError as e:
        structlog.get_logger("fluxbus.kustomize").error("service.no_cluster", error=str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
