"""`fluxbus-notifier`: settings → logging → asyncio.run(app.run())."""

from __future__ import annotations

from fluxbus_common import logconfig
from fluxbus_common.entrypoint import run_main
from fluxbus_notifier import app
from fluxbus_notifier.settings import NotifierSettings


def main() -> None:
    """Run the notifier until SIGTERM/SIGINT (settings from FLUXBUS_* variables)."""
    settings = NotifierSettings.from_env()
    logconfig.configure(settings.log_level)
    run_main("fluxbus-notifier", app.run(settings=settings))


if __name__ == "__main__":
    main()
