"""The typer commands `fluxbus create source git` and `fluxbus create kustomization`,
with Flux's flags (argument parsing only: the work is in `commands.create`)."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxbus_cli.commands import create as create_cmd
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_cli.runner import (
    DEFAULT_NAMESPACE,
    Export,
    Namespace,
    Timeout,
    duration,
    exit_with,
    fail,
    run,
)

Interval = Annotated[str, typer.Option("--interval", help="How often to reconcile (Go duration).")]
Wait = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait for the first reconcile's outcome.")
]

source_app = typer.Typer(help="Create sources (Flux's `create source git`).", no_args_is_help=True)


def _create(build: create_cmd.Builder, export: bool, wait: bool, timeout: str) -> None:
    out = Output()
    try:
        seconds = duration(timeout)
        doc = build()
        if export:
            exit_with(create_cmd.export(out, doc))
    except CliError as e:
        fail(out, e)
    run(lambda bus, o: create_cmd.create(bus, o, doc, wait=wait, timeout=seconds))


@source_app.command("git")
def create_source_git(
    name: str,
    url: Annotated[str, typer.Option("--url", help="ssh://, http:// or https:// address.")] = "",
    branch: Annotated[str, typer.Option("--branch", help="Git branch.")] = "",
    tag: Annotated[str, typer.Option("--tag", help="Git tag.")] = "",
    semver: Annotated[
        str, typer.Option("--tag-semver", "--semver", help="Git tag semver range.")
    ] = "",
    commit: Annotated[str, typer.Option("--commit", help="Git commit SHA.")] = "",
    secret_ref: Annotated[
        str, typer.Option("--secret-ref", help="An existing Secret with SSH or basic credentials.")
    ] = "",
    interval: Interval = create_cmd.DEFAULT_INTERVAL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    export: Export = False,
    wait: Wait = True,
    timeout: Timeout = "5m",
) -> None:
    """A GitRepository (as `flux create source git`); waits for its first artifact."""
    request = create_cmd.GitSourceRequest(
        name, namespace, url, branch, tag, semver, commit, secret_ref, interval
    )
    _create(lambda: create_cmd.git_source_document(request), export, wait, timeout)


def create_kustomization(
    name: str,
    source: Annotated[
        str,
        typer.Option(
            "--source", help="[<kind>/]<name>[.<namespace>] of the source (kind: GitRepository)."
        ),
    ] = "",
    path: Annotated[str, typer.Option("--path", help="Directory in the source.")] = "./",
    prune: Annotated[bool, typer.Option("--prune", help="Delete what leaves Git.")] = False,
    interval: Interval = create_cmd.DEFAULT_INTERVAL,
    target_namespace: Annotated[
        str, typer.Option("--target-namespace", help="Override the namespace of every object.")
    ] = "",
    depends_on: Annotated[
        list[str] | None,
        typer.Option(
            "--depends-on", help="[<namespace>/]<name> to be Ready first (repeatable, a,b)."
        ),
    ] = None,
    namespace: Namespace = DEFAULT_NAMESPACE,
    export: Export = False,
    wait: Wait = True,
    timeout: Timeout = "5m",
) -> None:
    """A Kustomization (as `flux create kustomization`); waits for its first apply."""
    request = create_cmd.KustomizationRequest(
        name, namespace, source, path, prune, interval, target_namespace, tuple(depends_on or ())
    )
    _create(lambda: create_cmd.kustomization_document(request), export, wait, timeout)


def register(create_app: typer.Typer) -> None:
    """Add `source git` and `kustomization` (alias `ks`) under `fluxbus create`."""
    create_app.add_typer(source_app, name="source")
    create_app.command("kustomization")(create_kustomization)
    create_app.command("ks", hidden=True)(create_kustomization)
