"""`fluxbus-source`: settings → logging → asyncio.run(app.run())."""

from __future__ import annotations

from fluxbus_common import logconfig
from fluxbus_common.entrypoint import run_main
from fluxbus_common.usage import handle_args
from fluxbus_source import app
from fluxbus_source.settings import SOURCE_ENV, SourceSettings

SUMMARY = (
    "The source service (Flux's source-controller): fetches each GitRepository\n"
    "and stores its tree as an artifact in the NATS object store."
)


def main() -> None:
    """Run the source service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL)."""
    handle_args("fluxbus-source", SUMMARY, SOURCE_ENV)
    settings = SourceSettings.from_env()
    logconfig.configure(settings.log_level)
    run_main("fluxbus-source", app.run(settings=settings))


if __name__ == "__main__":
    main()
