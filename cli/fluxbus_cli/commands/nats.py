"""`fluxbus nats config` and `fluxbus nats init`: lock the bus down.

`config` writes a nats-server configuration with one nkey user per role, its
permissions (docs/security.md), encryption at rest and optional TLS, plus the
users' seed files, ready to mount from Secrets (compose, Kubernetes).
`init` is the admin's bootstrap step: with the admin credentials it creates the
buckets, object store and streams that the services' own users may only bind to.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fluxbus_cli import natsconf
from fluxbus_cli.errors import CliError
from fluxbus_cli.render import Output
from fluxbus_common.bus import Bus
from fluxbus_common.natsauth import ServerTLS
from fluxbus_common.settings import BusSettings


async def write_config(
    out: Output,
    directory: Path,
    *,
    store_dir: str,
    host: str,
    port: int,
    tls: ServerTLS | None,
    encrypt: bool,
    key_env: str = "",
) -> int:
    """Write the configuration and seeds; print where each role's seed is."""
    try:
        files = await asyncio.to_thread(
            natsconf.write_config,
            directory,
            store_dir=store_dir,
            host=host,
            port=port,
            tls=tls,
            encrypt=encrypt,
            key_env=key_env,
        )
    except OSError as e:
        raise CliError(f"cannot write {directory}: {e.strerror or e}") from None
    out.success(f"nats-server configuration: {files.config}")
    for role, path in files.creds.items():
        out.data(f"  {role:<16} {natsconf.CREDS_ENV}={path}")
    if encrypt:
        out.data(f"  JetStream encryption key: {directory / natsconf.KEY_FILE} (keep it safe)")
    return 0


async def init(out: Output, settings: BusSettings) -> int:
    """Create the buckets, object store and streams as the connecting (admin) user."""
    bus = await Bus.connect(settings, "fluxbus-nats-init", create=True)
    await bus.close()
    out.success("buckets, object store and streams are in place")
    return 0
