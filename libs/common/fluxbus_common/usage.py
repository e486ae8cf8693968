"""The command line of a service executable: `fluxbus-<service> --help` lists
the settings it reads from the environment and exits 0; `--version` prints the
version; any other argument is refused (exit 2), since every setting comes
from the environment (12-factor)."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Sequence

from fluxbus_common.settings import COMMON_ENV, EnvVar


def version() -> str:
    """Return the installed fluxbus version ("unknown" when not installed)."""
    try:
        return importlib.metadata.version("fluxbus")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def usage_text(prog: str, summary: str, env: Sequence[EnvVar]) -> str:
    """Return the --help text: usage, summary, the service's own settings, then the shared ones."""
    width = max(len(v.name) for v in (*env, *COMMON_ENV))

    def rows(vars_: Sequence[EnvVar]) -> list[str]:
        out = []
        for v in vars_:
            default = f" (default {v.default})" if v.default else ""
            out.append(f"  {v.name.ljust(width)}  {v.help}{default}")
        return out

    lines = [f"Usage: {prog} [--help] [--version]", "", summary, ""]
    lines.append("Settings (environment variables):")
    if env:
        lines += rows(env)
        lines.append("")
        lines.append("Shared by every service:")
    lines += rows(COMMON_ENV)
    lines += ["", "SIGTERM or Ctrl-C stops it cleanly."]
    return "\n".join(lines)


def handle_args(
    prog: str, summary: str, env: Sequence[EnvVar], argv: Sequence[str] | None = None
) -> None:
    """Answer --help/-h and --version (exit 0) or refuse other arguments (exit 2);
    return when there are none."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(usage_text(prog, summary, env))
        sys.exit(0)
    if "--version" in args:
        print(f"{prog} {version()}")
        sys.exit(0)
    if args:
        print(
            f"{prog}: unexpected argument {args[0]!r}: settings come from the environment "
            f"(see {prog} --help)",
            file=sys.stderr,
        )
        sys.exit(2)
