"""Entry point of the fluxbus CLI."""

import sys


def main() -> None:
    print("fluxbus: not implemented", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
