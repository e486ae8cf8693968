"""Entry point of the helm service (`fluxbus-helm`): settings → logging →
`asyncio.run(app.run())`."""

from __future__ import annotations

import os
import sys

import structlog

from fluxbus_common.entrypoint import run_main
from fluxbus_common.logconfig import configure
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.usage import handle_args
from fluxbus_helm import app
from fluxbus_helm.settings import DEFAULT_HTTP_ADDR, HELM_ENV, HelmSettings
from fluxbus_kube import ClusterError

SUMMARY = (
    "The helm service (Flux's helm-controller): installs, upgrades, tests and\n"
    "remediates each HelmRelease with Helm's own engine, from its HelmChart's artifact."
)


def main() -> None:
    """Run the service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL).

    Exits 1 when no target cluster configuration can be loaded, 2 on a bad setting.
    """
    handle_args("fluxbus-helm", SUMMARY, HELM_ENV)
    bus_settings = BusSettings.from_env()
    runtime_settings = RuntimeSettings.from_env(default_http_addr=DEFAULT_HTTP_ADDR)
    try:
        settings = HelmSettings.from_env()
    except ValueError as e:
        print(f"fluxbus-helm: {e}", file=sys.stderr)
        sys.exit(2)
    configure(os.environ.get("FLUXBUS_LOG_LEVEL", "info"))
    try:
        run_main(
            "fluxbus-helm",
            app.run(
                bus_settings=bus_settings, runtime_settings=runtime_settings, settings=settings
            ),
        )
    except ClusterError as e:
        structlog.get_logger("fluxbus.helm").error("service.no_cluster", error=str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
