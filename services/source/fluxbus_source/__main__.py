"""`fluxbus-source`: settings → logging → asyncio.run(app.run())."""

from __future__ import annotations

import asyncio
import os

from fluxbus_common import logconfig
from fluxbus_source import app


def main() -> None:
    logconfig.configure(os.environ.get("FLUXBUS_LOG_LEVEL", "info"))
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
