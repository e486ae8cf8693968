"""The typer commands `fluxbus nats config` and `fluxbus nats init` (argument
parsing only: the work is in `commands.nats`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fluxbus_cli.commands import nats as nats_cmd
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_cli.runner import fail, run_local
from fluxbus_common.natsauth import ServerTLS
from fluxbus_common.settings import BusSettings

nats_app = typer.Typer(
    help="Lock the bus: NATS users, permissions, TLS, encryption (docs/security.md).",
    no_args_is_help=True,
)


@nats_app.command("config")
def nats_config(
    directory: Annotated[Path, typer.Argument(help="Where nats.conf and creds/ are written.")],
    store_dir: Annotated[str, typer.Option(help="JetStream data directory of the server.")] = (
        "/data/jetstream"
    ),
    host: Annotated[str, typer.Option(help="Address the server listens on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Client port.")] = 4222,
    tls_cert: Annotated[str | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[str | None, typer.Option(help="Server key (PEM).")] = None,
    tls_ca: Annotated[str | None, typer.Option(help="CA of client certificates.")] = None,
    tls_verify: Annotated[bool, typer.Option(help="Require client certificates.")] = False,
    encrypt: Annotated[bool, typer.Option(help="JetStream encryption at rest.")] = True,
    key_env: Annotated[
        str, typer.Option(help="Read the encryption key from this env var of the server.")
    ] = "",
) -> None:
    """Write a nats-server config with a user per service, the CLI, a read-only
    dashboard and the admin, and each user's nkey seed."""
    out = Output()
    if bool(tls_cert) != bool(tls_key):
        fail(out, CliError("--tls-cert and --tls-key go together"))
    tls = ServerTLS(tls_cert, tls_key, tls_ca, tls_verify) if tls_cert and tls_key else None
    run_local(
        lambda: nats_cmd.write_config(
            out,
            directory,
            store_dir=store_dir,
            host=host,
            port=port,
            tls=tls,
            encrypt=encrypt,
            key_env=key_env,
        ),
        out,
    )


@nats_app.command("init")
def nats_init() -> None:
    """Create the buckets, object store and streams (run with the admin's
    FLUXBUS_NATS_CREDS; the services' own users may not create them)."""
    out = Output()

    async def main() -> int:
        try:
            settings = BusSettings.from_env()
        except ValueError as e:
            raise CliError(str(e)) from None
        return await nats_cmd.init(out, settings)

    run_local(main, out)


def register(app: typer.Typer) -> None:
    """Add `nats config` and `nats init` under `fluxbus`."""
    app.add_typer(nats_app, name="nats")
