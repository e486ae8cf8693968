"""Entry point of the fluxbus CLI (`fluxbus` console script, `python -m fluxbus_cli`)."""

from __future__ import annotations

import sys

FALSE = ("false", "0", "no", "off")
TRUE = ("true", "1", "yes", "on")


def normalize_argv(argv: list[str]) -> list[str]:
    """Accept kubectl's `--wait=false` / `--wait=true` spelling of the --wait/--no-wait flag."""
    out: list[str] = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag == "--wait" and value.lower() in FALSE:
            out.append("--no-wait")
        elif sep and flag == "--wait" and value.lower() in TRUE:
            out.append("--wait")
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exits with the command's status."""
    args = normalize_argv(sys.argv[1:] if argv is None else argv)
    try:
        from fluxbus_cli.app import app

        app(args=args, prog_name="fluxbus")
    except KeyboardInterrupt:  # Ctrl-C before a command took over (e.g. while importing)
        sys.exit(130)


if __name__ == "__main__":
    main()
