"""`fluxbus-image-reflector`: settings → logging → asyncio.run(app.run())."""

from __future__ import annotations

import sys

from fluxbus_common.entrypoint import run_main
from fluxbus_common.logconfig import configure
from fluxbus_common.usage import handle_args
from fluxbus_image import app
from fluxbus_image.settings import IMAGE_ENV, ImageSettings

SUMMARY = (
    "The image-reflector service (Flux's image-reflector and image-automation\n"
    "controllers): scans registries, picks images by policy, commits updates to Git."
)


def main() -> None:
    """Run the image-reflector service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL)."""
    handle_args("fluxbus-image-reflector", SUMMARY, IMAGE_ENV)
    try:
        settings = ImageSettings.from_env()
    except ValueError as e:
        print(f"fluxbus-image-reflector: {e}", file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level)
    run_main("fluxbus-image-reflector", app.run(settings=settings))


if __name__ == "__main__":
    main()
