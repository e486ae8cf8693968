"""`fluxbus-source`: settings → logging → asyncio.run(app.run())."""

from __future__ import annotations

from fluxbus_common import logconfig
from fluxbus_common.entrypoint import run_main
from fluxbus_source import app
from fluxbus_source.settings import SourceSettings


def main() -> None:
    """Run the source service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL)."""
    settings = SourceSettings.from_env()
    logconfig.configure(settings.log_level)
    run_main("fluxbus-source", app.run(settings=settings))


if __name__ == "__main__":
    main()
