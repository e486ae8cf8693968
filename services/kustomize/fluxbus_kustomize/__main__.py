"""Entry point of the kustomize service (`fluxbus-kustomize`): settings →
logging → `asyncio.run(app.run())`."""

from __future__ import annotations

import asyncio
import os

from fluxbus_common import logconfig

from fluxbus_kustomize import app


def main() -> None:
    """Run the service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL)."""
    logconfig.configure(os.environ.get("FLUXBUS_LOG_LEVEL", "info"))
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
