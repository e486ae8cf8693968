"""The typer commands `fluxbus create source git|helm`, `fluxbus create kustomization`
and `fluxbus create helmrelease`, with Flux's flags (argument parsing only: the work
is in `commands.create` and `commands.create_helm`)."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxbus_cli.commands import create as create_cmd
from fluxbus_cli.commands import create_helm
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

source_app = typer.Typer(
    help="Create sources (Flux's `create source git|helm`).", no_args_is_help=True
)
SecretRef = Annotated[
    str, typer.Option("--secret-ref", help="An existing Secret with the credentials.")
]


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
    secret_ref: SecretRef = "",
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


@source_app.command("helm")
def create_source_helm(
    name: str,
    url: Annotated[
        str, typer.Option("--url", help="Helm repository address (http, https or oci://).")
    ] = "",
    secret_ref: SecretRef = "",
    pass_credentials: Annotated[
        bool, typer.Option("--pass-credentials", help="Pass credentials to all domains.")
    ] = False,
    fetch_timeout: Annotated[
        str, typer.Option("--fetch-timeout", help="How long one index download may take.")
    ] = "",
    interval: Interval = create_cmd.DEFAULT_INTERVAL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    export: Export = False,
    wait: Wait = True,
    timeout: Timeout = "5m",
) -> None:
    """A HelmRepository (as `flux create source helm`); waits for its first index."""
    request = create_helm.HelmSourceRequest(
        name, namespace, url, secret_ref, pass_credentials, interval, fetch_timeout
    )
    _create(lambda: create_helm.helm_source_document(request), export, wait, timeout)


def create_helmrelease(
    name: str,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="<kind>/<name>[.<namespace>] of the chart's source "
            "(HelmRepository or GitRepository).",
        ),
    ] = "",
    chart: Annotated[str, typer.Option("--chart", help="Helm chart name or path.")] = "",
    chart_version: Annotated[
        str, typer.Option("--chart-version", help="Chart version, a semver range.")
    ] = "",
    chart_ref: Annotated[
        str, typer.Option("--chart-ref", help="HelmChart/<name>[.<namespace>] to use instead.")
    ] = "",
    release_name: Annotated[
        str, typer.Option("--release-name", help="Default: [<target-namespace>-]<name>.")
    ] = "",
    target_namespace: Annotated[
        str, typer.Option("--target-namespace", help="Namespace to install the release in.")
    ] = "",
    storage_namespace: Annotated[
        str, typer.Option("--storage-namespace", help="Where Helm stores the release.")
    ] = "",
    create_target_namespace: Annotated[
        bool, typer.Option("--create-target-namespace", help="Create the target namespace.")
    ] = False,
    depends_on: Annotated[
        list[str] | None,
        typer.Option("--depends-on", help="[<namespace>/]<name> HelmReleases to be Ready first."),
    ] = None,
    values: Annotated[
        list[str] | None, typer.Option("--values", help="Local values.yaml files (merged).")
    ] = None,
    values_from: Annotated[
        list[str] | None,
        typer.Option("--values-from", help="Secret/<name> or ConfigMap/<name> (key values.yaml)."),
    ] = None,
    service_account: Annotated[
        str, typer.Option("--service-account", help="The service account to impersonate.")
    ] = "",
    reconcile_strategy: Annotated[
        str, typer.Option("--reconcile-strategy", help="ChartVersion or Revision.")
    ] = "ChartVersion",
    chart_interval: Annotated[
        str, typer.Option("--chart-interval", help="How often to check for new chart versions.")
    ] = "",
    crds: Annotated[str, typer.Option("--crds", help="Skip, Create or CreateReplace.")] = "",
    kubeconfig_secret_ref: Annotated[
        str, typer.Option("--kubeconfig-secret-ref", help="A Secret with a remote kubeconfig.")
    ] = "",
    interval: Interval = create_cmd.DEFAULT_INTERVAL,
    namespace: Namespace = DEFAULT_NAMESPACE,
    export: Export = False,
    wait: Wait = True,
    timeout: Timeout = "5m",
) -> None:
    """A HelmRelease (as `flux create helmrelease`); waits for its first release."""
    request = create_helm.HelmReleaseRequest(
        name=name,
        namespace=namespace,
        source=source,
        chart=chart,
        chart_version=chart_version,
        chart_ref=chart_ref,
        release_name=release_name,
        target_namespace=target_namespace,
        storage_namespace=storage_namespace,
        create_target_namespace=create_target_namespace,
        depends_on=tuple(depends_on or ()),
        values_files=tuple(values or ()),
        values_from=tuple(values_from or ()),
        service_account=service_account,
        reconcile_strategy=reconcile_strategy,
        chart_interval=chart_interval,
        crds=crds,
        kubeconfig_secret_ref=kubeconfig_secret_ref,
        interval=interval,
    )
    _create(lambda: create_helm.helm_release_document(request), export, wait, timeout)


def register(create_app: typer.Typer) -> None:
    """Add `source git|helm`, `kustomization` (alias `ks`) and `helmrelease` (alias `hr`)
    under `fluxbus create`."""
    create_app.add_typer(source_app, name="source")
    create_app.command("kustomization")(create_kustomization)
    create_app.command("ks", hidden=True)(create_kustomization)
    create_app.command("helmrelease")(create_helmrelease)
    create_app.command("hr", hidden=True)(create_helmrelease)
