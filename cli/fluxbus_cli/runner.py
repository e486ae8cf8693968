"""What every typer command module shares: the common options and `run`, which
connects to the bus, calls one async command under `asyncio.run`, and turns
`CliError`/`BusError` into `✗ message` and an exit code (never a traceback)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, NoReturn

import typer

from fluxbus_cli import manifests
from fluxbus_cli.commands.kinds import complete_kind
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common.bus import Bus
from fluxbus_common.duration import parse_duration
from fluxbus_common.ports import BusError
from fluxbus_common.settings import BusSettings

DEFAULT_NAMESPACE = "flux-system"
CLIENT_NAME = "fluxbus-cli"

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="The namespace of the objects.")]
AllNamespaces = Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")]
Files = Annotated[
    list[str],
    typer.Option("--filename", "-f", help="A file, a directory (recursive) or - for stdin."),
]
Timeout = Annotated[str, typer.Option("--timeout", help="How long to wait (Go duration).")]
OutputFormat = Annotated[str, typer.Option("--output", "-o", help="table, wide, json or yaml.")]
Watch = Annotated[bool, typer.Option("--watch", "-w", help="Print changes as they happen.")]
Export = Annotated[bool, typer.Option("--export", help="Print the YAML instead of storing it.")]
Silent = Annotated[
    bool, typer.Option("--silent", "-s", help="Delete without asking for confirmation.")
]


def _complete_kind(ctx: typer.Context, incomplete: str) -> list[str]:
    """Complete the KIND words from those already typed (typer passes no args list)."""
    return complete_kind(list(ctx.params.get("words") or []), incomplete)


_KIND_HELP = "e.g. ks NAME, gitrepositories, all, or Flux's sources git NAME, images policy NAME"
KindWords = Annotated[
    list[str],
    typer.Argument(metavar="KIND [NAME]", help=_KIND_HELP, autocompletion=_complete_kind),
]
OptionalKindWords = Annotated[
    list[str] | None,
    typer.Argument(metavar="[KIND NAME]", help=_KIND_HELP, autocompletion=_complete_kind),
]

Format = Literal["table", "wide", "json", "yaml"]
_FORMATS: dict[str, Format] = {"table": "table", "wide": "wide", "json": "json", "yaml": "yaml"}


def duration(value: str, flag: str = "--timeout") -> float:
    """Seconds of a Go duration given to `flag`; raise CliError naming the flag."""
    try:
        return parse_duration(value)
    except ValueError as e:
        raise CliError(f"{flag}: {e}") from None


def output_format(value: str) -> Format:
    """The `-o` value; raise CliError for anything but table, wide, json or yaml."""
    if value not in _FORMATS:
        raise CliError(f'--output must be table, wide, json or yaml, got "{value}"')
    return _FORMATS[value]


def scope(namespace: str, all_namespaces: bool) -> str | None:
    """The namespace to list (None: every namespace)."""
    return None if all_namespaces else manifests.check_namespace(namespace)


def exit_with(code: int) -> NoReturn:
    raise typer.Exit(code)


def fail(out: Output, error: Exception, code: int = 1) -> NoReturn:
    """Print `✗ error` and exit `code`."""
    out.failure(str(error))
    raise typer.Exit(code)


def run(command: Callable[[Bus, Output], Awaitable[int]]) -> None:
    """Connect to the bus, run one command, close; exit with its code.

    Connection failures, bus errors and CliErrors end as one `✗` line and exit 1.
    """
    out = Output()

    async def main() -> int:
        try:
            settings = BusSettings.from_env()
        except ValueError as e:
            raise CliError(str(e)) from None
        bus = await Bus.connect(settings, CLIENT_NAME)
        try:
            return await command(bus, out)
        finally:
            await bus.close()

    run_local(main, out)


def run_local(command: Callable[[], Awaitable[int]], out: Output | None = None) -> None:
    """Run a command that needs no bus connection (or makes its own)."""
    out = out or Output()
    try:
        code = asyncio.run(_call(command))
    except CliError as e:
        fail(out, e, e.code)
    except BusError as e:
        fail(out, e)
    except KeyboardInterrupt:
        code = 0  # Ctrl-C ends --watch
    exit_with(code)


async def _call(command: Callable[[], Awaitable[int]]) -> int:
    """asyncio.run wants a coroutine; commands may return any awaitable."""
    return await command()
