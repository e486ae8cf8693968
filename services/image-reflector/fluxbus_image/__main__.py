"""`fluxbus-image-reflector`: settings → logging → asyncio.run(app.run())."""

from __future__ import annotations

import sys

from fluxbus_common.entrypoint import run_main
from fluxbus_common.logconfig import configure
from fluxbus_image import app
from fluxbus_image.settings import ImageSettings


def main() -> None:
    """Run the image-reflector service until SIGTERM/SIGINT (log level from FLUXBUS_LOG_LEVEL)."""
    try:
        settings = ImageSettings.from_env()
    except ValueError as e:
        print(f"fluxbus-image-reflector: {e}", file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level)
    run_main("fluxbus-image-reflector", app.run(settings=settings))


if __name__ == "__main__":
    main()
