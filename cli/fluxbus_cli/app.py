"""The typer application: argument parsing only; every command connects, calls
one async function of `fluxbus_cli.commands` under `asyncio.run`, and turns
`CliError`/`BusError` into `✗ message` and an exit code (never a traceback)."""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fluxbus_cli import flux_create, manifests, nats_app, store
from fluxbus_cli.commands import apply as apply_cmd
from fluxbus_cli.commands import check as check_cmd
from fluxbus_cli.commands import delete as delete_cmd
from fluxbus_cli.commands import events as events_cmd
from fluxbus_cli.commands import get as get_cmd
from fluxbus_cli.commands import logs as logs_cmd
from fluxbus_cli.commands import operate as operate_cmd
from fluxbus_cli.commands import receiver as receiver_cmd
from fluxbus_cli.commands import reconcile as reconcile_cmd
from fluxbus_cli.commands import secret as secret_cmd
from fluxbus_cli.commands import timeline as timeline_cmd
from fluxbus_cli.commands.kinds import kind, kind_and_name, kind_words, one_kind_and_name
from fluxbus_cli.errors import CliError
from fluxbus_cli.logic.timeline import Wanted
from fluxbus_cli.render import Output
from fluxbus_cli.runner import (
    DEFAULT_NAMESPACE,
    AllNamespaces,
    Export,
    Files,
    KindWords,
    Namespace,
    OptionalKindWords,
    OutputFormat,
    Silent,
    Timeout,
    Watch,
    run,
    run_local,
)
from fluxbus_cli.runner import duration as _duration
from fluxbus_cli.runner import exit_with as _exit
from fluxbus_cli.runner import fail as _fail
from fluxbus_cli.runner import output_format as _format
from fluxbus_cli.runner import scope as _scope
from fluxbus_cli.secrets import (
    DOCKER_CONFIG_JSON_TYPE,
    docker_config_data,
    generic_data,
    git_data,
    secret_document,
    split_file_spec,
    split_literal,
)
from fluxbus_common.api import resolve_kind
from fluxbus_common.settings import BusSettings

app = typer.Typer(
    name="fluxbus",
    help="GitOps in Python: drive fluxbus's Flux-compatible controllers over NATS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
create_app = typer.Typer(help="Create objects.", no_args_is_help=True)
create_secret_app = typer.Typer(help="Create Secrets with Flux's keys.", no_args_is_help=True)
create_app.add_typer(create_secret_app, name="secret")
app.add_typer(create_app, name="create")
flux_create.register(create_app)
nats_app.register(app)


# -- apply / get / delete / export -----------------------------------------------------


@app.command()
def apply(
    filename: Files,
    namespace: Namespace = DEFAULT_NAMESPACE,
) -> None:
    """Create or update objects from files, directories or stdin (all or nothing)."""
    out = Output()
    try:
        sources = manifests.read_sources(filename)
    except CliError as e:
        _fail(out, e)
    run(lambda bus, o: apply_cmd.apply(bus, o, sources, namespace))


@app.command()
def get(
    words: KindWords,
    namespace: Namespace = DEFAULT_NAMESPACE,
    all_namespaces: AllNamespaces = False,
    output: OutputFormat = "table",
    watch: Watch = False,
) -> None:
    """Show objects with their readiness, message, revision and age (`-o wide`: and spec)."""
    out = Output()
    try:
        infos, name = kind_words(words).astuple()
        fmt = _format(output)
        scope = _scope(namespace, all_namespaces)
        if name is not None and scope is None:
            raise CliError("a NAME needs one namespace (-n), not --all-namespaces")
        if name is not None and len(infos) > 1:
            raise CliError("a NAME needs one kind, not all")
        if watch and len(infos) > 1:
            raise CliError("--watch takes one kind, not all")
    except CliError as e:
        _fail(out, e)
    if watch:
        run(lambda bus, o: get_cmd.watch(bus, o, infos[0], scope, name, fmt))
    else:
        run(lambda bus, o: get_cmd.get(bus, o, infos, scope, name, fmt))


@app.command()
def delete(
    words: OptionalKindWords = None,
    filename: Annotated[
        list[str] | None, typer.Option("--filename", "-f", help="Delete what these files name.")
    ] = None,
    namespace: Namespace = DEFAULT_NAMESPACE,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until finalizers finish (--wait=false).")
    ] = True,
    timeout: Timeout = "1m",
    silent: Silent = False,
) -> None:
    """Delete an object, or those named in files; asks first unless -s/--silent."""
    out = Output()
    try:
        seconds = _duration(timeout)
        if filename:
            if words:
                raise CliError("give either KIND NAME or -f, not both")
            sources = manifests.read_sources(filename)
            objects = manifests.load(sources, namespace)
            what = [
                store.describe(resolve_kind(o.kind), o.metadata.namespace, o.metadata.name)
                for o in objects
            ]
        else:
            info, name = one_kind_and_name(words or [], "delete")
            manifests.check_namespace(namespace)
            what = [store.describe(info, namespace, name)]
        delete_cmd.confirm(what, silent=silent)
    except CliError as e:
        _fail(out, e)
    if filename:
        run(
            lambda bus, o: apply_cmd.delete_files(
                bus, o, sources, namespace, wait=wait, timeout=seconds
            )
        )
    else:
        run(
            lambda bus, o: delete_cmd.delete(
                bus, o, info, namespace, name, wait=wait, timeout=seconds
            )
        )


@app.command()
def export(
    words: KindWords,
    namespace: Namespace = DEFAULT_NAMESPACE,
    all_namespaces: AllNamespaces = False,
) -> None:
    """Print objects as clean YAML that `fluxbus apply -f -` takes back."""
    out = Output()
    try:
        infos, name = kind_words(words).astuple()
        scope = _scope(namespace, all_namespaces)
        if name is not None and scope is None:
            raise CliError("a NAME needs one namespace (-n), not --all-namespaces")
        if name is not None and len(infos) > 1:
            raise CliError("a NAME needs one kind, not all")
    except CliError as e:
        _fail(out, e)
    run(lambda bus, o: get_cmd.export(bus, o, infos, scope, name))


# -- reconcile / suspend / resume ------------------------------------------------------


@app.command()
def reconcile(
    words: KindWords,
    namespace: Namespace = DEFAULT_NAMESPACE,
    with_source: Annotated[
        bool, typer.Option("--with-source", help="Reconcile the source first.")
    ] = False,
    timeout: Timeout = "5m",
) -> None:
    """Trigger a reconcile now and wait for its outcome (exit 1 when not Ready)."""
    out = Output()
    try:
        info, name = one_kind_and_name(words, "reconcile")
        seconds = _duration(timeout)
        manifests.check_namespace(namespace)
    except CliError as e:
        _fail(out, e)
    run(
        lambda bus, o: reconcile_cmd.reconcile(
            bus, o, info, namespace, name, with_source=with_source, timeout=seconds
        )
    )


@app.command()
def suspend(
    words: KindWords,
    namespace: Namespace = DEFAULT_NAMESPACE,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept as annotation).")
    ] = None,
) -> None:
    """Stop reconciling an object (spec.suspend: true)."""
    out = Output()
    try:
        info, name = one_kind_and_name(words, "suspend")
        manifests.check_namespace(namespace)
    except CliError as e:
        _fail(out, e)
    run(lambda bus, o: reconcile_cmd.suspend(bus, o, info, namespace, name, reason))


@app.command()
def resume(
    words: KindWords,
    namespace: Namespace = DEFAULT_NAMESPACE,
    timeout: Timeout = "5m",
) -> None:
    """Resume reconciling an object and wait for the reconcile it triggers."""
    out = Output()
    try:
        info, name = one_kind_and_name(words, "resume")
        seconds = _duration(timeout)
        manifests.check_namespace(namespace)
    except CliError as e:
        _fail(out, e)
    run(lambda bus, o: reconcile_cmd.resume(bus, o, info, namespace, name, timeout=seconds))


# -- operate a Kustomization: build, diff, tree, history, rollback (commands/operate.py) --

operate_cmd.register(app, run, DEFAULT_NAMESPACE)


# -- events ----------------------------------------------------------------------------


@app.command()
def events(
    for_: Annotated[str | None, typer.Option("--for", help="Only events about KIND/NAME.")] = None,
    namespace: Namespace = DEFAULT_NAMESPACE,
    all_namespaces: AllNamespaces = False,
    watch: Watch = False,
) -> None:
    """List events from the events stream (TIME TYPE REASON OBJECT MESSAGE)."""
    out = Output()
    try:
        target = kind_and_name(for_) if for_ else None
        scope = _scope(namespace, all_namespaces)
    except CliError as e:
        _fail(out, e)
    if watch:
        run(lambda bus, o: events_cmd.follow(bus, o, scope, target))
    else:
        run(lambda bus, o: events_cmd.events(bus, o, scope, target))


# -- timeline --------------------------------------------------------------------------


@app.command()
def timeline(
    for_: Annotated[
        list[str] | None, typer.Option("--for", help="Only KIND/NAME (repeatable).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only the last DURATION.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Draw FILE.png or FILE.svg.")
    ] = None,
    namespace: Namespace = DEFAULT_NAMESPACE,
    all_namespaces: AllNamespaces = False,
) -> None:
    """Each object's sync state over time with its events marked, and a table of them."""
    out = Output()
    try:
        scope = _scope(namespace, all_namespaces)
        targets = [kind_and_name(ref) for ref in for_ or []]
        wanted = [Wanted(i.kind, n, scope) for i, n in targets]
        request = timeline_cmd.TimelineRequest(
            tuple(wanted or [Wanted(namespace=scope)]),
            None if since is None else _duration(since, "--since"),
            timeline_cmd.check_output(output),
        )
    except CliError as e:
        _fail(out, e)
    run(lambda bus, o: timeline_cmd.timeline(bus, o, request))


# -- logs ------------------------------------------------------------------------------


@app.command()
def logs(
    service: Annotated[
        str | None, typer.Option("--service", help="Only this service (e.g. kustomize).")
    ] = None,
    kind_name: Annotated[
        str | None, typer.Option("--kind", help="Only records about objects of this kind.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Only records about this object.")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Only objects in this namespace (with --name: flux-system)."
        ),
    ] = None,
    all_namespaces: AllNamespaces = False,
    level: Annotated[
        str | None,
        typer.Option("--level", help="debug, info, warning or error: that level and worse."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Print new records as they come.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", help="Only the last N stored records.")
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="text or json (one record a line).")
    ] = "text",
) -> None:
    """Show the log records of every service instance (from the logs stream)."""
    out = Output()
    try:
        if output not in ("text", "json"):
            raise CliError(f'--output must be text or json, got "{output}"')
        kind_filter = kind(kind_name).kind if kind_name else None
        scope = None if all_namespaces else namespace
        if scope is None and name is not None and not all_namespaces:
            scope = DEFAULT_NAMESPACE
        if scope is not None:
            manifests.check_namespace(scope)
        query = logs_cmd.LogQuery(
            service=service,
            kind=kind_filter,
            name=name,
            namespace=scope,
            level=logs_cmd.check_level(level),
        )
    except CliError as e:
        _fail(out, e)
    run(
        lambda bus, o: logs_cmd.logs(
            bus, o, query, follow=follow, tail=tail, as_json=output == "json"
        )
    )


# -- create secret ---------------------------------------------------------------------


def _create_secret(export: bool, build: Callable[[], dict[str, Any]]) -> None:
    out = Output()
    try:
        doc = build()
        if export:
            _exit(secret_cmd.export_secret(out, doc))
    except CliError as e:
        _fail(out, e)
    run(lambda bus, o: secret_cmd.store_secret(bus, o, doc))


@create_secret_app.command("generic")
def create_secret_generic(
    name: str,
    from_literal: Annotated[
        list[str] | None, typer.Option("--from-literal", help="KEY=VALUE (repeatable).")
    ] = None,
    from_file: Annotated[
        list[str] | None, typer.Option("--from-file", help="[KEY=]PATH (repeatable).")
    ] = None,
    namespace: Namespace = DEFAULT_NAMESPACE,
    export: Export = False,
) -> None:
    """A Secret from literal values and files."""

    def build() -> dict[str, Any]:
        literals = [split_literal(item) for item in from_literal or []]
        files = []
        for item in from_file or []:
            key, path = split_file_spec(item)
            files.append((key or Path(path).name, secret_cmd.read_file(path, "--from-file")))
        data = generic_data(literals, files)
        if not data:
            raise CliError("give at least one --from-literal or --from-file")
        return secret_document(name, namespace, data)

    _create_secret(export, build)


@create_secret_app.command("git")
def create_secret_git(
    name: str,
    url: Annotated[str, typer.Option("--url", help="The Git repository URL (decides the keys).")],
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password: Annotated[str | None, typer.Option("--password", "-p")] = None,
    bearer_token: Annotated[str | None, typer.Option("--bearer-token")] = None,
    private_key_file: Annotated[str | None, typer.Option("--private-key-file")] = None,
    known_hosts_file: Annotated[str | None, typer.Option("--known-hosts-file")] = None,
    ca_file: Annotated[str | None, typer.Option("--ca-file")] = None,
    cert_file: Annotated[str | None, typer.Option("--cert-file")] = None,
    key_file: Annotated[str | None, typer.Option("--key-file")] = None,
    namespace: Namespace = DEFAULT_NAMESPACE,
    export: Export = False,
) -> None:
    """A Git credentials Secret (basic auth, bearer token, SSH key, CA, client TLS)."""

    def read(path: str | None, flag: str) -> bytes | None:
        return None if path is None else secret_cmd.read_file(path, flag)

    def build() -> dict[str, Any]:
        data = git_data(
            url,
            username=username,
            password=password,
            bearer_token=bearer_token,
            private_key=read(private_key_file, "--private-key-file"),
            known_hosts=read(known_hosts_file, "--known-hosts-file"),
            ca=read(ca_file, "--ca-file"),
            cert=read(cert_file, "--cert-file"),
            key=read(key_file, "--key-file"),
        )
        return secret_document(name, namespace, data)

    _create_secret(export, build)


@create_secret_app.command("docker-registry")
def create_secret_docker_registry(
    name: str,
    docker_server: Annotated[str, typer.Option("--docker-server")],
    docker_username: Annotated[str, typer.Option("--docker-username")],
    docker_password: Annotated[str, typer.Option("--docker-password")],
    namespace: Namespace = DEFAULT_NAMESPACE,
    export: Export = False,
) -> None:
    """An image pull Secret (`.dockerconfigjson`)."""

    def build() -> dict[str, Any]:
        data = docker_config_data(docker_server, docker_username, docker_password)
        return secret_document(name, namespace, data, DOCKER_CONFIG_JSON_TYPE)

    _create_secret(export, build)


# -- create receiver -------------------------------------------------------------------


@create_app.command("receiver")
def create_receiver(
    name: str,
    type_: Annotated[
        str, typer.Option("--type", help=f"One of {', '.join(receiver_cmd.RECEIVER_TYPES)}.")
    ],
    resource: Annotated[
        list[str], typer.Option("--resource", help="KIND/NAME to reconcile (repeatable, a,b).")
    ],
    secret_ref: Annotated[
        str, typer.Option("--secret-ref", help="The Secret holding the token (key `token`).")
    ],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="Only these events, e.g. push (repeatable, a,b)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Store this token in the Secret (else: kept or generated)."),
    ] = None,
    url_base: Annotated[
        str,
        typer.Option("--url-base", help="How the sender reaches the notifier's receiver server."),
    ] = receiver_cmd.DEFAULT_URL_BASE,
    namespace: Namespace = DEFAULT_NAMESPACE,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until the Receiver is Ready.")
    ] = True,
    timeout: Timeout = "1m",
    export: Export = False,
) -> None:
    """A Receiver: an inbound webhook (GitHub, GitLab, a registry…) that requests reconciles.

    Prints the webhook URL to configure in the sender."""
    out = Output()
    req = receiver_cmd.ReceiverRequest(
        name=name,
        namespace=namespace,
        type=type_,
        events=event or [],
        resources=resource,
        secret_ref=secret_ref,
        token=token,
        url_base=url_base,
    )
    try:
        seconds = _duration(timeout)
        if export:
            _exit(receiver_cmd.export_receiver(out, req))
        receiver_cmd.receiver_document(req)
    except CliError as e:
        _fail(out, e)
    run(lambda bus, o: receiver_cmd.create_receiver(bus, o, req, wait=wait, timeout=seconds))


# -- check / version / up --------------------------------------------------------------


@app.command()
def check() -> None:
    """Check NATS, JetStream, the buckets/store/streams, kubectl, kustomize, and that
    every service has a live instance (exit 1 naming the one that has none)."""
    out = Output()

    async def main() -> int:
        try:
            settings = BusSettings.from_env()
        except ValueError as e:
            raise CliError(str(e)) from None
        return await check_cmd.check(out, settings)

    run_local(main, out)


def fluxbus_version() -> str:
    try:
        return importlib.metadata.version("fluxbus")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@app.command()
def version() -> None:
    """Print the fluxbus version."""
    Output().data(f"fluxbus {fluxbus_version()}")


def _print_version(value: bool) -> None:
    if value:
        version()
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """GitOps in Python: drive fluxbus's Flux-compatible controllers over NATS.

    Shell completion: `fluxbus --install-completion` (bash, zsh, fish, PowerShell)."""


@app.command()
def up(
    cluster: Annotated[
        str, typer.Option("--cluster", help="embedded (kubelite) or current (kubeconfig).")
    ] = "embedded",
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Where NATS and kubelite keep data.")
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="NATS without users and permissions (tests, old state)."),
    ] = False,
) -> None:
    """Start NATS, the controllers and (with --cluster embedded) a local API server.
    NATS gets a user per service and for the CLI (docs/security.md) unless --no-auth."""
    out = Output()
    if cluster not in ("embedded", "current"):
        _fail(out, CliError(f'--cluster must be embedded or current, got "{cluster}"'))
    try:
        up_module = importlib.import_module("fluxbus_cli.up")
    except ModuleNotFoundError as e:
        if e.name != "fluxbus_cli.up":
            raise
        _fail(out, CliError("fluxbus up is not available in this build"))
    _exit(
        up_module.main(
            cluster=cluster,
            state_dir=None if state_dir is None else str(state_dir),
            secure=not no_auth,
        )
        or 0
    )
