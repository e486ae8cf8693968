"""Entry point of the kustomize service (`fluxbus-kustomize`): settings →
logging → `asyncio.run(app.run())`."""

from __future__ import annotations

import asyncio
import os
import sys

import structlog

from fluxbus_common import logconfig
from fluxbus_kustomize import app
from fluxbus_kustomize.cluster import ClusterError


def main() -> None:
    """Run the service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL).

    Exits 1 when no target cluster configuration can be loaded.
    """
    logconfig.configure(os.environ.get("FLUXBUS_LOG_LEVEL", "info"))
    try:
        asyncio.run(app.run())
    except ClusterError as e:
        structlog.get_logger("fluxbus.kustomize").error("service.no_cluster", error=str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
