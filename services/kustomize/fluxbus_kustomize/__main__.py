"""Entry point of the kustomize service (`fluxbus-kustomize`): settings →
logging → `asyncio.run(app.run())`."""

from __future__ import annotations

import os
import sys

import structlog

from fluxbus_common import logconfig
from fluxbus_common.entrypoint import run_main
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_kustomize import app
from fluxbus_kustomize.errors import ClusterError
from fluxbus_kustomize.settings import DEFAULT_HTTP_ADDR, KustomizeSettings


def main() -> None:
    """Run the service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL).

    Exits 1 when no target cluster configuration can be loaded.
    """
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
