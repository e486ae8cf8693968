"""`fluxbus-notifier`: settings → logging → asyncio.run(app.run())."""

from __future__ import annotations

from fluxbus_common import logconfig
from fluxbus_common.entrypoint import run_main
from fluxbus_common.usage import handle_args
from fluxbus_notifier import app
from fluxbus_notifier.receivers.settings import RECEIVER_ENV
from fluxbus_notifier.settings import NOTIFIER_ENV, NotifierSettings

SUMMARY = (
    "The notifier service (Flux's notification-controller): sends events to Slack,\n"
    "webhooks and commit statuses per Alert, and serves Receiver webhooks."
)


def main() -> None:
    """Run the notifier until SIGTERM/SIGINT (settings from FLUXBUS_* variables)."""
    handle_args("fluxbus-notifier", SUMMARY, (*NOTIFIER_ENV, *RECEIVER_ENV))
    settings = NotifierSettings.from_env()
    logconfig.configure(settings.log_level)
    run_main("fluxbus-notifier", app.run(settings=settings))


if __name__ == "__main__":
    main()
