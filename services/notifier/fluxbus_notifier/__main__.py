"""Entry point of the notifier service (not implemented yet: a later issue fills it)."""

import sys


def main() -> None:
    """Say that the service is not written yet and exit 1."""
    print("fluxbus-notifier: not implemented", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
