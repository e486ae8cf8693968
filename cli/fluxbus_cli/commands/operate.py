"""The typer commands operating a Kustomization day to day: `build`, `diff`,
`tree`, `history` and `rollback` (Flux's and Argo CD's habits); `history` and
`rollback` also take a HelmRelease (`commands.helm_history`). `register`
adds them to the application; the work is in `diff`, `tree` and `history`.
Errors exit 2 (`diff` exits 1 for "differences")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from fluxbus_cli.commands import diff as diff_cmd
from fluxbus_cli.commands import helm_history, ks_access
from fluxbus_cli.commands import history as history_cmd
from fluxbus_cli.commands import tree as tree_cmd
from fluxbus_cli.commands.kinds import kind
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common.bus import Bus
from fluxbus_common.duration import parse_duration
from fluxbus_common.ports import BusError

Command = Callable[[Bus, Output], Awaitable[int]]
Runner = Callable[[Command], None]

KindArg = Annotated[str, typer.Argument(metavar="KIND", help="kustomization (ks)")]
HistoryKindArg = Annotated[
    str, typer.Argument(metavar="KIND", help="kustomization (ks) or helmrelease (hr)")
]
PathOpt = Annotated[
    str | None,
    typer.Option("--path", help="A local directory to build instead of the stored artifact."),
]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option("--kubeconfig", help="The target cluster (default: $KUBECONFIG)."),
]

Namespace = Annotated[
    str, typer.Option("--namespace", "-n", help="The namespace of the Kustomization.")
]


def _errors_exit_2(command: Command) -> Command:
    async def wrapped(bus: Bus, out: Output) -> int:
        try:
            return await command(bus, out)
        except CliError as e:
            raise CliError(e.message, max(e.code, ks_access.ERROR)) from None
        except BusError as e:
            raise CliError(str(e), ks_access.ERROR) from None

    return wrapped


def _checked(kind_name: str, command_name: str, out: Output, *checks: Callable[[], None]) -> bool:
    try:
        ks_access.check_kind(kind(kind_name), command_name)
        for check in checks:
            check()
    except CliError as e:
        out.failure(str(e))
        raise typer.Exit(ks_access.ERROR) from None
    return True


def _is_helm_release(kind_name: str, command_name: str, *checks: Callable[[], None]) -> bool:
    """Whether KIND is HelmRelease (then run `checks`, exiting 2 on a CliError)."""
    try:
        info = kind(kind_name)
    except CliError:
        return False  # `_checked` reports the unknown kind
    if info.kind != "HelmRelease":
        return False
    for check in checks:
        try:
            check()
        except CliError as e:
            Output().failure(f"{command_name}: {e}")
            raise typer.Exit(ks_access.ERROR) from None
    return True


def register(app: typer.Typer, run: Runner, default_namespace: str) -> None:
    """Add build, diff, tree, history and rollback to `app`; `run` connects and runs."""

    @app.command()
    def build(
        kind_name: KindArg,
        name: str,
        namespace: Namespace = default_namespace,
        path: PathOpt = None,
        kubeconfig: KubeconfigOpt = None,
    ) -> None:
        """Print the manifests a Kustomization would apply (from its artifact or --path)."""
        _checked(kind_name, "build", Output())
        run(
            _errors_exit_2(
                lambda bus, o: diff_cmd.build(
                    bus, o, namespace, name, path=path, kubeconfig=kubeconfig
                )
            )
        )

    @app.command()
    def diff(
        kind_name: KindArg,
        name: str,
        namespace: Namespace = default_namespace,
        path: PathOpt = None,
        kubeconfig: KubeconfigOpt = None,
    ) -> None:
        """Dry-run against the cluster: exit 0 no difference, 1 differences, 2 error."""
        _checked(kind_name, "diff", Output())
        run(
            _errors_exit_2(
                lambda bus, o: diff_cmd.diff(
                    bus, o, namespace, name, path=path, kubeconfig=kubeconfig
                )
            )
        )

    @app.command()
    def tree(kind_name: KindArg, name: str, namespace: Namespace = default_namespace) -> None:
        """Show the inventory as a tree, recursing into managed Kustomizations."""
        _checked(kind_name, "tree", Output())
        run(_errors_exit_2(lambda bus, o: tree_cmd.tree(bus, o, namespace, name)))

    @app.command()
    def history(
        kind_name: HistoryKindArg,
        name: str,
        namespace: Namespace = default_namespace,
        output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    ) -> None:
        """List the applied revisions (a HelmRelease: its Helm releases), newest first."""

        def check_format() -> None:
            if output not in ("table", "json"):
                raise CliError(f'--output must be table or json, got "{output}"')

        if _is_helm_release(kind_name, "history", check_format):
            run(
                _errors_exit_2(lambda bus, o: helm_history.history(bus, o, namespace, name, output))
            )
            return
        _checked(kind_name, "history", Output(), check_format)
        run(_errors_exit_2(lambda bus, o: history_cmd.history(bus, o, namespace, name, output)))

    @app.command()
    def rollback(
        kind_name: HistoryKindArg,
        name: str,
        namespace: Namespace = default_namespace,
        to: Annotated[
            str | None, typer.Option("--to", help="The revision (or digest) to return to.")
        ] = None,
        to_revision: Annotated[
            int | None,
            typer.Option("--to-revision", help="A HelmRelease: the Helm revision to return to."),
        ] = None,
        steps: Annotated[
            int | None, typer.Option("--steps", help="How many applied entries back (1).")
        ] = None,
        timeout: Annotated[str, typer.Option("--timeout", help="How long to wait.")] = "5m",
    ) -> None:
        """Apply an earlier history entry again (a HelmRelease: a Helm rollback to an
        earlier revision) and hold there (suspended) until resume."""
        seconds = 0.0
        revision: int | None = to_revision

        def check_args() -> None:
            nonlocal seconds
            if sum(x is not None for x in (to, to_revision, steps)) > 1:
                raise CliError("give one of --to, --to-revision or --steps")
            try:
                seconds = parse_duration(timeout)
            except ValueError as e:
                raise CliError(f"--timeout: {e}") from None

        def check_helm_args() -> None:
            nonlocal revision
            check_args()
            if to is not None:
                if not to.isdigit():
                    raise CliError(f'--to: a Helm revision is a number, got "{to}"')
                revision = int(to)

        if _is_helm_release(kind_name, "rollback", check_helm_args):
            run(
                _errors_exit_2(
                    lambda bus, o: helm_history.rollback(
                        bus, o, namespace, name, to_revision=revision, steps=steps, timeout=seconds
                    )
                )
            )
            return

        def check_ks_args() -> None:
            check_args()
            if to_revision is not None:
                raise CliError("--to-revision is for helmreleases; use --to for a Kustomization")

        _checked(kind_name, "rollback", Output(), check_ks_args)
        run(
            _errors_exit_2(
                lambda bus, o: history_cmd.rollback(
                    bus, o, namespace, name, to=to, steps=steps, timeout=seconds
                )
            )
        )
